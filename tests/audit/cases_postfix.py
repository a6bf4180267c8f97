"""Rule cases: a change to the hardened baseline -> the finding it must produce.

Each case: (id, main.cf lines appended, master.cf or None for the baseline, table files,
version, expected (rule, severity, subject) of the findings at or above low, excluding the
rule-independent ones listed in ``ALSO``).
"""

from __future__ import annotations

from tests.audit.helpers import (
    HARDENED_MAIN,
    PICKUP,
    SMTP,
    SUBMISSION_HEAD,
    SUBMISSION_OPTS,
    VERSION,
)

HELO_OK = {"/etc/postfix/helo": "# trusted HELO names\nlocalhost.localdomain OK\n"}
NO_MYNETWORKS = HARDENED_MAIN.replace("mynetworks = 127.0.0.0/8 [::1]/128\n", "")


def submission(*opts: str) -> str:
    """Baseline master.cf whose submission entry has these -o lines instead."""
    return SMTP + SUBMISSION_HEAD + "".join(f"  -o {o}\n" for o in opts) + PICKUP


SUB_BASE = (
    "syslog_name=postfix/submission",
    "smtpd_tls_security_level=encrypt",
    "smtpd_sasl_auth_enable=yes",
)
POSTSCREEN = (
    "smtp      inet  n       -       y       -       1       postscreen\n"
    "smtpd     pass  -       -       y       -       -       smtpd\n"
    "dnsblog   unix  -       -       y       -       0       dnsblog\n"
    + SUBMISSION_HEAD
    + SUBMISSION_OPTS
    + PICKUP
)

C, H, M, L = "critical", "high", "medium", "low"
RELAY_KEY = "main.cf:smtpd_relay_restrictions"

CASES: list[
    tuple[str, str, str | None, dict[str, str], tuple[int, ...] | None, list[tuple[str, str, str]]]
] = [
    ("baseline", "", None, {}, VERSION, []),
    # PF-01
    (
        "pf01-bare-permit",
        "smtpd_relay_restrictions = permit_mynetworks, permit, reject_unauth_destination\n",
        None,
        {},
        VERSION,
        [("PF-01", C, RELAY_KEY)],
    ),
    (
        "pf01-helo-ok",
        "smtpd_relay_restrictions = permit_mynetworks,\n"
        "  check_helo_access hash:/etc/postfix/helo, reject_unauth_destination\n",
        None,
        HELO_OK,
        VERSION,
        [("PF-01", C, RELAY_KEY)],
    ),
    (
        "pf01-cidr-all",
        "smtpd_relay_restrictions = permit_mynetworks, check_client_access "
        "cidr:$config_directory/clients.cidr, reject_unauth_destination\n",
        None,
        {"/etc/postfix/clients.cidr": "0.0.0.0/0 OK\n"},
        VERSION,
        [("PF-01", C, RELAY_KEY)],
    ),
    (
        "pf01-cidr-one-host",
        "smtpd_relay_restrictions = permit_mynetworks, check_client_access "
        "cidr:/etc/postfix/clients.cidr, reject_unauth_destination\n",
        None,
        {"/etc/postfix/clients.cidr": "192.0.2.10 OK\n"},
        VERSION,
        [("PF-01", M, RELAY_KEY)],
    ),
    (
        "pf01-cidr-rejects-only",
        "smtpd_relay_restrictions = permit_mynetworks, "
        "check_client_access cidr:/etc/postfix/clients.cidr, reject_unauth_destination\n",
        None,
        {"/etc/postfix/clients.cidr": "192.0.2.10 REJECT\n"},
        VERSION,
        [],
    ),
    (
        "pf01-ldap-unreadable",
        "smtpd_relay_restrictions = permit_mynetworks, "
        "check_client_access ldap:/etc/postfix/ldap.cf, reject_unauth_destination\n",
        None,
        {},
        VERSION,
        [("PF-01", H, RELAY_KEY)],
    ),
    (
        "pf01-policy",
        "smtpd_relay_restrictions = permit_mynetworks, check_policy_service "
        "inet:127.0.0.1:10040, reject_unauth_destination\n",
        None,
        {},
        VERSION,
        [("PF-01", M, RELAY_KEY)],
    ),
    (
        "pf01-dnswl",
        "smtpd_relay_restrictions = permit_mynetworks, permit_dnswl_client "
        "list.dnswl.org, reject_unauth_destination\n",
        None,
        {},
        VERSION,
        [("PF-01", H, RELAY_KEY)],
    ),
    (
        "pf01-static-ok-inline",
        "smtpd_relay_restrictions = permit_mynetworks, "
        "check_sender_access inline:{ example.org=OK }, reject_unauth_destination\n",
        None,
        {},
        VERSION,
        [("PF-01", C, RELAY_KEY)],
    ),
    (
        "pf01-no-gate",
        "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated\n",
        None,
        {},
        VERSION,
        [("PF-01", H, RELAY_KEY)],
    ),
    (
        "pf01-restriction-class",
        "smtpd_restriction_classes = friends\nfriends = permit\n"
        "smtpd_relay_restrictions = permit_mynetworks, friends, reject_unauth_destination\n",
        None,
        {},
        VERSION,
        [("PF-01", C, RELAY_KEY)],
    ),
    (
        "pf01-expanded",
        "my_relay = permit_mynetworks, permit\n"
        "smtpd_relay_restrictions = $my_relay reject_unauth_destination\n",
        None,
        {},
        VERSION,
        [("PF-01", C, RELAY_KEY)],
    ),
    (
        "pf01-gate-first",
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination, permit\n",
        None,
        {},
        VERSION,
        [],
    ),
    # PF-02
    (
        "pf02-legacy-helo",
        "smtpd_relay_restrictions =\nsmtpd_recipient_restrictions = "
        "permit_mynetworks, check_helo_access hash:/etc/postfix/helo, reject_unauth_destination\n",
        None,
        HELO_OK,
        VERSION,
        [("PF-02", C, "main.cf:smtpd_recipient_restrictions")],
    ),
    (
        "pf02-legacy-ok",
        "smtpd_relay_restrictions =\nsmtpd_recipient_restrictions = "
        "permit_mynetworks, reject_unauth_destination, check_helo_access hash:/etc/postfix/helo\n",
        None,
        HELO_OK,
        VERSION,
        [],
    ),
    (
        "pf02-recipient-backs-up-relay",
        "smtpd_relay_restrictions = permit_mynetworks, permit, "
        "reject_unauth_destination\nsmtpd_recipient_restrictions = permit_mynetworks, "
        "reject_unauth_destination\n",
        None,
        {},
        VERSION,
        [],
    ),
    # PF-03
    (
        "pf03-warn-if-reject",
        "smtpd_relay_restrictions = permit_mynetworks, warn_if_reject reject_unauth_destination\n",
        None,
        {},
        VERSION,
        [("PF-01", H, RELAY_KEY), ("PF-03", M, RELAY_KEY)],
    ),
    (
        "pf03-warn-if-reject-backed",
        "smtpd_relay_restrictions = permit_mynetworks, "
        "warn_if_reject reject_unauth_destination, reject_unauth_destination\n",
        None,
        {},
        VERSION,
        [("PF-03", M, RELAY_KEY)],
    ),
    (
        "pf03-soft-bounce",
        "soft_bounce = yes\n",
        None,
        {},
        VERSION,
        [("PF-03", M, "main.cf:soft_bounce")],
    ),
]
CASES += [
    # PF-04
    (
        "pf04-world",
        "mynetworks = 0.0.0.0/0\n",
        None,
        {},
        VERSION,
        [("PF-04", C, "main.cf:mynetworks")],
    ),
    (
        "pf04-public-16",
        "mynetworks = 127.0.0.0/8 93.184.0.0/16\n",
        None,
        {},
        VERSION,
        [("PF-04", H, "main.cf:mynetworks")],
    ),
    (
        "pf04-private-8",
        "mynetworks = 127.0.0.0/8, 10.0.0.0/8\n",
        None,
        {},
        VERSION,
        [("PF-06", H, "main.cf:mynetworks")],  # PF-04 joins it (details.rules)
    ),
    (
        "pf04-cidr-table-open",
        "mynetworks = cidr:/etc/postfix/nets.cidr\n",
        None,
        {"/etc/postfix/nets.cidr": "127.0.0.0/8 x\n0.0.0.0/0 x\n"},
        VERSION,
        [("PF-04", C, "main.cf:mynetworks")],
    ),
    (
        "pf04-inline-table-open",
        "mynetworks = 127.0.0.0/8, inline:{ 0.0.0.0/0=x }\n",
        None,
        {},
        VERSION,
        [("PF-04", C, "main.cf:mynetworks")],
    ),
    (
        "pf04-hash-table-unevaluated",
        "mynetworks = hash:/etc/postfix/nets\n",
        None,
        {"/etc/postfix/nets": "0.0.0.0/0 x\n"},
        VERSION,
        [("PF-04", M, "main.cf:mynetworks")],
    ),
    (
        "pf04-private-16-and-hostname",
        "mynetworks = 127.0.0.0/8 192.168.0.0/16 [::1]/128 example.com\n",
        None,
        {},
        VERSION,
        [("PF-04", M, "main.cf:mynetworks")],
    ),
    (
        "pf04-private-12",
        "mynetworks = 127.0.0.0/8, [fd00::]/8\n",
        None,
        {},
        VERSION,
        [("PF-04", M, "main.cf:mynetworks")],
    ),
    (
        "pf04-unbracketed-v6",
        "mynetworks = 127.0.0.0/8 ::1/128\n",
        None,
        {},
        VERSION,
        [("PF-04", M, "main.cf:mynetworks")],
    ),
    (
        "pf04-mapped-v6-all",
        "mynetworks = 127.0.0.0/8 [::ffff:0.0.0.0]/96\n",
        None,
        {},
        VERSION,
        [("PF-04", C, "main.cf:mynetworks")],
    ),
    (
        "pf04-file",
        "mynetworks = 127.0.0.0/8 /etc/postfix/trusted\n",
        None,
        {"/etc/postfix/trusted": "# everyone, for testing\n0.0.0.0/0\n"},
        VERSION,
        [("PF-04", C, "main.cf:mynetworks")],
    ),
    ("pf04-lan-ok", "mynetworks = 127.0.0.0/8 [::1]/128 192.168.10.0/24\n", None, {}, VERSION, []),
    (
        "pf04-service-override",
        "",
        submission(
            *SUB_BASE,
            "mynetworks=0.0.0.0/0",
            "smtpd_relay_restrictions=",
            "smtpd_recipient_restrictions=permit_sasl_authenticated,reject",
        ),
        {},
        VERSION,
        [("PF-04", C, "master.cf:submission/mynetworks")],
    ),
    # PF-05
    ("pf05-class", "mynetworks_style = class\n", None, {}, VERSION, []),
    # PF-06
    (
        "pf06-docker",
        "mynetworks = 127.0.0.0/8 172.17.0.0/16\n",
        None,
        {},
        VERSION,
        [("PF-06", H, "main.cf:mynetworks")],  # PF-04 joins it (details.rules)
    ),
    (
        "pf06-proxy-protocol",
        "mynetworks = 127.0.0.0/8 172.17.0.0/16\nsmtpd_upstream_proxy_protocol = haproxy\n",
        None,
        {},
        VERSION,
        [("PF-04", M, "main.cf:mynetworks")],
    ),
    # PF-07 / PF-08
    (
        "pf07-tld",
        "relay_domains = com\nrelay_recipient_maps = hash:/etc/postfix/rr\n",
        None,
        {},
        VERSION,
        [("PF-07", H, "main.cf:relay_domains")],
    ),
    (
        "pf08-no-recipient-maps",
        "relay_domains = example.org\n",
        None,
        {},
        VERSION,
        [("PF-08", M, "main.cf:relay_recipient_maps")],
    ),
    (
        "pf08-ok",
        "relay_domains = example.org\nrelay_recipient_maps = hash:/etc/postfix/rr\n",
        None,
        {},
        VERSION,
        [],
    ),
    # PF-09
    (
        "pf09-mx-backup",
        "smtpd_relay_restrictions = permit_mynetworks, permit_mx_backup, "
        "reject_unauth_destination\n",
        None,
        {},
        VERSION,
        [("PF-09", M, RELAY_KEY)],
    ),
    (
        "pf09-networks-set",
        "smtpd_relay_restrictions = permit_mynetworks, permit_mx_backup, "
        "reject_unauth_destination\npermit_mx_backup_networks = 192.0.2.0/24\n",
        None,
        {},
        VERSION,
        [],
    ),
    # PF-10
    (
        "pf10-routing",
        "allow_untrusted_routing = yes\nresolve_dequoted_address = no\nresolve_null_domain = yes\n",
        None,
        {},
        VERSION,
        [
            ("PF-10", H, "main.cf:allow_untrusted_routing"),
            ("PF-10", M, "main.cf:resolve_dequoted_address"),
            ("PF-10", L, "main.cf:resolve_null_domain"),
        ],
    ),
]
SUB_RCPT = "master.cf:submission/smtpd_recipient_restrictions"
CASES += [
    # PF-11: the submission-override trap
    (
        "pf11-lab-trap",
        "",
        submission(
            *SUB_BASE,
            "smtpd_relay_restrictions=",
            "smtpd_recipient_restrictions=permit_sasl_authenticated,check_client_access,static:OK,reject",
        ),
        {},
        VERSION,
        [("PF-11", C, SUB_RCPT)],
    ),
    (
        "pf11-no-final-reject",
        "",
        submission(*SUB_BASE, "smtpd_recipient_restrictions=permit_sasl_authenticated"),
        {},
        VERSION,
        [("PF-11", M, SUB_RCPT)],
    ),
    (
        "pf11-empty-relay-no-reject",
        "",
        submission(
            *SUB_BASE,
            "smtpd_relay_restrictions=",
            "smtpd_recipient_restrictions=permit_sasl_authenticated,permit_mynetworks",
        ),
        {},
        VERSION,
        [("PF-11", H, "master.cf:submission/smtpd_relay_restrictions")],
    ),
    (
        "pf11-auth-destination",
        "",
        submission(
            *SUB_BASE,
            "smtpd_relay_restrictions=",
            "{ smtpd_recipient_restrictions = permit_sasl_authenticated, permit_auth_destination, "
            "reject_unauth_destination }",
        ),
        {},
        VERSION,
        [("PF-11", M, SUB_RCPT)],
    ),
    (
        "pf11-mua-expansion",
        "mua_rcpt = permit_sasl_authenticated, check_helo_access hash:/etc/postfix/helo, reject\n",
        submission(
            *SUB_BASE, "smtpd_relay_restrictions=", "smtpd_recipient_restrictions=$mua_rcpt"
        ),
        HELO_OK,
        VERSION,
        [("PF-11", C, SUB_RCPT)],
    ),
    (
        "pf11-client-list-rejects",
        "",
        submission(
            *SUB_BASE,
            "smtpd_relay_restrictions=",
            "smtpd_client_restrictions=permit_sasl_authenticated,reject",
            "smtpd_recipient_restrictions=permit_sasl_authenticated,reject_unauth_destination",
        ),
        {},
        VERSION,
        [],
    ),
    # PF-12
    (
        "pf12-smtp-override",
        "",
        SMTP.rstrip("\n") + "\n  -o smtpd_relay_restrictions="
        "permit_mynetworks,check_helo_access,hash:/etc/postfix/helo,reject_unauth_destination\n"
        + SUBMISSION_HEAD
        + SUBMISSION_OPTS
        + PICKUP,
        HELO_OK,
        VERSION,
        [("PF-12", C, "master.cf:smtp/smtpd_relay_restrictions")],
    ),
    (
        "pf12-postscreen-pass",
        "",
        POSTSCREEN.replace(
            "smtpd     pass  -       -       y       -       -       smtpd\n",
            "smtpd     pass  -       -       y       -       -       smtpd\n"
            "  -o smtpd_relay_restrictions=permit_mynetworks,permit,reject_unauth_destination\n",
        ),
        {},
        VERSION,
        [
            ("PF-12", C, "master.cf:smtpd/smtpd_relay_restrictions"),
            ("PF-28", L, "main.cf:postscreen_dnsbl_action"),
        ],
    ),
    (
        "pf28-postscreen-enforced",
        "postscreen_dnsbl_action = enforce\n"
        "postscreen_greet_action = enforce\npostscreen_dnsbl_sites = zen.spamhaus.org*2\n",
        POSTSCREEN,
        {},
        VERSION,
        [],
    ),
    (
        "pf28-postscreen-broad-mynetworks",
        "mynetworks = 127.0.0.0/8 10.0.0.0/8\n"
        "postscreen_dnsbl_action = enforce\npostscreen_greet_action = enforce\n"
        "postscreen_dnsbl_sites = zen.spamhaus.org*2\n",
        POSTSCREEN,
        {},
        VERSION,
        [
            ("PF-06", H, "main.cf:mynetworks"),
            ("PF-28", M, "main.cf:postscreen_access_list"),
        ],
    ),
    # PF-13 .. PF-18
    (
        "pf13-auth-before-tls",
        "smtpd_tls_auth_only = no\n",
        submission(
            "syslog_name=postfix/submission",
            "smtpd_sasl_auth_enable=yes",
            "smtpd_relay_restrictions=",
            "smtpd_recipient_restrictions=permit_sasl_authenticated,reject",
        ),
        {},
        VERSION,
        [
            ("PF-13", H, "main.cf:smtpd_tls_auth_only"),
            ("PF-23", M, "main.cf:smtpd_tls_security_level"),
        ],
    ),
    (
        "pf14-anonymous",
        "smtpd_sasl_security_options = noplaintext\n",
        None,
        {},
        VERSION,
        [
            ("PF-14", C, "main.cf:smtpd_sasl_security_options"),
            ("PF-14", C, "main.cf:smtpd_sasl_tls_security_options"),
        ],
    ),
    (
        "pf14-tls-options-only",
        "smtpd_sasl_tls_security_options = noplaintext\n",
        None,
        {},
        VERSION,
        [("PF-14", C, "main.cf:smtpd_sasl_tls_security_options")],
    ),
    (
        "pf15-auth-on-25",
        "smtpd_sasl_auth_enable = yes\n",
        None,
        {},
        VERSION,
        [("PF-15", M, "main.cf:smtpd_sasl_auth_enable")],
    ),
    (
        "pf16-no-mismatch-check",
        "smtpd_sender_restrictions =\n",
        None,
        {},
        VERSION,
        [("PF-16", M, "main.cf:smtpd_sender_login_maps")],
    ),
    (
        "pf17-no-limits",
        "smtpd_client_connection_rate_limit = 0\n"
        "smtpd_client_message_rate_limit = 0\nsmtpd_client_recipient_rate_limit = 0\n"
        "smtpd_client_auth_rate_limit = 0\n",
        None,
        {},
        VERSION,
        [
            ("PF-17", M, "master.cf:submission/smtpd_client_message_rate_limit"),
            ("PF-17", L, "master.cf:smtp/smtpd_client_message_rate_limit"),
        ],
    ),
    (
        "pf17-one-limit-is-enough",
        "smtpd_client_connection_rate_limit = 0\nsmtpd_client_recipient_rate_limit = 0\n",
        None,
        {},
        VERSION,
        [],
    ),
    (
        "pf18-limits-off",
        "smtpd_hard_error_limit = 0\nsmtpd_client_connection_count_limit = 5000\n",
        None,
        {},
        VERSION,
        [
            ("PF-18", L, "main.cf:smtpd_client_connection_count_limit"),
            ("PF-18", L, "main.cf:smtpd_hard_error_limit"),
        ],
    ),
    # PF-19 .. PF-28
    (
        "pf19-helo",
        "smtpd_helo_required = no\n",
        None,
        {},
        VERSION,
        [("PF-19", L, "main.cf:smtpd_helo_required")],
    ),
    (
        "pf20-vrfy",
        "disable_vrfy_command = no\n",
        None,
        {},
        VERSION,
        [("PF-20", L, "main.cf:disable_vrfy_command")],
    ),
    (
        "pf21-backscatter",
        "local_recipient_maps =\nluser_relay = catchall\n"
        "unknown_local_recipient_reject_code = 450\n"
        "virtual_alias_maps = hash:/etc/postfix/virtual\n",
        None,
        {"/etc/postfix/virtual": "@example.org catchall@example.org\n"},
        VERSION,
        [
            ("PF-21", M, "main.cf:local_recipient_maps"),
            ("PF-21", M, "main.cf:luser_relay"),
            ("PF-21", L, "main.cf:unknown_local_recipient_reject_code"),
            ("PF-21", L, "main.cf:virtual_alias_maps"),
        ],
    ),
    (
        "pf21-unlisted-on-25",
        "",
        SMTP.rstrip("\n")
        + "\n  -o smtpd_reject_unlisted_recipient=no\n"
        + SUBMISSION_HEAD
        + SUBMISSION_OPTS
        + PICKUP,
        {},
        VERSION,
        [("PF-21", M, "master.cf:smtp/smtpd_reject_unlisted_recipient")],
    ),
    (
        "pf22-xclient-world",
        "smtpd_authorized_xclient_hosts = 0.0.0.0/0\n",
        None,
        {},
        VERSION,
        [("PF-22", C, "main.cf:smtpd_authorized_xclient_hosts")],
    ),
    ("pf22-xclient-proxy", "smtpd_authorized_xclient_hosts = 127.0.0.1\n", None, {}, VERSION, []),
    (
        "pf23-no-starttls",
        "smtpd_tls_security_level =\n",
        None,
        {},
        VERSION,
        [("PF-23", M, "main.cf:smtpd_tls_security_level")],
    ),
    (
        "pf23-old-protocols",
        "smtpd_tls_protocols = !SSLv2\nsmtpd_tls_ciphers = export\n",
        None,
        {},
        VERSION,
        [("PF-23", M, "main.cf:smtpd_tls_ciphers"), ("PF-23", M, "main.cf:smtpd_tls_protocols")],
    ),
    (
        "pf23-no-certificate",
        "smtpd_tls_chain_files =\n",
        None,
        {},
        VERSION,
        [("PF-23", M, "main.cf:smtpd_tls_chain_files")],
    ),
    (
        "pf24-banner",
        "smtpd_banner = $myhostname ESMTP $mail_name ($mail_version)\n",
        None,
        {},
        VERSION,
        [("PF-24", L, "main.cf:smtpd_banner")],
    ),
    (
        "pf26-legacy-level",
        "compatibility_level = 0\nsmtpd_relay_restrictions = "
        "permit_mynetworks, reject_unauth_destination\n",
        None,
        {},
        VERSION,
        [("PF-26", M, "main.cf:compatibility_level")],
    ),
    (
        "pf26-order",
        "compatibility_level = 2\n",
        None,
        {},
        VERSION,
        [("PF-26", L, "main.cf:compatibility_level")],
    ),
    (
        "pf27-explicit-off",
        "smtpd_forbid_bare_newline = no\n",
        None,
        {},
        VERSION,
        [("PF-27", L, "main.cf:smtpd_forbid_bare_newline")],
    ),
    ("pf27-old-release", "", None, {}, (3, 7, 11), []),
    ("pf27-unknown-version", "", None, {}, None, []),
    # PF-29: Postfix refuses the configuration
    (
        "pf29-o-value-with-blank",
        "",
        SMTP + SUBMISSION_HEAD + "  -o syslog_name=postfix/submission\n"
        "  -o smtpd_tls_security_level=encrypt\n  -o smtpd_sasl_auth_enable=yes\n"
        "  -o smtpd_recipient_restrictions=permit_sasl_authenticated,check_client_access "
        "static:OK\n",
        {},
        VERSION,
        [("PF-29", H, "master.cf:submission/inet")],  # not PF-11: its fix keeps the stray word
    ),
    (
        "pf29-o-long-form-is-fine",
        "",
        SMTP
        + SUBMISSION_HEAD
        + SUBMISSION_OPTS.replace(
            "-o smtpd_recipient_restrictions=permit_sasl_authenticated,reject",
            "-o { smtpd_recipient_restrictions = permit_sasl_authenticated, reject }",
        ),
        {},
        VERSION,
        [],
    ),
    (
        "pf29-macro-loop-self",
        "mynetworks = $mynetworks\n",
        None,
        {},
        VERSION,
        [("PF-29", H, "main.cf:mynetworks")],
    ),
    (
        "pf29-macro-loop-pair",
        "a = $b\nb = ${a}\nc = $$a $b_x\n",
        None,
        {},
        VERSION,
        [("PF-29", H, "main.cf:a"), ("PF-29", H, "main.cf:b")],
    ),
]
