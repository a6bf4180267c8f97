"""The Exim parser and EX-01..EX-11, each with a failing and a passing configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from relayguard.audit._catalog import RULES
from relayguard.audit.exim import parse_exim, split_exim_list
from relayguard.findings import Severity
from tests.audit.helpers import exim

HARDENED = (Path(__file__).parent / "data" / "exim-hardened.conf").read_text()
RCPT_GATE = (
    "  require message       = relay not permitted\n"
    "          domains       = +local_domains : +relay_to_domains\n"
)
LOCAL_PART_DENY = (
    "  deny    domains       = +local_domains\n"
    "          local_parts   = ^[.] : ^.*[@%!/|]\n"
    "          message       = restricted characters in address\n"
)


def _found(text: str) -> list[tuple[str, str, str]]:
    return [(str(f.details["rule"]), f.severity.label, f.subject.value) for f in exim(text)]


def test_parser_reads_macros_lists_acls_and_drivers() -> None:
    cfg = parse_exim(HARDENED, "exim4.conf")
    kind, relay = cfg.lists["relay_from_hosts"]
    assert (kind, relay.value, relay.line) == (
        "hostlist", "<; 127.0.0.1 ; ::1 ; 192.168.10.0/24", 7,
    )  # fmt: skip
    assert cfg.options["acl_smtp_rcpt"].value == "acl_check_rcpt"
    rcpt = cfg.acls["acl_check_rcpt"]
    assert [s.verb for s in rcpt] == [
        "accept", "deny", "deny", "accept", "require", "accept", "accept", "require", "require",
        "defer", "accept",
    ]  # fmt: skip
    assert rcpt[7].conditions == (
        ("message", "relay not permitted"),
        ("domains", "+local_domains : +relay_to_domains"),
    )
    assert rcpt[7].line == 39
    assert [d.name for d in cfg.drivers["authenticators"]] == ["plain_server"]
    assert cfg.warnings == []


def test_parser_continuations_booleans_and_includes() -> None:
    cfg = parse_exim(
        "smtp_banner = one \\\n   two\nno_allow_domain_literals\nsplit_spool_directory\n"
        ".include /etc/exim4/extra.conf\n", "x.conf"
    )  # fmt: skip
    assert cfg.options["smtp_banner"].value == "one two"
    assert cfg.options["allow_domain_literals"].value == "false"
    assert cfg.options["split_spool_directory"].value == "true"
    assert cfg.warnings == ["x.conf:5: .include /etc/exim4/extra.conf not followed"]


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ("127.0.0.1 : ::::1 : 10.0.0.0/8", ["127.0.0.1", "::1", "10.0.0.0/8"]),
        ("<; 127.0.0.1 ; ::1", ["127.0.0.1", "::1"]),
        ("@ : example.org", ["@", "example.org"]),
        ("", []),
    ],
)
def test_exim_lists(value: str, items: list[str]) -> None:
    assert split_exim_list(value) == items


def test_hardened_config_passes() -> None:
    assert _found(HARDENED) == []


CASES = [
    (
        "ex01-star",
        ("hostlist   relay_from_hosts = MY_RELAY_NETS", "hostlist   relay_from_hosts = *"),
        [("EX-01", "critical", "exim4.conf:relay_from_hosts")],
    ),
    (
        "ex01-docker",
        ("192.168.10.0/24", "172.16.0.0/12"),
        [("EX-01", "medium", "exim4.conf:relay_from_hosts")],
    ),
    (
        "ex02-star",
        ("relay_to_domains = backup.example.net", "relay_to_domains = *"),
        [("EX-02", "critical", "exim4.conf:relay_to_domains")],
    ),
    (
        "ex02-pattern",
        ("relay_to_domains = backup.example.net", "relay_to_domains = *.example.net"),
        [("EX-02", "medium", "exim4.conf:relay_to_domains")],
    ),
    (
        "ex03-accept-before-gate",
        (RCPT_GATE, "  accept\n" + RCPT_GATE),
        [("EX-03", "critical", "exim4.conf:acl_check_rcpt")],
    ),
    (
        "ex03-verify-recipient",
        (RCPT_GATE, "  accept  verify = recipient\n" + RCPT_GATE),
        [("EX-03", "critical", "exim4.conf:acl_check_rcpt")],
    ),
    (
        "ex03-condition",
        (
            RCPT_GATE,
            "  accept  condition = ${lookup{$sender_host_address}"
            "lsearch{/etc/exim4/ok}{yes}{no}}\n" + RCPT_GATE,
        ),
        [("EX-03", "high", "exim4.conf:acl_check_rcpt")],
    ),
    ("ex03-no-gate", (RCPT_GATE, ""), [("EX-03", "critical", "exim4.conf:acl_check_rcpt")]),
    (
        "ex04-deny-removed",
        (LOCAL_PART_DENY, ""),
        [("EX-04", "medium", "exim4.conf:acl_check_rcpt")],
    ),
    (
        "ex04-percent-hack",
        ("smtp_accept_max_per_host = 5", "smtp_accept_max_per_host = 5\npercent_hack_domains = *"),
        [("EX-04", "medium", "exim4.conf:percent_hack_domains")],
    ),
    (
        "ex05-literals",
        ("smtp_accept_max_per_host = 5", "smtp_accept_max_per_host = 5\nallow_domain_literals"),
        [("EX-05", "low", "exim4.conf:allow_domain_literals")],
    ),
    (
        "ex05-literals-router",
        (
            "begin routers\n",
            "begin routers\n\ndomain_literal:\n  driver = ipliteral\n  transport = remote_smtp\n",
        ),
        [],
    ),
    (
        "ex06-auth-everywhere",
        ("auth_advertise_hosts = ${if eq{$tls_in_cipher}{}{}{*}}", "auth_advertise_hosts = *"),
        [("EX-06", "high", "exim4.conf:auth_advertise_hosts")],
    ),
    (
        "ex07-always-true",
        ("server_condition = ${if pam{$auth2:$auth3}}", "server_condition = yes"),
        [("EX-07", "critical", "exim4.conf:authenticators/plain_server")],
    ),
    (
        "ex08-vrfy",
        (
            "acl_smtp_data = acl_check_data",
            "acl_smtp_data = acl_check_data\nacl_smtp_vrfy = acl_check_data",
        ),
        [("EX-08", "medium", "exim4.conf:acl_smtp_vrfy")],
    ),
    (
        "ex09-banner",
        (
            "smtp_banner = $smtp_active_hostname ESMTP",
            "smtp_banner = $smtp_active_hostname ESMTP Exim $version_number",
        ),
        [("EX-09", "low", "exim4.conf:smtp_banner")],
    ),
    ("ex10-acl-ratelimit-is-enough", ("smtp_accept_max_per_host = 5", ""), []),
    (
        "ex11-no-tls",
        ("tls_advertise_hosts = *", "tls_advertise_hosts ="),
        [("EX-11", "medium", "exim4.conf:tls_advertise_hosts")],
    ),
]


@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_exim_rules(edit: tuple[str, str], expected: list[tuple[str, str, str]]) -> None:
    old, new = edit
    assert old in HARDENED
    assert _found(HARDENED.replace(old, new, 1)) == expected


def test_ex05_with_router_and_ex10_without_any_limit() -> None:
    text = (
        HARDENED.replace("smtp_accept_max_per_host = 5", "allow_domain_literals")
        .replace("begin routers\n", "begin routers\n\ndomain_literal:\n  driver = ipliteral\n")
        .replace("  defer   ratelimit     = 300 / 1h / per_rcpt / $sender_host_address\n", "")
    )
    assert _found(text) == [
        ("EX-05", "medium", "exim4.conf:allow_domain_literals"),
        ("EX-10", "medium", "exim4.conf:smtp_accept_max_per_host"),
    ]


def test_ex09_ex11_defaults_when_unset() -> None:
    text = HARDENED.replace("smtp_banner = $smtp_active_hostname ESMTP\n", "").replace(
        "tls_certificate = /etc/exim4/cert.pem\n", ""
    )
    assert _found(text) == [
        ("EX-09", "low", "exim4.conf:smtp_banner"),
        ("EX-11", "low", "exim4.conf:tls_certificate"),
    ]


def test_ex03_finding_names_the_statement() -> None:
    [finding] = exim(HARDENED.replace(RCPT_GATE, "  accept\n" + RCPT_GATE))
    assert finding.indicator == "config-exim-rcpt-acl-open"
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence == [
        "exim4.conf:39: accept",
        "exim4.conf:9: acl_smtp_rcpt = acl_check_rcpt",
    ]
    assert finding.details["fix"] == [
        "# exim4.conf, line 39: move this accept after 'require domains = +local_domains : "
        "+relay_to_domains'",
        "exim -bV",
    ]


def test_every_exim_rule_is_covered() -> None:
    flagged = {rule for case in CASES for rule, _, _ in case[2]} | {"EX-10"}
    assert flagged == {r for r in RULES if r.startswith("EX-")}
