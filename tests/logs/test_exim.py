"""Exim message-body parser: real and constructed lines -> exact event fields."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from relayguard.logs import exim
from relayguard.logs.events import Event

DATA = Path(__file__).parents[1] / "data" / "public" / "crowdsec-hub"

_MAINLOG = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? (.*)")
_SYSLOG = re.compile(r"\w{3} +\d+ \d\d:\d\d:\d\d \S+ exim\[\d+\]: (.*)")


def split_envelope(line: str) -> str:
    """What the envelope parser hands to exim.parse: the text after the timestamp or tag."""
    m = _MAINLOG.fullmatch(line) or _SYSLOG.fullmatch(line)
    assert m is not None, line
    return m.group(1)


def parse(message: str) -> Event:
    ev = Event(0.0, "mx", "exim", None, message)
    exim.parse(ev, message)
    return ev


# (message as handed to the parser, type, exact fields). Lines marked "c" are constructed
# from Exim's documented mainlog format; the others are verbatim from crowdsec-hub (MIT).
CASES: list[tuple[str, str, dict[str, Any]]] = [
    # crowdsec-hub exim-logs.log / exim-bf.log
    (
        "dovecot_login authenticator failed for ([1.2.3.5]) [1.2.3.4]:55379: 535 Incorrect "
        "authentication data (set_id=abuse@test.com)",
        "auth-failure",
        {
            "client_ip": "1.2.3.4",
            "client_port": 55379,
            "helo": "[1.2.3.5]",
            "sasl_method": "dovecot_login",
            "sasl_username": "abuse@test.com",
            "reply": "535 Incorrect authentication data",
            "code": 535,
        },
    ),
    (
        "dovecot_login authenticator failed for ppp-1-2-3-4.test.test.co.th ([127.0.0.1]) "
        "[1.2.3.4]:51451: 535 Incorrect authentication data (set_id=info@test.com)",
        "auth-failure",
        {
            "client_ip": "1.2.3.4",
            "client_name": "ppp-1-2-3-4.test.test.co.th",
            "client_port": 51451,
            "helo": "[127.0.0.1]",
            "sasl_method": "dovecot_login",
            "sasl_username": "info@test.com",
            "reply": "535 Incorrect authentication data",
            "code": 535,
        },
    ),
    (
        "login authenticator failed for no-port.example.org [192.0.2.13]: 535 Incorrect "
        "authentication data (set_id=user)",
        "auth-failure",
        {
            "client_ip": "192.0.2.13",
            "client_name": "no-port.example.org",
            "sasl_method": "login",
            "sasl_username": "user",
            "reply": "535 Incorrect authentication data",
            "code": 535,
        },
    ),
    (
        'H=test.com [1.2.3.4]:53343 F=<info@test.com> rejected RCPT <toto@toto.com>: "JunkMail '
        'rejected - test.com [1.2.3.4]:53343 is in an RBL: https://www.spamhaus.org/sbl/query/SBLCSS"',
        "reject",
        {
            "client_ip": "1.2.3.4",
            "client_name": "test.com",
            "client_port": 53343,
            "sender": "info@test.com",
            "recipient": "toto@toto.com",
            "command": "RCPT",
            "reply": '"JunkMail rejected - test.com [1.2.3.4]:53343 is in an RBL: '
            'https://www.spamhaus.org/sbl/query/SBLCSS"',
        },
    ),
    (
        "H=(smtpclient.test) [1.136.28.14]:17125 X=TLS1.3:TLS_AES_128_GCM_SHA256:128 CV=no "
        "F=<info@toto.com.au> rejected RCPT <tutu@titi.com.au>: SMTP AUTH is required for "
        "message submission on port 587",
        "reject",
        {
            "client_ip": "1.136.28.14",
            "client_port": 17125,
            "helo": "smtpclient.test",
            "sender": "info@toto.com.au",
            "recipient": "tutu@titi.com.au",
            "command": "RCPT",
            "reply": "SMTP AUTH is required for message submission on port 587",
        },
    ),
    (
        'H=test.sa.com [1.2.3.4]:18146 temporarily rejected connection in "connect" ACL: '
        '"Host is ratelimited (1.9/1h max:1.2)"',
        "reject",
        {
            "client_ip": "1.2.3.4",
            "client_name": "test.sa.com",
            "client_port": 18146,
            "command": "CONNECT",
            "reply": '"Host is ratelimited (1.9/1h max:1.2)"',
        },
    ),
    (
        "H=tata.test.biz [1.2.3.4]:41584 sender verify fail for <toto@test.biz>: The mail "
        "server does not recognize toto@test.biz as a valid sender.",
        "warning",
        {
            "client_ip": "1.2.3.4",
            "client_name": "tata.test.biz",
            "client_port": 41584,
            "sender": "toto@test.biz",
            "detail": "sender verify fail for <toto@test.biz>: The mail server does not "
            "recognize toto@test.biz as a valid sender.",
        },
    ),
    # c: relay probing, with [pid] still in front (log_selector +pid)
    (
        "[10099] H=(probe.example) [203.0.113.7]:3755 I=[192.0.2.1]:25 "
        "F=<spam@example.org> rejected RCPT <victim@example.net>: relay not permitted",
        "relay-denied",
        {
            "client_ip": "203.0.113.7",
            "client_port": 3755,
            "helo": "probe.example",
            "sender": "spam@example.org",
            "recipient": "victim@example.net",
            "command": "RCPT",
            "reply": "relay not permitted",
        },
    ),
    # c: syslog-wrapped Exim repeats its own timestamp
    (
        "2021-07-17 23:20:49 plain_server authenticator failed for ([192.0.2.17]) "
        "[192.0.2.27]: 535 Incorrect authentication data",
        "auth-failure",
        {
            "client_ip": "192.0.2.27",
            "helo": "[192.0.2.17]",
            "sasl_method": "plain_server",
            "reply": "535 Incorrect authentication data",
            "code": 535,
        },
    ),
    # c: IPv6 client, "for H=" form, set_id in the middle
    (
        "auth_plain authenticator failed for H=(mx) [2001:db8::5]:4040 U=x: 435 Unable to "
        "authenticate at present (set_id=bob): backend down",
        "auth-failure",
        {
            "client_ip": "2001:db8::5",
            "client_port": 4040,
            "helo": "mx",
            "sasl_method": "auth_plain",
            "sasl_username": "bob",
            "reply": "435 Unable to authenticate at present: backend down",
            "code": 435,
        },
    ),
    # c: authenticated submission, old-style id
    (
        "1sXyZa-000Abc-Q1 <= alice@example.org H=client.example.org (laptop) "
        "[198.51.100.4]:50312 I=[192.0.2.1]:587 P=esmtpsa X=TLS1.3:TLS_AES_256_GCM_SHA384:256 "
        "CV=no A=dovecot_plain:alice@example.org S=2345 id=abc.1@example.org "
        'T="Invoice for May" for bob@example.net carol@example.com',
        "queued",
        {
            "queue_id": "1sXyZa-000Abc-Q1",
            "sender": "alice@example.org",
            "client_name": "client.example.org",
            "helo": "laptop",
            "client_ip": "198.51.100.4",
            "client_port": 50312,
            "sasl_method": "dovecot_plain",
            "sasl_username": "alice@example.org",
            "size": 2345,
            "message_id": "abc.1@example.org",
            "recipient": "bob@example.net",
            "nrcpt": 2,
            "detail": "for bob@example.net carol@example.com",
        },
    ),
    # c: a bounce created for a parent message, Exim >= 4.97 ids
    (
        "10HmbZ-000000005vi-0000 <= <> R=10HmbY-000000005vi-0000 U=Debian-exim P=local S=1890",
        "queued",
        {
            "queue_id": "10HmbZ-000000005vi-0000",
            "sender": "",
            "ndr_kind": "non-delivery",
            "size": 1890,
            "detail": "R=10HmbY-000000005vi-0000",
        },
    ),
    # c: a delay warning
    (
        "10HmbZ-000000005vi-0000 <= <> R=10HmbY-000000005vi-0000 U=Debian-exim P=local S=1890 "
        'T="Warning: message 10HmbY-000000005vi-0000 delayed 24 hours"',
        "queued",
        {
            "queue_id": "10HmbZ-000000005vi-0000",
            "sender": "",
            "ndr_kind": "delay",
            "size": 1890,
            "detail": "R=10HmbY-000000005vi-0000",
        },
    ),
    # c: remote delivery with the original address and the remote's answer
    (
        "1sXyZa-000Abc-Q1 => bob@example.net <list@example.org> R=dnslookup T=remote_smtp "
        "H=mx.example.net [203.0.113.25]:25 X=TLS1.2:ECDHE-RSA-AES128-GCM-SHA256:128 CV=yes "
        'C="250 2.0.0 Ok: queued as 4XyZ" QT=2s DT=1s',
        "delivery",
        {
            "queue_id": "1sXyZa-000Abc-Q1",
            "status": "sent",
            "recipient": "bob@example.net",
            "orig_recipient": "list@example.org",
            "relay": "mx.example.net[203.0.113.25]:25",
            "reply": "250 2.0.0 Ok: queued as 4XyZ",
            "code": 250,
            "dsn": "2.0.0",
        },
    ),
    (
        "1sXyZa-000Abc-Q1 -> carol@example.com R=dnslookup T=remote_smtp "
        "H=mx.example.com [203.0.113.26]*",
        "delivery",
        {
            "queue_id": "1sXyZa-000Abc-Q1",
            "status": "sent",
            "recipient": "carol@example.com",
            "relay": "mx.example.com[203.0.113.26]",
        },
    ),
    (
        "1sXyZa-000Abc-Q1 => alice <alice@example.org> R=local_user T=mail_spool",
        "delivery",
        {
            "queue_id": "1sXyZa-000Abc-Q1",
            "status": "sent",
            "recipient": "alice",
            "orig_recipient": "alice@example.org",
            "relay": "mail_spool",
        },
    ),
    (
        "1sXyZa-000Abc-Q1 *> dave@example.com R=dnslookup T=remote_smtp H=mx.example.com "
        "[203.0.113.26]",
        "delivery",
        {
            "queue_id": "1sXyZa-000Abc-Q1",
            "status": "suppressed",
            "recipient": "dave@example.com",
            "relay": "mx.example.com[203.0.113.26]",
        },
    ),
    (
        "1sXyZa-000Abc-Q1 ** nobody@example.net R=dnslookup T=remote_smtp H=mx.example.net "
        "[203.0.113.25] : SMTP error from remote mail server after RCPT TO:<nobody@example.net>: "
        "550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown",
        "delivery",
        {
            "queue_id": "1sXyZa-000Abc-Q1",
            "status": "bounced",
            "recipient": "nobody@example.net",
            "relay": "mx.example.net[203.0.113.25]",
            "reply": "SMTP error from remote mail server after RCPT TO:<nobody@example.net>: "
            "550 5.1.1 <nobody@example.net>: Recipient address rejected: User unknown",
            "code": 550,
            "dsn": "5.1.1",
        },
    ),
    (
        "1sXyZa-000Abc-Q1 ** typo@exmaple.com: Unrouteable address",
        "delivery",
        {
            "queue_id": "1sXyZa-000Abc-Q1",
            "status": "bounced",
            "recipient": "typo@exmaple.com",
            "reply": "Unrouteable address",
        },
    ),
    (
        "1sXyZa-000Abc-Q1 == bob@example.net R=dnslookup T=remote_smtp defer (-44) "
        "H=mx.example.net [203.0.113.25]: SMTP error from remote mail server after "
        "RCPT TO:<bob@example.net>: 451 4.7.1 Greylisted, try again later",
        "delivery",
        {
            "queue_id": "1sXyZa-000Abc-Q1",
            "status": "deferred",
            "recipient": "bob@example.net",
            "relay": "mx.example.net[203.0.113.25]",
            "reply": "SMTP error from remote mail server after RCPT TO:<bob@example.net>: "
            "451 4.7.1 Greylisted, try again later",
            "code": 451,
            "dsn": "4.7.1",
        },
    ),
    (
        "1sXyZa-000Abc-Q1 == bob@example.net routing defer (-52): retry time not reached",
        "delivery",
        {
            "queue_id": "1sXyZa-000Abc-Q1",
            "status": "deferred",
            "recipient": "bob@example.net",
            "reply": "retry time not reached",
        },
    ),
    ("1sXyZa-000Abc-Q1 Completed QT=3s", "removed", {"queue_id": "1sXyZa-000Abc-Q1"}),
    (
        "1sXyZa-000Abc-Q1 H=mx.example.net [203.0.113.25] Connection timed out",
        "connect-failed",
        {
            "queue_id": "1sXyZa-000Abc-Q1",
            "relay": "mx.example.net[203.0.113.25]",
            "reply": "Connection timed out",
        },
    ),
    (
        "1sXyZa-000Abc-Q1 Message is frozen",
        "warning",
        {"queue_id": "1sXyZa-000Abc-Q1", "detail": "Message is frozen"},
    ),
    (
        "1sXyZa-000Abc-Q1 H=(helo.example) [198.51.100.9]:4411 F=<a@example.org> rejected "
        "after DATA: Your message looks like spam",
        "reject",
        {
            "queue_id": "1sXyZa-000Abc-Q1",
            "client_ip": "198.51.100.9",
            "client_port": 4411,
            "helo": "helo.example",
            "sender": "a@example.org",
            "command": "DATA",
            "reply": "Your message looks like spam",
        },
    ),
    (
        "SMTP connection from [10.101.1.10]:55010 (TCP/IP connection count = 1)",
        "connect",
        {"client_ip": "10.101.1.10", "client_port": 55010},
    ),
    (
        "SMTP connection from mail.example.org [192.0.2.8]:41234 closed by QUIT",
        "disconnect",
        {"client_name": "mail.example.org", "client_ip": "192.0.2.8", "client_port": 41234},
    ),
    (
        "SMTP connection from (hydra) [10.101.1.10]:53682 lost",
        "lost-connection",
        {"client_ip": "10.101.1.10", "client_port": 53682, "helo": "hydra"},
    ),
    (
        "SMTP call from (x) [192.0.2.66]:1111 dropped: too many syntax or protocol errors "
        '(last command was "AUTH LOGIN")',
        "lost-connection",
        {
            "client_ip": "192.0.2.66",
            "client_port": 1111,
            "helo": "x",
            "reply": 'too many syntax or protocol errors (last command was "AUTH LOGIN")',
        },
    ),
    (
        "SMTP protocol synchronization error (input sent without waiting for greeting): "
        'rejected connection from H=[192.0.2.66]:1112 input="EHLO x\\r\\n"',
        "reject",
        {
            "client_ip": "192.0.2.66",
            "client_port": 1112,
            "command": "CONNECT",
            "reply": "SMTP protocol synchronization error "
            "(input sent without waiting for greeting)",
        },
    ),
    (
        "Connection from [192.0.2.66]:1113 refused: too many connections from that IP address",
        "reject",
        {
            "client_ip": "192.0.2.66",
            "client_port": 1113,
            "command": "CONNECT",
            "reply": "too many connections from that IP address",
        },
    ),
    ("Start queue run: pid=4242", "daemon", {"detail": "Start queue run"}),
    (
        "exim 4.97 daemon started: pid=1, -q30m, listening for SMTP on port 25 (IPv4)",
        "daemon",
        {"detail": "exim 4.97 daemon started"},
    ),
]


@pytest.mark.parametrize(("message", "type_", "fields"), CASES)
def test_exim_line(message: str, type_: str, fields: dict[str, Any]) -> None:
    ev = parse(message)
    assert ev.type == type_
    assert ev.fields() == fields


@pytest.mark.parametrize(
    "message",
    [
        "",
        "[123] ",
        "1sXyZa-000Abc-Q1 ",
        "1sXyZa-000Abc-Q1 something we have never seen",
        "H=",
        "H=(",
        "H=[1.2.3.4",
        "SMTP ",
        " authenticator failed for ",
        "two words authenticator failed for x [1.2.3.4]: 535 x",
        'mail accepted "mail from:<a@b>"',
        "1999-03-02 09:44:33",
    ],
)
def test_exim_garbage_stays_unparsed(message: str) -> None:
    assert parse(message).type == "unparsed"


def test_exim_bounds_peer_text() -> None:
    rcpts = " ".join(f"r{i}@example.net" for i in range(200))
    ev = parse(f"1sXyZa-000Abc-Q1 <= a@example.org H=[192.0.2.1] P=esmtp S=10 for {rcpts}")
    assert ev.nrcpt == 200
    assert ev.recipient == "r0@example.net"
    assert ev.detail is not None and len(ev.detail) == exim.MAX_TEXT


def test_exim_mainlog_and_syslog_envelopes_give_the_same_event() -> None:
    a = parse(split_envelope("2023-05-30 06:10:13.345 [77] 1sXyZa-000Abc-Q1 Completed"))
    b = parse(
        split_envelope(
            "May 30 06:10:13 mx exim[77]: 2023-05-30 06:10:13 +0200 1sXyZa-000Abc-Q1 Completed"
        )
    )
    assert (
        (a.type, a.fields())
        == (b.type, b.fields())
        == ("removed", {"queue_id": "1sXyZa-000Abc-Q1"})
    )


EXPECTED_FILES = {
    "exim-bf.log": {"auth-failure": 5, "reject": 1},
    "exim-logs.log": {"auth-failure": 6, "reject": 5, "warning": 1},
    "exim-spam.log": {"reject": 5, "warning": 3},
    "exim-syslog-logs.log": {"auth-failure": 5, "reject": 5, "warning": 1},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_FILES))
def test_crowdsec_exim_files_parse_completely(name: str) -> None:
    counts: Counter[str] = Counter()
    for line in (DATA / name).read_text().splitlines():
        if not line.strip():
            continue
        ev = parse(split_envelope(line))
        assert ev.type != "unparsed", line
        counts[ev.type] += 1
    assert dict(counts) == EXPECTED_FILES[name]
