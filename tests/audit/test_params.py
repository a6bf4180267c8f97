"""Unknown and misspelled main.cf parameter names (warnings)."""

from __future__ import annotations

from relayguard.audit._params import unknown_parameter_warnings
from relayguard.audit.maincf import parse_main_cf
from relayguard.audit.mastercf import parse_master_cf

MAIN = (
    "smtpd_relay_restrictoins = permit_mynetworks, reject_unauth_destination\n"
    "mua_relay_restrictions = permit_sasl_authenticated, reject\n"
    "dovecot_destination_recipient_limit = 1\n"
    "my_own_setting = 1\n"
    "myhostname = mx.example.org\n"
)
MASTER = (
    "smtp inet n - y - - smtpd\n"
    "submission inet n - y - - smtpd -o smtpd_relay_restrictions=$mua_relay_restrictions\n"
    "dovecot unix - n n - - pipe flags=DRhu user=vmail argv=/usr/lib/dovecot/deliver\n"
)
HINT = "main.cf:1: {} smtpd_relay_restrictoins{}; did you mean smtpd_relay_restrictions?"


def test_with_postconf_d_names_every_unknown_name_is_warned() -> None:
    known = {"smtpd_relay_restrictions", "myhostname", "mynetworks"}
    warnings = unknown_parameter_warnings(
        parse_main_cf(MAIN, "main.cf"), parse_master_cf(MASTER), known
    )
    assert warnings == [
        HINT.format("unknown parameter", " (Postfix ignores it)"),
        "main.cf:4: unknown parameter my_own_setting (Postfix ignores it)",
    ]


def test_without_postconf_only_near_misses_of_known_names_are_warned() -> None:
    warnings = unknown_parameter_warnings(
        parse_main_cf(MAIN, "main.cf"), parse_master_cf(MASTER), None
    )
    assert warnings == [
        "main.cf:1: smtpd_relay_restrictoins is not a Postfix parameter; "
        "did you mean smtpd_relay_restrictions?"
    ]
