"""Every Postfix rule with a failing and a passing configuration (see cases_postfix.py)."""

from __future__ import annotations

import pytest

from relayguard.audit._catalog import RULES
from relayguard.findings import Finding, Severity
from tests.audit.cases_postfix import CASES, HELO_OK, NO_MYNETWORKS, SUB_BASE, submission
from tests.audit.helpers import HARDENED_MAIN, audit, postfix, rules


def _above_info(findings: list[Finding]) -> list[tuple[object, str, str]]:
    return [
        (f.details["rule"], f.severity.label, f.subject.value)
        for f in findings
        if f.severity >= Severity.LOW
    ]


@pytest.mark.parametrize(
    ("main", "master", "files", "version", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_rule_cases(
    main: str,
    master: str | None,
    files: dict[str, str],
    version: tuple[int, ...] | None,
    expected: list[tuple[str, str, str]],
) -> None:
    assert _above_info(audit(main, master, files, version=version)) == expected


def test_every_postfix_rule_has_a_failing_case() -> None:
    flagged = {rule for case in CASES for rule, _, _ in case[5]}
    flagged |= {"PF-05", "PF-25", "PF-27"}  # tested below (other baselines / info)
    assert flagged == {r for r in RULES if r.startswith("PF-")}


@pytest.mark.parametrize(
    ("extra", "version", "expected"),
    [
        ("mynetworks_style = class\n", (3, 9), [("PF-05", "high", "main.cf:mynetworks_style")]),
        ("mynetworks_style = subnet\n", (3, 9),
         [("PF-05", "medium", "main.cf:mynetworks_style")]),
        ("mynetworks_style = host\n", (3, 9), []),
        ("", (3, 9), []),  # compatibility_level 3.6: the default is host
        ("", (2, 11), [("PF-05", "medium", "main.cf:mynetworks_style")]),  # before 3.0: subnet
    ],
)  # fmt: skip
def test_pf05_mynetworks_style(
    extra: str, version: tuple[int, ...], expected: list[object]
) -> None:
    assert _above_info(audit(extra, version=version, base=NO_MYNETWORKS)) == expected


def test_pf05_and_pf26_legacy_compatibility_level() -> None:
    base = NO_MYNETWORKS.replace("compatibility_level = 3.6\n", "")
    findings = audit("", base=base)
    assert _above_info(findings) == [
        ("PF-05", "medium", "main.cf:mynetworks_style"),
        ("PF-26", "medium", "main.cf:compatibility_level"),
    ]
    legacy = findings[1]
    assert legacy.title == (
        "compatibility_level 0 keeps legacy defaults: mynetworks_style = subnet, "
        "relay_domains = $mydestination"
    )
    assert legacy.details["fix"] == [
        "postconf -e 'mynetworks_style = subnet'",
        "postconf -e 'relay_domains = $mydestination'",
        "postconf -e 'compatibility_level = 3.6'",
    ]


def test_pf26_unset_relay_list_on_level_0_is_an_open_legacy_config() -> None:
    base = HARDENED_MAIN.replace("compatibility_level = 3.6\n", "").replace(
        "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated,\n"
        "    reject_unauth_destination\n",
        "",
    )
    got = _above_info(audit("", base=base))
    # level 0: the relay list defaults to empty and the recipient list is empty too
    assert got == [
        ("PF-01", "high", "main.cf:smtpd_relay_restrictions"),
        ("PF-26", "medium", "main.cf:compatibility_level"),
    ]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ((3, 7, 11), ["PF-27", "PF-27"]),  # backport: exists, off by default
        ((3, 9, 0), []),  # on by default
        (None, []),  # unknown release: say nothing
    ],
)
def test_pf27_depends_on_version(version: tuple[int, ...] | None, expected: list[str]) -> None:
    base = HARDENED_MAIN.replace("smtpd_forbid_bare_newline = normalize\n", "").replace(
        "smtpd_forbid_unauth_pipelining = yes\n", ""
    )
    assert rules(audit("", base=base, version=version)) == [*expected, "PF-25"]


def test_pf25_listening_everywhere_is_info() -> None:
    [finding] = audit("")
    assert (finding.details["rule"], finding.severity) == ("PF-25", Severity.INFO)
    assert audit("inet_interfaces = loopback-only\n") == []


def test_finding_shape_for_the_submission_trap() -> None:
    master = submission(*SUB_BASE, "smtpd_relay_restrictions=",
                        "smtpd_recipient_restrictions=permit_sasl_authenticated,"
                        "check_client_access,static:OK,reject")  # fmt: skip
    [finding] = [f for f in audit("", master) if f.details["rule"] == "PF-11"]
    assert finding.indicator == "config-submission-open"
    assert finding.severity is Severity.CRITICAL
    assert finding.subject.kind == "config_key"
    assert finding.title == (
        "Open relay: submission (smtpd_recipient_restrictions) lets any client relay "
        "(check_client_access static:OK)"
    )
    assert finding.evidence == [
        "master.cf:7: -o smtpd_recipient_restrictions=permit_sasl_authenticated,"
        "check_client_access,static:OK,reject",
        "master.cf:6: -o smtpd_relay_restrictions=",
    ]
    assert finding.details["fix"] == [
        "postconf -P submission/inet/smtpd_recipient_restrictions=permit_sasl_authenticated,reject"
    ]
    assert finding.details["location"] == "master.cf:7"
    assert finding.details["services"] == ["submission/inet"]
    assert finding.mitigations == ["require-auth-submission", "test-relay"]


def test_pf01_fix_moves_the_access_map_after_the_relay_check() -> None:
    main = (
        "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated,\n"
        "    check_helo_access hash:$config_directory/helo, reject_unauth_destination\n"
    )
    cfg_files = {"/srv/pf/helo": HELO_OK["/etc/postfix/helo"]}
    findings = audit(main, None, cfg_files, config_dir="/srv/pf")
    [finding] = [f for f in findings if f.details["rule"] == "PF-01"]
    assert finding.evidence == [
        "main.cf:24: smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, "
        "check_helo_access hash:$config_directory/helo, reject_unauth_destination"
    ]
    assert finding.details["fix"] == [
        "postconf -c /srv/pf -e 'smtpd_relay_restrictions = permit_mynetworks, "
        "permit_sasl_authenticated, reject_unauth_destination, "
        "check_helo_access hash:$config_directory/helo'"
    ]
    assert finding.details["reason"] == (
        "hash:/srv/pf/helo answers OK for localhost.localdomain: whoever presents that HELO "
        "name or sender may relay anywhere"
    )
    # submission has its own lists (-o) and is not affected
    assert finding.details["services"] == ["smtp/inet"]


def test_pf04_fix_keeps_the_specific_hosts() -> None:
    [finding, _] = audit("mynetworks = 192.168.1.0/24, 0.0.0.0/0\n")
    assert finding.title == "mynetworks trusts 0.0.0.0/0: the whole Internet may relay"
    assert finding.details["fix"] == [
        "postconf -e 'mynetworks = 127.0.0.0/8 [::1]/128 192.168.1.0/24'"
    ]
    assert finding.details["entries"] == [
        {"entry": "0.0.0.0/0", "severity": "critical", "why": "the whole Internet may relay"}
    ]


def test_pf11_fix_for_loopback_submission_name() -> None:
    master = (
        "127.0.0.1:2587 inet n - n - - smtpd\n"
        "  -o syslog_name=postfix/submission\n  -o smtpd_relay_restrictions=\n"
        "  -o smtpd_recipient_restrictions=permit_sasl_authenticated,permit_mynetworks,"
        "permit,reject\n"
    )
    cfg = postfix("", master, config_dir="/tmp/lab/etc")
    [svc] = cfg.smtpd_services
    assert (svc.role, svc.port, svc.loopback) == ("submission", "2587", True)
    found = [
        f for f in audit("", master, config_dir="/tmp/lab/etc") if f.details["rule"] == "PF-11"
    ]
    assert [f.details["fix"] for f in found] == [[
        "postconf -c /tmp/lab/etc -P "
        "127.0.0.1:2587/inet/smtpd_recipient_restrictions=permit_sasl_authenticated,reject"
    ]]  # fmt: skip


def _above_low(*args: object, **kwargs: object) -> list[Finding]:
    return [f for f in audit(*args, **kwargs) if f.severity >= Severity.LOW]


def test_mynetworks_table_that_cannot_be_read_says_how_to_check_it() -> None:
    (finding,) = _above_low("mynetworks = 127.0.0.0/8, lmdb:/etc/postfix/nets\n")
    assert finding.title == (
        "mynetworks could not be evaluated: lmdb:/etc/postfix/nets lmdb: table: its members "
        "cannot be read from the configuration; check with 'postmap -q 192.0.2.1 "
        "lmdb:/etc/postfix/nets' (an answer means that client may relay)"
    )
    assert finding.details["fix"][0] == (
        "# check: postmap -q 192.0.2.1 lmdb:/etc/postfix/nets (any answer: that client relays)"
    )


def test_mynetworks_entries_private_16_and_host_name() -> None:
    (finding,) = _above_low("mynetworks = 127.0.0.0/8 192.168.0.0/16 [::1]/128 example.com\n")
    assert [(e["entry"], e["severity"]) for e in finding.details["entries"]] == [
        ("192.168.0.0/16", "medium"),
        ("example.com", "medium"),
    ]
    assert finding.details["fix"] == ["postconf -e 'mynetworks = 127.0.0.0/8 [::1]/128'"]


def test_mynetworks_cidr_entries_name_their_table() -> None:
    files = {"/etc/postfix/nets.cidr": "127.0.0.0/8 x\n0.0.0.0/0 x\n"}
    (finding,) = _above_low("mynetworks = cidr:/etc/postfix/nets.cidr\n", files=files)
    assert finding.title == (
        "mynetworks trusts 0.0.0.0/0 (in cidr:/etc/postfix/nets.cidr): the whole Internet may relay"
    )


def test_pf04_and_pf06_on_one_value_are_one_finding() -> None:
    (finding,) = _above_low("mynetworks = 127.0.0.0/8, 10.0.0.0/8\n")
    assert (finding.details["rule"], finding.severity) == ("PF-06", Severity.HIGH)
    assert finding.details["rules"] == ["PF-04", "PF-06"]
    assert finding.details["entries"] == [
        {"entry": "10.0.0.0/8", "severity": "medium", "why": "a container/bridge network: behind "
         "a proxy or NAT every client gets its gateway address"},
    ]  # fmt: skip


def test_findings_about_a_service_that_cannot_start_give_way_to_pf29() -> None:
    master = (
        "smtp inet n - y - - smtpd\n"
        "submission inet n - y - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n"
        "  -o smtpd_recipient_restrictions=permit_sasl_authenticated,check_client_access "
        "static:OK\n"
    )
    base = HARDENED_MAIN.replace("smtpd_tls_security_level = may\n", "")
    found = [
        (f.details["rule"], f.subject.value, f.details["services"])
        for f in _above_low("", master, base=base)
    ]
    # the no-STARTTLS finding on smtp stays; those about submission alone give way
    assert found == [
        ("PF-29", "master.cf:submission/inet", ["submission/inet"]),
        ("PF-23", "main.cf:smtpd_tls_security_level", ["smtp/inet"]),
    ]
