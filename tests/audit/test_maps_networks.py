"""Access-map answers and trusted-network judgements behind PF-01/PF-04/EX-01."""

from __future__ import annotations

import pytest

from relayguard.audit._maps import inspect_map, is_permit_action
from relayguard.audit._networks import classify, fixed_list
from relayguard.findings import Severity

FILES = {
    "/m/helo.regexp": "/^localhost\\.localdomain$/ OK\n/./ DUNNO\n",
    "/m/any.pcre": "/^/ OK\n",
    "/m/not.pcre": "!/^192\\.0\\.2\\./ OK\n",
    "/m/clients.cidr": "192.0.2.0/24 OK\n# comment\n10.0.0.0/8 REJECT\n",
    "/m/wide.cidr": "[::]/0 OK\n",
    "/m/access": "10 OK\nexample.org REJECT spam\n",
    "/m/rbl": "192.0.2.1 250\n",
    "/m/nets.cidr": "127.0.0.0/8 x\n# open\n0.0.0.0/0 x\nif !/x/\n10.0.0.0/8 x\nendif\n::1/128 x\n",
    "/m/nets.txt": "0.0.0.0/0 x\n",
}


@pytest.mark.parametrize(
    ("table", "readable", "permits", "catch_all"),
    [
        ("static:OK", True, ("*",), True),
        ("static:{REJECT}", True, (), False),
        ("inline:{ a.example=OK, { b.example = REJECT no } }", True, ("a.example",), False),
        ("regexp:/m/helo.regexp", True, ("/^localhost\\.localdomain$/",), False),
        ("pcre:/m/any.pcre", True, ("/^/",), True),
        ("pcre:/m/not.pcre", True, ("!/^192\\.0\\.2\\./",), True),
        ("cidr:/m/clients.cidr", True, ("192.0.2.0/24",), False),
        ("cidr:/m/wide.cidr", True, ("[::]/0",), True),
        ("hash:/m/access", True, ("10",), True),  # "10" is all of 10.0.0.0/8
        ("proxy:hash:/m/rbl", True, ("192.0.2.1",), False),  # all-numerical means OK
        ("hash:/m/missing", False, (), False),
        ("mysql:/etc/postfix/mysql.cf", False, (), False),
        ("nonsense", False, (), False),
    ],
)
def test_inspect_map(table: str, readable: bool, permits: tuple[str, ...], catch_all: bool) -> None:
    report = inspect_map(table, FILES.get)
    assert (report.readable, report.permits, report.catch_all) == (readable, permits, catch_all)


@pytest.mark.parametrize(
    ("action", "permit"),
    [("OK", True), ("ok", True), ("250", True), ("550 go away", False), ("REJECT", False),
     ("permit_auth_destination", False), ("permit_mynetworks", True), ("", False),
     ("DUNNO", False)],
)  # fmt: skip
def test_permit_actions(action: str, permit: bool) -> None:
    assert is_permit_action(action) is permit


@pytest.mark.parametrize(
    ("value", "severities"),
    [
        ("127.0.0.0/8 [::1]/128 [::ffff:127.0.0.0]/104", [None, None, None]),
        ("0.0.0.0/0", [Severity.CRITICAL]),
        ("[::]/0", [Severity.CRITICAL]),
        ("4.0.0.0/8", [Severity.CRITICAL]),
        ("93.184.216.0/24", [Severity.LOW]),
        ("93.184.0.0/16", [Severity.HIGH]),
        ("10.0.0.0/8 172.17.0.0/16", [Severity.MEDIUM, Severity.MEDIUM]),
        ("172.20.5.0/24 192.168.1.0/24", [None, None]),
        ("::1/128", [Severity.MEDIUM]),
        # compiled and network tables cannot be read: medium "not evaluated", never silence
        ("hash:/etc/postfix/network_table", [Severity.MEDIUM]),
        (
            "lmdb:/etc/postfix/nets ldap:/etc/postfix/ldap-nets.cf",
            [Severity.MEDIUM, Severity.MEDIUM],
        ),
        ("cidr:/m/nets.cidr", [None, Severity.CRITICAL, Severity.MEDIUM, None]),
        ("texthash:/m/nets.txt", [Severity.CRITICAL]),
        ("cidr:/m/missing.cidr", [Severity.MEDIUM]),
        ("inline:{ 0.0.0.0/0=x, 127.0.0.1=y }", [Severity.CRITICAL, None]),
        ("static:OK", [Severity.CRITICAL]),
        ("192.168.0.0/16 10.1.0.0/16 192.168.7.0/24", [Severity.MEDIUM, Severity.MEDIUM, None]),
        ("/m/missing", [Severity.INFO]),
        ("!192.168.1.5 192.168.1.0/24", [None, None]),
        ("mail.example.org", [Severity.MEDIUM]),
        ("$mynetworks", [Severity.INFO]),
    ],
)
def test_classify(value: str, severities: list[Severity | None]) -> None:
    assert [e.severity for e in classify(value, FILES.get)] == severities


def test_fixed_list_adds_loopback_and_keeps_lan() -> None:
    entries = classify("0.0.0.0/0, 192.168.1.0/24, [::1]/128", FILES.get)
    assert fixed_list(entries) == ["127.0.0.0/8", "192.168.1.0/24", "[::1]/128"]
