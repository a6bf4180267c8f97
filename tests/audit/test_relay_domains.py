"""PF-07/PF-08/PF-09: relay_domains and permit_mx_backup_networks tables that match everything."""

from __future__ import annotations

import pytest

from relayguard.audit._domains import classify, lookup_keys
from relayguard.findings import Finding, Severity
from tests.audit.helpers import audit

C, H, M = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM
FILES = {
    "/etc/postfix/rd.pcre": "# every domain\n/./ OK\n",
    "/etc/postfix/rd.regexp": "/^.*$/ anything\n",
    "/etc/postfix/not.regexp": "!/^$/ x\n",
    "/etc/postfix/tld.regexp": "/\\.invalid$/ OK\n",
    "/etc/postfix/mine.pcre": "/^(mx\\.)?example\\.org$/ OK\n",
    "/etc/postfix/bad.pcre": "/(?<=a)b+(?P<x/ OK\n",
    "/etc/postfix/relay": "example.org OK\n# comment\nexample.info OK\n",
    "/etc/postfix/tlds": "net x\ninvalid x\nexample x\ncom x\n",
    "/etc/postfix/list": "example.org # ours\norg\n",
    "/etc/postfix/nets.cidr": "0.0.0.0/0 OK\n",
}
FIX = "postconf -e 'relay_domains = <your backup-MX domains>'"
RRMAPS = "relay_recipient_maps = hash:/etc/postfix/rr\n"


def _relay(findings: list[Finding]) -> list[tuple[str, Severity, str]]:
    return [
        (str(f.details["rule"]), f.severity, f.title)
        for f in findings
        if str(f.details["rule"]) in ("PF-07", "PF-08", "PF-09")
    ]


def _open(entry: str) -> str:
    return (
        f"Open relay: relay_domains {entry} matches every domain, so reject_unauth_destination "
        "relays mail to anyone"
    )


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        ("relay_domains = static:OK\n", [("PF-07", C, _open("static:OK"))]),
        ("relay_domains = proxy:static:{REJECT}\n", [("PF-07", C, _open("proxy:static:{REJECT}"))]),
        (
            "relay_domains = pcre:/etc/postfix/rd.pcre\n",
            [("PF-07", C, _open("pcre:/etc/postfix/rd.pcre"))],
        ),
        (
            "relay_domains = regexp:/etc/postfix/rd.regexp\n",
            [("PF-07", C, _open("regexp:/etc/postfix/rd.regexp"))],
        ),
        (
            "relay_domains = regexp:/etc/postfix/not.regexp\n",
            [("PF-07", C, _open("regexp:/etc/postfix/not.regexp"))],
        ),
        (
            "relay_domains = inline:{ net=OK, invalid=OK, example=OK, com=OK }\n",
            [("PF-07", C, _open("inline:{ net=OK, invalid=OK, example=OK, com=OK }"))],
        ),
        (
            "relay_domains = example.org, hash:/etc/postfix/tlds\n",
            [("PF-07", C, _open("hash:/etc/postfix/tlds"))],
        ),
        # relay_recipient_maps does not close a catch-all: every recipient is still relayed
        (
            "relay_domains = static:OK\nrelay_recipient_maps = static:OK\n",
            [("PF-07", C, _open("static:OK"))],
        ),
        # a regexp that matches one foreign TLD
        (
            "relay_domains = regexp:/etc/postfix/tld.regexp\n" + RRMAPS,
            [
                (
                    "PF-07",
                    H,
                    "relay_domains holds regexp:/etc/postfix/tld.regexp: its patterns "
                    "match other people's domains (evil.invalid)",
                )
            ],
        ),
        ("relay_domains = pcre:/etc/postfix/mine.pcre\n" + RRMAPS, []),
        ("relay_domains = hash:/etc/postfix/relay\n" + RRMAPS, []),
        ("relay_domains = cidr:/etc/postfix/nets.cidr\n" + RRMAPS, []),
        (
            "relay_domains = /etc/postfix/list\n" + RRMAPS,
            [("PF-07", H, "relay_domains holds org: mail to a whole top-level domain is relayed")],
        ),
        (
            "relay_domains = inline:{ example.org=OK, com=OK }\n" + RRMAPS,
            [
                (
                    "PF-07",
                    H,
                    "relay_domains holds com (in inline:{ example.org=OK, com=OK }): mail "
                    "to a whole top-level domain is relayed",
                )
            ],
        ),
        (
            "relay_domains = ldap:/etc/postfix/ldap-relay.cf\n" + RRMAPS,
            [("PF-07", M, "relay_domains could not be evaluated: ldap:/etc/postfix/ldap-relay.cf")],
        ),
        (
            "relay_domains = pcre:/etc/postfix/bad.pcre, hash:/etc/postfix/missing\n" + RRMAPS,
            [
                (
                    "PF-07",
                    M,
                    "relay_domains could not be evaluated: pcre:/etc/postfix/bad.pcre; "
                    "also hash:/etc/postfix/missing",
                )
            ],
        ),
        (
            "relay_domains = example.org\nrelay_recipient_maps = static:OK\n",
            [
                (
                    "PF-08",
                    M,
                    "relay_recipient_maps = static:OK accepts every recipient: mail for "
                    "unknown users of relayed domains is accepted, then bounced (backscatter)",
                )
            ],
        ),
    ],
)
def test_relay_domains_tables(main: str, expected: list[tuple[str, Severity, str]]) -> None:
    assert _relay(audit(main, files=FILES)) == expected


def test_catch_all_fix_and_details() -> None:
    (finding,) = [f for f in audit("relay_domains = static:OK\n") if f.severity is C]
    assert finding.subject.value == "main.cf:relay_domains"
    assert finding.details["fix"] == [FIX]
    assert finding.details["manual"] is True
    assert finding.details["entries"] == [
        {"entry": "static:OK", "severity": "critical", "why": "a static: table matches every "
         "domain: reject_unauth_destination lets mail to any domain through (open relay)"},
    ]  # fmt: skip
    assert finding.details["unreadable"] == []


def test_unevaluated_table_says_how_to_check_it() -> None:
    (finding,) = _relay_findings("relay_domains = mysql:/etc/postfix/rd.cf\n" + RRMAPS)
    assert finding.details["fix"] == [
        "# check: postmap -q evil.invalid mysql:/etc/postfix/rd.cf (any answer: mail to any "
        "domain is relayed)",
        "# or replace the table by an explicit list:",
        FIX,
    ]
    assert finding.details["unreadable"] == ["mysql:/etc/postfix/rd.cf"]


def _relay_findings(main: str) -> list[Finding]:
    return [f for f in audit(main, files=FILES) if f.details["rule"] == "PF-07"]


@pytest.mark.parametrize(
    ("domain", "parent", "keys"),
    [
        ("mail.attacker.example", True, ["mail.attacker.example", "attacker.example", "example"]),
        ("evil.invalid", False, ["evil.invalid", ".invalid"]),
        ("localhost", True, ["localhost"]),
    ],
)
def test_lookup_keys(domain: str, parent: bool, keys: list[str]) -> None:
    assert lookup_keys(domain, parent) == keys


def test_tld_keys_without_parent_matching_need_a_leading_dot() -> None:
    value = "inline:{ .net=OK, .invalid=OK, .example=OK, .com=OK }"
    assert [e.catch_all for e in classify(value, FILES.get, parent=False)] == [True]
    assert [e.catch_all for e in classify(value, FILES.get, parent=True)] == [False] * 4


MX_BACKUP = (
    "smtpd_relay_restrictions = permit_mynetworks, permit_mx_backup, reject_unauth_destination\n"
)


@pytest.mark.parametrize(
    ("networks", "expected"),
    [
        ("", "without permit_mx_backup_networks"),
        ("0.0.0.0/0", "with permit_mx_backup_networks = 0.0.0.0/0 (every network)"),
        ("192.0.2.0/24 static:OK", "with permit_mx_backup_networks = static:OK (every network)"),
        ("192.0.2.0/24", None),
    ],
)
def test_mx_backup_networks_that_match_everything_restrict_nothing(
    networks: str, expected: str | None
) -> None:
    main = MX_BACKUP + (f"permit_mx_backup_networks = {networks}\n" if networks else "")
    found = _relay(audit(main))
    if expected is None:
        assert found == []
        return
    title = (
        f"permit_mx_backup in smtpd_relay_restrictions {expected}: relays for any domain whose "
        "MX names this host"
    )
    assert found == [("PF-09", M, title)]


def test_mynetworks_title_names_every_bad_entry() -> None:
    (finding,) = [
        f
        for f in audit("mynetworks = 127.0.0.0/8 192.168.0.0/16 mail.example.com\n")
        if f.details["rule"] == "PF-04"
    ]
    assert finding.title == (
        "mynetworks trusts 192.168.0.0/16: a large private block: every host and VM in it may "
        "relay; also mail.example.com"
    )
    assert [e["entry"] for e in finding.details["entries"]] == [
        "192.168.0.0/16",
        "mail.example.com",
    ]
