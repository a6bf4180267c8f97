"""What dnspython still does, imported only when needed: a query name or a reply that
:mod:`relayguard.dns.wire` does not handle, and the TCP exchange after a truncated answer.
Its replies are turned into the same :class:`~relayguard.dns.wire.Reply`."""

from __future__ import annotations

from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from relayguard.dns import wire
from relayguard.dns._events import Query


def make_request(query: Query) -> dns.message.Message:
    return dns.message.make_query(
        query.name, query.rdtype, use_edns=0, payload=wire.EDNS_PAYLOAD, flags=dns.flags.RD
    )


def read_datagram(
    data: bytes, query: Query, qid: int, request: dns.message.Message | None
) -> wire.Reply | None:
    """The reply in ``data`` if dnspython reads it and finds it answers the request."""
    if request is None:
        request = make_request(query)
        request.id = qid
    try:
        reply = dns.message.from_wire(data, ignore_trailing=True)
    except (dns.exception.DNSException, ValueError, IndexError):
        return None  # garbage with a matching id: keep waiting for the real reply
    if not request.is_response(reply):
        return None
    return convert(reply)


def exchange_tcp(query: Query, server_host: str, port: int, timeout: float) -> wire.Reply:
    request = make_request(query)
    reply = dns.query.tcp(request, server_host, timeout=timeout, port=port)
    if not request.is_response(reply):
        raise ValueError("the TCP answer does not match the question")
    return convert(reply)


def canonical(name: str) -> str:
    """The text dnspython gives ``name`` (lower-cased): how answer owners are written."""
    return str(dns.name.from_text(name).to_text().lower())


def rcode_text(rcode: int) -> str:
    return str(dns.rcode.to_text(dns.rcode.Rcode.make(rcode)))


def convert(reply: dns.message.Message) -> wire.Reply:
    answer = tuple(
        wire.RRset(
            rrset.name.to_text().lower(), int(rrset.rdtype), int(rrset.ttl),
            tuple(_record(rdata, rrset.rdtype) for rdata in rrset),
        )
        for rrset in reply.answer
        if len(rrset)
    )  # fmt: skip
    negative = None
    for rrset in reply.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            negative = int(min(rrset.ttl, rrset[0].minimum))  # RFC 2308 s.5
            break
    return wire.Reply(int(reply.rcode()), int(reply.flags), answer, negative)


def _record(rdata: Any, rdtype: int) -> wire.Record:
    if rdtype == dns.rdatatype.TXT:
        return tuple(rdata.strings)
    if rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        return str(rdata.address)
    if rdtype == dns.rdatatype.MX:
        return f"{int(rdata.preference)} {rdata.exchange.to_text().lower()}"
    if rdtype in (dns.rdatatype.PTR, dns.rdatatype.CNAME, dns.rdatatype.NS):
        return str(rdata.target.to_text().lower())
    return str(rdata.to_text())
