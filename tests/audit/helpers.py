"""Build audit inputs from text: a hardened baseline that no rule flags, plus edits."""

from __future__ import annotations

from relayguard.audit.effective import PostfixConfig
from relayguard.audit.exim import parse_exim
from relayguard.audit.maincf import parse_main_cf
from relayguard.audit.mastercf import parse_master_cf
from relayguard.audit.rules_exim import audit_exim
from relayguard.audit.rules_postfix import audit_postfix
from relayguard.findings import Finding

VERSION = (3, 9, 1)

HARDENED_MAIN = """\
compatibility_level = 3.6
myhostname = mx.example.org
mydestination = $myhostname, localhost
mynetworks = 127.0.0.0/8 [::1]/128
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated,
    reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_banner = $myhostname ESMTP
smtpd_helo_required = yes
disable_vrfy_command = yes
smtpd_tls_chain_files = /etc/postfix/key.pem /etc/postfix/cert.pem
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_client_connection_rate_limit = 60
smtpd_client_message_rate_limit = 100
smtpd_client_recipient_rate_limit = 300
smtpd_client_auth_rate_limit = 10
smtpd_sender_login_maps = hash:/etc/postfix/sender_login
smtpd_sender_restrictions = reject_authenticated_sender_login_mismatch
smtpd_forbid_bare_newline = normalize
smtpd_forbid_unauth_pipelining = yes
"""

SMTP = "smtp      inet  n       -       y       -       -       smtpd\n"
SUBMISSION_HEAD = "submission inet n       -       y       -       -       smtpd\n"
SUBMISSION_OPTS = (
    "  -o syslog_name=postfix/submission\n"
    "  -o smtpd_tls_security_level=encrypt\n"
    "  -o smtpd_sasl_auth_enable=yes\n"
    "  -o smtpd_relay_restrictions=\n"
    "  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject\n"
)
PICKUP = "pickup    unix  n       -       y       60      1       pickup\n"
HARDENED_MASTER = SMTP + SUBMISSION_HEAD + SUBMISSION_OPTS + PICKUP


def postfix(
    main: str = "",
    master: str | None = None,
    files: dict[str, str] | None = None,
    *,
    base: str = HARDENED_MAIN,
    version: tuple[int, ...] | None = VERSION,
    config_dir: str = "/etc/postfix",
) -> PostfixConfig:
    """The hardened config with ``main`` appended (last definition wins)."""
    table = dict(files or {})
    return PostfixConfig(
        parse_main_cf(base + main, "main.cf"),
        parse_master_cf(HARDENED_MASTER if master is None else master, "master.cf"),
        config_dir,
        version,
        table.get,
    )


def audit(*args: object, **kwargs: object) -> list[Finding]:
    return audit_postfix(postfix(*args, **kwargs))  # type: ignore[arg-type]


def rules(findings: list[Finding]) -> list[str]:
    return [str(f.details["rule"]) for f in findings]


def exim(text: str) -> list[Finding]:
    return audit_exim(parse_exim(text, "exim4.conf"))
