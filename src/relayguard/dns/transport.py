"""DNS over UDP (TCP when an answer is truncated) to one server, and answers read from the wire.

Theory of operation: a small pool of connected UDP sockets per server (connected, so the kernel
drops datagrams from anyone else and reports "port unreachable"), each with random 16-bit ids
for the queries in flight on it. A reply is taken only when it answers the query (same id, same
question): :mod:`relayguard.dns.wire` decides for the plain messages of the usual case, and
dnspython (``is_response``, imported only then) for any other. The queries of one turn of the
event loop are sent together at its end, and one timer per pool ends the attempts that got no
reply in time. A timeout or an ICMP error ends one attempt; the resolver
decides about retries. Everything the server sends is bounded before it reaches a core (see the
``MAX_*`` constants).
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from relayguard.dns import wire
from relayguard.dns._events import Answer, Query, Status
from relayguard.dns.loop import Loop

# 1232 bytes: the EDNS buffer size DNS Flag Day 2020 settled on (no IP fragmentation).
EDNS_PAYLOAD = wire.EDNS_PAYLOAD
# Sockets per server: spreads the queries over as many random source ports.
POOL_SIZE = 8
# Records per answer and characters per TXT record: a DNS message is at most 64 KiB (TCP),
# which holds at most ~5,400 records and one TXT record of at most 65,535 characters, so every
# real answer (100+ TXT records at a big company, an SPF record near the 64 KiB limit) is read
# whole and memory stays bounded by the message. An answer over these bounds is an error, never
# a shorter answer: a cut TXT set could hide the SPF record.
MAX_RECORDS = 8192
MAX_TXT = 65535
MAX_CNAME_HOPS = 8  # per response; the resolver bounds the hops across queries too


@dataclass(frozen=True, slots=True)
class Server:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class Outgoing(NamedTuple):
    """One attempt's query: its question in wire form, or (a name :mod:`wire` does not write)
    a dnspython request."""

    query: Query
    question: bytes | None
    request: Any = None


def prepare(query: Query) -> Outgoing:
    question = wire.encode_question(query.name, query.rdtype)
    if question is not None:
        return Outgoing(query, question)
    from relayguard.dns import _dnspython

    return Outgoing(query, None, _dnspython.make_request(query))


Done = Callable[["wire.Reply | None", "BaseException | None"], None]
"""Called once per attempt: with the reply, or with the error that ended the attempt
(TimeoutError, an OSError such as ConnectionRefusedError for "port unreachable")."""


class _Attempt:
    __slots__ = ("channel", "done", "outgoing", "qid")

    def __init__(self, channel: _Channel, qid: int, outgoing: Outgoing, done: Done) -> None:
        self.channel = channel
        self.qid = qid
        self.outgoing = outgoing
        self.done = done

    def fail(self, exc: BaseException) -> None:
        """End the attempt with ``exc`` unless it has ended already."""
        if self.channel.pending.get(self.qid) is self:
            del self.channel.pending[self.qid]
            self.done(None, exc)

    def expire(self) -> None:
        self.fail(TimeoutError())


class _Channel:
    """One connected UDP socket and the attempts waiting on it, by query id."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.sock = sock
        self.pending: dict[int, _Attempt] = {}

    def readable(self) -> None:
        assert self.sock is not None
        while True:
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.error_received(exc)
                return
            self.datagram_received(data)

    def datagram_received(self, data: bytes) -> None:
        if len(data) < 12:
            return
        qid = int.from_bytes(data[:2], "big")
        attempt = self.pending.get(qid)
        if attempt is None:
            return
        outgoing = attempt.outgoing
        if outgoing.question is not None:
            try:
                reply = wire.parse_reply(data, qid, outgoing.question, outgoing.query.name)
            except (wire.WireError, wire.Unusual):
                reply = _read_with_dnspython(data, outgoing, qid)
        else:
            reply = _read_with_dnspython(data, outgoing, qid)
        if reply is not None:  # else garbage or another question: keep waiting
            del self.pending[qid]
            attempt.done(reply, None)

    def error_received(self, exc: BaseException) -> None:
        # A connected UDP socket learns "port unreachable" without knowing which query
        # caused it: every query waiting on this socket fails with it.
        for attempt in list(self.pending.values()):
            attempt.fail(exc)


def _read_with_dnspython(data: bytes, outgoing: Outgoing, qid: int) -> wire.Reply | None:
    from relayguard.dns import _dnspython

    return _dnspython.read_datagram(data, outgoing.query, qid, outgoing.request)


class _Ids:
    """Random 16-bit query ids, read from the kernel's CSPRNG 256 at a time."""

    def __init__(self) -> None:
        self._stock: list[int] = []

    def next(self) -> int:
        if not self._stock:
            self._stock = list(memoryview(os.urandom(512)).cast("H"))
        return self._stock.pop()


_IDS = _Ids()


class UdpPool:
    """Queries to one server over a few connected UDP sockets, on ``loop``."""

    def __init__(self, server: Server, loop: Loop) -> None:
        self.server = server
        self.loop = loop
        self._channels: list[_Channel] = []
        self._next = 0
        self._outbox: list[tuple[_Attempt, bytes]] = []

    def _socket(self) -> socket.socket:
        """A UDP socket connected to the server (its address is numeric: no name lookup)."""
        family = socket.AF_INET6 if ":" in self.server.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect((self.server.host, self.server.port))
        except OSError:
            sock.close()
            raise
        return sock

    def _channel(self) -> _Channel:
        if len(self._channels) < POOL_SIZE:
            channel = _Channel(self._socket())
            assert channel.sock is not None
            self.loop.add_reader(channel.sock, channel.readable)
            self._channels.append(channel)
            return channel
        self._next = (self._next + 1) % POOL_SIZE
        return self._channels[self._next]

    def exchange(self, outgoing: Outgoing, timeout: float, done: Done) -> None:
        """One attempt: ``done`` is called with the reply, or with the error that ended it
        (TimeoutError after ``timeout`` seconds, an OSError), never before this returns."""
        try:
            channel = self._channel()
        except OSError as exc:
            failed: BaseException = exc
            self.loop.call_soon(lambda: done(None, failed))
            return
        pending = channel.pending
        qid = _IDS.next()
        while qid in pending:
            qid = _IDS.next()
        if outgoing.question is not None:
            packet = wire.encode_query(qid, outgoing.question)
        else:
            outgoing.request.id = qid
            packet = outgoing.request.to_wire()
        attempt = pending[qid] = _Attempt(channel, qid, outgoing, done)
        self.loop.call_at(self.loop.time() + timeout, attempt.expire)
        self._outbox.append((attempt, packet))
        if len(self._outbox) == 1:
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        # The queries of one turn of the loop leave together, after the replies of that turn
        # are read: the server wakes once for the lot, not once per query.
        outbox, self._outbox = self._outbox, []
        for attempt, packet in outbox:
            sock = attempt.channel.sock
            try:
                assert sock is not None
                sock.send(packet)
            except OSError as exc:  # that query's attempt fails with it, as if sent at once
                attempt.fail(exc)

    def close(self) -> None:
        for channel in self._channels:
            if channel.sock is not None:
                self.loop.remove_reader(channel.sock)
                channel.sock.close()
        self._channels = []


def exchange_tcp(query: Query, server: Server, timeout: float) -> wire.Reply:
    """The whole answer over TCP, after a truncated one; it blocks the loop (at most
    ``timeout``), which only answers too big for a datagram ever cost."""
    from relayguard.dns import _dnspython

    return _dnspython.exchange_tcp(query, server.host, server.port, timeout)


# --- reading an answer ------------------------------------------------------------------------

_RCODE_STATUS = {
    wire.SERVFAIL: Status.SERVFAIL,
    wire.REFUSED: Status.REFUSED,
    wire.NXDOMAIN: Status.NXDOMAIN,
}


class Partial(NamedTuple):
    """The response ended in a CNAME whose target it does not carry: ask for the target."""

    chain: tuple[str, ...]
    target: str
    ttl: int


def _rcode_text(rcode: int) -> str:
    if rcode < len(wire.RCODE_TEXT):
        return wire.RCODE_TEXT[rcode]
    from relayguard.dns import _dnspython  # an extended rcode came through dnspython

    return _dnspython.rcode_text(rcode)


def _owner_text(name: str) -> str:
    """``name`` written the way answer owners are (see :func:`wire.name_text`)."""
    if wire.is_plain(name):
        return name
    from relayguard.dns import _dnspython

    return _dnspython.canonical(name)


def read_reply(
    query: Query, reply: wire.Reply, chain: tuple[str, ...], elapsed: float = 0.0
) -> Answer | Partial:
    """The :class:`Answer` in ``reply``, following the CNAMEs it carries from the query name."""
    rcode = reply.rcode
    status = _RCODE_STATUS.get(rcode)
    if status is Status.SERVFAIL or status is Status.REFUSED:
        return Answer(query, status, cname_chain=chain, detail=_rcode_text(rcode), elapsed=elapsed)
    if rcode not in (wire.NOERROR, wire.NXDOMAIN):
        detail = _rcode_text(rcode)
        return Answer(query, Status.ERROR, cname_chain=chain, detail=detail, elapsed=elapsed)
    ttl = None
    if reply.answer:  # most replies have none: a name that is not listed
        rdtype = wire.TYPE_CODES[query.rdtype]
        owner = chain[-1] if chain else _owner_text(query.name)  # a chain's names are canonical
        seen = {owner}
        for _ in range(MAX_CNAME_HOPS + 1):
            found = _find(reply, owner, rdtype)
            if found is not None:
                return _records(query, found, chain, ttl, elapsed)
            alias = _find(reply, owner, wire.CNAME)
            if alias is None or rdtype == wire.CNAME:
                break
            ttl = alias.ttl if ttl is None else min(ttl, alias.ttl)
            owner = str(alias.records[0])
            chain = (*chain, owner)
            if owner in seen or len(chain) > MAX_CNAME_HOPS:
                return Answer(
                    query, Status.ERROR, cname_chain=chain, detail="CNAME loop", elapsed=elapsed
                )
            seen.add(owner)
    # Without a SOA in the authority section, nothing says the CNAME target is empty.
    if chain and rcode == wire.NOERROR and reply.negative_ttl is None:
        return Partial(chain, chain[-1], int(ttl or 0))
    status = Status.NXDOMAIN if rcode == wire.NXDOMAIN else Status.NODATA
    negative = reply.negative_ttl or 0
    return Answer(query, status, ttl=negative, cname_chain=chain, elapsed=elapsed)


def _find(reply: wire.Reply, owner: str, rdtype: int) -> wire.RRset | None:
    for rrset in reply.answer:
        if rrset.owner == owner and rrset.rdtype == rdtype and rrset.records:
            return rrset
    return None


def _records(
    query: Query, rrset: wire.RRset, chain: tuple[str, ...], ttl: int | None, elapsed: float
) -> Answer:
    records: list[str] = []
    strings: list[int] = []
    if len(rrset.records) > MAX_RECORDS:
        return _too_large(query, chain, elapsed, f"over {MAX_RECORDS} records")
    for record in rrset.records:
        if isinstance(record, tuple):  # TXT
            joined = b"".join(record)
            if len(joined) > MAX_TXT:
                return _too_large(query, chain, elapsed, f"a TXT record over {MAX_TXT} characters")
            records.append(joined.decode("utf-8", errors="surrogateescape"))
            strings.append(len(record))
        else:
            records.append(record)
    lowest = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
    return Answer(
        query,
        Status.NOERROR,
        records=tuple(records),
        ttl=int(lowest),
        cname_chain=chain,
        txt_strings=tuple(strings),
        elapsed=elapsed,
    )


def _too_large(query: Query, chain: tuple[str, ...], elapsed: float, what: str) -> Answer:
    detail = f"answer too large to read whole ({what})"
    return Answer(query, Status.ERROR, cname_chain=chain, detail=detail, elapsed=elapsed)


def _dnspython_timeout(exc: BaseException) -> bool:
    module = sys.modules.get("dns.exception")  # not imported: not its Timeout either
    return module is not None and isinstance(exc, module.Timeout)


def failure(query: Query, exc: BaseException, server: Server) -> Answer:
    """An :class:`Answer` for an attempt that got no reply."""
    if isinstance(exc, TimeoutError) or _dnspython_timeout(exc):
        return Answer(query, Status.TIMEOUT, detail=f"no answer from {server}")
    if isinstance(exc, ConnectionRefusedError):
        return Answer(query, Status.ERROR, detail=f"nothing answers DNS at {server}")
    what = _PLAIN_ERRORS.get(type(exc)) or str(exc) or "a malformed answer"
    return Answer(query, Status.ERROR, detail=f"{server}: {what}"[:200])


# What an exception whose own text says nothing to a person means (EOFError's is "EOF").
_PLAIN_ERRORS: dict[type[BaseException], str] = {
    EOFError: "the server closed the connection before the whole answer came",
    ConnectionResetError: "the server reset the connection",
    BrokenPipeError: "the server closed the connection",
}
