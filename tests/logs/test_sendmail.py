"""Sendmail message-body parser: lines -> exact event fields.

No permissively licensed Sendmail log is in the repository, so these lines are constructed from
Sendmail's log format (the shapes in ../shared/reference/FORMATS.md section E, with other values).
The real GPL samples are checked in place by test_gpl_corpus.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from relayguard.logs import sendmail
from relayguard.logs.events import Event


def parse(message: str) -> Event:
    ev = Event(0.0, "mx", "sm-mta", 100, message)
    sendmail.parse(ev, message)
    return ev


CASES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "x4TLB2x7012345: from=<alice@example.org>, size=1234, class=0, nrcpts=2, "
        "msgid=<20240529.abc@example.org>, proto=ESMTP, daemon=MTA, "
        "relay=client.example.org [198.51.100.4]",
        "queued",
        {
            "queue_id": "x4TLB2x7012345",
            "sender": "alice@example.org",
            "size": 1234,
            "nrcpt": 2,
            "message_id": "20240529.abc@example.org",
            "service": "MTA",
            "client_name": "client.example.org",
            "client_ip": "198.51.100.4",
        },
    ),
    (
        "x4TLB2x7012346: from=<>, size=0, class=0, nrcpts=1, proto=SMTP, daemon=MSA, "
        "relay=[IPv6:2001:db8::7] (may be forged)",
        "queued",
        {
            "queue_id": "x4TLB2x7012346",
            "sender": "",
            "size": 0,
            "nrcpt": 1,
            "service": "MSA",
            "client_ip": "2001:db8::7",
        },
    ),
    (
        "x4TLB2x7012347: from=www-data, size=310, class=0, nrcpts=1, "
        "msgid=<x4TLB2x7012347@web.example.org>, relay=www-data@localhost",
        "queued",
        {
            "queue_id": "x4TLB2x7012347",
            "sender": "www-data",
            "size": 310,
            "nrcpt": 1,
            "message_id": "x4TLB2x7012347@web.example.org",
            "client_name": "www-data@localhost",
        },
    ),
    (
        "x4TLB2x7012348: from=<spam@example.com>, size=0, class=0, nrcpts=0, proto=ESMTP, "
        "daemon=MTA, relay=bad.example [203.0.113.9]",
        "info",
        {
            "queue_id": "x4TLB2x7012348",
            "sender": "spam@example.com",
            "size": 0,
            "nrcpt": 0,
            "service": "MTA",
            "client_name": "bad.example",
            "client_ip": "203.0.113.9",
        },
    ),
    (
        "x4TLB2x7012345: to=<bob@example.net>,<carol@example.net>, delay=00:00:02, "
        "xdelay=00:00:01, mailer=esmtp, pri=121234, relay=mx.example.net. [203.0.113.25], "
        "dsn=2.0.0, stat=Sent (Ok: queued as 4XyZ)",
        "delivery",
        {
            "queue_id": "x4TLB2x7012345",
            "recipient": "bob@example.net",
            "nrcpt": 2,
            "relay": "mx.example.net[203.0.113.25]",
            "dsn": "2.0.0",
            "status": "sent",
            "reply": "Sent (Ok: queued as 4XyZ)",
        },
    ),
    (
        "x4TLB2x7012345: to=<bob@example.net>, delay=00:10:02, xdelay=00:00:30, mailer=esmtp, "
        "pri=211234, relay=mx.example.net. [203.0.113.25], dsn=4.7.1, "
        "stat=Deferred: 451 4.7.1 Greylisted, try again later",
        "delivery",
        {
            "queue_id": "x4TLB2x7012345",
            "recipient": "bob@example.net",
            "nrcpt": 1,
            "relay": "mx.example.net[203.0.113.25]",
            "dsn": "4.7.1",
            "status": "deferred",
            "code": 451,
            "reply": "Deferred: 451 4.7.1 Greylisted, try again later",
        },
    ),
    (
        "x4TLB2x7012345: to=nobody, ctladdr=<alice@example.org> (1000/1000), delay=00:00:00, "
        "xdelay=00:00:00, mailer=local, pri=30000, dsn=5.1.1, stat=User unknown",
        "delivery",
        {
            "queue_id": "x4TLB2x7012345",
            "recipient": "nobody",
            "nrcpt": 1,
            "relay": "local",
            "dsn": "5.1.1",
            "status": "bounced",
            "reply": "User unknown",
        },
    ),
    (
        "x4TLB2x7012349: ruleset=check_rcpt, arg1=<victim@example.net>, "
        "relay=probe.example [203.0.113.7] (may be forged), reject=550 5.7.1 "
        "<victim@example.net>... Relaying denied. IP name possibly forged [203.0.113.7]",
        "relay-denied",
        {
            "queue_id": "x4TLB2x7012349",
            "command": "RCPT",
            "recipient": "victim@example.net",
            "client_name": "probe.example",
            "client_ip": "203.0.113.7",
            "code": 550,
            "dsn": "5.7.1",
            "reply": "550 5.7.1 <victim@example.net>... Relaying denied. IP name possibly "
            "forged [203.0.113.7]",
        },
    ),
    (
        "x4TLB2x7012350: ruleset=check_mail, arg1=<a@nonexistent.example>, "
        "relay=[203.0.113.8], reject=553 5.1.8 <a@nonexistent.example>... Domain of sender "
        "address a@nonexistent.example does not exist",
        "reject",
        {
            "queue_id": "x4TLB2x7012350",
            "command": "MAIL",
            "sender": "a@nonexistent.example",
            "client_ip": "203.0.113.8",
            "code": 553,
            "dsn": "5.1.8",
            "reply": "553 5.1.8 <a@nonexistent.example>... Domain of sender address "
            "a@nonexistent.example does not exist",
        },
    ),
    (
        "NOQUEUE: ruleset=check_relay, arg1=bad.example, arg2=203.0.113.9, "
        "relay=bad.example [203.0.113.9], reject=550 5.7.1 Access denied",
        "reject",
        {
            "command": "CONNECT",
            "client_name": "bad.example",
            "client_ip": "203.0.113.9",
            "code": 550,
            "dsn": "5.7.1",
            "reply": "550 5.7.1 Access denied",
        },
    ),
    (
        "x4TLB2x7012351: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): "
        "authentication failure: checkpass failed, user=bob@example.org, "
        "relay=guess.example [192.0.2.3] (may be forged)",
        "auth-failure",
        {
            "queue_id": "x4TLB2x7012351",
            "sasl_method": "LOGIN",
            "sasl_username": "bob@example.org",
            "client_name": "guess.example",
            "client_ip": "192.0.2.3",
            "reply": "authentication failure (-13) SASL(-13): authentication failure: "
            "checkpass failed",
        },
    ),
    (
        "x4TLB2x7012352: AUTH=server, relay=laptop.example.org [198.51.100.4], "
        "authid=alice, mech=PLAIN, bits=0",
        "auth-success",
        {
            "queue_id": "x4TLB2x7012352",
            "sasl_method": "PLAIN",
            "sasl_username": "alice",
            "client_name": "laptop.example.org",
            "client_ip": "198.51.100.4",
        },
    ),
    (
        "x4TLB2x7012345: x4TLB2x8012345: DSN: User unknown",
        "ndr",
        {
            "queue_id": "x4TLB2x7012345",
            "child_queue_id": "x4TLB2x8012345",
            "ndr_kind": "non-delivery",
            "detail": "User unknown",
        },
    ),
    (
        "x4TLB2x7012345: x4TLB2x9012345: sender notify: Warning: could not send message "
        "for past 4 hours",
        "ndr",
        {
            "queue_id": "x4TLB2x7012345",
            "child_queue_id": "x4TLB2x9012345",
            "ndr_kind": "delay",
            "detail": "Warning: could not send message for past 4 hours",
        },
    ),
    (
        "x4TLB2x7012353: probe.example [203.0.113.7] did not issue MAIL/EXPN/VRFY/ETRN during "
        "connection to MTA",
        "disconnect",
        {
            "queue_id": "x4TLB2x7012353",
            "client_name": "probe.example",
            "client_ip": "203.0.113.7",
            "detail": "did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA",
        },
    ),
    (
        "x4TLB2x7012354: lost input channel from [203.0.113.7] to MTA after rcpt",
        "lost-connection",
        {"queue_id": "x4TLB2x7012354", "client_ip": "203.0.113.7", "command": "RCPT"},
    ),
    (
        "starting daemon (8.17.1): SMTP+queueing@00:10:00",
        "daemon",
        {"detail": "starting daemon (8.17.1): SMTP+queueing@00:10:00"},
    ),
    (
        "x4TLB2x7012355: STARTTLS=server, relay=laptop.example.org [198.51.100.4], "
        "version=TLSv1.3, verify=NO, cipher=TLS_AES_256_GCM_SHA384, bits=256/256",
        "tls",
        {
            "queue_id": "x4TLB2x7012355",
            "client_name": "laptop.example.org",
            "client_ip": "198.51.100.4",
            "detail": "STARTTLS=server, relay=laptop.example.org [198.51.100.4], "
            "version=TLSv1.3, verify=NO, cipher=TLS_AES_256_GCM_SHA384, bits=256/256",
        },
    ),
]


@pytest.mark.parametrize(("message", "type_", "fields"), CASES)
def test_sendmail_line(message: str, type_: str, fields: dict[str, Any]) -> None:
    ev = parse(message)
    assert ev.type == type_
    assert ev.fields() == fields


@pytest.mark.parametrize(
    "message",
    [
        "",
        "x4TLB2x7012345: ",
        "x4TLB2x7012345: something new",
        "x4TLB2x7012345: x4TLB2x8012345: nothing",
        "NOQUEUE: [1.2.3.4]: EXPN root",
        "AUTH",
        "garbage without structure",
    ],
)
def test_sendmail_garbage_stays_unparsed(message: str) -> None:
    ev = parse(message)
    assert (ev.type, ev.fields()) == ("unparsed", {})
