"""Postfix body parser: real lines -> typed events, corpus coverage, exact lab counts."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from relayguard.logs import dispatch, postfix
from relayguard.logs import events as E
from relayguard.logs._postfix_fields import MAX_ADDR, MAX_REPLY
from relayguard.logs.events import Event

DATA = Path(__file__).resolve().parents[1] / "data"
LAB = DATA / "lab"
PUBLIC = DATA / "public"


def parse(daemon: str, message: str) -> Event:
    ev = Event(None, "mail", f"postfix/{daemon}", 1, message)
    postfix.parse(ev, daemon, message)
    return ev


def split_envelope(line: str) -> tuple[str, str] | None:
    """(program, message) of a BSD (``Mmm dd hh:mm:ss host tag[pid]: msg``) or RFC 3339 line.

    The real envelope parser is tested on its own; this is just enough to feed bodies.
    """
    parts = line.split(None, 1 if line[:1].isdigit() else 3)
    if len(parts) < (2 if line[:1].isdigit() else 4):
        return None
    host_tag = parts[-1].split(" ", 1)
    if len(host_tag) < 2:
        return None
    tag, sep, message = host_tag[1].partition(": ")
    if not sep or not tag.endswith("]") or "[" not in tag:
        return None
    return tag[: tag.index("[")], message


def parse_line(line: str) -> Event | None:
    split = split_envelope(line)
    if split is None:
        return None
    program, message = split
    return parse(program.split("/")[-1], message) if "/" in program else None


# (daemon, message body, expected type, every MTA field the parser must set)
CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "smtpd",
        "connect from unknown[127.0.0.1]",
        E.CONNECT,
        {
            "client_ip": "127.0.0.1",
            "client_name": "unknown",
        },
    ),
    (
        "smtpd",
        "connect from 061238241086.static.ctinets.com[61.238.241.86]",
        E.CONNECT,
        {
            "client_ip": "61.238.241.86",
            "client_name": "061238241086.static.ctinets.com",
        },
    ),
    (
        "smtpd",
        "connect from unknown[2001:db8::1]:49152",
        E.CONNECT,
        {
            "client_ip": "2001:db8::1",
            "client_name": "unknown",
            "client_port": 49152,
        },
    ),
    (
        "smtpd",
        "disconnect from unknown[127.0.0.66] ehlo=1 auth=0/1 quit=1 commands=2/3",
        E.DISCONNECT,
        {
            "client_ip": "127.0.0.66",
            "client_name": "unknown",
            "auth_failed": 1,
            "auth_attempts": 1,
        },
    ),
    (
        "smtpd",
        "disconnect from unknown[127.0.0.67] ehlo=1 auth=0/20 commands=1/21",
        E.DISCONNECT,
        {
            "client_ip": "127.0.0.67",
            "client_name": "unknown",
            "auth_failed": 20,
            "auth_attempts": 20,
        },
    ),
    (
        "smtpd",
        "disconnect from unknown[127.0.0.1] ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6",
        E.DISCONNECT,
        {
            "client_ip": "127.0.0.1",
            "client_name": "unknown",
            "auth_failed": 0,
            "auth_attempts": 1,
        },
    ),
    (
        "smtpd",
        "disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=0/1 rset=1 quit=1 commands=4/5",
        E.DISCONNECT,
        {
            "client_ip": "127.0.0.1",
            "client_name": "unknown",
        },
    ),
    (
        "smtpd",
        "disconnect from unknown[unknown] commands=0/0",
        E.DISCONNECT,
        {
            "client_name": "unknown",
        },
    ),
    (
        "smtpd",
        "disconnect from 061238241086.static.ctinets.com[61.238.241.86]",
        E.DISCONNECT,
        {
            "client_ip": "61.238.241.86",
            "client_name": "061238241086.static.ctinets.com",
        },
    ),
    (
        "smtpd",
        "too many errors after AUTH from unknown[127.0.0.67]",
        E.LOST_CONNECTION,
        {
            "client_ip": "127.0.0.67",
            "client_name": "unknown",
            "command": "AUTH",
            "detail": "too many errors",
        },
    ),
    (
        "smtpd",
        "lost connection after CONNECT from unknown[127.0.0.1]",
        E.LOST_CONNECTION,
        {
            "client_ip": "127.0.0.1",
            "client_name": "unknown",
            "command": "CONNECT",
            "detail": "lost connection",
        },
    ),
    (
        "smtpd",
        "lost connection after DATA (7774180 bytes) from unknown[72.13.58.7]",
        E.LOST_CONNECTION,
        {
            "client_ip": "72.13.58.7",
            "client_name": "unknown",
            "command": "DATA",
            "detail": "lost connection",
        },
    ),
    (
        "smtpd",
        "lost connection after UNKNOWN from unknown[2001:456:cfb1:1:f5d7:dead:beef:cafe]",
        E.LOST_CONNECTION,
        {
            "client_ip": "2001:456:cfb1:1:f5d7:dead:beef:cafe",
            "client_name": "unknown",
            "command": "UNKNOWN",
            "detail": "lost connection",
        },
    ),
    (
        "smtpd",
        "timeout after END-OF-MESSAGE from unknown[72.13.58.7]",
        E.LOST_CONNECTION,
        {
            "client_ip": "72.13.58.7",
            "client_name": "unknown",
            "command": "END-OF-MESSAGE",
            "detail": "timeout",
        },
    ),
    (
        "smtpd",
        "DA7E020A4B: client=unknown[127.0.0.1]",
        E.CLIENT,
        {
            "queue_id": "DA7E020A4B",
            "client_ip": "127.0.0.1",
            "client_name": "unknown",
        },
    ),
    (
        "smtpd",
        "A1B2C3D4E5: client=unknown[127.0.0.66], sasl_method=LOGIN, sasl_username=alice@lab.test",
        E.AUTH_SUCCESS,
        {
            "queue_id": "A1B2C3D4E5",
            "client_ip": "127.0.0.66",
            "client_name": "unknown",
            "sasl_method": "LOGIN",
            "sasl_username": "alice@lab.test",
        },
    ),
    (
        "smtpd",
        "EB4B2C19E2: client=xxx[1.2.3.4], sasl_method=PLAIN, sasl_username=user@domain",
        E.AUTH_SUCCESS,
        {
            "queue_id": "EB4B2C19E2",
            "client_ip": "1.2.3.4",
            "client_name": "xxx",
            "sasl_method": "PLAIN",
            "sasl_username": "user@domain",
        },
    ),
    (
        "smtpd",
        "EB4B2C19E2: client=xxx[1.2.3.4], sasl_method=PLAIN, sasl_username=user@domain,"
        " sasl_sender=boss@domain",
        E.AUTH_SUCCESS,
        {
            "queue_id": "EB4B2C19E2",
            "client_ip": "1.2.3.4",
            "client_name": "xxx",
            "sasl_method": "PLAIN",
            "sasl_username": "user@domain",
        },
    ),
    (
        "smtpd",
        "44JCRG5tYPzCqt2: client=localhost[127.0.0.1], orig_queue_id=4HnkK60lBRz6tl1,"
        " orig_client=mx.example.com[192.0.2.7]",
        E.CLIENT,
        {
            "queue_id": "44JCRG5tYPzCqt2",
            "client_ip": "127.0.0.1",
            "client_name": "localhost",
            "detail": "orig_queue_id=4HnkK60lBRz6tl1, orig_client=mx.example.com[192.0.2.7]",
        },
    ),
    (
        "smtpd",
        "warning: unknown[127.0.0.66]: SASL LOGIN authentication failed: authentication"
        " failure, sasl_username=alice@lab.test",
        E.AUTH_FAILURE,
        {
            "client_ip": "127.0.0.66",
            "client_name": "unknown",
            "sasl_method": "LOGIN",
            "sasl_username": "alice@lab.test",
            "detail": "authentication failure",
        },
    ),
    (
        "smtpd",
        "warning: unknown[192.0.2.237]:55729: SASL LOGIN authentication failed: authentication"
        " failure",
        E.AUTH_FAILURE,
        {
            "client_ip": "192.0.2.237",
            "client_name": "unknown",
            "client_port": 55729,
            "sasl_method": "LOGIN",
            "detail": "authentication failure",
        },
    ),
    (
        "smtpd",
        "warning: unknown[192.0.2.152]: SASL LOGIN authentication failed: (reason unavailable),"
        " sasl_username=admin",
        E.AUTH_FAILURE,
        {
            "client_ip": "192.0.2.152",
            "client_name": "unknown",
            "sasl_method": "LOGIN",
            "sasl_username": "admin",
            "detail": "(reason unavailable)",
        },
    ),
    (
        "smtpd",
        "warning: ec2-3-84-57-208.compute-1.amazonaws.com[3.84.57.208]: SASL LOGIN"
        " authentication failed: UGFzc3dvcmQ6",
        E.AUTH_FAILURE,
        {
            "client_ip": "3.84.57.208",
            "client_name": "ec2-3-84-57-208.compute-1.amazonaws.com",
            "sasl_method": "LOGIN",
            "detail": "UGFzc3dvcmQ6",
        },
    ),
    (
        "smtpd",
        "warning: mail.foldsandwalker.com[98.191.84.74]: SASL Plain authentication failed:",
        E.AUTH_FAILURE,
        {
            "client_ip": "98.191.84.74",
            "client_name": "mail.foldsandwalker.com",
            "sasl_method": "PLAIN",
        },
    ),
    (
        "smtpd",
        "warning: laptop.local[192.168.1.2]: SASL PLAIN authentication failed: generic failure",
        E.AUTH_FAILURE,
        {
            "client_ip": "192.168.1.2",
            "client_name": "laptop.local",
            "sasl_method": "PLAIN",
            "detail": "generic failure",
        },
    ),
    (
        "smtpd",
        "warning: unknown[203.0.113.5]: SASL LOGIN authentication failed: Invalid"
        " authentication mechanism",
        E.AUTH_FAILURE,
        {
            "client_ip": "203.0.113.5",
            "client_name": "unknown",
            "sasl_method": "LOGIN",
            "detail": "Invalid authentication mechanism",
        },
    ),
    (
        "smtpd",
        "warning: unknown[203.0.113.6]: SASL LOGIN authentication failed: Connection lost to"
        " authentication server",
        E.AUTH_FAILURE,
        {
            "client_ip": "203.0.113.6",
            "client_name": "unknown",
            "sasl_method": "LOGIN",
            "detail": "Connection lost to authentication server",
        },
    ),
    (
        "smtpd",
        "warning: SASL authentication failure: Password verification failed",
        E.WARNING,
        {
            "detail": "SASL authentication failure: Password verification failed",
        },
    ),
    (
        "smtpd",
        "warning: SASL authentication failure: cannot connect to saslauthd server: Permission"
        " denied",
        E.WARNING,
        {
            "detail": (
                "SASL authentication failure: cannot connect to saslauthd server: Permission denied"
            ),
        },
    ),
    (
        "smtpd",
        "NOQUEUE: reject: RCPT from unknown[127.0.0.66]: 554 5.7.1 <user1@mailbox1.example>:"
        " Relay access denied; from=<promo@deals.example> to=<user1@mailbox1.example>"
        " proto=ESMTP helo=<spambot.example>",
        E.RELAY_DENIED,
        {
            "client_ip": "127.0.0.66",
            "client_name": "unknown",
            "helo": "spambot.example",
            "sender": "promo@deals.example",
            "recipient": "user1@mailbox1.example",
            "dsn": "5.7.1",
            "status": "reject",
            "reply": "<user1@mailbox1.example>: Relay access denied",
            "command": "RCPT",
            "code": 554,
        },
    ),
    (
        "smtpd",
        "NOQUEUE: reject: RCPT from unknown[127.0.0.2]: 554 5.7.1"
        " <relaytest@nmap.scanme.org@[127.0.0.1]>: Relay access denied;"
        ' from=<antispam@[127.0.0.1]> to=<"relaytest@nmap.scanme.org"@[127.0.0.1]> proto=ESMTP'
        " helo=<nmap.scanme.org>",
        E.RELAY_DENIED,
        {
            "client_ip": "127.0.0.2",
            "client_name": "unknown",
            "helo": "nmap.scanme.org",
            "sender": "antispam@[127.0.0.1]",
            "recipient": '"relaytest@nmap.scanme.org"@[127.0.0.1]',
            "dsn": "5.7.1",
            "status": "reject",
            "reply": "<relaytest@nmap.scanme.org@[127.0.0.1]>: Relay access denied",
            "command": "RCPT",
            "code": 554,
        },
    ),
    (
        "smtpd",
        "NOQUEUE: reject: RCPT from unknown[213.255.237.245]: 554 <ce101@ce.metu.edu.tr>: Relay"
        " access denied; from=<kryonomm@yahoo.com> to=<e10445@jubiipost.dk> proto=SMTP"
        " helo=<SM01.net>",
        E.RELAY_DENIED,
        {
            "client_ip": "213.255.237.245",
            "client_name": "unknown",
            "helo": "SM01.net",
            "sender": "kryonomm@yahoo.com",
            "recipient": "e10445@jubiipost.dk",
            "status": "reject",
            "reply": "<ce101@ce.metu.edu.tr>: Relay access denied",
            "command": "RCPT",
            "code": 554,
        },
    ),
    (
        "smtpd",
        "NOQUEUE: reject: VRFY from unknown[2001:968:9999:20:88b:9b7d:2a54:2bd2]: 454 4.7.1"
        " <aap@henk.com>: Relay access denied; to=<aap@henk.com> proto=SMTP helo=<me>",
        E.RELAY_DENIED,
        {
            "client_ip": "2001:968:9999:20:88b:9b7d:2a54:2bd2",
            "client_name": "unknown",
            "helo": "me",
            "recipient": "aap@henk.com",
            "dsn": "4.7.1",
            "status": "reject",
            "reply": "<aap@henk.com>: Relay access denied",
            "command": "VRFY",
            "code": 454,
        },
    ),
    (
        "smtpd",
        "NOQUEUE: reject: CONNECT from unknown[192.0.2.114]: 450 4.7.25 Client host rejected:"
        " cannot find your hostname, [178.215.236.114]; proto=SMTP",
        E.REJECT,
        {
            "client_ip": "192.0.2.114",
            "client_name": "unknown",
            "dsn": "4.7.25",
            "status": "reject",
            "reply": "Client host rejected: cannot find your hostname, [178.215.236.114]",
            "command": "CONNECT",
            "code": 450,
        },
    ),
    (
        "smtpd",
        "NOQUEUE: reject: RCPT from unknown[1.2.3.4]: 554 5.7.1 Service unavailable",
        E.REJECT,
        {
            "client_ip": "1.2.3.4",
            "client_name": "unknown",
            "dsn": "5.7.1",
            "status": "reject",
            "reply": "Service unavailable",
            "command": "RCPT",
            "code": 554,
        },
    ),
    (
        "smtpd",
        "NOQUEUE: reject: RCPT from news.zihan-promo.com[192.36.205.58]: 554 5.7.1 Service"
        " unavailable; Helo command [news.zihan-promo.com] blocked using dbl.spamhaus.org;"
        " http://www.spamhaus.org/query/dbl?domain=zihan-promo.com;"
        " from=<mark.alexander@zihan-promo.com> to=<tom@example.com> proto=ESMTP"
        " helo=<news.zihan-promo.com>",
        E.REJECT,
        {
            "client_ip": "192.36.205.58",
            "client_name": "news.zihan-promo.com",
            "helo": "news.zihan-promo.com",
            "sender": "mark.alexander@zihan-promo.com",
            "recipient": "tom@example.com",
            "dsn": "5.7.1",
            "status": "reject",
            "reply": (
                "Service unavailable; Helo command [news.zihan-promo.com] blocked using"
                " dbl.spamhaus.org; http://www.spamhaus.org/query/dbl?domain=zihan-promo.com"
            ),
            "command": "RCPT",
            "code": 554,
        },
    ),
    (
        "smtpd",
        "NOQUEUE: reject: RCPT from example.com[192.0.43.10]: 450 4.7.1 : Helo command"
        " rejected: Host not found; from=<> to=<> proto=ESMTP helo=",
        E.REJECT,
        {
            "client_ip": "192.0.43.10",
            "client_name": "example.com",
            "helo": "",
            "sender": "",
            "recipient": "",
            "dsn": "4.7.1",
            "status": "reject",
            "reply": ": Helo command rejected: Host not found",
            "command": "RCPT",
            "code": 450,
        },
    ),
    (
        "smtpd",
        "NOQUEUE: reject: MAIL from localhost[127.0.0.1]: 452 Insufficient system storage",
        E.REJECT,
        {
            "client_ip": "127.0.0.1",
            "client_name": "localhost",
            "status": "reject",
            "reply": "Insufficient system storage",
            "command": "MAIL",
            "code": 452,
        },
    ),
    (
        "smtpd",
        "NOQUEUE: reject_warning: RCPT from example.com[93.184.216.34]: 553 5.7.1"
        " <sender@example.com>: Sender address rejected: not owned by user ph123;"
        " from=<sender@example.com> to=<recipient@example.com> proto=ESMTP helo=<example.com>",
        E.REJECT,
        {
            "client_ip": "93.184.216.34",
            "client_name": "example.com",
            "helo": "example.com",
            "sender": "sender@example.com",
            "recipient": "recipient@example.com",
            "dsn": "5.7.1",
            "status": "reject_warning",
            "reply": "<sender@example.com>: Sender address rejected: not owned by user ph123",
            "command": "RCPT",
            "code": 553,
        },
    ),
    (
        "smtpd",
        "NOQUEUE: discard: MAIL from ccm231.constantcontact.com[208.75.123.231]:"
        " <bsdbdsfbw==_4343_sdfbddw==@in.constantcontact.com>: Sender address SPAM;"
        " from=<bsdbdsfbw==_4343_sdfbddw==@in.constantcontact.com> proto=ESMTP"
        " helo=<ccm231.constantcontact.com>",
        E.REJECT,
        {
            "client_ip": "208.75.123.231",
            "client_name": "ccm231.constantcontact.com",
            "helo": "ccm231.constantcontact.com",
            "sender": "bsdbdsfbw==_4343_sdfbddw==@in.constantcontact.com",
            "status": "discard",
            "reply": "<bsdbdsfbw==_4343_sdfbddw==@in.constantcontact.com>: Sender address SPAM",
            "command": "MAIL",
        },
    ),
    (
        "smtpd",
        "NOQUEUE: filter: RCPT from unknown[85.25.255.255]: <mail@sender.com>: Sender address"
        " triggers FILTER smtp-amavis:[127.0.0.1]:10024; from=<mail@sender.com>"
        " to=<user@domain.com> proto=ESMTP helo=<plutoapp.biz>",
        E.INFO,
        {
            "client_ip": "85.25.255.255",
            "client_name": "unknown",
            "helo": "plutoapp.biz",
            "sender": "mail@sender.com",
            "recipient": "user@domain.com",
            "status": "filter",
            "reply": (
                "<mail@sender.com>: Sender address triggers FILTER smtp-amavis:[127.0.0.1]:10024"
            ),
            "command": "RCPT",
        },
    ),
    (
        "smtpd",
        "NOQUEUE: milter-reject: RCPT from mailrelay.example.com[8.8.8.8]: 451 4.7.1"
        " Greylisting in action, please come back later; from=<support@example.com>"
        " to=<example@example.org> proto=ESMTP helo=<mailrelay.example.com>",
        E.REJECT,
        {
            "client_ip": "8.8.8.8",
            "client_name": "mailrelay.example.com",
            "helo": "mailrelay.example.com",
            "sender": "support@example.com",
            "recipient": "example@example.org",
            "dsn": "4.7.1",
            "status": "milter-reject",
            "reply": "Greylisting in action, please come back later",
            "command": "RCPT",
            "code": 451,
        },
    ),
    (
        "smtpd",
        "00ADB3C0899: reject: RCPT from example.com[192.0.2.1]: 550 5.1.1 <sales@server.com>:"
        " Recipient address rejected: User unknown in local recipient table;"
        " from=<a@example.com> to=<sales@server.com> proto=ESMTP helo=<example.com>",
        E.REJECT,
        {
            "queue_id": "00ADB3C0899",
            "client_ip": "192.0.2.1",
            "client_name": "example.com",
            "helo": "example.com",
            "sender": "a@example.com",
            "recipient": "sales@server.com",
            "dsn": "5.1.1",
            "status": "reject",
            "reply": (
                "<sales@server.com>: Recipient address rejected: User unknown in local"
                " recipient table"
            ),
            "command": "RCPT",
            "code": 550,
        },
    ),
    (
        "smtpd",
        "44JCRG5tYPzCqt2: reject: BDAT from signing-milter.example.com[192.0.2.109]: 550 5.5.3"
        " <DATA>: Data command rejected: Multi-recipient bounce; from=<> to=<some@example.com>"
        " proto=ESMTP helo=<domain.tld>",
        E.REJECT,
        {
            "queue_id": "44JCRG5tYPzCqt2",
            "client_ip": "192.0.2.109",
            "client_name": "signing-milter.example.com",
            "helo": "domain.tld",
            "sender": "",
            "recipient": "some@example.com",
            "dsn": "5.5.3",
            "status": "reject",
            "reply": "<DATA>: Data command rejected: Multi-recipient bounce",
            "command": "BDAT",
            "code": 550,
        },
    ),
    (
        "smtpd",
        "proxy-reject: END-OF-MESSAGE: 554 5.7.0 Reject, contact postmaster@example.com,"
        " id=31619-02 - spam; from=<> to=<user2@example2.com> proto=SMTP helo=<17.33.12.53>",
        E.REJECT,
        {
            "helo": "17.33.12.53",
            "sender": "",
            "recipient": "user2@example2.com",
            "dsn": "5.7.0",
            "status": "proxy-reject",
            "reply": "Reject, contact postmaster@example.com, id=31619-02 - spam",
            "command": "END-OF-MESSAGE",
            "code": 554,
        },
    ),
    (
        "smtpd",
        "improper command pipelining after EHLO from"
        " unknown[2001:968:9999:20:415c:cd2:da8e:d0cf]: MAIL FROM:<>\nRCPT"
        " TO:<tom@example.net>\nDATA\n",
        E.WARNING,
        {
            "client_ip": "2001:968:9999:20:415c:cd2:da8e:d0cf",
            "client_name": "unknown",
            "command": "EHLO",
            "detail": "improper command pipelining",
        },
    ),
    (
        "smtpd",
        "warning: non-SMTP command from unknown[192.168.1.1]: GET / HTTP/1.1",
        E.WARNING,
        {
            "client_ip": "192.168.1.1",
            "client_name": "unknown",
            "detail": "non-SMTP command from unknown[192.168.1.1]: GET / HTTP/1.1",
        },
    ),
    (
        "smtpd",
        "warning: hostname exemple.com does not resolve to address 185.14.29.32",
        E.WARNING,
        {
            "client_ip": "185.14.29.32",
            "detail": "hostname exemple.com does not resolve to address 185.14.29.32",
        },
    ),
    (
        "smtpd",
        "warning: hostname mail.example.com does not resolve to address 2001:db8::25: Name or"
        " service not known",
        E.WARNING,
        {
            "client_ip": "2001:db8::25",
            "detail": (
                "hostname mail.example.com does not resolve to address 2001:db8::25: Name or"
                " service not known"
            ),
        },
    ),
    (
        "smtpd",
        "warning: 89.248.162.178: hostname no-reverse-dns-configured.com verification failed:"
        " Name or service not known",
        E.WARNING,
        {
            "client_ip": "89.248.162.178",
            "detail": (
                "89.248.162.178: hostname no-reverse-dns-configured.com verification failed:"
                " Name or service not known"
            ),
        },
    ),
    (
        "smtpd",
        "warning: Illegal address syntax from unknown[157.122.148.252] in MAIL command:"
        " <adgjlo@78.41.116.116>",
        E.WARNING,
        {
            "client_ip": "157.122.148.252",
            "client_name": "unknown",
            "detail": (
                "Illegal address syntax from unknown[157.122.148.252] in MAIL command:"
                " <adgjlo@78.41.116.116>"
            ),
        },
    ),
    (
        "smtpd",
        "Anonymous TLS connection established from julie.example.com[10.163.89.202]: TLSv1.2"
        " with cipher AECDH-AES256-SHA (256/256 bits)",
        E.TLS,
        {
            "client_ip": "10.163.89.202",
            "client_name": "julie.example.com",
            "detail": (
                "Anonymous TLS connection established from julie.example.com[10.163.89.202]:"
                " TLSv1.2 with cipher AECDH-AES256-SHA (256/256 bits)"
            ),
        },
    ),
    (
        "smtpd",
        "SSL_accept error from unknown[72.13.58.7]: lost connection",
        E.TLS,
        {
            "client_ip": "72.13.58.7",
            "client_name": "unknown",
            "detail": "SSL_accept error from unknown[72.13.58.7]: lost connection",
        },
    ),
    (
        "smtpd",
        "bare <LF> received after CONNECT from example.net[1.2.3.4]",
        E.WARNING,
        {
            "client_ip": "1.2.3.4",
            "client_name": "example.net",
            "command": "CONNECT",
            "detail": "bare <LF> received",
        },
    ),
    (
        "smtpd",
        "discarding EHLO keywords: CHUNKING ETRN DSN 8BITMIME",
        E.INFO,
        {
            "detail": "discarding EHLO keywords: CHUNKING ETRN DSN 8BITMIME",
        },
    ),
    (
        "smtpd",
        "table hash:/etc/postfix/virtual_mailbox_maps(0,lock|fold_fix) has changed -- restarting",
        E.DAEMON,
        {
            "detail": (
                "table hash:/etc/postfix/virtual_mailbox_maps(0,lock|fold_fix) has changed --"
                " restarting"
            ),
        },
    ),
    (
        "smtpd",
        "fatal: in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify"
        " at least one working instance of: reject_unauth_destination,"
        " defer_unauth_destination, reject, defer, defer_if_permit or check_relay_domains",
        E.WARNING,
        {
            "detail": (
                "fatal: in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions,"
                " specify at least one working instance of: reject_unauth_destination,"
                " defer_unauth_destination, reject, defer, defer_if_permit or"
                " check_relay_domains"
            ),
        },
    ),
    (
        "postscreen",
        "CONNECT from [61.238.241.86]:53024 to [89.105.204.244]:25",
        E.POSTSCREEN,
        {
            "client_ip": "61.238.241.86",
            "client_port": 53024,
            "detail": "CONNECT",
        },
    ),
    (
        "postscreen",
        "PASS NEW [2607:f8b0:4003:c01::23a]:36051",
        E.POSTSCREEN,
        {
            "client_ip": "2607:f8b0:4003:c01::23a",
            "client_port": 36051,
            "detail": "PASS NEW",
        },
    ),
    (
        "postscreen",
        "PASS OLD [61.238.241.86]:53024",
        E.POSTSCREEN,
        {
            "client_ip": "61.238.241.86",
            "client_port": 53024,
            "detail": "PASS OLD",
        },
    ),
    (
        "postscreen",
        "PREGREET 14 after 0.08 from [192.0.2.2]:59415: EHLO ylmf-pc\r\n",
        E.POSTSCREEN,
        {
            "client_ip": "192.0.2.2",
            "client_port": 59415,
            "detail": "PREGREET 14 after 0.08",
        },
    ),
    (
        "postscreen",
        "DNSBL rank 3 for [111.73.45.149]:1038",
        E.POSTSCREEN,
        {
            "client_ip": "111.73.45.149",
            "client_port": 1038,
            "detail": "DNSBL rank 3",
        },
    ),
    (
        "postscreen",
        "HANGUP after 63 from [111.73.45.149]:1038 in tests after SMTP handshake",
        E.POSTSCREEN,
        {
            "client_ip": "111.73.45.149",
            "client_port": 1038,
            "detail": "HANGUP after 63",
        },
    ),
    (
        "postscreen",
        "DISCONNECT [216.81.72.72]:43421",
        E.POSTSCREEN,
        {
            "client_ip": "216.81.72.72",
            "client_port": 43421,
            "detail": "DISCONNECT",
        },
    ),
    (
        "postscreen",
        "BARE NEWLINE from [88.208.233.4]:42606 after .",
        E.POSTSCREEN,
        {
            "client_ip": "88.208.233.4",
            "client_port": 42606,
            "command": ".",
            "detail": "BARE NEWLINE",
        },
    ),
    (
        "postscreen",
        "NON-SMTP COMMAND from [93.174.93.51]:45284 after CONNECT: GET"
        " http://ipv4scan.com/hello/check.txt HTTP/1.1",
        E.POSTSCREEN,
        {
            "client_ip": "93.174.93.51",
            "client_port": 45284,
            "command": "CONNECT",
            "detail": "NON-SMTP COMMAND",
        },
    ),
    (
        "postscreen",
        "COMMAND PIPELINING from [88.208.233.4]:42606 after .: \n",
        E.POSTSCREEN,
        {
            "client_ip": "88.208.233.4",
            "client_port": 42606,
            "command": ".",
            "detail": "COMMAND PIPELINING",
        },
    ),
    (
        "postscreen",
        "COMMAND TIME LIMIT from [182.246.250.243]:51799 after HELO",
        E.POSTSCREEN,
        {
            "client_ip": "182.246.250.243",
            "client_port": 51799,
            "command": "HELO",
            "detail": "COMMAND TIME LIMIT",
        },
    ),
    (
        "postscreen",
        "DENYLISTED [123.45.67.89]:12345",
        E.POSTSCREEN,
        {
            "client_ip": "123.45.67.89",
            "client_port": 12345,
            "detail": "DENYLISTED",
        },
    ),
    (
        "postscreen",
        "WHITELIST VETO [61.238.241.86]:53024",
        E.POSTSCREEN,
        {
            "client_ip": "61.238.241.86",
            "client_port": 53024,
            "detail": "WHITELIST VETO",
        },
    ),
    (
        "postscreen",
        "NOQUEUE: reject: RCPT from [216.245.194.173]:60591: 550 5.7.1 Service unavailable;"
        " client [216.245.194.173] blocked using rbl.example.com; from=<spammer@example.com>,"
        " to=<goodguy@example.com>, proto=ESMTP, helo=<badguy.example.com>",
        E.REJECT,
        {
            "client_ip": "216.245.194.173",
            "client_port": 60591,
            "helo": "badguy.example.com",
            "sender": "spammer@example.com",
            "recipient": "goodguy@example.com",
            "dsn": "5.7.1",
            "status": "reject",
            "reply": "Service unavailable; client [216.245.194.173] blocked using rbl.example.com",
            "command": "RCPT",
            "code": 550,
        },
    ),
    (
        "postscreen",
        "NOQUEUE: reject: CONNECT from [1.2.3.4]:1337: too many connections",
        E.REJECT,
        {
            "client_ip": "1.2.3.4",
            "client_port": 1337,
            "status": "reject",
            "reply": "too many connections",
            "command": "CONNECT",
        },
    ),
    (
        "postscreen",
        "cache btree:/var/lib/postfix-in/postscreen_cache full cleanup: retained=242 dropped=7"
        " entries",
        E.DAEMON,
        {
            "detail": (
                "cache btree:/var/lib/postfix-in/postscreen_cache full cleanup: retained=242"
                " dropped=7 entries"
            ),
        },
    ),
    (
        "tlsproxy",
        "CONNECT from [82.118.17.142]:51637",
        E.INFO,
        {
            "client_ip": "82.118.17.142",
            "client_port": 51637,
            "detail": "CONNECT",
        },
    ),
    (
        "dnsblog",
        "addr 61.238.241.86 listed by domain psbl.surriel.com as 127.0.0.2",
        E.POSTSCREEN,
        {
            "client_ip": "61.238.241.86",
            "detail": "listed by domain psbl.surriel.com as 127.0.0.2",
        },
    ),
    (
        "cleanup",
        "0F5383D: message-id=<544D2523.30609@rhsoft.net>",
        E.MESSAGE_ID,
        {
            "queue_id": "0F5383D",
            "message_id": "544D2523.30609@rhsoft.net",
        },
    ),
    (
        "cleanup",
        "4104E3D: message-id=<>",
        E.MESSAGE_ID,
        {
            "queue_id": "4104E3D",
            "message_id": "",
        },
    ),
    (
        "cleanup",
        "4104E3D: milter-reject: END-OF-MESSAGE from"
        " 061238241086.static.ctinets.com[61.238.241.86]: 5.7.1 Blocked by SpamAssassin;"
        " from=<wumt5@cchfdc.com> to=<voorzitter@example.com> proto=ESMTP helo=<ecsolved.com>",
        E.REJECT,
        {
            "queue_id": "4104E3D",
            "client_ip": "61.238.241.86",
            "client_name": "061238241086.static.ctinets.com",
            "helo": "ecsolved.com",
            "sender": "wumt5@cchfdc.com",
            "recipient": "voorzitter@example.com",
            "dsn": "5.7.1",
            "status": "milter-reject",
            "reply": "Blocked by SpamAssassin",
            "command": "END-OF-MESSAGE",
        },
    ),
    (
        "cleanup",
        "48rT2v1hQrz1J0N: prepend: header X-Spam-Status: Yes, score=45.1 required=10.0"
        " tests=ADVANCE_FE from mx2.example.org[192.0.2.41];"
        " from=<SRS0=1sN3=5P=example.org=noreply@srs.example.org> to=<recipient@example.net>"
        " proto=ESMTP helo=<mx2.example.org>: X-Spam-Status: Yes",
        E.INFO,
        {
            "queue_id": "48rT2v1hQrz1J0N",
            "client_ip": "192.0.2.41",
            "client_name": "mx2.example.org",
            "helo": "mx2.example.org",
            "sender": "SRS0=1sN3=5P=example.org=noreply@srs.example.org",
            "recipient": "recipient@example.net",
            "status": "prepend",
            "reply": "X-Spam-Status: Yes",
            "command": "header",
            "detail": "header X-Spam-Status: Yes, score=45.1 required=10.0 tests=ADVANCE_FE",
        },
    ),
    (
        "cleanup",
        "D95341E50350: info: header Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= test from local;"
        " from=<from@example.com> to=<to@example.com>",
        E.INFO,
        {
            "queue_id": "D95341E50350",
            "client_name": "local",
            "sender": "from@example.com",
            "recipient": "to@example.com",
            "status": "info",
            "command": "header",
            "detail": "header Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= test",
        },
    ),
    (
        "cleanup",
        "1B2C3D4E5F: reject: body Buy cheap pills from mx.spam.example[203.0.113.9];"
        " from=<a@spam.example> to=<b@lab.test> proto=ESMTP helo=<mx.spam.example>: 5.7.1"
        " message content rejected",
        E.REJECT,
        {
            "queue_id": "1B2C3D4E5F",
            "client_ip": "203.0.113.9",
            "client_name": "mx.spam.example",
            "helo": "mx.spam.example",
            "sender": "a@spam.example",
            "recipient": "b@lab.test",
            "dsn": "5.7.1",
            "status": "reject",
            "reply": "message content rejected",
            "command": "body",
            "detail": "body Buy cheap pills",
        },
    ),
    (
        "cleanup",
        "1B2C3D4E5F: hold: header Subject: invoice from unknown[203.0.113.9];"
        " from=<a@spam.example> to=<b@lab.test> proto=ESMTP helo=<x>",
        E.REJECT,
        {
            "queue_id": "1B2C3D4E5F",
            "client_ip": "203.0.113.9",
            "client_name": "unknown",
            "helo": "x",
            "sender": "a@spam.example",
            "recipient": "b@lab.test",
            "status": "hold",
            "command": "header",
            "detail": "header Subject: invoice",
        },
    ),
    (
        "cleanup",
        "9A8B7C6D5E: resent-message-id=<abc@example.org>",
        E.INFO,
        {
            "queue_id": "9A8B7C6D5E",
            "message_id": "abc@example.org",
            "detail": "resent-message-id",
        },
    ),
    (
        "cleanup",
        "warning: 9BECF3F19D: sender_canonical_maps map lookup problem for sender@example.com"
        " -- message not accepted, try again later",
        E.WARNING,
        {
            "queue_id": "9BECF3F19D",
            "detail": (
                "9BECF3F19D: sender_canonical_maps map lookup problem for sender@example.com --"
                " message not accepted, try again later"
            ),
        },
    ),
    (
        "pickup",
        "D2FAE20586: uid=0 from=<fail2ban>",
        E.PICKUP,
        {
            "queue_id": "D2FAE20586",
            "sender": "fail2ban",
        },
    ),
    (
        "pickup",
        "62D1C2015F: uid=0 from=<root@lab.test>",
        E.PICKUP,
        {
            "queue_id": "62D1C2015F",
            "sender": "root@lab.test",
        },
    ),
    (
        "qmgr",
        "5FCA28903A: from=<dev@contoso.com>, size=9334, nrcpt=1 (queue active)",
        E.QUEUED,
        {
            "queue_id": "5FCA28903A",
            "sender": "dev@contoso.com",
            "size": 9334,
            "nrcpt": 1,
        },
    ),
    (
        "qmgr",
        "5FCA28903A: from=<>, size=2401, nrcpt=1 (queue active)",
        E.QUEUED,
        {
            "queue_id": "5FCA28903A",
            "sender": "",
            "size": 2401,
            "nrcpt": 1,
        },
    ),
    (
        "qmgr",
        "5FCA28903A: removed",
        E.REMOVED,
        {
            "queue_id": "5FCA28903A",
        },
    ),
    (
        "qmgr",
        "585BC3F: from=<>, status=expired, returned to sender",
        E.EXPIRED,
        {
            "queue_id": "585BC3F",
            "sender": "",
            "status": "expired",
        },
    ),
    (
        "qmgr",
        "BACE842E73: from=<noreply@domain.com>, status=force-expired, returned to sender",
        E.EXPIRED,
        {
            "queue_id": "BACE842E73",
            "sender": "noreply@domain.com",
            "status": "force-expired",
        },
    ),
    (
        "qmgr",
        "ED06590130AA1C9D6D862: skipped, still being delivered",
        E.INFO,
        {
            "queue_id": "ED06590130AA1C9D6D862",
            "detail": "skipped, still being delivered",
        },
    ),
    (
        "qmgr",
        "warning: bounce_queue_lifetime is larger than maximal_queue_lifetime - adjusting"
        " bounce_queue_lifetime",
        E.WARNING,
        {
            "detail": (
                "bounce_queue_lifetime is larger than maximal_queue_lifetime - adjusting"
                " bounce_queue_lifetime"
            ),
        },
    ),
    (
        "smtp",
        "5270320179: to=<hebj@telia.com>, relay=mail.telia.com[81.236.60.210]:25, delay=2017,"
        " delays=0.1/2017/0.03/0.05, dsn=2.0.0, status=sent (250 2.0.0 6FVIjIMwUJwU66FVIjAEB0"
        " mail accepted for delivery)",
        E.DELIVERY,
        {
            "queue_id": "5270320179",
            "recipient": "hebj@telia.com",
            "relay": "mail.telia.com[81.236.60.210]:25",
            "dsn": "2.0.0",
            "status": "sent",
            "reply": "250 2.0.0 6FVIjIMwUJwU66FVIjAEB0 mail accepted for delivery",
            "code": 250,
        },
    ),
    (
        "smtp",
        "0D9633D: to=<jos@example.com>, orig_to=<bestuur@example.com>,"
        " relay=mail1.example.net[10.74.103.11]:25, delay=11, delays=5.4/0.06/5.1/0.03,"
        " dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as F12DF84004)",
        E.DELIVERY,
        {
            "queue_id": "0D9633D",
            "recipient": "jos@example.com",
            "orig_recipient": "bestuur@example.com",
            "relay": "mail1.example.net[10.74.103.11]:25",
            "dsn": "2.0.0",
            "status": "sent",
            "reply": "250 2.0.0 Ok: queued as F12DF84004",
            "code": 250,
        },
    ),
    (
        "smtp",
        "732BB407C3: to=<redacted@domain.com>, relay=mail.domain.com[1.1.1.1]:25, delay=582,"
        " delays=563/16/1.7/0.81, dsn=5.0.0, status=bounced (host mail.domain.com[1.1.1.1]"
        " said: 554 DT:SPM 163 mx9,O8CowEDJVFKCokVaRhz+AA--.26016S3 1514513028,please see"
        " http://mail.domain.com/help/help_spam.htm?ip= (in reply to end of DATA command))",
        E.DELIVERY,
        {
            "queue_id": "732BB407C3",
            "recipient": "redacted@domain.com",
            "relay": "mail.domain.com[1.1.1.1]:25",
            "dsn": "5.0.0",
            "status": "bounced",
            "reply": (
                "host mail.domain.com[1.1.1.1] said: 554 DT:SPM 163"
                " mx9,O8CowEDJVFKCokVaRhz+AA--.26016S3 1514513028,please see"
                " http://mail.domain.com/help/help_spam.htm?ip= (in reply to end of DATA"
                " command)"
            ),
            "code": 554,
        },
    ),
    (
        "smtp",
        "A0E85200BD: to=<u@example.org>, relay=open.example.nl[10.49.140.10]:25, conn_use=2,"
        " delay=2.3, delays=0.25/0.05/2/0.04, dsn=4.7.1, status=deferred (host"
        " open.example.nl[10.49.140.10] said: 554 5.7.1 Service unavailable; Client host"
        " [1.2.3.4] blocked using zen.spamhaus.org (in reply to RCPT TO command))",
        E.DELIVERY,
        {
            "queue_id": "A0E85200BD",
            "recipient": "u@example.org",
            "relay": "open.example.nl[10.49.140.10]:25",
            "dsn": "4.7.1",
            "status": "deferred",
            "reply": (
                "host open.example.nl[10.49.140.10] said: 554 5.7.1 Service unavailable; Client"
                " host [1.2.3.4] blocked using zen.spamhaus.org (in reply to RCPT TO command)"
            ),
            "code": 554,
        },
    ),
    (
        "smtp",
        "7EE668039: to=<user@example.com>, relay=mail.example.com[1.2.3.4]:25, delay=3.6,"
        " delays=0.08/0.02/0.85/0.14, tls=dane, dsn=2.1.5, status=sent (250 2.0.0 Ok: queued as"
        " 153053D)",
        E.DELIVERY,
        {
            "queue_id": "7EE668039",
            "recipient": "user@example.com",
            "relay": "mail.example.com[1.2.3.4]:25",
            "dsn": "2.1.5",
            "status": "sent",
            "reply": "250 2.0.0 Ok: queued as 153053D",
            "code": 250,
        },
    ),
    (
        "smtp",
        "4HnkK60lBRz6tl1: to=<a@b.c>, relay=192.168.1.1[192.168.1.1]:20202, delay=1.9,"
        " delays=1.7/0/0.05/0.18, dsn=2.0.0, status=sent (250 2.0.0 from"
        " MTA(smtp:[192.168.1.2]:10025): 250 2.0.0 Ok: queued as 4HnkK74hXyz6tl6)",
        E.DELIVERY,
        {
            "queue_id": "4HnkK60lBRz6tl1",
            "recipient": "a@b.c",
            "relay": "192.168.1.1[192.168.1.1]:20202",
            "dsn": "2.0.0",
            "status": "sent",
            "reply": (
                "250 2.0.0 from MTA(smtp:[192.168.1.2]:10025): 250 2.0.0 Ok: queued as"
                " 4HnkK74hXyz6tl6"
            ),
            "code": 250,
        },
    ),
    (
        "smtp",
        "C4D5E6F7A8: to=<queued1@mailbox1.example>, relay=none, delay=0.12,"
        " delays=0.1/0/0.02/0, dsn=4.4.1, status=deferred (connect to"
        " 127.0.0.1[127.0.0.1]:2526: Connection refused)",
        E.DELIVERY,
        {
            "queue_id": "C4D5E6F7A8",
            "recipient": "queued1@mailbox1.example",
            "relay": "none",
            "dsn": "4.4.1",
            "status": "deferred",
            "reply": "connect to 127.0.0.1[127.0.0.1]:2526: Connection refused",
        },
    ),
    (
        "smtp",
        "connect to 127.0.0.1[127.0.0.1]:2526: Connection refused",
        E.CONNECT_FAILED,
        {
            "relay": "127.0.0.1[127.0.0.1]:2526",
            "detail": "Connection refused",
        },
    ),
    (  # (constructed) the same failure logged with the queue id of the message it was for
        "smtp",
        "9F3A2B1C0D: connect to mx.example.net[192.0.2.25]:25: Connection timed out",
        E.CONNECT_FAILED,
        {
            "queue_id": "9F3A2B1C0D",
            "relay": "mx.example.net[192.0.2.25]:25",
            "detail": "Connection timed out",
        },
    ),
    (
        "smtp",
        "connect to aspmx.l.google.com[2a00:1450:400b:c02::1a]:25: Network is unreachable",
        E.CONNECT_FAILED,
        {
            "relay": "aspmx.l.google.com[2a00:1450:400b:c02::1a]:25",
            "detail": "Network is unreachable",
        },
    ),
    (
        "smtp",
        "B99FE3D: lost connection with mx3.hotmail.com[65.55.37.72] while receiving the initial"
        " server greeting",
        E.INFO,
        {
            "queue_id": "B99FE3D",
            "relay": "mx3.hotmail.com[65.55.37.72]",
            "detail": (
                "lost connection with mx3.hotmail.com[65.55.37.72] while receiving the initial"
                " server greeting"
            ),
        },
    ),
    (
        "smtp",
        "ED59C3D: host mail2.example.com[1.74.253.23] said: 450 4.7.1 <user@example.com>:"
        " Recipient address rejected: Greylisted for 5 minutes (in reply to RCPT TO command)",
        E.INFO,
        {
            "queue_id": "ED59C3D",
            "relay": "mail2.example.com[1.74.253.23]",
            "dsn": "4.7.1",
            "reply": (
                "<user@example.com>: Recipient address rejected: Greylisted for 5 minutes (in"
                " reply to RCPT TO command)"
            ),
            "code": 450,
        },
    ),
    (
        "smtp",
        "40197AA: host mg2.egov.bg[213.91.191.86] refused to talk to me: 450 4.3.2 try again later",
        E.INFO,
        {
            "queue_id": "40197AA",
            "relay": "mg2.egov.bg[213.91.191.86]",
            "dsn": "4.3.2",
            "reply": "try again later",
            "code": 450,
        },
    ),
    (
        "smtp",
        "B0ADE20FC7: enabling PIX workarounds: disable_esmtp delay_dotcrlf for"
        " example.com[93.184.216.34]:25",
        E.INFO,
        {
            "queue_id": "B0ADE20FC7",
            "detail": (
                "enabling PIX workarounds: disable_esmtp delay_dotcrlf for"
                " example.com[93.184.216.34]:25"
            ),
        },
    ),
    (
        "smtp",
        "D0F29603B4: SASL authentication failed; server xyz.example.com[1.2.3.4] said: 535"
        " 5.7.8 Error: authentication failed: authentication failure",
        E.WARNING,
        {
            "queue_id": "D0F29603B4",
            "relay": "xyz.example.com[1.2.3.4]",
            "dsn": "5.7.8",
            "reply": "Error: authentication failed: authentication failure",
            "code": 535,
            "detail": "SASL authentication failed",
        },
    ),
    (
        "smtp",
        "Verified TLS connection established to mx2.comcast.net[2001:558:fe21:2a::6]:25:"
        " TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
        E.TLS,
        {
            "relay": "mx2.comcast.net[2001:558:fe21:2a::6]:25",
            "detail": (
                "Verified TLS connection established to"
                " mx2.comcast.net[2001:558:fe21:2a::6]:25: TLSv1.2 with cipher"
                " ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)"
            ),
        },
    ),
    (
        "smtp",
        "certificate verification failed for mail.example.com[113.169.17.115]:25: self-signed"
        " certificate.",
        E.TLS,
        {
            "relay": "mail.example.com[113.169.17.115]:25",
            "detail": (
                "certificate verification failed for mail.example.com[113.169.17.115]:25:"
                " self-signed certificate."
            ),
        },
    ),
    (
        "local",
        "2A22C263F6: to=user@hostname.example.com, orig_to=root@localhost, relay=local,"
        " delay=0.07, delays=0.04/0/0/0.03, dsn=2.0.0, status=sent (delivered to command:"
        ' procmail -a "$EXTENSION")',
        E.DELIVERY,
        {
            "queue_id": "2A22C263F6",
            "recipient": "user@hostname.example.com",
            "orig_recipient": "root@localhost",
            "relay": "local",
            "dsn": "2.0.0",
            "status": "sent",
            "reply": 'delivered to command: procmail -a "$EXTENSION"',
        },
    ),
    (
        "local",
        "E1F2A3B4C5: to=<nosuchuser1@lab.test>, relay=local, delay=0.03,"
        ' delays=0.01/0.01/0/0.01, dsn=5.1.1, status=bounced (unknown user: "nosuchuser1")',
        E.DELIVERY,
        {
            "queue_id": "E1F2A3B4C5",
            "recipient": "nosuchuser1@lab.test",
            "relay": "local",
            "dsn": "5.1.1",
            "status": "bounced",
            "reply": 'unknown user: "nosuchuser1"',
        },
    ),
    (
        "error",
        "3E29030F8637E: to=<user@yahoo.com>, relay=none, delay=0.01, delays=0.01/0/0/0,"
        " dsn=5.1.1, status=undeliverable-but-not-cached (User unknown in virtual alias table)",
        E.DELIVERY,
        {
            "queue_id": "3E29030F8637E",
            "recipient": "user@yahoo.com",
            "relay": "none",
            "dsn": "5.1.1",
            "status": "undeliverable-but-not-cached",
            "reply": "User unknown in virtual alias table",
        },
    ),
    (
        "virtual",
        "B657F2DB195D: to=<postmaster@example.com>, relay=virtual, delay=0.52,"
        " delays=0.51/0.01/0/0, dsn=2.0.0, status=sent (delivered to maildir)",
        E.DELIVERY,
        {
            "queue_id": "B657F2DB195D",
            "recipient": "postmaster@example.com",
            "relay": "virtual",
            "dsn": "2.0.0",
            "status": "sent",
            "reply": "delivered to maildir",
        },
    ),
    (
        "bounce",
        "17CCA8044: sender non-delivery notification: ADD2F8052",
        E.NDR,
        {
            "queue_id": "17CCA8044",
            "child_queue_id": "ADD2F8052",
            "ndr_kind": "non-delivery",
        },
    ),
    (
        "bounce",
        "65AFB8B5: sender delivery status notification: 1DF35917",
        E.NDR,
        {
            "queue_id": "65AFB8B5",
            "child_queue_id": "1DF35917",
            "ndr_kind": "delivery-status",
        },
    ),
    (
        "bounce",
        "264FE1A18: sender delay notification: 0A87A1A08",
        E.NDR,
        {
            "queue_id": "264FE1A18",
            "child_queue_id": "0A87A1A08",
            "ndr_kind": "delay",
        },
    ),
    (
        "bounce",
        "482E4404AC8: postmaster non-delivery notification: 47335405A44",
        E.NDR,
        {
            "queue_id": "482E4404AC8",
            "child_queue_id": "47335405A44",
            "ndr_kind": "postmaster-non-delivery",
        },
    ),
    (
        "anvil",
        "statistics: max connection rate 1/60s for (smtpd:61.238.241.86) at Oct 26 18:13:50",
        E.DAEMON,
        {
            "detail": "max connection rate 1/60s for (smtpd:61.238.241.86) at Oct 26 18:13:50",
        },
    ),
    (
        "scache",
        "statistics: domain lookup hits=0 miss=1 success=0%",
        E.DAEMON,
        {
            "detail": "domain lookup hits=0 miss=1 success=0%",
        },
    ),
    (
        "master",
        "daemon started -- version 3.7.11, configuration /srv/mail/pf/etc",
        E.DAEMON,
        {
            "detail": "daemon started -- version 3.7.11, configuration /srv/mail/pf/etc",
        },
    ),
    (
        "master",
        "reload -- version 2.11.0, configuration /etc/postfix",
        E.DAEMON,
        {
            "detail": "reload -- version 2.11.0, configuration /etc/postfix",
        },
    ),
    (
        "master",
        "terminating on signal 15",
        E.DAEMON,
        {
            "detail": "terminating on signal 15",
        },
    ),
    (
        "master",
        "warning: process /usr/lib/postfix/sbin/smtpd pid 4242 exit status 1",
        E.WARNING,
        {
            "detail": "process /usr/lib/postfix/sbin/smtpd pid 4242 exit status 1",
        },
    ),
    (
        "postfix-script",
        "starting the Postfix mail system",
        E.DAEMON,
        {
            "detail": "starting the Postfix mail system",
        },
    ),
    (
        "postfix-script",
        "the Postfix mail system is running: PID: 31337",
        E.DAEMON,
        {
            "detail": "the Postfix mail system is running: PID: 31337",
        },
    ),
    (
        "postfix-script",
        "fatal: the Postfix mail system is not running",
        E.WARNING,
        {
            "detail": "fatal: the Postfix mail system is not running",
        },
    ),
    (
        "postsuper",
        "Placed on hold: 67 messages",
        E.DAEMON,
        {
            "detail": "hold 67",
        },
    ),
    (
        "postsuper",
        "Released from hold: 13 messages",
        E.DAEMON,
        {
            "detail": "release 13",
        },
    ),
    (
        "postsuper",
        "Deleted: 115 messages",
        E.DAEMON,
        {
            "detail": "delete 115",
        },
    ),
    (
        "postsuper",
        "Requeued: 1 message",
        E.DAEMON,
        {
            "detail": "requeue 1",
        },
    ),
    (
        "postsuper",
        "D4F2023DB: placed on hold",
        E.DAEMON,
        {
            "queue_id": "D4F2023DB",
            "detail": "hold",
        },
    ),
    (
        "postsuper",
        "D4F2023DB: released from hold",
        E.DAEMON,
        {
            "queue_id": "D4F2023DB",
            "detail": "release",
        },
    ),
    (
        "postsuper",
        "D4F2023DB: removed",
        E.REMOVED,
        {
            "queue_id": "D4F2023DB",
            "detail": "delete",
        },
    ),
    (
        "trivial-rewrite",
        "warning: virtual_alias_domains lookup failure",
        E.WARNING,
        {
            "detail": "virtual_alias_domains lookup failure",
        },
    ),
    (
        "postscreen",
        "error: open /example: No such file or directory",
        E.WARNING,
        {
            "detail": "error: open /example: No such file or directory",
        },
    ),
    (
        "sendmail",
        "panic: myfree: corrupt or unallocated memory block",
        E.WARNING,
        {
            "detail": "panic: myfree: corrupt or unallocated memory block",
        },
    ),
]


@pytest.mark.parametrize(
    ("daemon", "message", "etype", "fields"), CASES, ids=[f"{c[0]}:{c[1][:40]}" for c in CASES]
)
def test_real_lines(daemon: str, message: str, etype: str, fields: dict[str, Any]) -> None:
    ev = parse(daemon, message)
    assert ev.type == etype
    assert ev.fields() == fields


def test_every_case_type_is_a_known_event_type() -> None:
    assert {c[2] for c in CASES} <= set(E.EVENT_TYPES)


@pytest.mark.parametrize("message", [c[1] for c in CASES])
def test_truncated_lines_never_raise_and_unparsed_sets_nothing(message: str) -> None:
    for cut in range(len(message) + 1):
        ev = parse("smtpd", message[:cut])
        if ev.type == E.UNPARSED:
            assert ev.fields() == {}


@pytest.mark.parametrize(
    "message",
    [
        "",
        "foo",
        "Unsupported",
        "NOQUEUE: reject: Unsupported",
        "NOQUEUE: reject: RCPT from",
        "5FCA28903A: ",
        "5FCA28903A: from=<x>, size=abc, nrcpt=1 (queue active)",
        "5FCA28903A: sender non-delivery notification",
        "connect from nowhere",
        "disconnect from unknown[1.2.3.4] auth=x/y",
        "PASS NEW [not-an-ip]:1",
        "warning",
        "statisticsXYZ",
        "DEADBEEF: something new",
    ],
)
def test_unknown_or_broken_bodies_stay_unparsed(message: str) -> None:
    ev = parse("smtpd", message)
    assert ev.type == E.UNPARSED
    assert ev.fields() == {}


def test_peer_controlled_values_are_bounded() -> None:
    big = "x" * 5000
    ev = parse(
        "smtpd",
        f"NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 <{big}@e.example>: Relay access "
        f"denied; from=<{big}> to=<{big}@e.example> proto=ESMTP helo=<{big}>",
    )
    assert ev.type == E.RELAY_DENIED
    assert ev.sender is not None and len(ev.sender) == MAX_ADDR
    assert ev.recipient is not None and len(ev.recipient) == MAX_ADDR
    assert ev.helo is not None and len(ev.helo) == MAX_ADDR
    assert ev.reply is not None and len(ev.reply) == MAX_REPLY
    ev = parse(
        "smtp",
        f"5270320179: to=<a@b.example>, relay=mx.b.example[192.0.2.9]:25, delay=1, delays=1/0/0/0, "
        f"dsn=5.7.1, status=bounced (host mx.b.example[192.0.2.9] said: 554 5.7.1 {big})",
    )
    assert ev.type == E.DELIVERY
    assert ev.code == 554
    assert ev.reply is not None and len(ev.reply) == MAX_REPLY
    ev = parse(
        "smtpd",
        f"warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: x, sasl_username={big}",
    )
    assert ev.type == E.AUTH_FAILURE
    assert ev.sasl_username == "x" * MAX_ADDR


def test_forged_helo_cannot_hide_the_relay_denial() -> None:
    # The reply is taken up to the LAST "; from=<", so a HELO cannot cut it short; at worst a
    # HELO that repeats the tail changes the sender/recipient of its own reject line.
    ev = parse(
        "smtpd",
        "NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 554 5.7.1 <v@x.example>: Relay access "
        "denied; from=<s@y.example> to=<v@x.example> proto=ESMTP helo=<a; b>",
    )
    assert ev.type == E.RELAY_DENIED
    assert (ev.sender, ev.recipient, ev.helo) == ("s@y.example", "v@x.example", "a; b")


def test_dispatch_routes_instance_service_and_custom_transport() -> None:
    ev = Event(None, "server", "postfix-smo/submission/smtpd", 22427, "")
    dispatch.parse_message(
        ev,
        "44JCRG5tYPzCqt2: reject: BDAT from signing-milter.example.com[192.0.2.109]: 550 5.5.3 "
        "<DATA>: Data command rejected: Multi-recipient bounce; from=<> to=<some@example.com> "
        "proto=ESMTP helo=<domain.tld>",
    )
    assert (ev.type, ev.mta, ev.instance, ev.service) == (
        E.REJECT,
        "postfix",
        "postfix-smo",
        "submission",
    )
    assert ev.queue_id == "44JCRG5tYPzCqt2"
    ev = Event(None, "mx", "postfix-mx/content-filter/smtp", 273144, "")
    dispatch.parse_message(
        ev,
        "4HnkK60lBRz6tl1: to=<a@b.c>, relay=192.168.1.1[192.168.1.1]:20202, delay=1.9, "
        "delays=1.7/0/0.05/0.18, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4HnkK74hXyz6tl6)",
    )
    assert (ev.type, ev.status, ev.service, ev.recipient) == (
        E.DELIVERY,
        "sent",
        "content-filter",
        "a@b.c",
    )


# --- corpus coverage ------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(LAB.glob("0*.log")), ids=lambda p: p.name)
def test_every_lab_line_parses(path: Path) -> None:
    bad = []
    for line in path.read_text().splitlines():
        ev = parse_line(line)
        if ev is None or ev.type == E.UNPARSED or not ev.program.startswith("postfix/"):
            bad.append(line)
    assert bad == []


# grok test bodies that are fragments of a line (sub-pattern tests), not Postfix messages.
GROK_FRAGMENTS = {
    *(f"command_counter_data_000{i}.yaml" for i in range(1, 6)),  # "ehlo=2 starttls=1 ..."
    "delays_0001.yaml",  # "0.2/0.02/0.04/3.3"
    "relay_0001.yaml",  # "1.example.com.si[private/dovecot-lmtp]"
    *(f"tls_features_00{i:02d}.yaml" for i in range(7, 13)),  # "dane/requiretls?"
}
GROK_DAEMONS = {"script": "postfix-script", "trivial_rewrite": "trivial-rewrite"}


def test_every_grok_pattern_body_parses() -> None:
    unparsed = set()
    rows = 0
    for row in (PUBLIC / "postfix-grok-patterns" / "messages.tsv").read_text().splitlines():
        if row.startswith("#"):
            continue
        program, name, body = row.split("\t")
        rows += 1
        ev = parse(GROK_DAEMONS.get(program, program), body.replace("\\n", "\n"))
        if ev.type == E.UNPARSED:
            unparsed.add(name)
    assert rows == 191
    assert unparsed == GROK_FRAGMENTS


def test_kumina_and_crowdsec_postfix_lines_parse() -> None:
    paths = [PUBLIC / "postfix_exporter" / "kumina-test-lines.log"]
    paths += sorted((PUBLIC / "crowdsec-hub").glob("postfix-*.log"))
    seen = 0
    for path in paths:
        for line in filter(None, path.read_text().splitlines()):
            ev = parse_line(line)
            assert ev is not None and ev.type != E.UNPARSED, line
            seen += 1
    assert seen == 80


# sergeymakinen/postfix_exporter's test log deliberately holds lines its parser must reject.
SERGEYMAKINEN_UNPARSED = [
    # the "# Unsupported or malformed" section at the top
    "Jan 1 00:00:00 hostname postfix1[12345]: foo",  # not a postfix/<daemon> tag
    "Jan 1 00:00:00 hostname postfix/unknown[12345]: foo",
    "Jan: 1 00:00:00 hostname postfix/postscreen[12345]: foo",
    "Jan 1 00:00:00 hostname postfix/postscreen[abcde]: foo",
    "Jan 1 00:00:00 hostname postfix/postscreen[12345",  # no body at all from here on
    "Jan 1 00:00:00 hostname postfix/postscreen",
    "Foo 1 00:00:00 hostname",
    "Jan 1 00:00:00",
    "Jan",
    # one "Unsupported" body per daemon section
    "Jan 1 00:00:00 hostname postfix/smtpd[12345]: NOQUEUE: reject: Unsupported",
    "Jan 1 00:00:00 hostname postfix/smtpd[12345]: Unsupported",
    "Jan 1 00:00:00 hostname postfix/lmtp[12345]: Unsupported",
    "Jan 1 00:00:00 hostname postfix/smtp[12345]: Unsupported",
    "Jan 1 00:00:00 hostname postfix/cleanup[12345]: Unsupported",
    "Jan 1 00:00:00 hostname postfix/qmgr[12345]: Unsupported",
]


def test_sergeymakinen_log_only_malformed_lines_stay_unparsed() -> None:
    text = (PUBLIC / "postfix_exporter" / "sergeymakinen-mail.log").read_text()
    unparsed = []
    parsed = Counter()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        ev = parse_line(line)
        if ev is None or ev.type == E.UNPARSED:
            unparsed.append(line)
        else:
            parsed[ev.type] += 1
    assert unparsed == SERGEYMAKINEN_UNPARSED
    assert sum(parsed.values()) == 44


# --- exact counts on the lab scenarios ---------------------------------------------------------


def lab_events(name: str) -> list[Event]:
    events = [parse_line(line) for line in (LAB / name).read_text().splitlines()]
    assert all(ev is not None for ev in events)
    return [ev for ev in events if ev is not None]


LAB_TYPES = {
    "01_startup.log": {E.CONNECT: 1, E.DAEMON: 3, E.DISCONNECT: 1},
    "02_closed_relay_denied.log": {
        E.CLIENT: 16,
        E.CONNECT: 18,
        E.DISCONNECT: 18,
        E.RELAY_DENIED: 50,
    },
    "03_auth_bruteforce.log": {
        E.AUTH_FAILURE: 61,
        E.CONNECT: 42,
        E.DISCONNECT: 42,
        E.LOST_CONNECTION: 1,
        E.WARNING: 26,
    },
    "04_auth_success_outbound_spam.log": {
        E.AUTH_SUCCESS: 201,
        E.CONNECT: 21,
        E.DELIVERY: 627,
        E.DISCONNECT: 21,
        E.MESSAGE_ID: 201,
        E.QUEUED: 201,
        E.REMOVED: 201,
    },
    "05_open_relay_mynetworks.log": {
        E.CLIENT: 47,
        E.CONNECT: 32,
        E.DELIVERY: 64,
        E.DISCONNECT: 32,
        E.MESSAGE_ID: 31,
        E.QUEUED: 31,
        E.REMOVED: 31,
    },
    "06_open_relay_access_ok.log": {
        E.CLIENT: 27,
        E.CONNECT: 12,
        E.DELIVERY: 22,
        E.DISCONNECT: 12,
        E.MESSAGE_ID: 11,
        E.QUEUED: 11,
        E.REMOVED: 11,
    },
    "06b_broken_permit_refused.log": {
        E.CONNECT: 5,
        E.DAEMON: 9,
        E.DISCONNECT: 5,
        E.LOST_CONNECTION: 4,
        E.WARNING: 6,
    },
    "07_bounces_ndr.log": {
        E.AUTH_SUCCESS: 3,
        E.CLIENT: 3,
        E.CONNECT: 10,
        E.DAEMON: 16,
        E.DELIVERY: 13,
        E.DISCONNECT: 10,
        E.MESSAGE_ID: 13,
        E.NDR: 6,
        E.PICKUP: 1,
        E.QUEUED: 13,
        E.REJECT: 3,
        E.REMOVED: 12,
    },
    "08_sink_down_queue_buildup.log": {
        E.CLIENT: 100,
        E.CONNECT: 1,
        E.CONNECT_FAILED: 100,
        E.DELIVERY: 100,
        E.DISCONNECT: 1,
        E.MESSAGE_ID: 100,
        E.QUEUED: 100,
    },
    "09_queue_flush_recovery.log": {E.DELIVERY: 101, E.QUEUED: 101, E.REMOVED: 100},
}


@pytest.mark.parametrize("name", sorted(LAB_TYPES))
def test_lab_event_type_counts(name: str) -> None:
    assert Counter(ev.type for ev in lab_events(name)) == LAB_TYPES[name]


def test_lab_02_relay_denied() -> None:
    denied = [ev for ev in lab_events("02_closed_relay_denied.log") if ev.type == E.RELAY_DENIED]
    assert len(denied) == 50
    assert {(ev.status, ev.code, ev.dsn, ev.command) for ev in denied} == {
        ("reject", 554, "5.7.1", "RCPT")
    }
    assert Counter(ev.sender for ev in denied) == {
        "promo@deals.example": 11,
        "": 12,
        "antispam@[127.0.0.1]": 13,
        "postmaster@lab.test": 6,
        "ceo@bank.example": 5,
        "spammer@evil.example": 1,
        "antispam@nmap.scanme.org": 1,
        "antispam@mail.lab.test": 1,
    }
    assert all(ev.reply is not None and ev.reply.endswith(": Relay access denied") for ev in denied)


def test_lab_03_bruteforce() -> None:
    events = lab_events("03_auth_bruteforce.log")
    failures = [ev for ev in events if ev.type == E.AUTH_FAILURE]
    assert Counter(ev.sasl_username for ev in failures) == {
        "alice@lab.test": 35,
        "admin@lab.test": 7,
        "info@lab.test": 6,
        "test": 6,
        "bob@lab.test": 4,
        "sales@lab.test": 3,
    }
    assert Counter(ev.client_ip for ev in failures) == {"127.0.0.66": 41, "127.0.0.67": 20}
    assert Counter(ev.sasl_method for ev in failures) == {"LOGIN": 35, "PLAIN": 26}
    assert {ev.detail for ev in failures} == {"authentication failure"}
    # the Cyrus "Password verification failed" lines are warnings, never extra failures
    warnings = [ev for ev in events if ev.type == E.WARNING]
    assert {ev.detail for ev in warnings} == {
        "SASL authentication failure: Password verification failed"
    }
    assert len(warnings) == 26
    disconnects = [ev for ev in events if ev.type == E.DISCONNECT]
    assert sum(ev.auth_failed or 0 for ev in disconnects) == 61
    assert sum(ev.auth_attempts or 0 for ev in disconnects) == 61
    (lost,) = [ev for ev in events if ev.type == E.LOST_CONNECTION]
    assert (lost.command, lost.detail, lost.client_ip) == ("AUTH", "too many errors", "127.0.0.67")


def test_lab_04_auth_success() -> None:
    events = lab_events("04_auth_success_outbound_spam.log")
    logins = [ev for ev in events if ev.type == E.AUTH_SUCCESS]
    assert len(logins) == 201
    assert {(ev.sasl_username, ev.client_ip) for ev in logins} == {("alice@lab.test", "127.0.0.66")}
    assert Counter(ev.sasl_method for ev in logins) == {"LOGIN": 101, "PLAIN": 100}
    assert all(ev.queue_id for ev in logins)
    deliveries = [ev for ev in events if ev.type == E.DELIVERY]
    assert {(ev.status, ev.code, ev.dsn) for ev in deliveries} == {("sent", 250, "2.0.0")}
    queued = Counter(re.sub(r"\d+", "N", ev.sender or "") for ev in events if ev.type == E.QUEUED)
    assert queued == {
        "alice@lab.test": 145,
        "support@mailboxN.example": 22,
        "billing@mailboxN.example": 16,
        "noreply@mailboxN.example": 13,
        "noreply@hotmail.test": 1,
        "noreply@mail.test": 1,
        "noreply@outlook.test": 1,
        "support@gmail.test": 1,
        "support@gmx.test": 1,
    }


def test_lab_07_bounces() -> None:
    events = lab_events("07_bounces_ndr.log")
    ndrs = [ev for ev in events if ev.type == E.NDR]
    assert len(ndrs) == 6
    assert {ev.ndr_kind for ev in ndrs} == {"non-delivery"}
    assert all(ev.queue_id and ev.child_queue_id for ev in ndrs)
    assert Counter(ev.status for ev in events if ev.type == E.DELIVERY) == {
        "sent": 6,
        "bounced": 6,
        "deferred": 1,
    }


def test_lab_08_connect_failed() -> None:
    events = lab_events("08_sink_down_queue_buildup.log")
    failed = [ev for ev in events if ev.type == E.CONNECT_FAILED]
    assert len(failed) == 100
    assert {(ev.relay, ev.detail) for ev in failed} == {
        ("127.0.0.1[127.0.0.1]:2526", "Connection refused")
    }
    deferred = [ev for ev in events if ev.type == E.DELIVERY]
    assert {(ev.status, ev.relay, ev.dsn, ev.code) for ev in deferred} == {
        ("deferred", "none", "4.4.1", None)
    }
