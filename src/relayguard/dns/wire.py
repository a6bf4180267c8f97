"""DNS messages by hand for the common case: the query relayguard sends, and a plain reply to it.

:func:`encode_query` builds the bytes dnspython builds for ``make_query(name, type, use_edns=0,
payload=1232, flags=RD)``. :func:`parse_reply` reads a reply made only of A, AAAA, NS, CNAME,
SOA, PTR, MX and TXT records of class IN (and an OPT record without options), exactly as
strictly as dnspython's reader: the same compression rules (a pointer must point backwards and
its target must not overlap the name, at most 16 hops), the same lengths, the same TTL rule.
Anything outside that subset raises :class:`Unusual` and anything malformed :class:`WireError`,
so the caller can give that datagram to dnspython, whose verdict stands.

Names are text the way dnspython writes them (absolute, lower-cased); a name with a byte
dnspython would escape is :class:`Unusual`.
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

TYPE_CODES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}
A, NS, CNAME, SOA, PTR, MX, TXT, AAAA = 1, 2, 5, 6, 12, 15, 16, 28
OPT = 41
EDE = 15  # the EDNS option of RFC 8914
CLASS_IN = 1
FLAG_QR = 0x8000
FLAG_TC = 0x0200
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = range(6)
# dnspython's names for the rcodes a plain header can carry (4 bits).
RCODE_TEXT = (
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE", "DSOTYPENI", "12", "13", "14", "15",
)  # fmt: skip
EDNS_PAYLOAD = 1232
MAX_POINTER_HOPS = 16
MAX_NAME_WIRE = 255

_HEADER = struct.Struct("!HHHHHH")
_RR_HEADER = struct.Struct("!HHIH")
_SOA_NUMBERS = struct.Struct("!IIIII")
# After the id: RD; 1 question, no answer or authority records, 1 additional (the OPT).
_QUERY_HEADER = struct.pack("!HHHHH", 0x0100, 1, 0, 0, 1)
_OPT_RECORD = b"\x00" + struct.pack("!HHIH", OPT, EDNS_PAYLOAD, 0, 0)
_PLAIN_NAME = re.compile(r"(?:[a-z0-9_-]{1,63}\.)+")
_OPCODE = 0x7800
_RELAXED_RCODES = (FORMERR, SERVFAIL, NOTIMP, REFUSED)  # may come without a question
# Bytes dnspython writes as themselves in a name's text (the rest it escapes).
_VERBATIM = bytes(b for b in range(0x21, 0x7F) if b not in b'"().;\\@$')
_TYPES_READ = frozenset(TYPE_CODES.values())
_LENGTH = [bytes((size,)) for size in range(64)]
# The root label ending the name, then the type and class IN.
_QUESTION_TAIL = {name: struct.pack("!BHH", 0, code, CLASS_IN) for name, code in TYPE_CODES.items()}


class WireError(ValueError):
    """A malformed message."""


class Unusual(Exception):
    """A message outside what this module reads (dnspython reads it instead)."""


Record = str | tuple[bytes, ...]  # TXT: the character-strings; every other type: its text


class RRset(NamedTuple):
    owner: str  # absolute, lower-case text
    rdtype: int
    ttl: int  # the lowest TTL of its records (dnspython's rule)
    records: tuple[Record, ...]  # duplicates dropped, first seen first


class Reply(NamedTuple):
    rcode: int
    flags: int
    answer: tuple[RRset, ...]
    # The authority section's first SOA set: min(its TTL, its first MINIMUM) (RFC 2308 s.5);
    # None when the section has no SOA.
    negative_ttl: int | None = None


def is_plain(name: str) -> bool:
    """An absolute name of lower-case letters, digits, ``-`` and ``_`` that fits the wire."""
    return len(name) < MAX_NAME_WIRE and _PLAIN_NAME.fullmatch(name) is not None


def encode_question(name: str, rdtype: str) -> bytes | None:
    """The question section for ``name`` (absolute), or None for a name that is not
    :func:`is_plain` (dnspython writes those)."""
    tail = _QUESTION_TAIL.get(rdtype)
    if tail is None or not is_plain(name):
        return None
    labels = name[:-1].encode().split(b".")
    return b"".join([_LENGTH[len(label)] + label for label in labels]) + tail


def encode_query(qid: int, question: bytes) -> bytes:
    return qid.to_bytes(2, "big") + _QUERY_HEADER + question + _OPT_RECORD


def read_name(data: bytes, pos: int, end: int) -> tuple[list[bytes], int]:
    """The labels of the name at ``pos`` (not beyond ``end``) and where the next field starts."""
    labels: list[bytes] = []
    start = pos
    resume = -1
    hops = 0
    length = 1
    while True:
        if pos >= end:
            raise WireError("name runs past its end")
        count = data[pos]
        pos += 1
        if count == 0:
            break
        if count < 64:
            if pos + count > end:
                raise WireError("label runs past its end")
            labels.append(data[pos : pos + count])
            pos += count
            length += count + 1
            if length > MAX_NAME_WIRE:
                raise WireError("name longer than 255 bytes")
        elif count >= 192:
            if pos >= end:
                raise WireError("compression pointer cut off")
            target = (count & 0x3F) << 8 | data[pos]
            pos += 1
            # Backwards only, and never into the part of the name already read: no loops.
            if target >= start:
                raise WireError("compression pointer does not point backwards")
            hops += 1
            if hops > MAX_POINTER_HOPS:
                raise WireError("compression pointer chain too long")
            if resume < 0:
                resume = pos
            end = start
            pos = start = target
        else:
            raise WireError(f"label type {count >> 6}")
    return labels, (resume if resume >= 0 else pos)


def name_text(labels: list[bytes]) -> str:
    """dnspython's text of the name, lower-cased; Unusual when it would escape a byte."""
    if not labels:
        return "."
    for label in labels:
        if label.translate(None, _VERBATIM):
            raise Unusual("a name dnspython would escape")
    return b".".join(labels).decode("ascii").lower() + "."


def _folded(labels: list[bytes]) -> bytes:
    """The name in wire form, lower-cased: names compare equal when these do."""
    return b"".join([_LENGTH[len(label)] + label for label in labels]).lower() + b"\x00"


def ipv6_text(address: bytes) -> str:
    """dnspython's text form of an IPv6 address (its own rules for an embedded IPv4)."""
    chunks = [format(int.from_bytes(address[i : i + 2], "big"), "x") for i in range(0, 16, 2)]
    best_start = best_len = 0
    start = -1
    for i in range(9):
        zero = i < 8 and chunks[i] == "0"
        if zero and start < 0:
            start = i
        elif not zero and start >= 0:
            if i - start > best_len:
                best_start, best_len = start, i - start
            start = -1
    if best_len <= 1:
        return ":".join(chunks)
    if best_start == 0 and (best_len == 6 or (best_len == 5 and chunks[5] == "ffff")):
        prefix = "::" if best_len == 6 else "::ffff:"
        return prefix + ".".join(str(b) for b in address[12:])
    return ":".join(chunks[:best_start]) + "::" + ":".join(chunks[best_start + best_len :])


def _rdata(data: bytes, pos: int, end: int, rdtype: int) -> tuple[Record, object]:
    """One record's data (exactly ``pos`` to ``end``): its value and its identity."""
    if rdtype == A:
        if end - pos != 4:
            raise WireError("A record not 4 bytes")
        raw = data[pos:end]
        return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}", raw
    if rdtype == TXT:
        strings = []
        while pos < end:
            size = data[pos]
            if pos + 1 + size > end:
                raise WireError("TXT string runs past the record")
            strings.append(data[pos + 1 : pos + 1 + size])
            pos += 1 + size
        if not strings:
            raise WireError("TXT record without a string")
        value = tuple(strings)
        return value, value
    if rdtype == AAAA:
        if end - pos != 16:
            raise WireError("AAAA record not 16 bytes")
        raw = data[pos:end]
        return ipv6_text(raw), raw
    prefix = ""
    if rdtype == MX:
        if end - pos < 2:
            raise WireError("MX record cut off")
        prefix = f"{int.from_bytes(data[pos : pos + 2], 'big')} "
        pos += 2
    labels, pos = read_name(data, pos, end)  # NS, CNAME, PTR, MX
    if pos != end:
        raise WireError("bytes after the name in a record")
    text = prefix + name_text(labels)
    return text, text


def _soa_minimum(data: bytes, pos: int, end: int) -> int:
    _, pos = read_name(data, pos, end)
    _, pos = read_name(data, pos, end)
    if end - pos != _SOA_NUMBERS.size:
        raise WireError("SOA record of the wrong size")
    return int(_SOA_NUMBERS.unpack_from(data, pos)[4])


def _check_options(data: bytes, pos: int, end: int) -> None:
    """EDNS options: only Extended DNS Errors (RFC 8914) are read here (NSD sends them)."""
    while pos < end:
        if end - pos < 4:
            raise WireError("EDNS option header cut off")
        code, size = struct.unpack_from("!HH", data, pos)
        pos += 4
        if pos + size > end:
            raise WireError("EDNS option runs past the record")
        if code != EDE:
            raise Unusual(f"EDNS option {code}")
        if size < 2:
            raise WireError("extended error without its code")
        text = data[pos + 2 : pos + size]
        try:
            (text[:-1] if text.endswith(b"\0") else text).decode("utf-8")  # as dnspython does
        except UnicodeDecodeError:
            raise WireError("extended error text not UTF-8") from None
        pos += size


class _Set:
    __slots__ = ("keys", "records", "ttl")

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self.records: list[Record] = []
        self.keys: set[object] = set()


def parse_reply(data: bytes, qid: int, question: bytes, qname: str) -> Reply | None:
    """The reply in ``data`` if it answers ``question`` (:func:`encode_question` of ``qname``)
    asked with id ``qid``, None if it answers something else (dnspython's ``is_response``),
    WireError if it is malformed, Unusual if it is outside this module's subset."""
    size = len(data)
    if size < 12:
        raise WireError("shorter than a DNS header")
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    if ident != qid or not flags & FLAG_QR or flags & _OPCODE:
        return None
    pos = 12
    # The usual reply repeats the question as sent (in any case): its bytes say it all, since
    # the label lengths, type and class cannot differ by case alone.
    echoed = qdcount == 1 and data[12 : 12 + len(question)].lower() == question
    if echoed:
        pos += len(question)
    same_question = echoed or qdcount > 0
    for _ in range(0 if echoed else qdcount):
        labels, pos = read_name(data, pos, size)
        if pos + 4 > size:
            raise WireError("question cut off")
        if _folded(labels) + data[pos : pos + 4] != question:
            same_question = False
        pos += 4
    qfolded = question[:-4]
    sets: dict[tuple[str, int], _Set] = {}
    soa_owner: bytes | None = None
    soa_ttl = soa_minimum = 0
    opt_ttl: int | None = None
    for section, count in ((1, ancount), (2, nscount), (3, arcount)):
        for _ in range(count):
            # An owner that points at the echoed question (offset 12) is the query name.
            at_question = echoed and pos + 1 < size and data[pos] == 0xC0 and data[pos + 1] == 12
            if at_question:
                labels = []
                pos += 2
            else:
                labels, pos = read_name(data, pos, size)
            if pos + 10 > size:
                raise WireError("record header cut off")
            rdtype, rdclass, ttl, rdlen = _RR_HEADER.unpack_from(data, pos)
            pos += 10
            end = pos + rdlen
            if end > size:
                raise WireError("record data runs past the message")
            if rdtype == OPT:
                if section != 3 or opt_ttl is not None or labels or at_question:
                    raise Unusual("OPT record out of place")
                _check_options(data, pos, end)
                opt_ttl = ttl
                pos = end
                continue
            if rdclass != CLASS_IN or rdtype not in _TYPES_READ:
                raise Unusual(f"record of class {rdclass} type {rdtype}")
            if ttl > 0x7FFFFFFF:
                ttl = 0
            if rdtype == SOA:
                if section == 1:
                    raise Unusual("SOA in the answer section")
                minimum = _soa_minimum(data, pos, end)
                if section == 2:
                    owner = qfolded if at_question else _folded(labels)
                    if soa_owner is None:
                        soa_owner, soa_ttl, soa_minimum = owner, ttl, minimum
                    elif owner == soa_owner:  # a set of one: the last record stays
                        soa_ttl, soa_minimum = min(soa_ttl, ttl), minimum
            else:
                value, key = _rdata(data, pos, end, rdtype)
                if section == 1:
                    group = (qname if at_question else name_text(labels), rdtype)
                    found = sets.get(group)
                    if found is None:
                        found = sets[group] = _Set(ttl)
                    elif ttl < found.ttl:
                        found.ttl = ttl
                    if rdtype == CNAME:  # a set of one (dnspython's rule): the last stays
                        found.keys.clear()
                        found.records.clear()
                    if key not in found.keys:
                        found.keys.add(key)
                        found.records.append(value)
            pos = end
    if opt_ttl is not None and opt_ttl >> 24:
        raise Unusual("extended rcode")
    rcode = flags & 0xF
    if not same_question and not (qdcount == 0 and rcode in _RELAXED_RCODES):
        return None
    answer = tuple(
        RRset(owner, rdtype, found.ttl, tuple(found.records))
        for (owner, rdtype), found in sets.items()
    )
    negative = None if soa_owner is None else min(soa_ttl, soa_minimum)
    return Reply(rcode, flags, answer, negative)
