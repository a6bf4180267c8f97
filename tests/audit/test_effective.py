"""Effective values: -o over main.cf over version/compatibility_level defaults."""

from __future__ import annotations

import pytest

from relayguard.audit._defaults import RELAY_DEFAULT, default, parse_level, parse_version
from tests.audit.helpers import postfix


@pytest.mark.parametrize(
    ("name", "version", "level", "expected"),
    [
        ("smtpd_relay_restrictions", (3, 7), (3, 6), RELAY_DEFAULT),
        ("smtpd_relay_restrictions", (3, 7), (0,), ""),
        ("smtpd_relay_restrictions", (2, 9), (0,), None),  # no such parameter before 2.10
        ("smtpd_recipient_restrictions", (2, 9), (0,),
         "permit_mynetworks, reject_unauth_destination"),
        ("mynetworks_style", (3, 7), (2,), "host"),
        ("mynetworks_style", (3, 7), (1,), "subnet"),
        ("mynetworks_style", (2, 11), (2,), "subnet"),
        ("relay_domains", (3, 7), (3, 6), ""),
        ("relay_domains", (3, 7), (0,), "$mydestination"),
        ("smtpd_relay_before_recipient_restrictions", (3, 7), (3, 6), "yes"),
        ("smtpd_relay_before_recipient_restrictions", (3, 7), (2,), "no"),
        ("smtpd_tls_protocols", (3, 6), (0,), ">=TLSv1"),
        ("smtpd_tls_protocols", (3, 5), (0,), "!SSLv2, !SSLv3"),
        ("smtpd_forbid_bare_newline", (3, 9), (0,), "normalize"),
        ("smtpd_forbid_bare_newline", (3, 7, 11), (0,), "no"),
        ("smtpd_client_auth_rate_limit", (3, 0), (0,), None),
        ("no_such_parameter", (3, 7), (0,), None),
    ],
)  # fmt: skip
def test_defaults(
    name: str, version: tuple[int, ...], level: tuple[int, ...], expected: str | None
) -> None:
    assert default(name, version, level) == expected


@pytest.mark.parametrize(
    ("text", "version", "level"),
    [("3.7.11", (3, 7, 11), (3, 7, 11)), ("3.10-20250101", (3, 10), (3, 10)), ("x", None, (0,)),
     ("", None, (0,)), ("2", (2,), (2,))],
)  # fmt: skip
def test_versions(text: str, version: tuple[int, ...] | None, level: tuple[int, ...]) -> None:
    assert parse_version(text) == version
    assert parse_level(text) == level


MASTER = """\
smtp      inet  n       -       y       -       1       postscreen
smtpd     pass  -       -       y       -       -       smtpd
  -o smtpd_relay_restrictions=$mua_relay
127.0.0.1:submission inet n -   y       -       -       smtpd
  -o smtpd_sasl_auth_enable=yes
[::1]:2525 inet n - y - - smtpd
  -o smtpd_tls_wrappermode=yes
10025     inet  n       -       n       -       -       smtpd
pickup    unix  n       -       y       60      1       pickup
"""


def test_services_roles_ports_and_values() -> None:
    cfg = postfix("mua_relay = permit_sasl_authenticated, reject\ninet_interfaces = all\n", MASTER)
    assert [(s.label, s.role, s.port, s.loopback) for s in cfg.smtpd_services] == [
        ("smtpd/pass", "smtp", "25", False),
        ("127.0.0.1:submission/inet", "submission", "587", True),
        ("[::1]:2525/inet", "submission", "2525", True),
        ("10025/inet", "smtp", "10025", False),
    ]
    smtpd, sub, _, plain = cfg.smtpd_services
    relay = cfg.get("smtpd_relay_restrictions", smtpd)
    assert (relay.raw, relay.value, relay.origin, relay.where) == (
        "$mua_relay", "permit_sasl_authenticated, reject", "master.cf", "master.cf:3",
    )  # fmt: skip
    assert cfg.get("smtpd_relay_restrictions", plain).origin == "main.cf"
    assert cfg.get("smtpd_sasl_auth_enable", sub).value == "yes"
    sasl = cfg.get("smtpd_sasl_auth_enable", plain)
    assert (sasl.value, sasl.origin, sasl.evidence()) == (
        "no", "default", "smtpd_sasl_auth_enable not set: built-in default is no",
    )  # fmt: skip
    assert cfg.get("smtpd_sasl_tls_security_options").value == "noanonymous"


def test_loopback_only_interfaces_make_every_service_local() -> None:
    cfg = postfix("inet_interfaces = loopback-only\n", MASTER)
    assert {s.loopback for s in cfg.smtpd_services} == {True}


def test_version_from_main_cf_or_assumed() -> None:
    assert postfix("", version=None).effective_version == (3, 6)
    assert postfix("", version=None).version_known is False
    declared = postfix("mail_version = 3.8.6\n", version=None)
    assert (declared.effective_version, declared.version_known) == ((3, 8, 6), True)
    assert postfix("compatibility_level = 3.9\n", version=None).effective_version == (3, 9)


def test_postconf_command_names_the_instance() -> None:
    assert postfix("").postconf_cmd() == "postconf"
    assert postfix("", config_dir="/srv/my lab").postconf_cmd() == "postconf -c '/srv/my lab'"
