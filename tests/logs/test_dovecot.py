"""Dovecot parser: real crowdsec-hub lines (MIT) and a few constructed ones -> exact fields."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from relayguard.logs import dovecot
from relayguard.logs.events import Event

DATA = Path(__file__).parents[1] / "data" / "public" / "crowdsec-hub"

_TIME = re.compile(r"(?:\w{3} +\d+ \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) (.*)")


def split_envelope(line: str) -> tuple[str, str]:
    """(program, message) as the envelope parser gives them; a tag may have no host before it."""
    m = _TIME.fullmatch(line)
    assert m is not None, line
    first, _, rest = m.group(1).partition(" ")
    if first.endswith(":"):  # no host: "pop3-login: Info: ..." or "auth(u,ip,...)<id>: ..."
        tag, message = first[:-1], rest
    else:
        tag, _, message = rest.partition(": ")
    return re.sub(r"\[\d+\]$", "", tag), message


def parse_line(line: str) -> Event:
    program, message = split_envelope(line)
    ev = Event(0.0, "mail", program, None, line)
    dovecot.parse(ev, message)
    return ev


CASES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "Sep 8 07:16:27 canyon dovecot[7508]: imap-login: Disconnected (auth failed, 1 attempts "
        "in 6 secs): user=<toto@toto.com>, method=PLAIN, rip=1.1.1.1, lip=7.7.7.7, TLS, "
        "session=<azdaDADSqqsvf-za>",
        "auth-failure",
        {
            "sasl_username": "toto@toto.com",
            "sasl_method": "PLAIN",
            "client_ip": "1.1.1.1",
            "auth_attempts": 1,
            "auth_failed": 1,
            "detail": "Disconnected (auth failed, 1 attempts in 6 secs)",
        },
    ),
    (
        "Oct 12 15:44:43 canyon dovecot: pop3-login: Info: Disconnected: Connection closed (auth "
        "failed, 2 attempts in 30 secs): user=<hess@lol.fr>, method=PLAIN, rip=172.17.0.1, "
        "lip=172.17.0.2, TLS: Connection closed, session=<oEOptynOHNasEQAB>",
        "auth-failure",
        {
            "sasl_username": "hess@lol.fr",
            "sasl_method": "PLAIN",
            "client_ip": "172.17.0.1",
            "auth_attempts": 2,
            "auth_failed": 2,
            "detail": "Disconnected: Connection closed (auth failed, 2 attempts in 30 secs)",
        },
    ),
    (
        "Oct 12 15:53:32 canyon dovecot: imap-login: Info: Disconnected: Too many invalid "
        "commands (auth failed, 1 attempts in 0 secs): user=<hess@testnew.fr>, rip=172.17.0.1, "
        "lip=172.17.0.2, session=<5Tfu2CnO3pKsEQAB>",
        "auth-failure",
        {
            "sasl_username": "hess@testnew.fr",
            "client_ip": "172.17.0.1",
            "auth_attempts": 1,
            "auth_failed": 1,
            "detail": "Disconnected: Too many invalid commands (auth failed, 1 attempts in 0 secs)",
        },
    ),
    (
        "Oct 13 09:22:47 canyon dovecot: pop3-login: Info: Disconnected: Disconnected: Too many "
        "bad commands (no auth attempts in 22 secs): user=<>, rip=172.17.0.1, lip=172.17.0.2, "
        "TLS, session=<HfdbgTjOEOisEQAB>",
        "disconnect",
        {
            "client_ip": "172.17.0.1",
            "auth_attempts": 0,
            "detail": "Disconnected: Disconnected: Too many bad commands (no auth attempts in "
            "22 secs)",
        },
    ),
    (
        "Oct 13 09:22:59 canyon dovecot: pop3-login: Info: Login: user=<test@yourdomain.net>, "
        "method=PLAIN, rip=172.17.0.1, lip=172.17.0.2, mpid=18, TLS, session=<PeYcgjjOGOisEQAB>",
        "auth-success",
        {"sasl_username": "test@yourdomain.net", "sasl_method": "PLAIN", "client_ip": "172.17.0.1"},
    ),
    (
        "Sep 8 07:46:30 canyon dovecot: auth-worker(24544): pam(toto,1.1.1.1): unknown user",
        "auth-failure",
        {"sasl_username": "toto", "client_ip": "1.1.1.1", "reply": "unknown user"},
    ),
    (
        "Sep 8 07:16:29 canyon dovecot: auth-worker(24058): pam(toto,1.1.1.1,<youpi>): "
        "pam_authenticate() failed: Authentication failure (password mismatch?)",
        "auth-failure",
        {
            "sasl_username": "toto",
            "client_ip": "1.1.1.1",
            "reply": "pam_authenticate() failed: Authentication failure (password mismatch?)",
        },
    ),
    (
        "Apr 18 08:31:30 mail dovecot: auth-worker(63712): Info: conn unix:auth-worker "
        "(pid=58074,uid=109): auth-worker<4>: sql(contact,220.169.110.101): unknown user",
        "auth-failure",
        {"sasl_username": "contact", "client_ip": "220.169.110.101", "reply": "unknown user"},
    ),
    (
        "2024-12-31T06:56:17.784598+01:00 mail dovecot: auth-worker(10377): conn "
        "unix:auth-worker (pid=919,uid=112): auth-worker<1>: sql(testing@example.com,"
        "192.168.1.1): unknown user (given password: Password123$)",
        "auth-failure",
        {
            "sasl_username": "testing@example.com",
            "client_ip": "192.168.1.1",
            "reply": "unknown user",
        },
    ),
    (
        "2025-01-01T17:05:06.533969+01:00 mail2 dovecot: auth: passwd-file(karen@co.uk,"
        "192.168.1.1): unknown user (SHA1 of given password: 21bd12)",
        "auth-failure",
        {"sasl_username": "karen@co.uk", "client_ip": "192.168.1.1", "reply": "unknown user"},
    ),
    # constructed: Dovecot 2.3 log_path line for a Postfix SASL request (no host, no tag)
    (
        "Aug 30 00:10:57 auth(carol@example.org,203.0.113.50,sasl:login)<AbCdEf123>: Info: "
        "sql: Password mismatch (given password: hunter2)",
        "auth-failure",
        {
            "sasl_username": "carol@example.org",
            "client_ip": "203.0.113.50",
            "sasl_method": "login",
            "reply": "Password mismatch",
            "detail": "sasl",
        },
    ),
    # constructed: Dovecot 1.x log_path lines start with the level, IPv4-mapped addresses
    (
        "May 31 09:43:57 Info: pop3-login: Aborted login (3 authentication attempts): "
        "user=<dave>, method=PLAIN, rip=::ffff:203.0.113.51, lip=::ffff:192.0.2.1, secured",
        "auth-failure",
        {
            "sasl_username": "dave",
            "sasl_method": "PLAIN",
            "client_ip": "203.0.113.51",
            "auth_attempts": 3,
            "auth_failed": 3,
            "detail": "Aborted login (3 authentication attempts)",
        },
    ),
    (
        "Jun 23 15:04:06 Info: IMAP(dave): Disconnected: Logged out bytes=80/900",
        "disconnect",
        {"sasl_username": "dave", "detail": "Disconnected: Logged out bytes=80/900"},
    ),
    (
        "Jan 29 09:33:58 imap(erin@example.org)<4711><s3ss10n>: Disconnected: Logged out "
        "in=120 out=3456",
        "disconnect",
        {
            "sasl_username": "erin@example.org",
            "detail": "Disconnected: Logged out in=120 out=3456",
        },
    ),
    (
        "Jan 29 09:33:58 mail dovecot: master: Dovecot v2.3.21 (47349e2482) starting up for "
        "imap, pop3, lmtp (core dumps disabled)",
        "daemon",
        {
            "detail": "master: Dovecot v2.3.21 (47349e2482) starting up for imap, pop3, lmtp "
            "(core dumps disabled)"
        },
    ),
    (
        "Jan 29 09:33:58 mail dovecot: auth: Fatal: Unknown passdb driver 'sqlx'",
        "warning",
        {"detail": "Unknown passdb driver 'sqlx'"},
    ),
    (
        "Jan 29 09:33:58 mail dovecot: auth: userdb(frank,203.0.113.52): user not found from "
        "userdb",
        "info",
        {
            "sasl_username": "frank",
            "client_ip": "203.0.113.52",
            "detail": "user not found from userdb",
        },
    ),
]


@pytest.mark.parametrize(("line", "type_", "fields"), CASES)
def test_dovecot_line(line: str, type_: str, fields: dict[str, Any]) -> None:
    ev = parse_line(line)
    assert ev.type == type_
    assert ev.fields() == fields


@pytest.mark.parametrize(
    "line",
    [
        "Aug 30 00:10:57 auth(carol@example.org,203.0.113.50,sasl:login)<AbCdEf123>: Info: "
        "sql: Password mismatch (given password: hunter2)",
        "2024-12-31T06:56:17.784598+01:00 mail dovecot: auth-worker(10377): conn "
        "unix:auth-worker (pid=919,uid=112): auth-worker<1>: sql(t@example.com,192.168.1.1): "
        "unknown user (given password: hunter2)",
        "Jan 29 09:33:58 mail dovecot: auth: Debug: client passdb out: FAIL (given password: "
        "hunter2)",
    ],
)
def test_dovecot_never_keeps_a_leaked_password(line: str) -> None:
    ev = parse_line(line)
    assert ev.type != "unparsed"
    assert all("hunter2" not in str(v) for v in ev.fields().values())
    assert "hunter2" not in ev.raw


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ("imapd", "Login user=x"),  # Courier/UW imapd: not Dovecot
        ("authdaemond", "received auth request"),
        ("postfix", "imap-login: Login: user=<x>"),
        ("Info", "ntpd: time synchronised"),  # a level-first line that is not Dovecot's
    ],
)
def test_dovecot_ignores_other_programs(program: str, message: str) -> None:
    ev = Event(0.0, "mail", program, None, message)
    dovecot.parse(ev, message)
    assert (ev.type, ev.fields()) == ("unparsed", {})


EXPECTED_FILES = {
    "dovecot-logs.log": {"auth-failure": 13, "disconnect": 1, "auth-success": 1},
    "dovecot-slow-bf.log": {"auth-failure": 4},
    "dovecot-spam.log": {"auth-failure": 12},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_crowdsec_dovecot_files_parse_completely(name: str) -> None:
    counts: Counter[str] = Counter()
    for line in (DATA / name).read_text().splitlines():
        if line.strip():
            ev = parse_line(line)
            assert ev.type != "unparsed", line
            counts[ev.type] += 1
    assert dict(counts) == EXPECTED_FILES[name]


def test_dovecot_accepts_the_tag_left_in_the_message() -> None:
    """The envelope may give program "auth" and keep "auth(u,ip,...)<id>:" in the message."""
    message = "auth(carol@example.org,203.0.113.50,sasl:plain)<Ab1>: Info: sql: Password mismatch"
    ev = Event(0.0, "", "auth", None, message)
    dovecot.parse(ev, message)
    assert (ev.type, ev.fields()) == (
        "auth-failure",
        {
            "sasl_username": "carol@example.org",
            "client_ip": "203.0.113.50",
            "sasl_method": "plain",
            "reply": "Password mismatch",
            "detail": "sasl",
        },
    )
