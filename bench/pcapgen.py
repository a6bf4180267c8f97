#!/usr/bin/env python3
"""Deterministic generator of a large, realistic SMTP packet capture for the `pcap` benchmark.

The capture is what a tap in front of a small mail site sees: Ethernet/IPv4 (and some IPv6)
frames with TCP timestamps, message bodies cut into 1448-byte segments, delayed ACKs every
second segment, a few retransmissions and out-of-order segments, and traffic that is not
SMTP at all (HTTP and HTTPS downloads, the MTA's DNS lookups over UDP).

How it stays fast: one *block* of sessions spanning BLOCK_SECONDS is built once (every frame
with its time, direction, flags, relative sequence numbers and payload), then written again
and again with each replica's own client addresses, ports, initial sequence numbers and time
offset. Frames of a block that run past its end are merged with the start of the next one,
so the file stays in time order. Frames are packed with :mod:`struct`; the IPv4 header
checksum is right, the TCP checksum is left 0 (as captures on a host with checksum offload
show it).

The scripted findings (ground truth in ``<file>.facts.json``) sit in the first replicas, so a
small capture has them too:

- ``open-relay-use``: 203.0.113.50, unauthenticated, has 20 outside recipients accepted
  (replica 1);
- ``relay-probing``: 203.0.113.77 is told "Relay access denied" 2 times in each of 6 sessions
  (replicas 0-5);
- ``auth-bruteforce``: 203.0.113.66 fails AUTH LOGIN 5 times in each of 12 sessions on 587
  (replicas 0-11);
- ``egress-smtp``: the web server 10.0.5.80 delivers 3 messages itself in each of 3 sessions
  to outside port 25 (replicas 0-2).

A block is about 9.6 MB, so 30 MB hold all four findings (with smaller counts).

    python3 bench/pcapgen.py --size 1000 [--seed 1] [--pcapng]

Same parameters give the same bytes. Files go to bench/out/pcap/ and are reused when they exist.
"""

from __future__ import annotations

import argparse
import base64
import heapq
import json
import random
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

GEN_VERSION = 1
OUT_DIR = Path(__file__).resolve().parent / "out" / "pcap"
T0 = 1_796_284_800  # 2026-12-03 04:00:00Z
BLOCK_SECONDS = 120
MSS = 1448
MASK = 0xFFFFFFFF

LOCAL_DOMAINS = ("example.org", "example.net")
MX4 = "10.0.0.25"
MX6 = "2001:db8:10::25"
RESOLVER = "10.0.0.53"
RELAY_IP = "203.0.113.50"
PROBE_IP = "203.0.113.77"
BRUTE_IP = "203.0.113.66"
EGRESS_IP = "10.0.5.80"
BRUTE_REPLICAS = range(0, 12)
BRUTE_TRIES = 5
PROBE_REPLICAS = range(0, 6)
PROBE_DENIALS = 2
EGRESS_REPLICAS = range(0, 3)
EGRESS_MESSAGES = 3
RELAY_REPLICA = 1
RELAY_RECIPIENTS = 20
# relayguard's default thresholds (relayguard config defaults): a finding is expected once
# the replicas written reach them
MIN_BRUTE_FAILURES = 10
MIN_PROBE_DENIALS = 5

SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10
UDP = -1  # the "flags" of a UDP frame

# ---- one block: sessions as frames -----------------------------------------------------------
# A frame: (time in block, session index, from client, TCP flags or UDP, relative seq,
# relative ack, payload)
Frame = tuple[float, int, bool, int, int, int, bytes]


@dataclass
class Addressing:
    """How a session's endpoints change from one replica to the next."""

    client: Callable[[int], str]
    server: Callable[[int], str]
    client_port: Callable[[int], int]
    server_port: int
    replicas: range | None = None  # None: in every replica


@dataclass
class Session:
    kind: str
    addressing: Addressing
    start: float
    rtt: float
    rng: random.Random
    frames: list[Frame] = field(default_factory=list)
    t: float = 0.0
    cseq: int = 0
    sseq: int = 0
    index: int = 0

    def __post_init__(self) -> None:
        self.t = self.start

    def _emit(self, from_client: bool, flags: int, payload: bytes = b"",
              seq: int | None = None) -> None:
        own, other = (self.cseq, self.sseq) if from_client else (self.sseq, self.cseq)
        self.frames.append((self.t, self.index, from_client, flags,
                            own if seq is None else seq, other, payload))

    def open(self) -> Session:
        self._emit(True, SYN)
        self.cseq = 1
        self.t += self.rtt / 2
        self._emit(False, SYN | ACK)
        self.sseq = 1
        self.t += self.rtt / 2
        self._emit(True, ACK)
        return self

    def send(self, from_client: bool, data: bytes, rate: float = 4e6) -> None:
        """``data`` in MSS segments at ``rate`` bytes/s, ACKed every second segment, with the
        odd retransmission and out-of-order pair."""
        rng = self.rng
        pieces = [data[i:i + MSS] for i in range(0, len(data), MSS)]
        base = self.cseq if from_client else self.sseq
        offsets = []
        o = 0
        for p in pieces:
            offsets.append(o)
            o += len(p)
        order = list(range(len(pieces)))
        if len(order) > 3 and rng.random() < 0.05:
            i = rng.randrange(len(order) - 1)
            order[i], order[i + 1] = order[i + 1], order[i]  # out of order
        for n, i in enumerate(order):
            self._emit(from_client, PSH | ACK if i == len(pieces) - 1 else ACK, pieces[i],
                       seq=base + offsets[i])
            self.t += len(pieces[i]) / rate
            if len(pieces) > 2 and rng.random() < 0.004:  # lost and sent again
                self.t += self.rtt
                self._emit(from_client, ACK, pieces[i], seq=base + offsets[i])
            if n % 2 == 1 and n < len(order) - 1:
                self._ack(not from_client, base + offsets[i] + len(pieces[i]))
        if from_client:
            self.cseq = (self.cseq + len(data)) & MASK
        else:
            self.sseq = (self.sseq + len(data)) & MASK

    def _ack(self, from_client: bool, acked: int) -> None:
        if from_client:
            self.frames.append((self.t, self.index, True, ACK, self.cseq, acked, b""))
        else:
            self.frames.append((self.t, self.index, False, ACK, self.sseq, acked, b""))

    def c(self, data: bytes | str, think: float = 0.0) -> Session:
        """The client sends ``data``; the server's reply comes half an RTT later."""
        raw = data.encode() if isinstance(data, str) else data
        self.t += think
        self.send(True, raw)
        self.t += self.rtt / 2
        return self

    def s(self, data: bytes | str, work: float = 0.0005) -> Session:
        raw = data.encode() if isinstance(data, str) else data
        self.t += work
        self.send(False, raw)
        self.t += self.rtt / 2
        return self

    def bulk(self, from_client: bool, data: bytes) -> Session:
        """A large transfer, then the receiver's final ACK."""
        self.send(from_client, data, rate=self.rng.uniform(2e6, 12e6))
        self.t += self.rtt / 2
        self._ack(not from_client, self.cseq if from_client else self.sseq)
        return self

    def close(self) -> Session:
        self._emit(True, FIN | ACK)
        self.cseq += 1
        self.t += self.rtt / 2
        self._emit(False, FIN | ACK)
        self.sseq += 1
        self.t += self.rtt / 2
        self._emit(True, ACK)
        return self

    def udp(self, from_client: bool, payload: bytes) -> None:
        self.frames.append((self.t, self.index, from_client, UDP, 0, 0, payload))


# ---- content ----------------------------------------------------------------------------------
_TEXT = (
    "the invoice for last month is attached please review and confirm before friday meeting "
    "agenda project update schedule customer order shipment delivery report quarterly results "
    "budget approval thanks regards team office holiday support ticket password reset "
    "newsletter offer subscription account security notice")
WORDS = tuple(_TEXT.split())
SENDER_DOMAINS = [f"{w}{n}.example" for n in range(40) for w in ("mail", "corp", "news")]
OUTSIDE_DOMAINS = [f"partner{n}.example" for n in range(60)]
USERS = [f"{n}{i}" for i in range(4) for n in ("alice", "bob", "carol", "dave", "erin", "frank")]
CLIENT_NAMES = ("mail-ed1-f41.google.example", "mx1.corp.example", "smtp.news.example",
                "out.bulk.example", "mta7.partner.example", "o1.mailer.example")

BANNER = "220 mx.example.org ESMTP Postfix (Debian/GNU)\r\n"
EHLO_25 = ("250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-VRFY\r\n250-ETRN\r\n"
           "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
           "250-SMTPUTF8\r\n250 CHUNKING\r\n")
EHLO_587 = ("250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-ETRN\r\n"
            "250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n"
            "250-8BITMIME\r\n250-DSN\r\n250 CHUNKING\r\n")
REMOTE_EHLO = ("250-mx.partner.example\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n"
               "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n")


def _qid(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz")
                   for _ in range(15))


def message(rng: random.Random, sender: str, rcpt: str, size: int) -> bytes:
    """A MIME message of about ``size`` bytes, dot-stuffed, ending with CRLF.CRLF."""
    lines = [
        f"Received: from {rng.choice(CLIENT_NAMES)} by mx.example.org with ESMTPS id {_qid(rng)}",
        f"From: <{sender}>", f"To: <{rcpt}>",
        f"Subject: {' '.join(rng.choices(WORDS, k=5))}",
        "Date: Thu, 03 Dec 2026 09:12:44 +0000",
        f"Message-ID: <{_qid(rng)}@{sender.partition('@')[2]}>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b1"', "", "--b1",
        "Content-Type: text/plain; charset=utf-8", "",
    ]
    text_size = min(size, rng.randint(800, 6000))
    n = 0
    while n < text_size:
        line = " ".join(rng.choices(WORDS, k=rng.randint(6, 14)))
        if rng.random() < 0.02:
            line = "." + line  # a line a client must dot-stuff
        lines.append(line)
        n += len(line) + 2
    if size > text_size + 200:
        lines += ["--b1", "Content-Type: application/pdf; name=report.pdf",
                  "Content-Transfer-Encoding: base64", ""]
        blob = base64.b64encode(rng.randbytes((size - text_size) * 3 // 4)).decode()
        lines += [blob[i:i + 76] for i in range(0, len(blob), 76)]
    lines += ["--b1--"]
    stuffed = [("." + x) if x.startswith(".") else x for x in lines]
    return ("\r\n".join(stuffed) + "\r\n.\r\n").encode()


def message_size(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.70:
        return rng.randint(2_000, 30_000)
    if r < 0.95:
        return rng.randint(30_000, 300_000)
    return rng.randint(300_000, 2_000_000)


def tls_records(rng: random.Random, size: int) -> bytes:
    """Whole TLS application-data records of about ``size`` bytes in all (opaque)."""
    out = []
    left = size
    while left > 0:
        n = max(1, min(16_384, left - 5))
        out.append(b"\x17\x03\x03" + struct.pack("!H", n) + rng.randbytes(n))
        left -= n + 5
    return b"".join(out)


def _handshake(kind: int, body: bytes, legacy: bytes) -> bytes:
    hs = bytes([kind]) + struct.pack("!I", len(body))[1:] + body
    return b"\x16" + legacy + struct.pack("!H", len(hs)) + hs


def client_hello(rng: random.Random) -> bytes:
    """A TLS 1.3 ClientHello of 517 bytes, as most clients send (padded)."""
    ext = struct.pack("!HHBH", 0x2B, 3, 2, 0x0304)  # supported_versions: TLS 1.3
    fixed = 2 + 32 + 33 + 4 + 2 + 2 + len(ext) + 4
    pad = 517 - 9 - fixed
    ext += struct.pack("!HH", 0x15, pad) + bytes(pad)
    body = (b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32) + b"\x00\x02\x13\x01"
            + b"\x01\x00" + struct.pack("!H", len(ext)) + ext)
    return _handshake(1, body, b"\x03\x01")


def server_flight(rng: random.Random, size: int) -> bytes:
    """ServerHello, ChangeCipherSpec, then the encrypted rest of the handshake."""
    ext = struct.pack("!HHH", 0x2B, 2, 0x0304)
    body = (b"\x03\x03" + rng.randbytes(32) + b"\x20" + rng.randbytes(32) + b"\x13\x01\x00"
            + struct.pack("!H", len(ext)) + ext)
    hello = _handshake(2, body, b"\x03\x03") + b"\x14\x03\x03\x00\x01\x01"
    return hello + tls_records(rng, size - len(hello))


CCS = b"\x14\x03\x03\x00\x01\x01"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def dns_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def dns_pair(rng: random.Random, name: str, qtype: int) -> tuple[bytes, bytes]:
    qid = rng.randrange(65536)
    question = dns_name(name) + struct.pack("!HH", qtype, 1)
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1) + question + \
        b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
    if qtype == 1:
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + rng.randbytes(4)
    else:
        rdata = b"\x00\x0a" + dns_name("mx." + name.partition(".")[2])
        answer = b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 300, len(rdata)) + rdata
    reply = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + answer
    return query, reply


# ---- the block --------------------------------------------------------------------------------
def _v4(base: str, n: int) -> str:
    return socket.inet_ntoa(struct.pack("!I", struct.unpack("!I", socket.inet_aton(base))[0] + n))


def _outside_client(slot: int) -> Callable[[int], str]:
    """A different outside address for this slot in every replica (198.18.0.0/15)."""
    return lambda r: _v4("198.18.0.0", ((r * 211 + slot) * 7919) % 131_072)


def _outside_client6(slot: int) -> Callable[[int], str]:
    return lambda r: f"2001:db8:{(r * 211 + slot) % 65536:x}::{slot + 1:x}"


def _port(slot: int) -> Callable[[int], int]:
    return lambda r: 32_768 + ((r * 211 + slot) * 37) % 28_000


def _fixed(value: str) -> Callable[[int], str]:
    return lambda r: value


@dataclass
class Block:
    sessions: list[Session]
    truth: dict[str, int]


def build_block(seed: int) -> Block:
    rng = random.Random(seed)
    sessions: list[Session] = []
    truth = {"smtp_sessions": 0, "plain_messages_to_mx": 0, "tls_sessions": 0}

    def new(kind: str, addressing: Addressing, start: float | None = None,
            rtt: float | None = None) -> Session:
        s = Session(kind, addressing, rng.uniform(0, BLOCK_SECONDS - 5) if start is None
                    else start, rtt if rtt is not None else rng.uniform(0.01, 0.12),
                    random.Random(rng.random()), index=len(sessions))
        sessions.append(s)
        if addressing.server_port in (25, 587):
            truth["smtp_sessions"] += 1
        return s

    def inbound(slot: int, v6: bool) -> None:
        addressing = Addressing(_outside_client6(slot) if v6 else _outside_client(slot),
                                _fixed(MX6 if v6 else MX4), _port(slot), 25)
        s = new("inbound", addressing)
        srng = s.rng
        s.open().s(BANNER).c(f"EHLO {srng.choice(CLIENT_NAMES)}\r\n").s(EHLO_25)
        if srng.random() < 0.4:
            truth["tls_sessions"] += 1
            s.c("STARTTLS\r\n").s("220 2.0.0 Ready to start TLS\r\n")
            s.c(client_hello(srng)).s(server_flight(srng, 3900))
            s.c(CCS + tls_records(srng, 74)).s(tls_records(srng, 300))
            for _ in range(srng.choice((1, 1, 2))):
                s.bulk(True, tls_records(srng, message_size(srng) + 400))
                s.s(tls_records(srng, 60))
            s.c(tls_records(srng, 30)).close()
            return
        pipelining = srng.random() < 0.5
        for _ in range(srng.choice((1, 1, 1, 2, 3))):
            sender = f"{srng.choice(WORDS)}@{srng.choice(SENDER_DOMAINS)}"
            rcpts = [f"{srng.choice(USERS)}@{srng.choice(LOCAL_DOMAINS)}"
                     for _ in range(srng.choice((1, 1, 1, 2, 3)))]
            if srng.random() < 0.2:
                rcpts[0] = f"{srng.choice(USERS)}@lists.example.org"
            unknown = srng.random() < 0.1
            if unknown:
                rcpts.append(f"nosuchuser{srng.randrange(999)}@example.org")
            body = message(srng, sender, rcpts[0], message_size(srng))
            replies = ["250 2.1.0 Ok\r\n"] + [
                f"550 5.1.1 <{r}>: Recipient address rejected: User unknown in virtual "
                "mailbox table\r\n" if r.startswith("nosuchuser") else "250 2.1.5 Ok\r\n"
                for r in rcpts]
            cmds = [f"MAIL FROM:<{sender}> SIZE={len(body)}\r\n"] + [
                f"RCPT TO:<{r}>\r\n" for r in rcpts]
            if pipelining:
                s.c("".join([*cmds, "DATA\r\n"])).s("".join([*replies, "354 End data with "
                                                             "<CR><LF>.<CR><LF>\r\n"]))
            else:
                for cmd, rep in zip(cmds, replies, strict=True):
                    s.c(cmd).s(rep)
                s.c("DATA\r\n").s("354 End data with <CR><LF>.<CR><LF>\r\n")
            s.bulk(True, body)
            s.s(f"250 2.0.0 Ok: queued as {_qid(srng)}\r\n", work=0.02)
            truth["plain_messages_to_mx"] += 1
        s.c("QUIT\r\n").s("221 2.0.0 Bye\r\n").close()

    def submission(slot: int, user: str) -> None:
        internal = slot % 2 == 0
        client = _fixed(_v4("10.0.1.10", slot)) if internal else _fixed(_v4("198.51.100.10",
                                                                            slot))
        s = new("submission", Addressing(client, _fixed(MX4), _port(1000 + slot), 587))
        srng = s.rng
        s.open().s(BANNER).c(f"EHLO [{_v4('10.0.1.10', slot)}]\r\n").s(EHLO_587)
        if not internal:
            truth["tls_sessions"] += 1
            s.c("STARTTLS\r\n").s("220 2.0.0 Ready to start TLS\r\n")
            s.c(client_hello(srng)).s(server_flight(srng, 3900))
            s.bulk(True, CCS + tls_records(srng, message_size(srng) + 900))
            s.s(tls_records(srng, 200)).close()
            return
        s.c(f"AUTH PLAIN {b64(chr(0) + user + '@example.org' + chr(0) + 'hunter2')}\r\n")
        s.s("235 2.7.0 Authentication successful\r\n")
        sender = f"{user}@example.org"
        rcpts = [f"{srng.choice(WORDS)}@{srng.choice(OUTSIDE_DOMAINS)}"
                 for _ in range(srng.choice((1, 1, 2, 3)))]
        rcpts += [f"{srng.choice(USERS)}@example.org"] if srng.random() < 0.3 else []
        for cmd in [f"MAIL FROM:<{sender}>\r\n", *[f"RCPT TO:<{r}>\r\n" for r in rcpts]]:
            s.c(cmd).s("250 2.1.5 Ok\r\n" if cmd.startswith("RCPT") else "250 2.1.0 Ok\r\n")
        s.c("DATA\r\n").s("354 End data with <CR><LF>.<CR><LF>\r\n")
        s.bulk(True, message(srng, sender, rcpts[0], message_size(srng)))
        s.s(f"250 2.0.0 Ok: queued as {_qid(srng)}\r\n", work=0.02)
        truth["plain_messages_to_mx"] += 1
        s.c("QUIT\r\n").s("221 2.0.0 Bye\r\n").close()

    def outbound(slot: int) -> None:
        """Our MTA delivering to outside servers: legitimate, not egress."""
        s = new("outbound", Addressing(_fixed(MX4), _fixed(_v4("198.19.10.1", slot)),
                                       _port(2000 + slot), 25))
        srng = s.rng
        s.open().s("220 mx.partner.example ESMTP\r\n").c("EHLO mx.example.org\r\n").s(
            REMOTE_EHLO)
        if srng.random() < 0.8:
            truth["tls_sessions"] += 1
            s.c("STARTTLS\r\n").s("220 2.0.0 Ready to start TLS\r\n")
            s.c(client_hello(srng)).s(server_flight(srng, 4200))
            s.bulk(True, CCS + tls_records(srng, message_size(srng) + 400))
            s.s(tls_records(srng, 80)).close()
            return
        sender = f"{srng.choice(USERS)}@example.org"
        rcpt = f"{srng.choice(WORDS)}@{srng.choice(OUTSIDE_DOMAINS)}"
        s.c(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n")
        s.s("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 Go ahead\r\n")
        s.bulk(True, message(srng, sender, rcpt, message_size(srng)))
        s.s("250 2.0.0 Ok: queued\r\n", work=0.02)
        s.c("QUIT\r\n").s("221 2.0.0 Bye\r\n").close()

    def http(slot: int, tls: bool) -> None:
        client = _fixed(_v4("10.0.2.20", slot % 40))
        server = _fixed(_v4("198.19.60.1" if tls else "198.19.50.1", slot % 30))
        s = new("https" if tls else "http", Addressing(client, server, _port(3000 + slot),
                                                       443 if tls else 80))
        srng = s.rng
        size = int(srng.lognormvariate(10.5, 1.3)) + 500
        s.open()
        if tls:
            s.c(client_hello(srng)).s(server_flight(srng, 4000))
            s.c(tls_records(srng, 400))
            s.bulk(False, tls_records(srng, size))
        else:
            s.c(f"GET /files/{_qid(srng)}.bin HTTP/1.1\r\nHost: cdn{slot % 30}.example\r\n"
                "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n")
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    f"Content-Length: {size}\r\n\r\n").encode()
            s.bulk(False, head + srng.randbytes(size))
        s.close()

    def dns(slot: int) -> None:
        s = new("dns", Addressing(_fixed(MX4), _fixed(RESOLVER), _port(4000 + slot), 53),
                rtt=0.002)
        srng = s.rng
        name = srng.choice((f"{srng.randrange(256)}.{srng.randrange(256)}.18.198"
                            ".zen.spamhaus.example", f"{srng.choice(SENDER_DOMAINS)}",
                            f"mx.{srng.choice(OUTSIDE_DOMAINS)}"))
        query, reply = dns_pair(srng, name, srng.choice((1, 1, 15)))
        s.udp(True, query)
        s.t += s.rtt
        s.udp(False, reply)

    # the scripted incidents: fixed addresses, only in some replicas
    def relay_attempt() -> None:
        s = new("relay", Addressing(_fixed(RELAY_IP), _fixed(MX4), _port(5000), 25,
                                    range(RELAY_REPLICA, RELAY_REPLICA + 1)), start=30.0)
        s.open().s(BANNER).c("EHLO spambot.example\r\n").s(EHLO_25)
        s.c("MAIL FROM:<promo@deals.example>\r\n").s("250 2.1.0 Ok\r\n")
        for n in range(RELAY_RECIPIENTS):
            s.c(f"RCPT TO:<buyer{n}@{OUTSIDE_DOMAINS[n]}>\r\n").s("250 2.1.5 Ok\r\n")
        s.c("DATA\r\n").s("354 End data with <CR><LF>.<CR><LF>\r\n")
        s.bulk(True, message(s.rng, "promo@deals.example", "buyer0@partner0.example", 4000))
        s.s("250 2.0.0 Ok: queued as 4jKBYB33cLzJwHx\r\n").c("QUIT\r\n").s("221 Bye\r\n")
        s.close()

    def relay_probe() -> None:
        s = new("probe", Addressing(_fixed(PROBE_IP), _fixed(MX4), _port(5001), 25,
                                    PROBE_REPLICAS), start=50.0)
        s.open().s(BANNER).c("EHLO probe.example\r\n").s(EHLO_25)
        s.c("MAIL FROM:<test@probe.example>\r\n").s("250 2.1.0 Ok\r\n")
        for n in range(PROBE_DENIALS):
            rcpt = f"check{n}@relaytest.example"
            s.c(f"RCPT TO:<{rcpt}>\r\n").s(
                f"554 5.7.1 <{rcpt}>: Relay access denied\r\n")
        s.c("QUIT\r\n").s("221 2.0.0 Bye\r\n").close()

    def brute_force() -> None:
        s = new("bruteforce", Addressing(_fixed(BRUTE_IP), _fixed(MX4), _port(5002), 587,
                                         BRUTE_REPLICAS), start=10.0)
        s.open().s(BANNER).c("EHLO User\r\n").s(EHLO_587)
        for n in range(BRUTE_TRIES):
            s.c("AUTH LOGIN\r\n").s("334 VXNlcm5hbWU6\r\n")
            s.c(f"{b64(USERS[n] + '@example.org')}\r\n").s("334 UGFzc3dvcmQ6\r\n")
            s.c(f"{b64('123456' + str(n))}\r\n").s(
                "535 5.7.8 Error: authentication failed: authentication failure\r\n", work=1.0)
        s.c("QUIT\r\n").s("221 2.0.0 Bye\r\n").close()

    def egress() -> None:
        s = new("egress", Addressing(_fixed(EGRESS_IP), _fixed("198.19.200.25"), _port(5003),
                                     25, EGRESS_REPLICAS), start=70.0)
        s.open().s("220 mx.partner.example ESMTP\r\n").c("HELO www.example.org\r\n")
        s.s("250 mx.partner.example\r\n")
        for n in range(EGRESS_MESSAGES):
            rcpt = f"target{n}@{OUTSIDE_DOMAINS[30 + n]}"
            s.c("MAIL FROM:<wordpress@example.org>\r\n").s("250 2.1.0 Ok\r\n")
            s.c(f"RCPT TO:<{rcpt}>\r\n").s("250 2.1.5 Ok\r\n")
            s.c("DATA\r\n").s("354 Go ahead\r\n")
            s.bulk(True, message(s.rng, "wordpress@example.org", rcpt, 3000))
            s.s("250 2.0.0 Ok: queued\r\n")
        s.c("QUIT\r\n").s("221 2.0.0 Bye\r\n").close()

    for slot in range(36):
        inbound(slot, v6=slot % 9 == 0)
    for slot, user in enumerate(USERS[:16]):
        submission(slot, user)
    for slot in range(8):
        outbound(slot)
    for slot in range(14):
        http(slot, tls=slot % 2 == 1)
    for slot in range(150):
        dns(slot)
    relay_attempt()
    relay_probe()
    brute_force()
    egress()
    longest = max(s.frames[-1][0] - s.start for s in sessions)
    if longest >= BLOCK_SECONDS:
        raise RuntimeError(f"a session lasts {longest:.0f}s, longer than a block")
    return Block(sessions, truth)


# ---- writing ----------------------------------------------------------------------------------
ETH_C2S = b"\x00\x1b\x21\x3a\x4c\x5e" + b"\x52\x54\x00\x12\x34\x56"
ETH_S2C = b"\x52\x54\x00\x12\x34\x56" + b"\x00\x1b\x21\x3a\x4c\x5e"
IP4 = struct.Struct("!BBHHHBBH4s4s")
IP6 = struct.Struct("!IHBB16s16s")
TCP_TS = struct.Struct("!HHIIHHHHBBBBII")  # 20-byte header + NOP NOP TS(10)
TCP_SYN = struct.Struct("!HHIIHHHH")
SYN_OPTIONS = b"\x02\x04\x05\xb4\x04\x02\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x00\x01\x03\x03\x07"
UDP_H = struct.Struct("!HHHH")
PCAP_RECORD = struct.Struct("<IIII")
PCAPNG_EPB = struct.Struct("<IIIIIII")


@dataclass
class Endpoints:
    client: bytes
    server: bytes
    client_port: int
    server_port: int
    client_isn: int
    server_isn: int
    v6: bool
    pair_sum: int  # the IPv4 header checksum's sum over both addresses


def endpoints(session: Session, replica: int) -> Endpoints | None:
    a = session.addressing
    if a.replicas is not None and replica not in a.replicas:
        return None
    client, server = a.client(replica), a.server(replica)
    v6 = ":" in client
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    c, s = socket.inet_pton(fam, client), socket.inet_pton(fam, server)
    pair = sum(struct.unpack("!4H", c + s)) if not v6 else 0
    mix = (replica * 2_654_435_761 + session.index * 40_503) & MASK
    return Endpoints(c, s, a.client_port(replica), a.server_port, mix,
                     (mix * 69_069 + 1) & MASK, v6, pair)


def frame_bytes(ep: Endpoints, from_client: bool, flags: int, seq: int, ack: int,
                payload: bytes, ip_id: int, ts_ms: int) -> bytes:
    """Ethernet + IP + TCP/UDP headers and payload of one frame."""
    src, dst = (ep.client, ep.server) if from_client else (ep.server, ep.client)
    sport, dport = (ep.client_port, ep.server_port) if from_client else \
        (ep.server_port, ep.client_port)
    eth = ETH_C2S if from_client else ETH_S2C
    if flags == UDP:
        l4 = UDP_H.pack(sport, dport, 8 + len(payload), 0)
        proto = 17
    else:
        isn, other = (ep.client_isn, ep.server_isn) if from_client else \
            (ep.server_isn, ep.client_isn)
        seq = (isn + seq) & MASK
        ack = (other + ack) & MASK if flags & ACK else 0
        if flags & SYN:
            l4 = TCP_SYN.pack(sport, dport, seq, ack, 0xA000 | flags, 64_240, 0, 0) + SYN_OPTIONS
        else:
            l4 = TCP_TS.pack(sport, dport, seq, ack, 0x8000 | flags, 501, 0, 0, 1, 1, 8, 10,
                             ts_ms & MASK, (ts_ms - 40) & MASK)
        proto = 6
    if ep.v6:
        ip = IP6.pack(0x60000000, len(l4) + len(payload), proto, 64, src, dst)
        return b"".join((eth, b"\x86\xdd", ip, l4, payload))
    total = 20 + len(l4) + len(payload)
    csum = 0x4500 + total + ip_id + 0x4000 + (64 << 8 | proto) + ep.pair_sum
    csum = (csum & 0xFFFF) + (csum >> 16)
    csum = ~((csum & 0xFFFF) + (csum >> 16)) & 0xFFFF
    ip = IP4.pack(0x45, 0, total, ip_id, 0x4000, 64, proto, csum, src, dst)
    return b"".join((eth, b"\x08\x00", ip, l4, payload))


@dataclass(frozen=True)
class Params:
    size_mb: int
    seed: int = 1
    pcapng: bool = False

    def filename(self) -> str:
        ext = "pcapng" if self.pcapng else "pcap"
        return f"smtp-{self.size_mb}MB-s{self.seed}-v{GEN_VERSION}.{ext}"


def schedule(block: Block) -> list[tuple[float, int, Frame]]:
    """The block's frames in time order, each with the replica it belongs to relative to
    the one being written (0, or -1 for a frame that ran past the end of the previous block)."""
    frames = sorted((f for s in block.sessions for f in s.frames), key=lambda f: f[0])
    head = [(f[0], 0, f) for f in frames if f[0] < BLOCK_SECONDS]
    tail = [(f[0] - BLOCK_SECONDS, -1, f) for f in frames if f[0] >= BLOCK_SECONDS]
    return list(heapq.merge(head, tail, key=lambda x: x[0]))


def write(p: Params, path: Path) -> dict[str, object]:
    """Write the capture; return its facts (sizes, counts, ground truth)."""
    block = build_block(p.seed)
    merged = schedule(block)
    target = p.size_mb * 1_000_000
    packets = 0
    written = 0
    ip_id = 0
    replica = 0
    per_replica: dict[int, list[Endpoints | None]] = {}
    sessions = block.sessions
    with path.open("wb") as out:
        written += _file_header(out, p.pcapng)
        while True:
            last = written >= target
            per_replica[replica] = [endpoints(s, replica) for s in sessions]
            per_replica.pop(replica - 2, None)
            base = T0 + replica * BLOCK_SECONDS
            parts: list[bytes] = []
            for t, delta, (_, sidx, from_client, flags, seq, ack, payload) in merged:
                if last and delta == 0:
                    continue  # past the target: only finish the previous block's sessions
                eps = per_replica.get(replica + delta)
                ep = eps[sidx] if eps is not None else None
                if ep is None:
                    continue
                when = base + t
                usec = int(when * 1e6)
                ip_id = (ip_id + 1) & 0xFFFF
                data = frame_bytes(ep, from_client, flags, seq, ack, payload, ip_id,
                                   usec // 1000)
                if p.pcapng:
                    pad = -len(data) % 4
                    blen = 32 + len(data) + pad
                    parts.append(PCAPNG_EPB.pack(6, blen, 0, usec >> 32, usec & MASK,
                                                 len(data), len(data)))
                    parts.append(data + b"\0" * pad + struct.pack("<I", blen))
                    written += blen
                else:
                    parts.append(PCAP_RECORD.pack(usec // 1_000_000, usec % 1_000_000,
                                                  len(data), len(data)))
                    parts.append(data)
                    written += 16 + len(data)
                packets += 1
            out.writelines(parts)
            if last:
                break
            replica += 1
    return {
        "generator": f"pcapgen v{GEN_VERSION}",
        "params": {"size_mb": p.size_mb, "seed": p.seed, "pcapng": p.pcapng},
        "bytes": written,
        "packets": packets,
        "replicas": replica,
        "block_seconds": BLOCK_SECONDS,
        "first_time": T0,
        "block_truth": block.truth,
        "sessions_per_block": {k: sum(1 for s in sessions if s.kind == k and
                                      s.addressing.replicas is None)
                               for k in sorted({s.kind for s in sessions})},
        "local_domains": list(LOCAL_DOMAINS),
        "mail_servers": [MX4, MX6],
        "expected": expected_findings(replica),
    }


def expected_findings(replicas: int) -> dict[str, dict[str, object]]:
    """The scripted findings the replicas written hold enough of, with their exact counts."""

    def n(r: range) -> int:
        return len([x for x in r if x < replicas])

    relayed = RELAY_RECIPIENTS * n(range(RELAY_REPLICA, RELAY_REPLICA + 1))
    denials = PROBE_DENIALS * n(PROBE_REPLICAS)
    failures = BRUTE_TRIES * n(BRUTE_REPLICAS)
    sessions = n(EGRESS_REPLICAS)
    out: dict[str, dict[str, object]] = {}
    if relayed:
        out["open-relay-use"] = {"ip": RELAY_IP, "external_recipients": relayed}
    if denials >= MIN_PROBE_DENIALS:
        out["relay-probing"] = {"ip": PROBE_IP, "denials": denials}
    if failures >= MIN_BRUTE_FAILURES:
        out["auth-bruteforce"] = {"ip": BRUTE_IP, "failures": failures}
    if sessions:
        out["egress-smtp"] = {"ip": EGRESS_IP, "sessions": sessions,
                              "messages": EGRESS_MESSAGES * sessions}
    return out


def _file_header(out: BinaryIO, pcapng: bool) -> int:
    if not pcapng:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262_144, 1))
        return 24
    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    # interface 0: Ethernet, snaplen 262144, if_tsresol 6 (microseconds)
    opts = struct.pack("<HHB3x", 9, 1, 6) + struct.pack("<HH", 0, 0)
    blen = 16 + len(opts) + 4
    idb = struct.pack("<IIHHI", 1, blen, 1, 0, 262_144) + opts + struct.pack("<I", blen)
    out.write(shb + idb)
    return len(shb) + len(idb)


def ensure(p: Params, out_dir: Path = OUT_DIR, force: bool = False) -> tuple[Path, bool]:
    """The capture for ``p`` (written unless it exists); whether it was reused."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / p.filename()
    facts_path = facts_file(path)
    if path.exists() and facts_path.exists() and not force:
        return path, True
    tmp = path.with_suffix(path.suffix + ".tmp")
    t0 = time.perf_counter()
    facts = write(p, tmp)
    facts["seconds_to_generate"] = round(time.perf_counter() - t0, 1)
    tmp.replace(path)
    facts_path.write_text(json.dumps(facts, indent=2) + "\n")
    return path, False


def facts_file(path: Path) -> Path:
    return path.with_name(path.name + ".facts.json")


def read_facts(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(facts_file(path).read_text())
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write a realistic SMTP capture for bench/pcap.")
    ap.add_argument("--size", type=int, default=1000, help="megabytes (default 1000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pcapng", action="store_true")
    ap.add_argument("--force", action="store_true", help="write it even if it exists")
    a = ap.parse_args(argv)
    if a.size < 1:
        ap.error("--size must be positive")
    path, reused = ensure(Params(a.size, a.seed, a.pcapng), force=a.force)
    facts = read_facts(path)
    print(f"{path}: {facts['packets']:,} packets, {facts['bytes']:,} bytes"
          f"{' (reused)' if reused else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
