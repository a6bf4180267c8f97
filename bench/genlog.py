#!/usr/bin/env python3
"""Deterministic generator of a realistic multi-day Postfix log for the `analyze` benchmark.

The output is BSD syslog (`Nov  3 16:17:24 mail postfix/smtpd[27951]: ...`), time-ordered, with the
line shapes of the real samples in tests/data/lab and tests/data/public: inbound mail through
postscreen and smtpd to lmtp/virtual/local delivery, authenticated submissions relayed by smtp with
sent/deferred/bounced results and NDRs, NOQUEUE rejects, SASL brute force, TLS and anvil lines,
short queue ids switching to long ones after a reload, and one scripted incident:
carol@example.org is brute-forced from 5 IPs on day 2, then one of them logs in and sends
exactly 1,400 messages to 3,900 external recipients with forged senders within two hours.

    python3 bench/genlog.py --lines 1000000 [--seed 1] [--days 5] [--gz]

Same parameters give the same bytes. Files go to bench/out/ and are reused when they already exist.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import calendar
import gzip
import json
import os
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

GEN_VERSION = 2
OUT_DIR = Path(__file__).resolve().parent / "out"

HOST = "mail"
MYHOST = "mail.example.org"
MY_IP4 = "203.0.113.25"
MY_IP6 = "2001:db8:25::25"
LOCAL_DOMAINS = ("example.org", "example.net")
# Monday 2026-11-02 00:00, so days 2..9 show syslog's space-padded day ("Nov  2"). The log has
# no year and no zone, so UTC is as good as any.
DEFAULT_START = calendar.timegm((2026, 11, 2, 0, 0, 0))

COMPROMISED = "carol@example.org"
SPREE_MESSAGES = 1400
SPREE_RECIPIENTS = 3900
SPREE_SECONDS = 7200

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SAFE = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"  # Postfix safe_ultostr alphabet

TLS_SERVER = (
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
    "server-signature RSA-PSS (2048 bits) server-digest SHA256",
    "TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits) key-exchange X25519 "
    "server-signature RSA-PSS (2048 bits) server-digest SHA256",
    "TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
    "TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256 (128/128 bits)",
)
TLS_CLIENT = (
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
    "server-signature ECDSA (P-256) server-digest SHA256",
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 "
    "server-signature RSA-PSS (2048 bits) server-digest SHA256",
    "TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
)
TLS_TRUST = ("Trusted", "Trusted", "Verified", "Untrusted")

FIRST = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "xavier", "yvonne",
    "zoe", "anna", "ben", "clara", "daniel", "emma", "felix", "hanna", "jonas", "lea", "lukas",
    "marie", "max", "nina", "paul", "sara", "tim", "julia", "leon", "mia", "noah", "laura", "jan",
    "eva", "tom", "lisa", "karl", "ida", "otto",
)
LAST = (
    "smith", "jones", "miller", "meyer", "schmidt", "weber", "wagner", "becker", "schulz",
    "hoffmann", "koch", "richter", "klein", "wolf", "martin", "bernard", "dubois", "moreau",
    "laurent", "simon", "michel", "garcia", "roux", "fournier", "rossi", "russo", "ferrari",
    "esposito", "bianchi", "romano", "colombo", "ricci",
)
SYL = (
    "al", "an", "ar", "ba", "be", "bo", "ca", "ce", "co", "da", "de", "di", "el", "en", "er",
    "fa", "fi", "ga", "ge", "go", "ha", "he", "in", "ka", "ke", "la", "le", "li", "lo", "lu",
    "ma", "me", "mi", "mo", "na", "ne", "no", "or", "pa", "pe", "po", "ra", "re", "ri", "ro",
    "sa", "se", "si", "so", "ta", "te", "ti", "to", "tra", "ve", "vi", "vo", "za",
)
TLDS = ("com", "com", "com", "net", "org", "de", "de", "fr", "nl", "it", "co.uk", "io", "eu", "ch",
        "at", "pl", "es", "se", "be")
SENDER_PARTS = ("info", "noreply", "no-reply", "newsletter", "news", "support", "billing",
                "sales", "contact", "office", "service", "notifications", "mailer", "team", "hello",
                "orders")
BRUTE_NAMES = ("admin", "info", "test", "sales", "postmaster", "user", "office", "support",
               "webmaster", "contact", "mail", "marketing")
FORGED_PARTS = ("billing", "invoice", "security", "support", "account", "noreply", "service",
                "payments", "alert", "verify")

# Big providers: (domain, mx host, kind of reply, inbound client host prefix)
PROVIDERS = (
    ("gmail.com", "gmail-smtp-in.l.google.com", "google", "mail-{}.google.com"),
    ("googlemail.com", "gmail-smtp-in.l.google.com", "google", "mail-{}.google.com"),
    ("outlook.com", "outlook-com.olc.protection.outlook.com", "outlook",
     "mail-{}.outbound.protection.outlook.com"),
    ("hotmail.com", "hotmail-com.olc.protection.outlook.com", "outlook",
     "mail-{}.outbound.protection.outlook.com"),
    ("yahoo.com", "mta6.am0.yahoodns.net", "yahoo", "sonic{}.mail.bf2.yahoo.com"),
    ("gmx.de", "mx00.emig.gmx.net", "generic", "mout-{}.gmx.net"),
    ("web.de", "mx-ha03.web.de", "generic", "mout-{}.web.de"),
    ("orange.fr", "smtp-in.orange.fr", "generic", "smtp{}.smtpout.orange.fr"),
    ("icloud.com", "mx01.mail.icloud.com", "generic", "st43p00im-{}.me.com"),
)

_PUBLIC_FIRST_OCTETS = (5, 31, 37, 45, 46, 62, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89,
                        91, 93, 94, 95, 103, 109, 139, 141, 151, 176, 178, 185, 188, 193, 194, 195,
                        212, 213, 217)


_T = TypeVar("_T")


def _pick(r: random.Random, seq: Sequence[_T]) -> _T:
    return seq[int(r.random() * len(seq))]


def enc_safe(val: int, base: int, pad: int) -> str:
    """Postfix long queue id field: digits of the safe alphabet, most significant first."""
    out = []
    while True:
        val, d = divmod(val, base)
        out.append(SAFE[d])
        if val == 0:
            break
    while len(out) < pad:
        out.append(SAFE[0])
    return "".join(reversed(out))


def fmt_delay(x: float) -> str:
    """Postfix's delay notation: 2 decimals below 1 s, 1 below 10 s, whole seconds above."""
    if x < 0.01:
        return "0"
    if x >= 10:
        return str(int(x + 0.5))
    s = f"{x:.2f}" if x < 1 else f"{x:.1f}"
    return s.rstrip("0").rstrip(".")


def syslog_stamp(sec: int) -> str:
    tm = time.gmtime(sec)
    return (f"{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} "
            f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}")


class Timeline:
    """Buckets lines per second; writes every second the clock has left behind, in order."""

    def __init__(self, out: TextIO | None, limit: int, start: int) -> None:
        self.out = out
        self.limit = limit
        self.buckets: dict[int, list[str]] = {}
        self.next_sec = start
        self.last_sec = start
        self.written = 0
        self.added = 0
        self._parts: list[str] = []
        self._pending = 0

    def add(self, t: int, text: str) -> None:
        if t < self.next_sec:
            t = self.next_sec
        b = self.buckets.get(t)
        if b is None:
            self.buckets[t] = [text]
        else:
            b.append(text)
        self.added += 1

    @property
    def full(self) -> bool:
        return self.written >= self.limit

    def flush_before(self, t: int) -> None:
        if t <= self.next_sec:
            return
        buckets = self.buckets
        parts = self._parts
        for s in range(self.next_sec, t):
            b = buckets.pop(s, None)
            if b is None:
                continue
            room = self.limit - self.written
            if len(b) > room:
                b = b[:room]
            prefix = f"{syslog_stamp(s)} {HOST} "
            parts.append(prefix + ("\n" + prefix).join(b) + "\n")
            self.written += len(b)
            self._pending += len(b)
            self.last_sec = s
            if self.written >= self.limit:
                break
        self.next_sec = t
        if self._pending >= 50_000:
            self._drain()

    def flush_all(self) -> None:
        while self.buckets and not self.full:
            self.flush_before(max(self.buckets) + 1)
        self._drain()

    def _drain(self) -> None:
        if self.out is not None and self._parts:
            self.out.write("".join(self._parts))
        self._parts.clear()
        self._pending = 0


@dataclass(frozen=True)
class Endpoint:
    host: str
    ip: str

    @property
    def client(self) -> str:
        return f"{self.host}[{self.ip}]"


@dataclass(frozen=True)
class Domain:
    name: str
    mx: str
    mx_ip: str
    kind: str
    clients: tuple[Endpoint, ...]


@dataclass(frozen=True)
class User:
    address: str
    endpoints: tuple[Endpoint, ...]


# Local recipient delivery agents
LMTP, VIRTUAL, LOCAL = 0, 1, 2


class Traffic:
    """Session generators. Each writes the lines of one SMTP session and its deliveries."""

    def __init__(self, rng: random.Random, sink: Timeline, long_ids_from: int) -> None:
        self.r = rng
        self.sink = sink
        self.emit = sink.add
        self.long_from = long_ids_from
        self.inode = 0x21A3C4
        self.next_pid = 20000 + rng.randrange(5000)
        self.master_pid = self._new_pid()
        self.qmgr_pid = self._new_pid()
        self.pickup_pid = self._new_pid()
        self.anvil_pid = self._new_pid()
        self.pools: dict[str, list[int]] = {
            name: [self._new_pid() for _ in range(n)]
            for name, n in (("smtpd", 12), ("sub", 6), ("ps", 2), ("cleanup", 6), ("lmtp", 4),
                            ("virtual", 3), ("local", 2), ("smtp", 10), ("bounce", 2))
        }
        self.listed_from = 1 << 62
        self.listed_until = 0
        self.last_ip = MY_IP4
        self.last_sub_ip = MY_IP4
        self._build_world()

    # ---- the world: domains, users, attackers, value pools
    def _ip4(self) -> str:
        r = self.r
        return (f"{_pick(r, _PUBLIC_FIRST_OCTETS)}.{int(r.random() * 256)}."
                f"{int(r.random() * 256)}.{1 + int(r.random() * 254)}")

    def _ip6(self) -> str:
        r = self.r
        g = [int(r.random() * 0xFFFF) for _ in range(4)]
        return f"2a0{1 + int(r.random() * 9)}:{g[0] | 0x100:x}:{g[1]:x}:{g[2]:x}::{g[3] | 1:x}"

    def _ip(self, v6: float) -> str:
        return self._ip6() if self.r.random() < v6 else self._ip4()

    def _word(self) -> str:
        r = self.r
        return "".join(_pick(r, SYL) for _ in range(2 + int(r.random() * 2)))

    def _build_world(self) -> None:
        r = self.r
        domains: list[Domain] = []
        for name, mx, kind, pattern in PROVIDERS:
            clients = tuple(
                Endpoint(pattern.format(f"{self._word()}{1 + int(r.random() * 98)}"), self._ip(0.4))
                for _ in range(40))
            domains.append(Domain(name, mx, self._ip(0.3), kind, clients))
        self.n_providers = len(domains)
        seen = {d.name for d in domains}
        while len(domains) < 2500:
            name = f"{self._word()}{_pick(r, ('', '', '-', ''))}{self._word()}.{_pick(r, TLDS)}"
            name = name.replace("--", "-").strip("-")
            if name in seen or name.split(".")[0].endswith("-"):
                continue
            seen.add(name)
            x = r.random()
            if x < 0.25:
                mx, kind = "aspmx.l.google.com", "google"
            elif x < 0.5:
                mx, kind = f"{name.replace('.', '-')}.mail.protection.outlook.com", "outlook"
            else:
                mx, kind = f"{_pick(r, ('mx', 'mx1', 'mail', 'smtp'))}.{name}", "generic"
            n_cl = 1 + int(r.random() * 3)
            clients = tuple(
                Endpoint("unknown" if r.random() < 0.15 else
                         f"{_pick(r, ('mail', 'smtp', 'mx', 'out', 'mta'))}{i or ''}.{name}",
                         self._ip(0.2))
                for i in range(n_cl))
            domains.append(Domain(name, mx, self._ip(0.15), kind, clients))
        self.domains = domains
        self.dom_by_name = {d.name: d for d in domains}
        # Zipf-ish popularity: providers carry half of the traffic.
        weights = [40.0] * self.n_providers + [1.0 / (1 + i) ** 0.6
                                               for i in range(len(domains) - self.n_providers)]
        total = sum(weights)
        acc = 0.0
        self.dom_cum: list[float] = []
        for w in weights:
            acc += w / total
            self.dom_cum.append(acc)

        users: list[User] = []
        names: set[str] = {"carol"}
        users.append(User(COMPROMISED, (self._home(), self._home())))
        while len(users) < 200:
            first, last = _pick(r, FIRST), _pick(r, LAST)
            local = first if r.random() < 0.3 else f"{first}.{last}"
            if local in names:
                continue
            names.add(local)
            dom = LOCAL_DOMAINS[0] if r.random() < 0.7 else LOCAL_DOMAINS[1]
            eps = tuple(self._home() for _ in range(1 + (r.random() < 0.4)))
            users.append(User(f"{local}@{dom}", eps))
        # The victim is an ordinary user in the middle of the popularity ranking.
        r.shuffle(users)
        i = users.index(next(u for u in users if u.address == COMPROMISED))
        users[i], users[len(users) // 2] = users[len(users) // 2], users[i]
        self.users = users
        rcpts: list[tuple[str, int, str]] = []
        for u in users:
            rcpts.append((u.address, LMTP if u.address.endswith("example.org") else VIRTUAL, ""))
        for alias in ("info", "sales", "contact", "jobs", "billing"):
            for dom in LOCAL_DOMAINS:
                rcpts.append((f"{alias}@{dom}", LMTP if dom == "example.org" else VIRTUAL, ""))
        for alias in ("postmaster", "abuse", "root"):
            rcpts.append((f"admin@{LOCAL_DOMAINS[0]}", LOCAL, f"{alias}@{LOCAL_DOMAINS[0]}"))
        self.local_rcpts = rcpts

        self.brute_ips = [self._ip4() for _ in range(4)]
        self.probe_ips = [self._ip(0.1) for _ in range(30)]
        self.spam_ips = [self._ip(0.1) for _ in range(400)]
        self.carol_attack_ips = [self._ip4() for _ in range(5)]
        self.forged_domains = [self._pick_domain().name for _ in range(30)]

        self.sizes = [min(25_000_000, max(400, int(r.lognormvariate(8.6, 1.1))))
                      for _ in range(1024)]
        self.local_delays = self._delay_pool(0.05, 0.3)
        self.remote_delays = self._delay_pool(0.3, 1.5)

    def _home(self) -> Endpoint:
        r = self.r
        if r.random() < 0.15:
            return Endpoint("unknown", self._ip6())
        ip = self._ip4()
        if r.random() < 0.3:
            return Endpoint("unknown", ip)
        isp = _pick(r, ("dyn.telco-one.net", "cable.fibernet.example", "pool.dsl-provider.net",
                        "customers.kabelnetz.example", "static.office-link.net"))
        return Endpoint(f"ip-{ip.replace('.', '-')}.{isp}", ip)

    def _delay_pool(self, base: float, spread: float) -> list[tuple[str, int]]:
        r = self.r
        pool = []
        for _ in range(512):
            a = r.expovariate(1 / base) * 0.5
            b = r.random() * 0.02 if r.random() < 0.8 else r.expovariate(3.0)
            c = r.expovariate(1 / (spread * 0.4)) if spread > 0.5 else r.random() * 0.02
            d = r.expovariate(1 / (spread * 0.5))
            total = a + b + c + d
            text = (f"delay={fmt_delay(total)}, delays={fmt_delay(a)}/{fmt_delay(b)}/"
                    f"{fmt_delay(c)}/{fmt_delay(d)}")
            pool.append((text, int(total)))
        return pool

    # ---- small helpers
    def _new_pid(self) -> int:
        self.next_pid += 1 + int(self.r.random() * 60)
        if self.next_pid > 4_000_000:
            self.next_pid = 3000
        return self.next_pid

    def pid(self, name: str) -> int:
        pool = self.pools[name]
        i = int(self.r.random() * (len(pool)))
        if self.r.random() < 0.004:
            pool[i] = self._new_pid()
        return pool[i]

    def qid(self, t: int) -> str:
        self.inode += 1 + (self.r.random() < 0.3)
        if self.inode > 0x2FFFFF:
            self.inode = 0x200000
        usec = int(self.r.random() * 1_000_000)
        if t >= self.long_from:
            return f"{enc_safe(t, 52, 6)}{enc_safe(usec, 52, 4)}z{enc_safe(self.inode, 51, 0)}"
        return f"{usec:05X}{self.inode:X}"

    def _pick_domain(self) -> Domain:
        return self.domains[bisect.bisect_left(self.dom_cum, self.r.random())]

    def _ext_address(self, dom: Domain) -> str:
        r = self.r
        x = r.random()
        if x < 0.35:
            return f"{_pick(r, SENDER_PARTS)}@{dom.name}"
        if x < 0.7:
            return f"{_pick(r, FIRST)}.{_pick(r, LAST)}@{dom.name}"
        return f"{_pick(r, FIRST)}{1 + int(r.random() * 9998)}@{dom.name}"

    def _msgid(self, t: int, domain: str) -> str:
        r = self.r
        x = r.random()
        if x < 0.4:
            return f"<{r.getrandbits(64):016x}.{r.getrandbits(32):08x}@{domain}>"
        if x < 0.7:
            h = f"{r.getrandbits(128):032x}"
            return f"<{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}@{domain}>"
        tm = time.gmtime(t)
        return (f"<{tm.tm_year}{tm.tm_mon:02d}{tm.tm_mday:02d}{tm.tm_hour:02d}{tm.tm_min:02d}"
                f"{tm.tm_sec:02d}.{int(r.random() * (10**6)):06d}@{domain}>")

    def _ndr_msgid(self, t: int, q: str) -> str:
        tm = time.gmtime(t)
        return (f"<{tm.tm_year}{tm.tm_mon:02d}{tm.tm_mday:02d}{tm.tm_hour:02d}{tm.tm_min:02d}"
                f"{tm.tm_sec:02d}.{q}@{MYHOST}>")

    def _ps_connect(self, t: int, ip: str) -> tuple[int, str]:
        ps = self.pid("ps")
        port = 1024 + int(self.r.random() * 64000)
        peer = f"[{ip}]:{port}"
        me = MY_IP6 if ":" in ip else MY_IP4
        self.emit(t, f"postfix/postscreen[{ps}]: CONNECT from {peer} to [{me}]:25")
        return ps, peer

    # ---- deliveries
    def deliver_local(self, t: int, q: str, rcpt: tuple[str, int, str]) -> int:
        r = self.r
        addr, agent, orig = rcpt
        text, dur = self.local_delays[int(r.random() * 512)]
        t2 = t + dur + (r.random() < 0.3)
        if agent == LMTP:
            pid = self.pid("lmtp")
            tok = base64.b64encode(r.getrandbits(128).to_bytes(16, "big")).decode()[:22]
            self.emit(t2, f"postfix/lmtp[{pid}]: {q}: to=<{addr}>, relay={MYHOST}"
                          f"[private/dovecot-lmtp], {text}, dsn=2.0.0, status=sent "
                          f"(250 2.0.0 <{addr}> {tok} Saved)")
        elif agent == VIRTUAL:
            pid = self.pid("virtual")
            self.emit(t2, f"postfix/virtual[{pid}]: {q}: to=<{addr}>, relay=virtual, {text}, "
                          "dsn=2.0.0, status=sent (delivered to maildir)")
        else:
            pid = self.pid("local")
            self.emit(t2, f"postfix/local[{pid}]: {q}: to=<{addr}>, orig_to=<{orig}>, "
                          f"relay=local, {text}, dsn=2.0.0, status=sent (delivered to mailbox)")
        return t2

    def _sent_reply(self, dom: Domain, t: int, size: int) -> str:
        r = self.r
        if dom.kind == "google":
            return (f"250 2.0.0 OK  {t} {r.getrandbits(40):010x}si{1000 + int(r.random() * 8999)}"
                    f".{int(r.random() * 100)} - gsmtp")
        if dom.kind == "outlook":
            x = r.getrandbits(60)
            return (f"250 2.6.0 <{r.getrandbits(64):016x}@{MYHOST}> [InternalId="
                    f"{x % 10**12}, Hostname=AM{x % 9}PR0{x % 7}MB{1000 + x % 8999}.eurprd0"
                    f"{1 + x % 8}.prod.outlook.com] {size} bytes in 0.{100 + x % 899}, "
                    f"{10 + x % 890}.{x % 10} KB/sec Queued mail for delivery")
        if dom.kind == "yahoo":
            return "250 ok dirdel"
        return f"250 2.0.0 Ok: queued as {r.getrandbits(40):010X}"

    def _blocklist_reply(self, dom: Domain, t: int) -> str:
        if dom.kind == "outlook":
            return (f"550 5.7.1 Unfortunately, messages from [{MY_IP4}] weren't sent. Please "
                    "contact your Internet service provider since part of their network is on "
                    "our block list (S3150). You can also refer your provider to "
                    "http://mail.live.com/mail/troubleshooting.aspx#errors. "
                    "(in reply to MAIL FROM command)")
        if self.r.random() < 0.6:
            return (f"554 5.7.1 Service unavailable; Client host [{MY_IP4}] blocked using "
                    f"zen.spamhaus.org; https://www.spamhaus.org/query/ip/{MY_IP4} "
                    "(in reply to RCPT TO command)")
        return (f"554 5.7.1 Service unavailable; Client host [{MY_IP4}] blocked using "
                f"bl.spamcop.net; Blocked - see https://www.spamcop.net/bl.shtml?{MY_IP4} "
                "(in reply to RCPT TO command)")

    def _deferral(self, dom: Domain, addr: str, spree: bool) -> tuple[str, str, bool]:
        """(dsn, reason, connected) for a temporary failure."""
        r = self.r
        x = r.random()
        if spree and dom.kind == "google" and x < 0.7:
            return ("4.7.28", f"host {dom.mx}[{dom.mx_ip}] said: 421-4.7.28 [{MY_IP4}      15] "
                    "Our system has detected an unusual rate of 421-4.7.28 unsolicited mail "
                    "originating from your IP address. To protect our 421-4.7.28 users from "
                    "spam, mail sent from your IP address has been temporarily 421 4.7.28 rate "
                    "limited. - gsmtp (in reply to end of DATA command)", True)
        if x < 0.4:
            return ("4.7.1", f"host {dom.mx}[{dom.mx_ip}] said: 450 4.7.1 <{addr}>: Recipient "
                    "address rejected: Greylisted, see http://postgrey.schweikert.ch/help/"
                    f"{dom.name}.html (in reply to RCPT TO command)", True)
        if x < 0.7:
            return ("4.7.0", f"host {dom.mx}[{dom.mx_ip}] said: 421 4.7.0 Too many "
                    "connections, try again later (in reply to end of DATA command)", True)
        return ("4.4.1", f"connect to {dom.mx}[{dom.mx_ip}]:25: Connection timed out", False)

    def deliver_remote(self, t: int, q: str, rcpts: list[tuple[str, Domain]], size: int,
                       spree: float = -1.0) -> tuple[int, list[str]]:
        """smtp lines for each recipient, retries included. Returns (final time, bounced rcpts).

        `spree` is the progress (0..1) through the abuse burst, or -1 for normal traffic.
        """
        r = self.r
        emit = self.emit
        final = t
        bounced: list[str] = []
        listed = self.listed_from <= t < self.listed_until
        if spree >= 0:
            p_def = 0.03 + 0.3 * spree
            p_block = 0.0 if spree < 0.35 else 0.25 * (spree - 0.35) / 0.65 + 0.02
            p_unknown = 0.04
        else:
            p_def = 0.035
            p_block = 0.03 if listed else 0.0004
            p_unknown = 0.012
        last_dom = ""
        pid = 0
        for addr, dom in rcpts:
            text, dur = self.remote_delays[int(r.random() * 512)]
            if dom.name != last_dom:
                pid = self.pid("smtp")
                last_dom = dom.name
                if r.random() < 0.85:
                    emit(t + dur, f"postfix/smtp[{pid}]: {TLS_TRUST[int(r.random() * 4)]} TLS "
                                  f"connection established to {dom.mx}[{dom.mx_ip}]:25: "
                                  f"{TLS_CLIENT[int(r.random() * 3)]}")
            tag = f"postfix/smtp[{pid}]: {q}: to=<{addr}>, "
            relay = f"relay={dom.mx}[{dom.mx_ip}]:25, "
            t2 = t + dur
            x = r.random()
            if x < p_block:
                emit(t2, f"{tag}{relay}{text}, dsn=5.7.1, status=bounced (host {dom.mx}"
                         f"[{dom.mx_ip}] said: {self._blocklist_reply(dom, t2)})")
                bounced.append(addr)
            elif x < p_block + p_unknown:
                emit(t2, f"{tag}{relay}{text}, dsn=5.1.1, status=bounced (host {dom.mx}"
                         f"[{dom.mx_ip}] said: 550 5.1.1 <{addr}>: Recipient address rejected: "
                         "User unknown in virtual mailbox table (in reply to RCPT TO command))")
                bounced.append(addr)
            elif x < p_block + p_unknown + p_def:
                dsn, reason, connected = self._deferral(dom, addr, spree >= 0)
                rel = relay if connected else "relay=none, "
                emit(t2, f"{tag}{rel}{text}, dsn={dsn}, status=deferred ({reason})")
                t3 = t2 + 300 + int(r.random() * 2400)
                delay = t3 - t + r.random()
                d4 = r.random() * 0.8
                dl = (f"delay={fmt_delay(delay)}, delays={fmt_delay(delay - d4 - 0.05)}/"
                      f"{fmt_delay(0.05)}/{fmt_delay(d4 * 0.5)}/{fmt_delay(d4 * 0.5)}")
                rpid = self.pid("smtp")
                if r.random() < (0.6 if spree >= 0 else 0.9):
                    emit(t3, f"postfix/smtp[{rpid}]: {q}: to=<{addr}>, {relay}{dl}, "
                             f"dsn=2.0.0, status=sent ({self._sent_reply(dom, t3, size)})")
                elif spree >= 0 or listed:
                    emit(t3, f"postfix/smtp[{rpid}]: {q}: to=<{addr}>, {relay}{dl}, "
                             f"dsn=5.7.1, status=bounced (host {dom.mx}[{dom.mx_ip}] said: "
                             f"{self._blocklist_reply(dom, t3)})")
                    bounced.append(addr)
                else:
                    emit(t3, f"postfix/smtp[{rpid}]: {q}: to=<{addr}>, {relay}{dl}, "
                             f"dsn=5.2.2, status=bounced (host {dom.mx}[{dom.mx_ip}] said: "
                             f"552 5.2.2 <{addr}>: Mailbox full (in reply to RCPT TO command))")
                    bounced.append(addr)
                t2 = t3
            else:
                emit(t2, f"{tag}{relay}{text}, dsn=2.0.0, status=sent "
                         f"({self._sent_reply(dom, t2, size)})")
            if t2 > final:
                final = t2
        return final, bounced

    def ndr(self, t: int, q: str, sender: str, sender_dom: Domain | None) -> int:
        """Non-delivery notification for `q` to `sender`; returns when `q` may be removed."""
        r = self.r
        emit = self.emit
        nq = self.qid(t)
        cu = self.pid("cleanup")
        emit(t, f"postfix/cleanup[{cu}]: {nq}: message-id={self._ndr_msgid(t, nq)}")
        size = 2200 + int(r.random() * 4000)
        emit(t, f"postfix/qmgr[{self.qmgr_pid}]: {nq}: from=<>, size={size}, nrcpt=1 "
                "(queue active)")
        emit(t, f"postfix/bounce[{self.pid('bounce')}]: {q}: sender non-delivery notification: "
                f"{nq}")
        if sender_dom is None:
            agent = LMTP if sender.endswith("@example.org") else VIRTUAL
            t2 = self.deliver_local(t, nq, (sender, agent, ""))
        else:
            # A bounce of a bounce goes nowhere: the NDR itself is delivered or deferred.
            text, dur = self.remote_delays[int(r.random() * 512)]
            t2 = t + dur
            pid = self.pid("smtp")
            if r.random() < 0.9:
                emit(t2, f"postfix/smtp[{pid}]: {nq}: to=<{sender}>, relay={sender_dom.mx}"
                         f"[{sender_dom.mx_ip}]:25, {text}, dsn=2.0.0, status=sent "
                         f"({self._sent_reply(sender_dom, t2, 3000)})")
            else:
                emit(t2, f"postfix/smtp[{pid}]: {nq}: to=<{sender}>, relay={sender_dom.mx}"
                         f"[{sender_dom.mx_ip}]:25, {text}, dsn=5.1.1, status=bounced (host "
                         f"{sender_dom.mx}[{sender_dom.mx_ip}] said: 550 5.1.1 <{sender}>: "
                         "Recipient address rejected: User unknown (in reply to RCPT TO "
                         "command))")
        emit(t, f"postfix/qmgr[{self.qmgr_pid}]: {q}: removed")
        emit(t2, f"postfix/qmgr[{self.qmgr_pid}]: {nq}: removed")
        return t

    # ---- background sessions
    def inbound(self, t: int) -> None:
        r = self.r
        emit = self.emit
        dom = self._pick_domain()
        ep = dom.clients[int(r.random() * (len(dom.clients)))]
        self.last_ip = ep.ip
        ps, peer = self._ps_connect(t, ep.ip)
        emit(t, f"postfix/postscreen[{ps}]: PASS {'OLD' if r.random() < 0.9 else 'NEW'} {peer}")
        tag = f"postfix/smtpd[{self.pid('smtpd')}]: "
        client = ep.client
        emit(t, f"{tag}connect from {client}")
        tls = r.random() < 0.8
        if tls:
            emit(t, f"{tag}Anonymous TLS connection established from {client}: "
                    f"{TLS_SERVER[int(r.random() * 4)]}")
        q = self.qid(t)
        emit(t, f"{tag}{q}: client={client}")
        emit(t, f"postfix/cleanup[{self.pid('cleanup')}]: {q}: message-id="
                f"{self._msgid(t, dom.name)}")
        x = r.random()
        n = 1 if x < 0.82 else 2 if x < 0.93 else 3 + int(r.random() * 4)
        lr = self.local_rcpts
        rcpts = [lr[int(r.random() * (len(lr)))] for _ in range(n)]
        sender = self._ext_address(dom)
        size = self.sizes[int(r.random() * 1024)]
        emit(t, f"postfix/qmgr[{self.qmgr_pid}]: {q}: from=<{sender}>, size={size}, nrcpt={n} "
                "(queue active)")
        td = t + (r.random() < 0.3)
        ehlo = "ehlo=2 starttls=1" if tls else "ehlo=1"
        emit(td, f"{tag}disconnect from {client} {ehlo} mail=1 rcpt={n} data=1 quit=1 "
                 f"commands={n + 4 + 2 * tls}")
        final = t
        quota = r.random() < 0.003
        for i, rc in enumerate(rcpts):
            if quota and i == 0 and rc[1] == LMTP:
                text, dur = self.local_delays[int(r.random() * 512)]
                final = t + dur
                emit(final, f"postfix/lmtp[{self.pid('lmtp')}]: {q}: to=<{rc[0]}>, "
                            f"relay={MYHOST}[private/dovecot-lmtp], {text}, dsn=5.2.2, "
                            f"status=bounced (host {MYHOST}[private/dovecot-lmtp] said: "
                            f"552 5.2.2 <{rc[0]}> Quota exceeded (mailbox for user is full) "
                            "(in reply to end of DATA command))")
                continue
            t2 = self.deliver_local(t, q, rc)
            if t2 > final:
                final = t2
        if quota and rcpts[0][1] == LMTP:
            self.ndr(final, q, sender, dom)
        else:
            emit(final, f"postfix/qmgr[{self.qmgr_pid}]: {q}: removed")

    def _reject_line(self, ip: str, helo: str, sender: str) -> str:
        r = self.r
        lr = self.local_rcpts
        x = r.random()
        if x < 0.35:
            dom = _pick(r, LOCAL_DOMAINS)
            user = f"{_pick(r, FIRST)}{_pick(r, ('', '.', '_'))}{_pick(r, LAST)}"
            table = "local recipient table" if dom == "example.org" else "virtual mailbox table"
            return (f"550 5.1.1 <{user}@{dom}>: Recipient address rejected: User unknown in "
                    f"{table}; from=<{sender}> to=<{user}@{dom}> proto=ESMTP helo=<{helo}>")
        rcpt = lr[int(r.random() * (len(lr)))][0]
        if x < 0.65:
            bl = _pick(r, ("zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org"))
            return (f"554 5.7.1 Service unavailable; Client host [{ip}] blocked using {bl}; "
                    f"from=<{sender}> to=<{rcpt}> proto=ESMTP helo=<{helo}>")
        if x < 0.8:
            return (f"450 4.7.25 Client host rejected: cannot find your hostname, [{ip}]; "
                    f"from=<{sender}> to=<{rcpt}> proto=ESMTP helo=<{helo}>")
        if x < 0.9 and sender:
            return (f"450 4.1.8 <{sender}>: Sender address rejected: Domain not found; "
                    f"from=<{sender}> to=<{rcpt}> proto=ESMTP helo=<{helo}>")
        helo = f"WIN-{r.getrandbits(40):010X}"
        return (f"504 5.5.2 <{helo}>: Helo command rejected: need fully-qualified hostname; "
                f"from=<{sender}> to=<{rcpt}> proto=ESMTP helo=<{helo}>")

    def inbound_reject(self, t: int) -> None:
        r = self.r
        emit = self.emit
        probing = r.random() < 0.35
        ips = self.probe_ips if probing else self.spam_ips
        ip = ips[int(r.random() * len(ips))]
        self.last_ip = ip
        ps, peer = self._ps_connect(t, ip)
        emit(t, f"postfix/postscreen[{ps}]: PASS OLD {peer}")
        tag = f"postfix/smtpd[{self.pid('smtpd')}]: "
        client = f"unknown[{ip}]"
        emit(t, f"{tag}connect from {client}")
        helo = _pick(r, ("spambot.example", "localhost", f"[{ip}]", "User", "ylmf-pc",
                         f"{self._word()}.com"))
        sender = ("" if r.random() < 0.15
                  else f"{_pick(r, SENDER_PARTS)}@{self._word()}.{_pick(r, TLDS)}")
        n = 1 + int(r.random() * r.random() * 4)
        for _ in range(n):
            if probing:
                dom = self._pick_domain()
                victim = self._ext_address(dom)
                code = "454 4.7.1" if r.random() < 0.5 else "554 5.7.1"
                body = (f"{code} <{victim}>: Relay access denied; from=<{sender}> "
                        f"to=<{victim}> proto=ESMTP helo=<{helo}>")
            else:
                body = self._reject_line(ip, helo, sender)
            emit(t, f"{tag}NOQUEUE: reject: RCPT from {client}: {body}")
        t2 = t + int(r.random() * 3)
        if r.random() < 0.2:
            emit(t2, f"{tag}lost connection after RCPT from {client}")
            emit(t2, f"{tag}disconnect from {client} ehlo=1 mail=1 rcpt=0/{n} "
                     f"commands=2/{n + 2}")
        else:
            emit(t2, f"{tag}disconnect from {client} ehlo=1 mail=1 rcpt=0/{n} rset=1 quit=1 "
                     f"commands=4/{n + 4}")

    def postscreen_drop(self, t: int) -> None:
        r = self.r
        emit = self.emit
        ip = self.spam_ips[int(r.random() * 400)] if r.random() < 0.7 else self._ip(0.1)
        ps, peer = self._ps_connect(t, ip)
        tag = f"postfix/postscreen[{ps}]: "
        x = r.random()
        if x < 0.35:
            emit(t, f"{tag}PREGREET {_pick(r, (11, 14, 20))} after 0.{10 + int(r.random() * 89)} "
                    f"from {peer}: EHLO {_pick(r, ('User', 'ylmf-pc', 'localhost'))}\\r\\n")
        elif x < 0.75:
            emit(t + 1, f"{tag}DNSBL rank {2 + int(r.random() * 7)} for {peer}")
            rc = self.local_rcpts[int(r.random() * (len(self.local_rcpts)))][0]
            emit(t + 6, f"{tag}NOQUEUE: reject: RCPT from {peer}: 550 5.7.1 Service unavailable; "
                        f"client [{ip}] blocked using zen.spamhaus.org; from=<"
                        f"{_pick(r, SENDER_PARTS)}@{self._word()}.{_pick(r, TLDS)}>, to=<{rc}>, "
                        f"proto=ESMTP, helo=<{self._word()}.{_pick(r, TLDS)}>")
            t += 6
        elif x < 0.95:
            emit(t + 1, f"{tag}HANGUP after {1 + int(r.random() * 8)}.{int(r.random() * 10)} "
                        f"from {peer} in tests before SMTP handshake")
            t += 1
        else:
            emit(t + 1, f"{tag}COMMAND PIPELINING from {peer} after EHLO: MAIL FROM:<>\\r\\n")
            t += 1
        emit(t, f"{tag}DISCONNECT {peer}")

    def submission(self, t: int) -> None:
        r = self.r
        emit = self.emit
        user = self.users[int(r.random() ** 1.3 * len(self.users))]
        ep = user.endpoints[int(r.random() * (len(user.endpoints)))]
        self.last_sub_ip = ep.ip
        tag = f"postfix/submission/smtpd[{self.pid('sub')}]: "
        client = ep.client
        emit(t, f"{tag}connect from {client}")
        emit(t, f"{tag}Anonymous TLS connection established from {client}: "
                f"{TLS_SERVER[int(r.random() * 2)]}")
        nmsg = 1 if r.random() < 0.9 else 2 + int(r.random() * 2)
        method = "PLAIN" if r.random() < 0.7 else "LOGIN"
        total_rcpt = 0
        user_dom = user.address.partition("@")[2]
        for _ in range(nmsg):
            q = self.qid(t)
            emit(t, f"{tag}{q}: client={client}, sasl_method={method}, "
                    f"sasl_username={user.address}")
            emit(t, f"postfix/cleanup[{self.pid('cleanup')}]: {q}: message-id="
                    f"{self._msgid(t, user_dom)}")
            x = r.random()
            n = 1 if x < 0.7 else 2 if x < 0.85 else 3 + int(r.random() * 6)
            total_rcpt += n
            size = self.sizes[int(r.random() * 1024)]
            emit(t, f"postfix/qmgr[{self.qmgr_pid}]: {q}: from=<{user.address}>, size={size}, "
                    f"nrcpt={n} (queue active)")
            ext: list[tuple[str, Domain]] = []
            final = t
            for _ in range(n):
                if r.random() < 0.2:
                    lr = self.local_rcpts
                    t2 = self.deliver_local(t, q, lr[int(r.random() * (len(lr)))])
                    if t2 > final:
                        final = t2
                else:
                    dom = self._pick_domain()
                    ext.append((self._ext_address(dom), dom))
            bounced: list[str] = []
            if ext:
                ext.sort(key=lambda a: a[1].name)
                t2, bounced = self.deliver_remote(t, q, ext, size)
                if t2 > final:
                    final = t2
            if bounced:
                self.ndr(final, q, user.address, None)
            else:
                emit(final, f"postfix/qmgr[{self.qmgr_pid}]: {q}: removed")
            t += int(r.random() * 3)
        emit(t, f"{tag}disconnect from {client} ehlo=2 starttls=1 auth=1 mail={nmsg} "
                f"rcpt={total_rcpt} data={nmsg} quit=1 commands={5 + 2 * nmsg + total_rcpt}")

    def auth_failures(self, t: int, tag: str, client: str, n: int, names: list[str]) -> None:
        r = self.r
        emit = self.emit
        for _ in range(n):
            x = r.random()
            if x < 0.35:
                emit(t, f"{tag}warning: {client}: SASL LOGIN authentication failed: UGFzc3dvcmQ6")
            else:
                if x < 0.6:
                    emit(t, f"{tag}warning: SASL authentication failure: Password verification "
                            "failed")
                mech = "PLAIN" if x < 0.8 else "LOGIN"
                emit(t, f"{tag}warning: {client}: SASL {mech} authentication failed: "
                        f"authentication failure, sasl_username={_pick(r, names)}")
            t += int(r.random() * 3)

    def brute_session(self, t: int, ip: str, names: list[str]) -> int:
        r = self.r
        emit = self.emit
        sub = r.random() < 0.6
        tag = (f"postfix/submission/smtpd[{self.pid('sub')}]: " if sub
               else f"postfix/smtpd[{self.pid('smtpd')}]: ")
        client = f"unknown[{ip}]"
        if not sub:
            ps, peer = self._ps_connect(t, ip)
            emit(t, f"postfix/postscreen[{ps}]: PASS OLD {peer}")
        emit(t, f"{tag}connect from {client}")
        if sub:
            emit(t, f"{tag}Anonymous TLS connection established from {client}: {TLS_SERVER[2]}")
        n = 1 + int(r.random() * 3)
        self.auth_failures(t, tag, client, n, names)
        t += 2 * n
        ok = 3 if sub else 1
        ehlo = "ehlo=2 starttls=1" if sub else "ehlo=1"
        if r.random() < 0.3:
            emit(t, f"{tag}lost connection after AUTH from {client}")
            emit(t, f"{tag}disconnect from {client} {ehlo} auth=0/{n} commands={ok - 1}/"
                    f"{ok - 1 + n}")
        else:
            emit(t, f"{tag}disconnect from {client} {ehlo} auth=0/{n} quit=1 commands={ok}/"
                    f"{ok + n}")
        return t

    def brute(self, t: int) -> None:
        r = self.r
        ip = self.brute_ips[int(r.random() * 4)] if r.random() < 0.8 else self._ip4()
        names = [*BRUTE_NAMES, *(u.address for u in self.users[:40:4] if u.address != COMPROMISED)]
        self.brute_session(t, ip, names)

    def noise(self, t: int) -> None:
        r = self.r
        emit = self.emit
        ip = self._ip4()
        tag = f"postfix/smtpd[{self.pid('smtpd')}]: "
        client = f"unknown[{ip}]"
        x = r.random()
        ps, peer = self._ps_connect(t, ip)
        emit(t, f"postfix/postscreen[{ps}]: PASS NEW {peer}")
        if x < 0.3:
            emit(t, f"{tag}warning: hostname {self._word()}.{_pick(r, TLDS)} does not resolve "
                    f"to address {ip}: Name or service not known")
            emit(t, f"{tag}connect from {client}")
            emit(t + 1, f"{tag}lost connection after EHLO from {client}")
            emit(t + 1, f"{tag}disconnect from {client} ehlo=1 commands=1")
        elif x < 0.55:
            emit(t, f"{tag}connect from {client}")
            emit(t, f"{tag}warning: non-SMTP command from {client}: GET / HTTP/1.1")
            emit(t, f"{tag}disconnect from {client} unknown=0/1 commands=0/1")
        elif x < 0.8:
            emit(t, f"{tag}connect from {client}")
            emit(t + 1, f"{tag}SSL_accept error from {client}: lost connection")
            emit(t + 1, f"{tag}lost connection after STARTTLS from {client}")
            emit(t + 1, f"{tag}disconnect from {client} ehlo=1 starttls=0/1 commands=1/2")
        else:
            emit(t, f"{tag}connect from {client}")
            emit(t + 5, f"{tag}lost connection after CONNECT from {client}")
            emit(t + 5, f"{tag}disconnect from {client} commands=0/0")

    # ---- periodic lines
    def anvil(self, t: int) -> None:
        r = self.r
        tag = f"postfix/anvil[{self.anvil_pid}]: statistics: "
        at = syslog_stamp(t - 1 + int(r.random() * 589))
        self.emit(t, f"{tag}max connection rate {1 + int(r.random() * 6)}/60s for "
                     f"(smtp:{self.last_ip}) at {at}")
        self.emit(t, f"{tag}max connection count {1 + int(r.random() * 3)} for "
                     f"(submission:{self.last_sub_ip}) at {at}")
        self.emit(t, f"{tag}max cache size {2 + int(r.random() * 20)} at {at}")

    def cron_mail(self, t: int) -> None:
        q = self.qid(t)
        emit = self.emit
        emit(t, f"postfix/pickup[{self.pickup_pid}]: {q}: uid=0 from=<root>")
        emit(t, f"postfix/cleanup[{self.pid('cleanup')}]: {q}: message-id="
                f"{self._ndr_msgid(t, q)}")
        emit(t, f"postfix/qmgr[{self.qmgr_pid}]: {q}: from=<root@{LOCAL_DOMAINS[0]}>, "
                f"size={700 + int(self.r.random() * 3000)}, nrcpt=1 (queue active)")
        t2 = self.deliver_local(t, q, (f"admin@{LOCAL_DOMAINS[0]}", LOCAL,
                                       f"root@{LOCAL_DOMAINS[0]}"))
        emit(t2, f"postfix/qmgr[{self.qmgr_pid}]: {q}: removed")

    def reload(self, t: int) -> None:
        self.emit(t, f"postfix/postfix-script[{self._new_pid()}]: refreshing the Postfix mail "
                     "system")
        self.emit(t, f"postfix/master[{self.master_pid}]: reload -- version 3.7.11, "
                     "configuration /etc/postfix")
        self.qmgr_pid = self._new_pid()
        self.pickup_pid = self._new_pid()

    # ---- the scripted incident
    def incident(self, day_start: int) -> dict[str, object]:
        """carol@example.org: brute force from 5 IPs, login from one, 2 h of forged spam."""
        r = self.r
        emit = self.emit
        bf_start = day_start + 9 * 3600 + 40 * 60
        bf_end = day_start + 13 * 3600 + 5 * 60
        # guesses around the victim, none of them another real account
        names = [COMPROMISED] * 6 + ["admin@example.org", "info@example.org",
                                     "carol@example.net", "carol"]
        sessions: list[tuple[int, str]] = []
        for k, ip in enumerate(self.carol_attack_ips):
            t = bf_start + k * 300 + int(r.random() * 60)
            while t < bf_end:
                sessions.append((t, ip))
                t += 20 + int(r.random() * 60)
        sessions.sort()
        for t, ip in sessions:
            self.brute_session(t, ip, names)
        ip = self.carol_attack_ips[2]
        client = f"unknown[{ip}]"
        spree_start = bf_end + 300
        counts = [2] * SPREE_MESSAGES
        extra = SPREE_RECIPIENTS - 2 * SPREE_MESSAGES
        while extra > 0:
            i = int(r.random() * SPREE_MESSAGES)
            if counts[i] < 5:
                counts[i] += 1
                extra -= 1
        per_session = 10
        n_sessions = SPREE_MESSAGES // per_session
        gap = SPREE_SECONDS // n_sessions
        self.listed_from = spree_start + int(SPREE_SECONDS * 0.35)
        self.listed_until = spree_start + SPREE_SECONDS + 12 * 3600
        m = 0
        for s in range(n_sessions):
            t = spree_start + s * gap + int(r.random() * 5)
            tag = f"postfix/submission/smtpd[{self.pid('sub')}]: "
            emit(t, f"{tag}connect from {client}")
            emit(t, f"{tag}Anonymous TLS connection established from {client}: {TLS_SERVER[2]}")
            nr = 0
            for _ in range(per_session):
                n = counts[m]
                m += 1
                nr += n
                q = self.qid(t)
                emit(t, f"{tag}{q}: client={client}, sasl_method=LOGIN, "
                        f"sasl_username={COMPROMISED}")
                forged = r.random() < 0.85
                if forged:
                    fdom = self.forged_domains[int(r.random() * (len(self.forged_domains)))]
                    sender = f"{_pick(r, FORGED_PARTS)}@{fdom}"
                else:
                    fdom, sender = "example.org", COMPROMISED
                emit(t, f"postfix/cleanup[{self.pid('cleanup')}]: {q}: message-id="
                        f"{self._msgid(t, fdom)}")
                size = 3000 + int(r.random() * 9000)
                emit(t, f"postfix/qmgr[{self.qmgr_pid}]: {q}: from=<{sender}>, size={size}, "
                        f"nrcpt={n} (queue active)")
                rc = []
                for _ in range(n):
                    dom = self._pick_domain()
                    rc.append((f"{_pick(r, FIRST)}{1 + int(r.random() * 99998)}@{dom.name}", dom))
                rc.sort(key=lambda a: a[1].name)
                final, bounced = self.deliver_remote(t, q, rc, size,
                                                     spree=(t - spree_start) / SPREE_SECONDS)
                if bounced:
                    sdom = self.dom_by_name[fdom] if forged else None
                    self.ndr(final, q, sender, sdom)
                else:
                    emit(final, f"postfix/qmgr[{self.qmgr_pid}]: {q}: removed")
                t += 1 + int(r.random() * 8)
            emit(t, f"{tag}disconnect from {client} ehlo=2 starttls=1 auth=1 mail={per_session} "
                    f"rcpt={nr} data={per_session} quit=1 commands={5 + 2 * per_session + nr}")
        return {"attack_ips": list(self.carol_attack_ips), "login_ip": ip,
                "bruteforce_start": bf_start, "spree_start": spree_start,
                "spree_end": spree_start + SPREE_SECONDS, "messages": SPREE_MESSAGES,
                "recipients": SPREE_RECIPIENTS}


# Relative connection volume per hour of day (UTC), and for Saturday/Sunday.
_HOURLY = (0.35, 0.3, 0.28, 0.27, 0.3, 0.4, 0.6, 0.9, 1.3, 1.5, 1.55, 1.5, 1.35, 1.45, 1.5, 1.5,
           1.4, 1.25, 1.0, 0.85, 0.75, 0.65, 0.55, 0.45)
_WEEKEND = 0.55

KINDS = ("inbound", "inbound_reject", "postscreen_drop", "submission", "brute", "noise")
WEIGHTS = (0.40, 0.17, 0.10, 0.23, 0.06, 0.04)


def _activity(t: int) -> float:
    tm = time.gmtime(t)
    f = _HOURLY[tm.tm_hour]
    return f * _WEEKEND if tm.tm_wday >= 5 else f


@dataclass(frozen=True)
class Params:
    lines: int
    seed: int = 1
    days: int = 5
    start: int = DEFAULT_START

    def filename(self) -> str:
        return f"postfix-{self.lines}-s{self.seed}-d{self.days}-v{GEN_VERSION}.log"


def _kind_picker(tr: Traffic) -> tuple[list[float], list[Callable[[int], None]]]:
    cum: list[float] = []
    acc = 0.0
    for w in WEIGHTS:
        acc += w
        cum.append(acc / sum(WEIGHTS))
    return cum, [getattr(tr, k) for k in KINDS]


def _lines_per_session(p: Params) -> float:
    """Average line count of a background session, measured on a throw-away sample."""
    sink = Timeline(None, 1 << 60, p.start)
    tr = Traffic(random.Random(p.seed ^ 0x5EED), sink, p.start + p.days * 86400 // 2)
    cum, fns = _kind_picker(tr)
    rnd = tr.r.random
    n = 4000
    for i in range(n):
        fns[bisect.bisect_left(cum, rnd())](p.start + i)
    return sink.added / n


def generate(out: TextIO | None, p: Params) -> dict[str, object]:
    """Write exactly `p.lines` time-ordered lines to `out`; return facts about the log."""
    rng = random.Random(p.seed)
    span = p.days * 86400
    long_from = p.start + (2 * 86400 + 4 * 3600 if p.days >= 3 else span // 2)
    sink = Timeline(out, p.lines, p.start)
    tr = Traffic(rng, sink, long_from)
    day2 = p.start + (86400 if p.days >= 2 else 0)
    facts = tr.incident(day2)
    scripted = sink.added
    per_session = _lines_per_session(p)
    periodic = span // 600 * 3 + span // 3600 * 5  # anvil and cron lines
    budget = max(p.lines - scripted - periodic, p.lines // 10, 1)
    mean_act = sum(_activity(p.start + h * 3600 + 1800) for h in range(p.days * 24)) / (p.days * 24)
    rate = budget / per_session / span / mean_act  # sessions per second at activity 1.0
    cum, fns = _kind_picker(tr)
    rnd = rng.random
    expo = rng.expovariate
    bl = bisect.bisect_left
    t = float(p.start)
    next_anvil = p.start + 600
    next_cron = p.start + 300
    reloaded = False
    act_hour = -1
    act = 1.0
    while not sink.full:
        it = int(t)
        hour = it // 3600
        if hour != act_hour:
            act_hour = hour
            act = _activity(it)
        t += expo(rate * act)
        it = int(t)
        sink.flush_before(it)
        if it >= next_anvil:
            tr.anvil(it)
            next_anvil += 600
        if it >= next_cron:
            tr.cron_mail(it)
            next_cron += 3600
        if not reloaded and it >= long_from:
            tr.reload(long_from)
            reloaded = True
        fns[bl(cum, rnd())](it)
    sink.flush_all()
    facts.update(lines=sink.written, first=p.start, last=sink.last_sec, seed=p.seed,
                 days=p.days, long_queue_ids_from=long_from)
    return facts


def facts_path(log: Path) -> Path:
    return log.with_name(log.name + ".facts.json")


def ensure(p: Params, gz: bool = False, out_dir: Path = OUT_DIR, force: bool = False) -> Path:
    """Path of the generated log for `p`, made only if missing (and its .gz when asked).

    Beside it, `<log>.facts.json` records the parameters and the incident's ground truth.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / p.filename()
    if force or not path.exists() or not facts_path(path).exists():
        write(p, path)
    if gz:
        gzp = path.with_name(path.name + ".gz")
        if force or not gzp.exists() or gzp.stat().st_mtime != path.stat().st_mtime:
            tmp = gzp.with_name(gzp.name + ".tmp")
            with path.open("rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            st = path.stat()
            os.utime(tmp, (st.st_atime, st.st_mtime))
            os.replace(tmp, gzp)
    return path


def read_facts(log: Path) -> dict[str, object]:
    data = json.loads(facts_path(log).read_text())
    assert isinstance(data, dict)
    return data


def write(p: Params, path: Path) -> dict[str, object]:
    """Write the log to a regular file atomically (temp file, then rename), plus its facts."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="ascii", buffering=1 << 20) as f:
        facts = generate(f, p)
    last = facts["last"]
    assert isinstance(last, int)
    # The log has no year: date the file by its last line so year inference from mtime works.
    os.utime(tmp, (last, last))
    os.replace(tmp, path)
    facts_path(path).write_text(json.dumps({"generator": f"genlog v{GEN_VERSION}",
                                            "start": p.start, **facts}, indent=2) + "\n")
    return facts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--lines", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--out", type=Path, help="write here instead of bench/out/<name>")
    ap.add_argument("--gz", action="store_true", help="also make a .gz copy (bench/out only)")
    ap.add_argument("--force", action="store_true", help="regenerate even if the file exists")
    a = ap.parse_args(argv)
    if a.lines < 1 or a.days < 1:
        ap.error("--lines and --days must be positive")
    p = Params(lines=a.lines, seed=a.seed, days=a.days)
    t0 = time.perf_counter()
    if a.out is not None:
        if a.out.is_file() or not a.out.exists():
            facts = write(p, a.out)
        else:  # a device or pipe such as /dev/stdout: write straight through, never rename
            with a.out.open("w", encoding="ascii", buffering=1 << 20) as f:
                facts = generate(f, p)
        print(f"{a.out}: {facts['lines']} lines in {time.perf_counter() - t0:.1f}s",
              file=sys.stderr)
        return 0
    path = ensure(p, gz=a.gz, force=a.force)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
