"""DNS over UDP (TCP when an answer is truncated) to one server, and answers read from the wire.

Theory of operation: a small pool of connected UDP sockets per server (connected, so the kernel
drops datagrams from anyone else and reports "port unreachable"), each with random 16-bit ids
for the queries in flight on it. A reply is taken only when dnspython's ``is_response`` agrees
(same id, same question). A timeout or an ICMP error ends one attempt; the resolver decides
about retries. Everything the server sends is bounded before it reaches a core (see the
``MAX_*`` constants).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any, cast

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from relayguard.dns._events import Answer, Query, Status

# 1232 bytes: the EDNS buffer size DNS Flag Day 2020 settled on (no IP fragmentation).
EDNS_PAYLOAD = 1232
# Sockets per server: spreads the queries over as many random source ports.
POOL_SIZE = 8
# Records kept per answer and characters per TXT record: far above any real SPF, DKIM or
# DNSBL answer (a 4096-bit DKIM key is ~750 characters), far below the 64 KiB a TCP answer
# can carry.
MAX_RECORDS = 64
MAX_TXT = 8192
MAX_CNAME_HOPS = 8  # per response; the resolver bounds the hops across queries too


@dataclass(frozen=True, slots=True)
class Server:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class _Channel(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, tuple[asyncio.Future[dns.message.Message], Any]] = {}
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) < 12:
            return
        entry = self.pending.get(int.from_bytes(data[:2], "big"))
        if entry is None:
            return
        future, request = entry
        try:
            reply = dns.message.from_wire(data, ignore_trailing=True)
        except (dns.exception.DNSException, ValueError, IndexError):
            return  # garbage with a matching id: keep waiting for the real reply
        if not future.done() and request.is_response(reply):
            future.set_result(reply)

    def error_received(self, exc: Exception) -> None:
        # A connected UDP socket learns "port unreachable" without knowing which query
        # caused it: every query waiting on this socket fails with it.
        for future, _ in self.pending.values():
            if not future.done():
                future.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error_received(exc or ConnectionError("socket closed"))


class UdpPool:
    """Queries to one server over a few connected UDP sockets."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._channels: list[_Channel] = []
        self._next = 0
        self._opening: asyncio.Lock | None = None

    async def _channel(self) -> _Channel:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            self._channels = [c for c in self._channels if not c.closed]
            if len(self._channels) < POOL_SIZE:
                loop = asyncio.get_running_loop()
                _, channel = await loop.create_datagram_endpoint(
                    _Channel, remote_addr=(self.server.host, self.server.port)
                )
                self._channels.append(channel)
                return channel
        self._next = (self._next + 1) % len(self._channels)
        return self._channels[self._next]

    async def exchange(self, request: dns.message.Message, timeout: float) -> dns.message.Message:
        """One attempt: the reply, or TimeoutError / OSError."""
        channel = await self._channel()
        qid = secrets.randbits(16)
        while qid in channel.pending:
            qid = secrets.randbits(16)
        request.id = qid
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dns.message.Message] = loop.create_future()
        channel.pending[qid] = (future, request)
        timer = loop.call_later(timeout, _expire, future)
        try:
            assert channel.transport is not None
            channel.transport.sendto(request.to_wire())
            return await future
        finally:
            timer.cancel()
            channel.pending.pop(qid, None)

    def close(self) -> None:
        for channel in self._channels:
            if channel.transport is not None:
                channel.transport.close()
        self._channels = []


def _expire(future: asyncio.Future[dns.message.Message]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def make_request(query: Query) -> dns.message.Message:
    return dns.message.make_query(
        query.name, query.rdtype, use_edns=0, payload=EDNS_PAYLOAD, flags=dns.flags.RD
    )


async def exchange_tcp(
    request: dns.message.Message, server: Server, timeout: float
) -> dns.message.Message:
    reply = await dns.asyncquery.tcp(request, server.host, timeout=timeout, port=server.port)
    if not request.is_response(reply):
        raise ValueError("the TCP answer does not match the question")
    return reply


# --- reading an answer ------------------------------------------------------------------------

_RCODE_STATUS = {
    dns.rcode.SERVFAIL: Status.SERVFAIL,
    dns.rcode.REFUSED: Status.REFUSED,
    dns.rcode.NXDOMAIN: Status.NXDOMAIN,
}


@dataclass(frozen=True, slots=True)
class Partial:
    """The response ended in a CNAME whose target it does not carry: ask for the target."""

    chain: tuple[str, ...]
    target: str
    ttl: int


def _negative_ttl(reply: dns.message.Message) -> int:
    for rrset in reply.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return int(min(rrset.ttl, rrset[0].minimum))  # RFC 2308 s.5
    return 0


def _text(rdata: Any, rdtype: int) -> str:
    if rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return str(rdata.address)
    if rdtype == dns.rdatatype.MX:
        return f"{int(rdata.preference)} {rdata.exchange.to_text().lower()}"
    if rdtype in (dns.rdatatype.PTR, dns.rdatatype.CNAME, dns.rdatatype.NS):
        return str(rdata.target.to_text().lower())
    return str(rdata.to_text())


def read_reply(
    query: Query, reply: dns.message.Message, chain: tuple[str, ...]
) -> Answer | Partial:
    """The :class:`Answer` in ``reply``, following the CNAMEs it carries from the query name."""
    rcode = reply.rcode()
    status = _RCODE_STATUS.get(rcode)
    if status is Status.SERVFAIL or status is Status.REFUSED:
        return Answer(query, status, cname_chain=chain, detail=dns.rcode.to_text(rcode))
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return Answer(query, Status.ERROR, cname_chain=chain, detail=dns.rcode.to_text(rcode))
    rdtype = dns.rdatatype.from_text(query.rdtype)
    owner = dns.name.from_text(chain[-1] if chain else query.name)
    seen = {owner}
    ttl = None
    for _ in range(MAX_CNAME_HOPS + 1):
        found = _find(reply, owner, rdtype)
        if found is not None:
            return _records(query, found, chain, ttl)
        alias = _find(reply, owner, dns.rdatatype.CNAME)
        if alias is None or rdtype == dns.rdatatype.CNAME:
            break
        ttl = alias.ttl if ttl is None else min(ttl, alias.ttl)
        owner = alias[0].target
        chain = (*chain, owner.to_text().lower())
        if owner in seen or len(chain) > MAX_CNAME_HOPS:
            return Answer(query, Status.ERROR, cname_chain=chain, detail="CNAME loop")
        seen.add(owner)
    if chain and rcode == dns.rcode.NOERROR and not _has_negative_proof(reply):
        return Partial(chain, chain[-1], int(ttl or 0))
    negative = _negative_ttl(reply)
    status = Status.NXDOMAIN if rcode == dns.rcode.NXDOMAIN else Status.NODATA
    return Answer(query, status, ttl=negative, cname_chain=chain)


def _has_negative_proof(reply: dns.message.Message) -> bool:
    """A SOA in the authority section: the server vouches that the CNAME target is empty."""
    return any(rrset.rdtype == dns.rdatatype.SOA for rrset in reply.authority)


def _find(reply: dns.message.Message, owner: dns.name.Name, rdtype: int) -> Any:
    for rrset in reply.answer:
        if rrset.name == owner and rrset.rdtype == rdtype and len(rrset):
            return rrset
    return None


def _records(query: Query, rrset: Any, chain: tuple[str, ...], ttl: int | None) -> Answer:
    records: list[str] = []
    strings: list[int] = []
    cut = False
    for rdata in rrset:
        if len(records) >= MAX_RECORDS:
            cut = True
            break
        if rrset.rdtype == dns.rdatatype.TXT:
            joined = b"".join(rdata.strings)
            if len(joined) > MAX_TXT:
                joined, cut = joined[:MAX_TXT], True
            records.append(joined.decode("utf-8", errors="surrogateescape"))
            strings.append(len(rdata.strings))
        else:
            records.append(_text(rdata, rrset.rdtype))
    detail = f"answer cut to {MAX_RECORDS} records of {MAX_TXT} characters" if cut else ""
    lowest = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
    return Answer(
        query,
        Status.NOERROR,
        records=tuple(records),
        ttl=int(lowest),
        cname_chain=chain,
        detail=detail,
        txt_strings=tuple(strings),
    )


def failure(query: Query, exc: BaseException, server: Server) -> Answer:
    """An :class:`Answer` for an attempt that got no reply."""
    if isinstance(exc, TimeoutError | dns.exception.Timeout):
        return Answer(query, Status.TIMEOUT, detail=f"no answer from {server}")
    if isinstance(exc, ConnectionRefusedError):
        return Answer(query, Status.ERROR, detail=f"nothing answers DNS at {server}")
    return Answer(query, Status.ERROR, detail=f"{server}: {type(exc).__name__}: {exc}"[:200])
