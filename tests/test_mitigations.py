"""The mitigation catalogue: every id the analyzer uses exists, with real Postfix and Exim steps."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess

import pytest

from relayguard import mitigations
from relayguard.findings import Finding, Severity, Subject
from relayguard.mitigations import CATALOGUE, Mitigation

# The ids detectors reference (the analyzer and the architecture name exactly these).
REQUIRED_IDS = (
    "reset-password",
    "hold-queued-mail",
    "review-account-logins",
    "sender-login-maps",
    "rate-limit-outbound",
    "limit-auth-attempts",
    "ban-ip",
    "close-open-relay",
    "narrow-mynetworks",
    "remove-access-ok",
    "test-relay",
    "stop-backscatter",
    "inspect-deferred-queue",
    "purge-spam-queue",
    "check-blocklists",
    "request-delisting",
    "block-relay-probers",
    "require-auth-submission",
    "publish-spf-dkim-dmarc",
    # relayguard probe's weaknesses
    "disable-anonymous-auth",
    "enable-starttls",
    "disable-vrfy",
    "restrict-xclient",
    "hide-banner-version",
    "limit-connections",
    "harden-smtpd-tls",
    "exim-real-authenticator",
    "limit-listening",
    "raise-compatibility-level",
    "enable-smuggling-protection",
    "restore-smtpd-limits",
    # relayguard dnsbl and relayguard domain
    "fix-reverse-dns",
    "use-local-resolver",
    "fix-spf-record",
    "enforce-dmarc",
    "rotate-dkim-key",
    # relayguard pcap and relayguard watch (egress-smtp)
    "block-egress-smtp",
    "find-spam-script",
)

# Real postconf(5) parameter names (checked with `postconf -d` on Postfix 3.7).
KNOWN_POSTFIX_PARAMETERS = frozenset(
    {
        "compatibility_level",
        "inet_interfaces",
        "mail_version",
        "smtpd_forbid_bare_newline",
        "smtpd_forbid_unauth_pipelining",
        "smtpd_hard_error_limit",
        "smtpd_junk_command_limit",
        "smtpd_sasl_path",
        "smtpd_sasl_type",
        "smtpd_soft_error_limit",
        "smtpd_tls_chain_files",
        "alias_maps",
        "anvil_rate_time_unit",
        "disable_vrfy_command",
        "myhostname",
        "smtpd_authorized_xclient_hosts",
        "smtpd_authorized_xforward_hosts",
        "smtpd_banner",
        "smtpd_client_connection_count_limit",
        "smtpd_client_connection_rate_limit",
        "smtpd_sasl_security_options",
        "smtpd_tls_cert_file",
        "smtpd_tls_key_file",
        "smtpd_tls_mandatory_protocols",
        "smtpd_tls_protocols",
        "local_recipient_maps",
        "luser_relay",
        "mynetworks",
        "mynetworks_style",
        "non_smtpd_milters",
        "postscreen_dnsbl_action",
        "postscreen_dnsbl_sites",
        "postscreen_greet_action",
        "relay_domains",
        "relay_recipient_maps",
        "smtpd_client_auth_rate_limit",
        "smtpd_client_message_rate_limit",
        "smtpd_client_recipient_rate_limit",
        "smtp_helo_name",
        "smtpd_client_restrictions",
        "smtpd_data_restrictions",
        "smtpd_milters",
        "smtpd_recipient_restrictions",
        "smtpd_reject_unlisted_recipient",
        "smtpd_relay_restrictions",
        "smtpd_sasl_auth_enable",
        "smtpd_sender_login_maps",
        "smtpd_sender_restrictions",
        "smtpd_tls_auth_only",
        "smtpd_tls_security_level",
        "syslog_name",
        "virtual_mailbox_maps",
    }
)
# smtpd access restriction names (postconf(5) "SMTPD ACCESS RESTRICTIONS").
KNOWN_RESTRICTIONS = frozenset(
    {
        "check_client_access",
        "check_policy_service",
        "check_sasl_access",
        "defer_unauth_destination",
        "permit_mynetworks",
        "permit_sasl_authenticated",
        "reject",
        "reject_sender_login_mismatch",
        "reject_unauth_pipelining",
    }
)
# Exim expansion variables the ACL snippets may use (Exim spec, "Expansion variables").
KNOWN_EXIM_VARIABLES = frozenset(
    {
        "auth",  # $auth1, $auth2: the authenticator's numbered variables
        "authenticated_id",
        "authentication_failed",
        "dnslist_domain",
        "received_port",
        "sender_address",
        "sender_host_address",
        "smtp_active_hostname",
        "tls_in_cipher",
    }
)
EXIM_RATELIMIT_OPTIONS = frozenset(
    {"per_rcpt", "per_mail", "per_conn", "per_cmd", "strict", "noupdate"}
)


def _postconf_commands(steps: tuple[str, ...]) -> list[list[str]]:
    """Every ``postconf`` invocation in the steps, split like a shell would."""
    commands = []
    for step in steps:
        for line in step.split("\n"):
            if line.startswith("#"):
                continue
            for segment in re.split(r"&&|\|", line):
                segment = segment.strip()
                if segment.startswith("postconf"):
                    commands.append(shlex.split(segment))
    return commands


def _postfix_names(entry: Mitigation) -> tuple[set[str], set[str]]:
    """(parameter names, restriction names) used by ``entry``'s Postfix steps."""
    params: set[str] = set()
    restrictions: set[str] = set()
    for argv in _postconf_commands(entry.postfix):
        options = {a for a in argv[1:] if a.startswith("-")}
        if "-M" in options:
            continue  # master.cf service entries, not parameters
        for arg in argv[1:]:
            if arg.startswith("-"):
                continue
            if "=" not in arg:
                params.add(arg)
                continue
            name, value = (part.strip() for part in arg.split("=", 1))
            if "-P" in options:
                name = name.rsplit("/", 1)[1]
            params.add(name)
            params.update(re.findall(r"\$\(postconf -h ([a-z_]+)\)", value))
            params.update(re.findall(r"(?<![({])\$([a-z_]+)", value))
            if name.endswith("_restrictions"):
                value = re.sub(r"\{[^}]*\}|\$\([^)]*\)", " ", value)
                for token in re.split(r"[,\s]+", value):
                    if token and ":" not in token:
                        restrictions.add(token)
    return params, restrictions


@pytest.mark.parametrize("mid", REQUIRED_IDS)
def test_required_id_exists(mid: str) -> None:
    entry = mitigations.get(mid)
    assert entry is not None
    assert entry.id == mid
    assert CATALOGUE[mid] is entry


def test_catalogue_has_exactly_the_required_ids() -> None:
    assert sorted(CATALOGUE) == sorted(REQUIRED_IDS)


def test_unknown_id_is_none() -> None:
    assert mitigations.get("no-such-fix") is None


@pytest.mark.parametrize("mid", REQUIRED_IDS)
def test_entry_is_complete(mid: str) -> None:
    entry = CATALOGUE[mid]
    assert entry.title.strip() == entry.title != ""
    assert entry.why.strip() == entry.why != ""
    assert entry.postfix and entry.exim
    for step in entry.postfix + entry.exim:
        assert step.strip() == step != ""
        assert all(line.strip() for line in step.split("\n")), step
    # A step that is only a comment tells nothing to run.
    for steps in (entry.postfix, entry.exim):
        runnable = [s for s in steps if not all(x.startswith("#") for x in s.split("\n"))]
        assert runnable, (mid, steps)


@pytest.mark.parametrize("mid", REQUIRED_IDS)
def test_postfix_names_are_real(mid: str) -> None:
    params, restrictions = _postfix_names(CATALOGUE[mid])
    assert params <= KNOWN_POSTFIX_PARAMETERS, params - KNOWN_POSTFIX_PARAMETERS
    assert restrictions <= KNOWN_RESTRICTIONS, restrictions - KNOWN_RESTRICTIONS


def test_parameter_extraction_sees_what_it_should() -> None:
    params, restrictions = _postfix_names(CATALOGUE["close-open-relay"])
    assert params == {
        "smtpd_relay_restrictions",
        "smtpd_recipient_restrictions",
        "mynetworks",
        "relay_domains",
    }
    assert restrictions == {
        "permit_mynetworks",
        "permit_sasl_authenticated",
        "defer_unauth_destination",
    }
    params, restrictions = _postfix_names(CATALOGUE["require-auth-submission"])
    assert params == {
        "syslog_name",
        "smtpd_tls_security_level",
        "smtpd_sasl_auth_enable",
        "smtpd_client_restrictions",
        "smtpd_relay_restrictions",
        "smtpd_tls_auth_only",
    }
    assert restrictions == {"permit_sasl_authenticated", "reject"}
    params, restrictions = _postfix_names(CATALOGUE["hold-queued-mail"])
    assert params == {"smtpd_sender_restrictions"}
    assert restrictions == {"check_sasl_access"}


@pytest.mark.skipif(shutil.which("postconf") is None, reason="Postfix is not installed")
def test_parameters_known_to_installed_postfix() -> None:
    proc = subprocess.run(
        ["postconf", "-d", *sorted(KNOWN_POSTFIX_PARAMETERS - {"syslog_name"})],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert "unknown parameter" not in proc.stderr


@pytest.mark.parametrize("mid", REQUIRED_IDS)
def test_exim_variables_are_real(mid: str) -> None:
    used = {v for step in CATALOGUE[mid].exim for v in re.findall(r"\$([a-z_]+)", step)}
    assert used <= KNOWN_EXIM_VARIABLES, used - KNOWN_EXIM_VARIABLES


def test_exim_ratelimit_syntax() -> None:
    """``ratelimit = <m> / <period> / <options> / <key>`` with real option names."""
    found = [
        spec
        for entry in CATALOGUE.values()
        for step in entry.exim
        for spec in re.findall(r"ratelimit\s*=\s*(.+)", step)
    ]
    assert len(found) == 5
    for spec in found:
        parts = [p.strip() for p in spec.split("/")]
        assert parts[0].isdigit(), spec
        assert re.fullmatch(r"\d+[smhdw]", parts[1]), spec
        assert set(parts[2:-1]) <= EXIM_RATELIMIT_OPTIONS, spec
        assert "$sender_host_address" in parts[-1] or parts[-1] == "$authenticated_id", spec


@pytest.mark.parametrize(
    ("mid", "postfix_needle", "exim_needle"),
    [
        ("hold-queued-mail", "| postsuper -h -", "xargs -r exim -Mf"),
        ("sender-login-maps", "reject_sender_login_mismatch", "$authenticated_id"),
        ("close-open-relay", "defer_unauth_destination", "+relay_from_hosts"),
        ("stop-backscatter", "smtpd_reject_unlisted_recipient = yes", "verify = recipient"),
        ("inspect-deferred-queue", "qshape deferred", "exim -bp | exiqsumm"),
        ("purge-spam-queue", "postsuper -d - < /root/spam-ids", "exim -Mrm"),
        (
            "check-blocklists",
            "dig +short <reversed_server_ip>.zen.spamhaus.org",
            "dig +short <reversed_server_ip>.bl.spamcop.net",
        ),
        ("request-delisting", "dig +short <reversed_server_ip>.zen", "exim -bp | exiqsumm"),
        ("test-relay", "relayguard probe <mx_host>", "exim -bh 192.0.2.1"),
        ("publish-spf-dkim-dmarc", "dig +short TXT _dmarc.<domain>", "dkim_domain      = <domain>"),
        ("rate-limit-outbound", "check_policy_service", "per_rcpt / $authenticated_id"),
        ("limit-auth-attempts", "smtpd_client_auth_rate_limit", "$authentication_failed"),
        ("ban-ip", "iptables -I INPUT -s <ip> -j DROP", "fail2ban-client set exim banip <ip>"),
        ("reset-password", "saslpasswd2 -c -u <domain> <localpart>", "doveadm kick <login>"),
    ],
)
def test_key_commands(mid: str, postfix_needle: str, exim_needle: str) -> None:
    entry = CATALOGUE[mid]
    assert any(postfix_needle in step for step in entry.postfix)
    assert any(exim_needle in step for step in entry.exim)


def test_delisting_urls() -> None:
    why = CATALOGUE["request-delisting"].why
    for url in (
        "https://check.spamhaus.org/",
        "https://www.barracudacentral.org/rbl/removal-request",
        "https://www.spamcop.net/bl.shtml",
    ):
        assert url in why


def test_used_by_keeps_first_use_order_once() -> None:
    def finding(*ids: str) -> Finding:
        return Finding(
            indicator="x",
            severity=Severity.LOW,
            subject=Subject("ip", "192.0.2.1"),
            title="t",
            mitigations=list(ids),
        )

    found = [
        finding("ban-ip", "reset-password"),
        finding(),
        finding("reset-password", "test-relay"),
    ]
    assert mitigations.used_by(found) == ["ban-ip", "reset-password", "test-relay"]
    assert mitigations.used_by([]) == []


def test_mitigation_is_frozen() -> None:
    entry = CATALOGUE["ban-ip"]
    with pytest.raises(AttributeError):
        entry.title = "x"  # type: ignore[misc]


# --- what the commands may name ---------------------------------------------------------------

# relayguard subcommands that exist (or are being written now): a mitigation must never send an
# admin to a command that answers "No such command".
EXISTING_SUBCOMMANDS = frozenset(
    {
        "analyze",
        "config",
        "probe",
        "audit",
        "dnsbl",
        "domain",
        "pcap",
        "ids-rules",
        "policy",
        "watch",
        "contain",
        "firewall",
    }
)


def _all_text(entry: Mitigation) -> list[str]:
    return [entry.title, entry.why, *entry.postfix, *entry.exim]


@pytest.mark.parametrize("mid", REQUIRED_IDS)
def test_no_relayguard_subcommand_that_does_not_exist(mid: str) -> None:
    named = {
        word
        for text in _all_text(CATALOGUE[mid])
        for word in re.findall(r"\brelayguard\s+([a-z][a-z-]*)", text)
    }
    assert named <= EXISTING_SUBCOMMANDS, named - EXISTING_SUBCOMMANDS


def test_subcommand_check_sees_what_it_should() -> None:
    bad = Mitigation(
        id="x",
        title="t",
        why="the relayguard quarantine service",
        postfix=("relayguard blackhole <ip> --apply",),
        exim=("relayguard dnsbl <server_ip>", "relayguard probe <mx_host>"),
    )
    named = {w for t in _all_text(bad) for w in re.findall(r"\brelayguard\s+([a-z][a-z-]*)", t)}
    assert named - EXISTING_SUBCOMMANDS == {"quarantine", "blackhole"}


@pytest.mark.parametrize("mid", REQUIRED_IDS)
def test_placeholders_are_the_documented_ones(mid: str) -> None:
    entry = CATALOGUE[mid]
    used = {p for step in entry.postfix + entry.exim for p in re.findall(r"<[a-z_]+>", step)}
    assert used <= set(mitigations.PLACEHOLDERS), used - set(mitigations.PLACEHOLDERS)
    # "<user>" meant both the full login and its local part: it is gone.
    assert "<user>" not in used


def test_documented_placeholders_are_all_used() -> None:
    used = {
        p
        for entry in CATALOGUE.values()
        for step in entry.postfix + entry.exim
        for p in re.findall(r"<[a-z_]+>", step)
    }
    assert used == set(mitigations.PLACEHOLDERS)


# --- rate limits: numbers and words agree --------------------------------------------------


def _postconf_values() -> dict[str, set[str]]:
    """Parameter -> every value the catalogue's ``postconf -e`` commands give it."""
    values: dict[str, set[str]] = {}
    for entry in CATALOGUE.values():
        for argv in _postconf_commands(entry.postfix):
            if "-e" not in argv:
                continue
            for arg in argv[1:]:
                if "=" in arg and not arg.startswith("-"):
                    name, value = (part.strip() for part in arg.split("=", 1))
                    values.setdefault(name, set()).add(value)
    return values


def test_one_anvil_time_unit_for_every_rate_limit() -> None:
    # anvil_rate_time_unit is global: two mitigations setting it differently undo each other.
    assert _postconf_values()["anvil_rate_time_unit"] == {"3600s"}


def test_rate_limit_text_matches_the_numbers() -> None:
    values = _postconf_values()
    messages = int(values["smtpd_client_message_rate_limit"].pop())
    recipients = int(values["smtpd_client_recipient_rate_limit"].pop())
    auth = int(values["smtpd_client_auth_rate_limit"].pop())
    assert (messages, recipients, auth) == (100, 300, 60)
    why = CATALOGUE["rate-limit-outbound"].why
    assert f"after {messages} messages or {recipients} recipients in an hour" in why
    assert "per client IP, not per SASL login" in why
    assert "a few hundred" not in why
    assert f"{auth} AUTH commands an hour" in CATALOGUE["limit-auth-attempts"].why
    # Exim: the same hourly recipient budget, per login and per client IP.
    specs = [
        re.findall(r"ratelimit\s*=\s*(.+)", step)[0]
        for step in CATALOGUE["rate-limit-outbound"].exim
    ]
    assert specs == [
        f"{recipients} / 1h / per_rcpt / $authenticated_id",
        f"{recipients} / 1h / per_rcpt / $sender_host_address",
    ]
    assert f"allow {recipients} recipients an hour per login" in why


# Restriction lists a mitigation adds one item to: the existing value must be kept. Only
# close-open-relay sets a whole list on purpose (that list is the fix).
REPLACED_ON_PURPOSE = {"smtpd_relay_restrictions"}


def test_restriction_lists_are_extended_not_overwritten() -> None:
    checked = 0
    for entry in CATALOGUE.values():
        for argv in _postconf_commands(entry.postfix):
            if "-e" not in argv:
                continue
            for arg in argv[1:]:
                name, _, value = arg.partition("=")
                name = name.strip()
                if not name.endswith("_restrictions") or name in REPLACED_ON_PURPOSE:
                    continue
                checked += 1
                assert f"$(postconf -h {name})" in value, (entry.id, arg)
    assert checked == 5


# --- filling placeholders from an incident -------------------------------------------------


def _finding(
    indicator: str, kind: str, value: str, *, details: dict[str, object] | None = None
) -> Finding:
    return Finding(
        indicator=indicator,
        severity=Severity.HIGH,
        subject=Subject(kind, value),
        title="t",
        details=dict(details or {}),
    )


HOSTILE_LOGIN = "a';rm -rf /'@x"


@pytest.mark.parametrize(
    ("value", "ip", "login", "address"),
    [
        ("127.0.0.66", True, True, False),
        ("2001:db8::1", True, False, False),
        ("fe80::1%eth0", False, False, False),
        ("1.2.3.4; reboot", False, False, False),
        ("1.2.3.4/24", False, False, False),
        ("999.1.1.1", False, True, False),
        ("alice@lab.test", False, True, True),
        ("first.last+tag=x%y@mail.example-1.org", False, True, True),
        ("alice", False, True, False),
        (HOSTILE_LOGIN, False, False, False),
        ("-d@lab.test", False, False, False),
        ("alice@-lab.test", False, False, False),
        ("alice@lab.test'", False, False, False),
        ("alice@lab.test\n", False, False, False),
        ("al ice@lab.test", False, False, False),
        ("$(id)@lab.test", False, False, False),
        ("alice@lab.test@x", False, False, False),
        ("", False, False, False),
        ("a" * 129 + "@lab.test", False, False, False),
    ],
)
def test_safe_values(value: str, ip: bool, login: bool, address: bool) -> None:
    assert mitigations.safe_ip(value) is ip
    assert mitigations.safe_login(value) is login
    assert mitigations.safe_address(value) is address


def test_fill_compromised_account_login_and_login_ip() -> None:
    found = [
        _finding(
            "compromised-account", "sasl_user", "alice@lab.test", details={"login_ip": "127.0.0.66"}
        ),
        _finding("outbound-spike", "sasl_user", "alice@lab.test"),
    ]
    # The attacking IPs are only related subjects here: they do not count.
    found[0].related = [Subject("ip", "127.0.0.66"), Subject("ip", "127.0.0.67")]
    fill = mitigations.fill_for(found)
    assert fill.values == {
        "<login>": "alice@lab.test",
        "<localpart>": "alice",
        "<domain>": "lab.test",
        "<ip>": "127.0.0.66",
    }
    assert fill.several == {}
    assert fill.unsafe == []


def test_fill_two_ips_stay_unfilled() -> None:
    found = [
        _finding(
            "compromised-account", "sasl_user", "alice@lab.test", details={"login_ip": "127.0.0.66"}
        ),
        _finding("auth-bruteforce", "ip", "127.0.0.66"),
        _finding("auth-bruteforce", "ip", "127.0.0.67"),
    ]
    fill = mitigations.fill_for(found)
    assert "<ip>" not in fill.values
    assert fill.several == {"<ip>": ["127.0.0.66", "127.0.0.67"]}
    assert fill.values["<login>"] == "alice@lab.test"


def test_fill_hostile_login_is_never_substituted() -> None:
    hostile = _finding(
        "compromised-account", "sasl_user", HOSTILE_LOGIN, details={"login_ip": "1.2.3.4;id"}
    )
    found = [_with(hostile, "reset-password", "hold-queued-mail", "ban-ip")]
    fill = mitigations.fill_for(found)
    assert fill.values == {}
    assert fill.unsafe == ["<login>", "<ip>"]
    steps = [s for a in mitigations.actions(found) for s in a.postfix + a.exim]
    assert not any("rm -rf" in s or ";id" in s for s in steps)
    assert "doveadm kick <login>" in steps
    assert "saslpasswd2 -c -u <domain> <localpart>" in "\n".join(steps)


def test_fill_bare_login_has_no_domain() -> None:
    fill = mitigations.fill_for([_finding("outbound-spike", "sasl_user", "alice")])
    assert fill.values == {"<login>": "alice", "<localpart>": "alice"}


def test_fill_sender_and_domain_subjects() -> None:
    fill = mitigations.fill_for(
        [
            _finding("outbound-spike", "sender", "news@shop.example"),
            _finding("unknown-sender-domain", "domain", "shop.example"),
        ]
    )
    assert fill.values == {"<domain>": "shop.example", "<sender>": "news@shop.example"}


def test_fill_login_domain_and_another_domain_are_two() -> None:
    fill = mitigations.fill_for(
        [
            _finding("outbound-spike", "sasl_user", "alice@lab.test"),
            _finding("unknown-sender-domain", "domain", "shop.example"),
        ]
    )
    assert fill.several == {"<domain>": ["shop.example", "lab.test"]}
    assert fill.values == {"<login>": "alice@lab.test", "<localpart>": "alice"}


def test_fill_blocklisted_ip_is_the_server_not_one_to_ban() -> None:
    found = [_with(_finding("blocklisted-by-remote", "ip", "192.0.2.10"), "check-blocklists")]
    fill = mitigations.fill_for(found)
    assert fill.values == {"<server_ip>": "192.0.2.10", "<reversed_server_ip>": "10.2.0.192"}
    (check,) = mitigations.actions(found)
    assert check.postfix[0].endswith(
        "dig +short 10.2.0.192.zen.spamhaus.org\ndig +short 10.2.0.192.bl.spamcop.net"
    )


def _with(finding: Finding, *ids: str) -> Finding:
    finding.mitigations = list(ids)
    return finding


def test_actions_each_once_filled_and_unknown_ids_skipped() -> None:
    found = [
        _with(_finding("auth-bruteforce", "ip", "203.0.113.9"), "ban-ip", "no-such-fix"),
        _with(_finding("relay-probing", "ip", "203.0.113.9"), "block-relay-probers", "ban-ip"),
    ]
    done = mitigations.actions(found)
    assert [a.mitigation.id for a in done] == ["ban-ip", "block-relay-probers"]
    ban = done[0]
    assert ban.postfix[:3] == (
        "# at the firewall, every port (for an IPv6 address: ip6tables)\n"
        "iptables -I INPUT -s 203.0.113.9 -j DROP",
        "fail2ban-client set postfix-sasl banip 203.0.113.9",
        "echo '203.0.113.9 REJECT' >> /etc/postfix/client_access.cidr",
    )
    assert ban.exim[2] == "echo '203.0.113.9' >> /etc/exim4/blocked_hosts"
    # The catalogue itself is untouched.
    assert CATALOGUE["ban-ip"].postfix[1] == "fail2ban-client set postfix-sasl banip <ip>"


def test_fill_leaves_other_placeholders() -> None:
    step = "postconf -e 'x' && grep -F 'user=<<login>>' <queue_id> <ip>"
    assert (
        mitigations.fill(step, {"<login>": "alice@lab.test"})
        == "postconf -e 'x' && grep -F 'user=<alice@lab.test>' <queue_id> <ip>"
    )


def test_a_filled_ipv6_ban_uses_ip6tables() -> None:
    step = "iptables -I INPUT -s <ip> -j DROP"
    assert mitigations.fill(step, {"<ip>": "2001:db8::bad"}) == (
        "ip6tables -I INPUT -s 2001:db8::bad -j DROP"
    )
    assert mitigations.fill(step, {"<ip>": "192.0.2.9"}) == "iptables -I INPUT -s 192.0.2.9 -j DROP"
