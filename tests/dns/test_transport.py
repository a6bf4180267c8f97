"""The UDP transport: which datagrams it takes (anti-spoofing), what it hands to dnspython, its
timeouts, and that a plain check never imports dnspython."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, cast

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rrset
import pytest

from relayguard.dns import _dnspython, wire
from relayguard.dns._events import Query
from relayguard.dns.loop import Loop
from relayguard.dns.names import normalize_domain
from relayguard.dns.transport import Outgoing, Server, UdpPool, _Attempt, _Channel, prepare
from relayguard.dns.wire import Reply, RRset
from tests.dns.lab import DnsLab

NAME = "2.0.0.127.zen.dnsbl.test."


def reply_to(request: dns.message.Message, *answers: str, qid: int | None = None,
             name: str = NAME, options: list[dns.edns.Option] | None = None) -> bytes:  # fmt: skip
    reply = dns.message.make_response(request)
    if options is not None:
        reply.use_edns(0, options=options)
    for text in answers:
        reply.answer.append(dns.rrset.from_text(name, 60, "IN", "A", text))
    if qid is not None:
        reply.id = qid
    return bytes(reply.to_wire(want_shuffle=False))  # dnspython shuffles records by default


def request_for(outgoing: Outgoing, qid: int) -> dns.message.Message:
    request = _dnspython.make_request(outgoing.query)
    request.id = qid
    return request


Outcome = tuple["Reply | None", "BaseException | None"]


def waiting_channel(outgoing: Outgoing, qid: int) -> tuple[_Channel, list[Outcome]]:
    """A channel with one attempt waiting for query ``qid``; what ends it lands in the list."""
    channel = _Channel()
    got: list[Outcome] = []
    channel.pending[qid] = _Attempt(channel, qid, outgoing, lambda r, e: got.append((r, e)))
    return channel, got


def test_only_the_reply_to_the_question_is_taken() -> None:
    outgoing = prepare(Query(NAME, "A"))
    assert outgoing.question is not None
    channel, got = waiting_channel(outgoing, 7)
    request = request_for(outgoing, 7)
    other = _dnspython.make_request(Query("3.0.0.127.zen.dnsbl.test.", "A"))
    other.id = 7
    for spoof in (
        reply_to(request, "127.0.0.2", qid=8),  # another id
        reply_to(other, "127.0.0.2", name="3.0.0.127.zen.dnsbl.test."),  # another question
        request.to_wire(),  # the query itself (QR clear)
        b"\x00\x07" + b"\xff" * 40,  # garbage with the right id
        b"\x00\x07\x81",  # shorter than a header
    ):
        channel.datagram_received(spoof)
        assert got == []
    channel.datagram_received(reply_to(request, "127.0.0.4"))
    assert got == [(Reply(0, 0x8100, (RRset(NAME, wire.A, 60, ("127.0.0.4",)),), None), None)]
    assert channel.pending == {}


def test_a_reply_outside_the_codec_is_read_by_dnspython() -> None:
    outgoing = prepare(Query(NAME, "A"))
    channel, got = waiting_channel(outgoing, 9)
    cookie = dns.edns.CookieOption(b"\x01" * 8, b"")
    data = reply_to(request_for(outgoing, 9), "127.0.0.2", options=[cookie])
    with pytest.raises(wire.Unusual):
        assert outgoing.question is not None
        wire.parse_reply(data, 9, outgoing.question, NAME)
    channel.datagram_received(data)
    assert got == [(Reply(0, 0x8100, (RRset(NAME, wire.A, 60, ("127.0.0.2",)),), None), None)]


def test_a_name_outside_the_codec_is_asked_and_checked_by_dnspython() -> None:
    outgoing = prepare(Query("*.example.test.", "A"))
    assert outgoing.question is None and outgoing.request is not None
    channel, got = waiting_channel(outgoing, 11)
    outgoing.request.id = 11
    wrong = _dnspython.make_request(Query("x.example.test.", "A"))
    wrong.id = 11
    channel.datagram_received(reply_to(wrong, "192.0.2.1", name="x.example.test."))
    assert got == []
    right = reply_to(outgoing.request, "192.0.2.1", name="*.example.test.")
    channel.datagram_received(right)
    ((reply, error),) = got
    assert error is None and reply is not None
    assert reply.answer == (RRset("*.example.test.", wire.A, 60, ("192.0.2.1",)),)


class FakeServer:
    """A UDP socket on 127.0.0.1 that answers the first query with the datagrams a test gives
    (from a thread), or never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.server = Server("127.0.0.1", self.sock.getsockname()[1])
        self.received: list[bytes] = []

    def answer(self, make: list[object]) -> threading.Thread:
        def serve() -> None:
            data, peer = self.sock.recvfrom(4096)
            self.received.append(data)
            request = dns.message.from_wire(data)
            for build in make:
                assert callable(build)
                self.sock.sendto(build(request), peer)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        return thread


def exchange(pool: UdpPool, query: Query, timeout: float, got: list[Outcome]) -> None:
    pool.exchange(prepare(query), timeout, lambda r, e: got.append((r, e)))


def test_pool_takes_the_real_reply_after_spoofed_ones_over_udp() -> None:
    fake = FakeServer()
    loop = Loop()
    pool = UdpPool(fake.server, loop)
    got: list[Outcome] = []
    try:
        served = fake.answer([
            lambda r: reply_to(r, "127.0.0.9", qid=(r.id + 1) % 65536),
            # the right id, another name: "9.0.0.127..." (byte 13 is the first label's)
            lambda r: reply_to(r, "127.0.0.9")[:13] + b"9" + reply_to(r, "127.0.0.9")[14:],
            lambda r: reply_to(r, "127.0.0.2"),
        ])  # fmt: skip
        exchange(pool, Query(NAME, "A"), 5.0, got)
        loop.run_until(lambda: bool(got))
        served.join(10)
    finally:
        pool.close()
        loop.close()
        fake.sock.close()
    assert got == [(Reply(0, 0x8100, (RRset(NAME, wire.A, 60, ("127.0.0.2",)),), None), None)]
    question = wire.encode_question(NAME, "A")
    assert question is not None
    (sent,) = fake.received
    assert sent == wire.encode_query(int.from_bytes(sent[:2], "big"), question)


def test_each_attempt_times_out_on_its_own_deadline() -> None:
    fake = FakeServer()  # never answers
    loop = Loop()
    pool = UdpPool(fake.server, loop)
    outcomes: list[str] = []
    try:
        for label, timeout in (("late", 0.4), ("early", 0.05), ("middle", 0.2)):

            def ended(reply: Reply | None, error: BaseException | None, label: str = label) -> None:
                outcomes.append(f"{label} {type(error).__name__}")

            pool.exchange(prepare(Query(NAME, "A")), timeout, ended)
        loop.run_until(lambda: len(outcomes) == 3)
    finally:
        pool.close()
        loop.close()
        fake.sock.close()
    assert outcomes == ["early TimeoutError", "middle TimeoutError", "late TimeoutError"]


def test_question_bytes_of_a_txt_query() -> None:
    outgoing = prepare(Query("example.test.", "TXT"))
    assert outgoing.question == b"\x07example\x04test\x00" + struct.pack("!HH", 16, 1)


# --- no dnspython on the usual path -------------------------------------------------------------

CHECK = """
import json, sys
from relayguard.dns import listfile
from relayguard.dns.io import ResolverOptions, check_dnsbl, parse_targets
from relayguard.dns.resolver import choose_resolver
report = check_dnsbl(parse_targets(["198.18.0.1", "127.0.0.2"]), listfile.load(sys.argv[2]),
                     choose_resolver(sys.argv[1]), options=ResolverOptions(timeout=2, tries=1))
listed = sum(r.verdict == "listed" for s in report.subjects for r in s.results)
print(json.dumps({"dns": sorted(m for m in sys.modules if m == "dns" or m.startswith("dns.")),
                  "listed": listed}))
"""


def test_a_plain_check_never_imports_dnspython(dns_lab: DnsLab, tmp_path: Path) -> None:
    lists = dns_lab.lists_file(tmp_path, [{"zone": "bench01.dnsbl.test"},
                                          {"zone": "zen.dnsbl.test", "like": "spamhaus-zen"}],
                               "lists.toml")  # fmt: skip
    run = subprocess.run([sys.executable, "-c", CHECK, dns_lab.resolver, str(lists)],
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert json.loads(run.stdout) == {"dns": [], "listed": 2}


@pytest.mark.parametrize(
    "text",
    ["Example.TEST.", "mail.example.test", "_dmarc.example.test", "xn--bcher-kva.example",
     "a" * 63 + ".test", "a-b.c_d.test", "B\u00fccher.example.", "-bad.test", "a..b", "a b.test",
     "a" * 64 + ".test", ("a" * 50 + ".") * 5 + "test", "1.2.3.4", "exa$mple.test", "@"],
)  # fmt: skip
def test_domain_names_are_normalized_as_dnspython_would(text: str) -> None:
    def with_dnspython(raw: str) -> str:
        raw = raw.strip()
        raw = raw.rstrip(".") if raw.endswith(".") and not raw.endswith("..") else raw
        try:
            name = dns.name.from_text(raw, origin=None).to_text(omit_final_dot=True).lower()
        except Exception:
            return "error"
        ok = len(name) <= 253 and all(
            label and len(label) <= 63 and label[0] != "-" and label[-1] != "-"
            and all((c.isalnum() and c.isascii()) or c in "-_" for c in label)
            for label in name.split(".")
        )  # fmt: skip
        return name if ok and not text.strip().startswith("-") else "error"

    try:
        mine = normalize_domain(text)
    except Exception:
        mine = "error"
    assert mine == with_dnspython(text)


class RefusingSocket:
    def send(self, data: bytes) -> int:
        raise OSError(101, "Network is unreachable")

    def close(self) -> None:
        pass


def test_a_send_that_fails_fails_that_attempt_only() -> None:
    loop = Loop()
    pool = UdpPool(Server("127.0.0.1", 53), loop)
    for _ in range(8):  # an open pool whose sockets cannot send
        pool._channels.append(_Channel(cast(socket.socket, RefusingSocket())))
    got: list[Outcome] = []
    exchange(pool, Query(NAME, "A"), 5.0, got)
    loop.run_until(lambda: bool(got))
    ((reply, error),) = got
    assert reply is None and isinstance(error, OSError)
    assert (error.errno, error.strerror) == (101, "Network is unreachable")
    assert sum(len(c.pending) for c in pool._channels) == 0


# --- issue 5, a fresh user's pass -------------------------------------------------------------


def test_an_answer_over_the_bounds_is_an_error_not_a_shorter_answer() -> None:
    from relayguard.dns._events import Status
    from relayguard.dns.transport import MAX_RECORDS, MAX_TXT, read_reply

    query = Query("big.example.test.", "TXT")
    many = RRset("big.example.test.", wire.TXT, 60, tuple((b"r%d" % n,) for n in range(8193)))
    answer = read_reply(query, Reply(0, 0x8180, (many,), None), ())
    assert (answer.status, answer.records, answer.detail) == (
        Status.ERROR, (), "answer too large to read whole (over 8192 records)")  # fmt: skip
    long = RRset("big.example.test.", wire.TXT, 60, ((b"v=spf1 " + b"x" * 65529,),))
    answer = read_reply(query, Reply(0, 0x8180, (long,), None), ())
    assert (answer.status, answer.detail) == (
        Status.ERROR, "answer too large to read whole (a TXT record over 65535 characters)")
    assert (MAX_RECORDS, MAX_TXT) == (8192, 65535)


def test_exception_names_do_not_reach_the_user() -> None:
    from relayguard.dns.transport import failure

    answer = failure(Query(NAME, "A"), EOFError("EOF"), Server("127.0.0.1", 53))
    assert answer.detail == (
        "127.0.0.1:53: the server closed the connection before the whole answer came")


class TruncatingServer:
    """Loopback DNS that sets TC on every answer: over UDP (as servers do) and over TCP too,
    where nothing excuses it, with an empty answer section."""

    def __init__(self) -> None:
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(8)
        self.threads = [threading.Thread(target=self._serve_udp, daemon=True),
                        threading.Thread(target=self._serve_tcp, daemon=True)]  # fmt: skip
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _truncated(data: bytes) -> bytes:
        reply = dns.message.make_response(dns.message.from_wire(data))
        reply.flags |= dns.flags.TC
        return bytes(reply.to_wire())

    def _serve_udp(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                data, addr = self.udp.recvfrom(4096)
                self.udp.sendto(self._truncated(data), addr)

    def _serve_tcp(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.tcp.accept()
                with conn:
                    size = struct.unpack("!H", conn.recv(2))[0]
                    out = self._truncated(conn.recv(size))
                    conn.sendall(struct.pack("!H", len(out)) + out)

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


def test_a_truncated_answer_over_tcp_is_an_error_not_no_records() -> None:
    from relayguard.dns._events import Status
    from relayguard.dns.resolver import Resolver

    server = TruncatingServer()
    try:
        resolver = Resolver(Server("127.0.0.1", server.port), timeout=2, tries=1)
        got: list[Any] = []
        try:
            resolver.resolve(Query("example.test.", "TXT"), got.append)
            resolver.run_until(lambda: bool(got))
        finally:
            resolver.close()
        (answer,) = got
    finally:
        server.close()
    assert (answer.status, answer.records) == (Status.ERROR, ())
    assert answer.detail == f"127.0.0.1:{server.port} sent a truncated answer over TCP"
    assert resolver.stats.tcp == 1
