"""relayguard ids-rules: the rules load in the real Suricata and fire where they should, on
captures written here, where the classic RCPT TO rule fires wrongly or not at all.

The same cases are also checked without Suricata, by running each rule's PCRE through
Python's re (the constructs used are in the subset both share), so a developer without
Suricata still sees a mismatch.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from relayguard.config import Config
from relayguard.wire import ids
from tests.wire.craft import BANNER, EHLO_REPLY, T0, Conn, frames_of, write_pcap
from tests.wire.suricata import check_rules_load, run_suricata

HOME_NET = "[192.0.2.0/24]"
SERVER = "192.0.2.25"
CLASSIC_SID = 1_999_001
# The rule from the issue, for yourdomain.com = example.org.
CLASSIC = (
    'alert tcp $EXTERNAL_NET any -> $SMTP_SERVERS 25 (msg:"classic relay rule"; '
    'content:"RCPT TO"; pcre:"/RCPT TO:\\s*<[^@]+@(?!example\\.org)[^>]+>/i"; '
    f"sid:{CLASSIC_SID}; rev:1;)"
)
RELAY, TRICK = 1_970_101, 1_970_102

# (what, the RCPT line, ours fires, trick fires, the classic rule fires)
CASES = [
    ("relay to an outside domain", "RCPT TO:<victim@target.example>", True, False, True),
    ("inbound to a subdomain", "RCPT TO:<bob@mail.example.org>", False, False, True),
    ("inbound to a subdomain, space", "RCPT TO: <bob@mail.example.org>", False, False, True),
    ("inbound, upper case domain", "RCPT TO:<bob@EXAMPLE.ORG>", False, False, False),
    ("inbound, trailing dot", "RCPT TO:<bob@example.org.>", False, False, False),
    ("look-alike domain", "RCPT TO:<x@example.org.evil.example>", True, False, False),
    ("look-alike prefix", "RCPT TO:<x@example.organic.example>", True, False, False),
    ("relay, space after the colon", "RCPT TO: <victim@target.example>", True, False, True),
    ("relay, two spaces after RCPT", "RCPT  TO:<victim@target.example>", True, False, False),
    ("relay, mixed case command", "rcpt To:<victim@TARGET.example>", True, False, False),
    ("relay, no angle brackets", "RCPT TO:victim@target.example", True, False, False),
    (
        "relay, source route via us",
        "RCPT TO:<@example.org:victim@target.example>",
        True,
        False,
        False,
    ),
    ("relay, quoted local part", 'RCPT TO:<"john smith"@target.example>', True, False, True),
    (
        "inbound, quoted local part with @",
        'RCPT TO:<"bob@example.net"@example.org>',
        False,
        True,
        True,
    ),
    ("percent hack", "RCPT TO:<victim%target.example@example.org>", False, True, False),
    ("bang path", "RCPT TO:<target.example!victim@example.org>", False, True, False),
    ("relay to an IPv6 literal", "RCPT TO:<victim@[IPv6:2001:db8::99]>", True, False, True),
    ("our own address literal", f"RCPT TO:<postmaster@[{SERVER}]>", False, False, True),
    (
        "relay with ESMTP parameters",
        "RCPT TO:<victim@target.example> NOTIFY=NEVER",
        True,
        False,
        True,
    ),
]


def _rules(fmt: str = "suricata") -> str:
    rules = ids.build(Config(), ["example.org"], [SERVER], fmt)
    return rules.render(ids.header(fmt, ["example.org"], [SERVER]))


def _case_conn(i: int, rcpt_line: str) -> Conn:
    conn = Conn(client="198.51.100.7", cport=42000 + i, server=SERVER, time=T0 + i).open()
    conn.dialogue(
        ("", BANNER),
        ("EHLO scanner.example\r\n", EHLO_REPLY),
        ("MAIL FROM:<probe@scanner.example>\r\n", "250 2.1.0 Ok\r\n"),
        (rcpt_line + "\r\n", "554 5.7.1 Relay access denied\r\n"),
        ("QUIT\r\n", "221 Bye\r\n"),
    )
    return conn.close()


def _pcre(rule: str) -> re.Pattern[str]:
    body = re.search(r'pcre:"/(.*)/([a-z]*)";', rule)
    assert body is not None, rule
    flags = re.M if "m" in body.group(2) else 0
    flags |= re.I if "i" in body.group(2) else 0
    return re.compile(body.group(1), flags)


def _rule(sid: int, text: str) -> str:
    (line,) = [x for x in text.splitlines() if f"sid:{sid};" in x]
    return line


@pytest.mark.parametrize(("what", "line", "ours", "trick", "classic"), CASES)
def test_rule_pcres_in_python(what: str, line: str, ours: bool, trick: bool, classic: bool) -> None:
    text = _rules()
    payload = f"{line}\r\n"
    assert bool(_pcre(_rule(RELAY, text)).search(payload)) is ours, what
    assert bool(_pcre(_rule(TRICK, text)).search(payload)) is trick, what
    # the classic rule also needs its case-sensitive content match
    fired = "RCPT TO" in payload and bool(_pcre(CLASSIC.replace("\\\\", "\\")).search(payload))
    assert fired is classic, what


def _alerts_by_port(alerts: list[dict[str, Any]]) -> dict[int, set[int]]:
    """Client port -> sids that fired in that connection (either direction)."""
    out: dict[int, set[int]] = defaultdict(set)
    for a in alerts:
        port = a["src_port"] if a["src_ip"] != SERVER else a["dest_port"]
        out[int(port)].add(int(a["alert"]["signature_id"]))
    return out


@pytest.mark.parametrize("fmt", ["suricata", "snort"])
def test_rules_fire_in_suricata_where_the_classic_rule_is_wrong(tmp_path: Path, fmt: str) -> None:
    rules = tmp_path / "relayguard.rules"
    rules.write_text(_rules(fmt) + CLASSIC + "\n")
    check_rules_load(rules, tmp_path / "t", HOME_NET, f"[{SERVER}]")
    pcap = write_pcap(
        tmp_path / "cases.pcap", frames_of(*(_case_conn(i, c[1]) for i, c in enumerate(CASES)))
    )
    fired = _alerts_by_port(run_suricata(pcap, rules, tmp_path / "out", HOME_NET, f"[{SERVER}]"))
    wrong_classic = []
    for i, (what, _line, ours, trick, classic) in enumerate(CASES):
        sids = fired.get(42000 + i, set())
        assert (RELAY in sids) is ours, what
        assert (TRICK in sids) is trick, what
        assert (CLASSIC_SID in sids) is classic, what
        assert 1_970_201 in sids, what  # every case was answered "Relay access denied"
        if classic != ours:
            wrong_classic.append(what)
    assert wrong_classic == [
        "inbound to a subdomain",
        "inbound to a subdomain, space",
        "look-alike domain",
        "look-alike prefix",
        "relay, two spaces after RCPT",
        "relay, mixed case command",
        "relay, no angle brackets",
        "relay, source route via us",
        "inbound, quoted local part with @",
        "our own address literal",
    ]


def _failures(n: int, client: str, first_port: int) -> list[Conn]:
    out = []
    for i in range(n):
        conn = Conn(
            client=client, cport=first_port + i, server=SERVER, sport=587, time=T0 + i
        ).open()
        conn.dialogue(
            ("", BANNER),
            ("EHLO x\r\n", EHLO_REPLY),
            ("AUTH PLAIN AGFsaWNlAHdyb25n\r\n", "535 5.7.8 Error: authentication failed\r\n"),
            ("QUIT\r\n", "221 Bye\r\n"),
        )
        out.append(conn.close())
    return out


def test_thresholds_and_egress_in_suricata(tmp_path: Path) -> None:
    rules = tmp_path / "relayguard.rules"
    rules.write_text(_rules())
    conns = _failures(12, "203.0.113.9", 43000) + _failures(9, "203.0.113.10", 44000)
    # a web server of ours (not a mail server) delivering straight to an outside MX, and our
    # mail server doing the same (that is its job)
    for client, port in (("192.0.2.80", 45000), (SERVER, 45001)):
        conn = Conn(client=client, cport=port, server="198.51.100.200", time=T0 + 100).open()
        conn.dialogue(
            ("", BANNER),
            ("EHLO web.example.org\r\n", EHLO_REPLY),
            ("MAIL FROM:<www-data@web.example.org>\r\n", "250 Ok\r\n"),
            ("QUIT\r\n", "221 Bye\r\n"),
        )
        conns.append(conn.close())
    alerts = run_suricata(
        write_pcap(tmp_path / "t.pcap", frames_of(*conns)),
        rules,
        tmp_path / "out",
        HOME_NET,
        f"[{SERVER}]",
    )
    brute = [a for a in alerts if a["alert"]["signature_id"] == 1_970_301]
    # the 10th, 11th and 12th failure of the first client; none for the client with 9
    assert sorted(a["dest_port"] for a in brute) == [43009, 43010, 43011]
    egress = sorted(
        (a["src_ip"], a["alert"]["signature_id"])
        for a in alerts
        if a["alert"]["signature_id"] in (1_970_401, 1_970_402)
    )
    assert egress == [("192.0.2.80", 1_970_401), ("192.0.2.80", 1_970_402)]


def test_ids_rules_cli(relayguard: Any) -> None:
    run = relayguard("ids-rules", "--local-domain", "Example.ORG", "--format", "snort")
    assert run.code == 0
    rules = [x for x in run.out.splitlines() if x.startswith("alert ")]
    assert len(rules) == 7
    assert len({re.search(r"sid:(\d+);", r).group(1) for r in rules}) == 7  # type: ignore[union-attr]
    assert all("$SMTP_SERVERS" in r or "!$SMTP_SERVERS" in r for r in rules)
    assert "example\\.org" in run.out
    bad = relayguard("ids-rules", "--local-domain", "evil.example/(?x)")
    assert bad.code == 3 and "not a domain name" in bad.err
    none = relayguard("ids-rules")
    assert none.code == 3 and "--local-domain" in none.err
