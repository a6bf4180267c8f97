"""What one block-list answer means (DNSBL.md s.0 rule 2 and s.2). Pure: a spec and an answer in,
an :class:`Outcome` out. Never "any A record = listed":

* NXDOMAIN: not listed. NODATA, SERVFAIL, REFUSED, a timeout: an error, never "not listed".
* An answer outside 127.0.0.0/8 (NXDOMAIN rewriting, a captive portal, a parked domain): an error.
* A documented error sentinel (Spamhaus 127.255.255.x, URIBL 127.0.0.1, DBL 127.0.1.255): an error
  that names the cause, never a listing. 127.0.0.1 is never a listing on any list (RFC 5782 s.5).
* A documented code: listed, with the list's own meaning; bitmask lists decoded bit by bit.
* Any other 127/8 code: an error (unknown-code) that shows the raw answer.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from relayguard.dns._events import Answer, Status
from relayguard.dns.lists import LIST_ERROR, ListSpec

LISTED = "listed"
NOT_LISTED = "not-listed"
ERROR = "error"

BOGUS_ANSWER = "bogus-answer"
UNKNOWN_CODE = "unknown-code"
QUERY_REFUSED = "query-refused"  # 127.0.0.1 from a list that does not document it
NODATA = "nodata"

_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_STATUS_REASON = {
    Status.TIMEOUT: "timeout",
    Status.SERVFAIL: "servfail",
    Status.REFUSED: "refused",
    Status.ERROR: "error",
    Status.NODATA: NODATA,
}

REASON_TEXT = {
    "timeout": "no answer in time: the list is down, or blocks your resolver",
    "servfail": "SERVFAIL: the list's servers failed or refused your resolver",
    "refused": "REFUSED: the resolver would not answer for this zone",
    "error": "the query failed",
    NODATA: "the name exists without an address: not an answer a block list gives",
    BOGUS_ANSWER: "an answer outside 127.0.0.0/8: NXDOMAIN rewriting by the resolver, a "
    "captive portal, or a parked list domain",
    UNKNOWN_CODE: "a code the list does not document",
    QUERY_REFUSED: "127.0.0.1 is never a listing (RFC 5782): the query was refused or "
    "intercepted (Pi-hole, ad blocker), or the zone is a dead wildcard",
    "resolver-blocked": "the list refuses your resolver (a public or shared resolver): use "
    "a local recursive resolver, or a key (Spamhaus DQS)",
    "rate-limited": "the list says your resolver sent too many queries",
    "zone-typo": "the list says its zone name is wrong (a typo in the list's name)",
    "bad-key": "the list refused the access key (Spamhaus DQS)",
    "wrong-query-type": "an IP address was queried on a domain list",
    LIST_ERROR: "the list answered with one of its error codes",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: str  # listed | not-listed | error
    reason: str | None = None  # for errors
    codes: tuple[str, ...] = ()  # the raw answers
    meanings: tuple[str, ...] = ()  # for listings: the list's meaning of each code

    @property
    def listed(self) -> bool:
        return self.verdict == LISTED


def classify(spec: ListSpec, answer: Answer) -> Outcome:
    if answer.status is Status.NXDOMAIN:
        return Outcome(NOT_LISTED)
    if answer.status is not Status.NOERROR:
        return Outcome(ERROR, _STATUS_REASON[answer.status])
    codes = tuple(sorted(set(answer.records), key=_sort_key))
    addresses = []
    for code in codes:
        try:
            address = ipaddress.IPv4Address(code)
        except ValueError:
            return Outcome(ERROR, BOGUS_ANSWER, codes)
        if address not in _LOOPBACK:
            return Outcome(ERROR, BOGUS_ANSWER, codes)
        addresses.append(address)
    for code in codes:
        if code in spec.errors:
            return Outcome(ERROR, spec.errors[code], codes)
    for address in addresses:
        if any(address in ipaddress.IPv4Network(net) for net in spec.error_nets):
            return Outcome(ERROR, LIST_ERROR, codes)
    if "127.0.0.1" in codes:
        return Outcome(ERROR, QUERY_REFUSED, codes)
    if spec.bitmask:
        return _bits(spec, codes, addresses)
    if spec.codes is None:
        return Outcome(LISTED, None, codes, tuple("listed" for _ in codes))
    meanings = tuple(spec.codes[c] for c in codes if c in spec.codes)
    if not meanings:
        return Outcome(ERROR, UNKNOWN_CODE, codes)
    unknown = tuple(f"{c}: {UNKNOWN_CODE}" for c in codes if c not in spec.codes)
    return Outcome(LISTED, None, codes, meanings + unknown)


def _bits(
    spec: ListSpec, codes: tuple[str, ...], addresses: list[ipaddress.IPv4Address]
) -> Outcome:
    meanings: list[str] = []
    known = sum(spec.bitmask)
    for address in addresses:
        if address.packed[:3] != b"\x7f\x00\x00":
            continue  # bitmask lists answer in 127.0.0.0/24 only
        octet = address.packed[3]
        meanings.extend(text for bit, text in sorted(spec.bitmask.items()) if octet & bit)
        if octet & ~known & 0xFE:
            meanings.append(f"{address}: bits {octet & ~known & 0xFE:#04x} undocumented")
    if not any(not m.endswith("undocumented") for m in meanings):
        return Outcome(ERROR, UNKNOWN_CODE, codes)
    return Outcome(LISTED, None, codes, tuple(dict.fromkeys(meanings)))


def _sort_key(code: str) -> tuple[int, str]:
    try:
        return (int(ipaddress.IPv4Address(code)), code)
    except ValueError:
        return (1 << 33, code)
