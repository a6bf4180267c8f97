"""Mitigations the audit rules need beyond :mod:`relayguard.mitigations`.

Same shape and promises as the shared catalogue (ids are public, add never rename); kept here
until they are merged into it. :func:`get` looks in both.
"""

from __future__ import annotations

from relayguard import mitigations as shared
from relayguard.mitigations import Mitigation

ENTRIES: tuple[Mitigation, ...] = (
    Mitigation(
        id="harden-smtpd-tls",
        title="Offer STARTTLS everywhere and allow AUTH only over TLS",
        why=(
            "Without TLS, passwords and mail cross the network readable; a password sniffed "
            "once lets a spammer relay through the server as that user."
        ),
        postfix=(
            "postconf -e 'smtpd_tls_chain_files = /etc/postfix/<key.pem> /etc/postfix/<cert.pem>'",
            "postconf -e 'smtpd_tls_security_level = may' 'smtpd_tls_auth_only = yes' "
            "'smtpd_tls_protocols = >=TLSv1.2' 'smtpd_tls_mandatory_protocols = >=TLSv1.2'",
            "postconf -P 'submission/inet/smtpd_tls_security_level=encrypt'",
            "postfix reload",
        ),
        exim=(
            "# main section\n"
            "tls_advertise_hosts = *\n"
            "tls_certificate = /etc/exim4/<cert.pem>\n"
            "tls_privatekey = /etc/exim4/<key.pem>\n"
            "auth_advertise_hosts = ${if eq{$tls_in_cipher}{}{}{*}}",
            "exim -bV",
        ),
    ),
    Mitigation(
        id="disable-anonymous-auth",
        title="Never accept anonymous SASL logins",
        why=(
            "An ANONYMOUS login counts as authenticated, and authenticated clients may relay: "
            "allowing it is an open relay."
        ),
        postfix=(
            "postconf -e 'smtpd_sasl_security_options = noanonymous' "
            "'smtpd_sasl_tls_security_options = noanonymous'",
            "postconf -P | grep sasl_.*security_options",
            "postfix reload",
        ),
        exim=("# remove any authenticator with driver = anonymous, then\nexim -bV",),
    ),
    Mitigation(
        id="exim-real-authenticator",
        title="Make every authenticator check a real password",
        why=(
            "An authenticator whose server_condition is always true logs in anyone with any "
            "password, and authenticated clients may relay."
        ),
        postfix=("postconf smtpd_sasl_type smtpd_sasl_path",),
        exim=(
            "# begin authenticators: check the password, e.g. through Dovecot\n"
            "dovecot_plain:\n"
            "  driver = dovecot\n"
            "  public_name = PLAIN\n"
            "  server_socket = /var/run/dovecot/auth-client\n"
            "  server_set_id = $auth1",
            "exim -bV",
        ),
    ),
    Mitigation(
        id="disable-vrfy",
        title="Stop answering VRFY and EXPN",
        why="They tell anyone which addresses exist, a free list for spammers.",
        postfix=("postconf -e 'disable_vrfy_command = yes'", "postfix reload"),
        exim=("# main section: remove acl_smtp_vrfy and acl_smtp_expn, then\nexim -bV",),
    ),
    Mitigation(
        id="hide-banner-version",
        title="Keep software and version out of the SMTP banner",
        why="Scanners pick their exploits from the banner; the RFC only needs the host name.",
        postfix=("postconf -e 'smtpd_banner = $myhostname ESMTP'", "postfix reload"),
        exim=("# main section\nsmtp_banner = $smtp_active_hostname ESMTP", "exim -bV"),
    ),
    Mitigation(
        id="limit-listening",
        title="Listen on loopback only when the host only sends mail",
        why=(
            "A host that only sends (web server, monitoring) needs no SMTP listener on the "
            "Internet; without one it cannot be used as a relay at all."
        ),
        postfix=("postconf -e 'inet_interfaces = loopback-only'", "postfix stop && postfix start"),
        exim=("# main section\nlocal_interfaces = <; 127.0.0.1 ; ::1", "exim -bV"),
    ),
    Mitigation(
        id="raise-compatibility-level",
        title="Move off the legacy defaults",
        why=(
            "A low compatibility_level keeps pre-3.0 defaults (no relay list, subnet-wide "
            "mynetworks) even on a new Postfix."
        ),
        postfix=(
            "postconf compatibility_level mail_version",
            "# set explicitly what you rely on, then\npostconf -e 'compatibility_level = 3.6'",
            "postfix reload",
        ),
        exim=("exim -bV",),
    ),
    Mitigation(
        id="enable-smuggling-protection",
        title="Turn on SMTP smuggling protection",
        why=(
            "Smuggled messages inside one SMTP transaction pass SPF/DMARC as your server; "
            "Postfix >= 3.9 blocks them by default, older releases need the settings."
        ),
        postfix=(
            "postconf -e 'smtpd_forbid_bare_newline = normalize' "
            "'smtpd_forbid_unauth_pipelining = yes'",
            "postfix reload",
        ),
        exim=("# upgrade to Exim >= 4.97.1, which refuses bare line feeds\nexim -bV",),
    ),
    Mitigation(
        id="restrict-xclient",
        title="Allow XCLIENT only from your own proxy",
        why=(
            "An XCLIENT host may claim to be any client, including one in mynetworks, and so "
            "relay as it."
        ),
        postfix=("postconf -e 'smtpd_authorized_xclient_hosts = <proxy_ip>'", "postfix reload"),
        exim=("exim -bP hosts_proxy",),
    ),
    Mitigation(
        id="restore-smtpd-limits",
        title="Keep smtpd's concurrency and error limits on",
        why="They stop one client from hogging smtpd or probing without end.",
        postfix=(
            "postconf -X smtpd_client_connection_count_limit smtpd_soft_error_limit "
            "smtpd_hard_error_limit smtpd_junk_command_limit",
            "postfix reload",
        ),
        exim=("# main section\nsmtp_accept_max_per_host = 5", "exim -bV"),
    ),
)

CATALOGUE: dict[str, Mitigation] = {m.id: m for m in ENTRIES}


def get(mitigation_id: str) -> Mitigation | None:
    """The entry for an id, from the shared catalogue first, then this one."""
    return shared.get(mitigation_id) or CATALOGUE.get(mitigation_id)
