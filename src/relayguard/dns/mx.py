"""MX sanity (RFC 5321 s.5, RFC 7505 null MX, RFC 2181 s.10.3): a generator core."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

from relayguard.dns._events import Answer, Query, Status
from relayguard.dns.names import parse_ip

MAX_MX = 10  # exchanges checked

Steps = Generator[list[Query], list[Answer], "MxResult"]


@dataclass(slots=True)
class Exchange:
    preference: int
    name: str
    addresses: list[str] = field(default_factory=list)
    cname: tuple[str, ...] = ()
    ip_literal: bool = False
    error: str | None = None


@dataclass(slots=True)
class MxResult:
    domain: str
    exists: bool = True  # False: the domain is NXDOMAIN
    exchanges: list[Exchange] = field(default_factory=list)
    null_mx: bool = False
    implicit: list[str] = field(default_factory=list)  # no MX: the domain's own A/AAAA
    error: str | None = None


def check(domain: str) -> Steps:
    result = MxResult(domain)
    (answer,) = yield [Query(f"{domain}.", "MX")]
    if answer.status.failed:
        result.error = f"{answer.query}: {answer.failure}"
        return result
    if answer.status is Status.NXDOMAIN:
        result.exists = False
        return result
    if answer.status is Status.NODATA:
        implicit = yield [Query(f"{domain}.", "A"), Query(f"{domain}.", "AAAA")]
        result.implicit = [r for a in implicit if a.ok for r in a.records]
        return result
    records = answer.mx()
    if any(name in ("", ".") for _, name in records):
        result.null_mx = True
        records = [(p, n) for p, n in records if n not in ("", ".")]
    for preference, name in records[:MAX_MX]:
        result.exchanges.append(Exchange(preference, name.rstrip("."),
                                         ip_literal=parse_ip(name.rstrip(".")) is not None))
    if not result.exchanges:
        return result
    queries = [Query(f"{x.name}.", t) for x in result.exchanges for t in ("A", "AAAA")]
    answers = yield queries
    for index, exchange in enumerate(result.exchanges):
        pair = answers[2 * index : 2 * index + 2]
        exchange.addresses = [r for a in pair if a.ok for r in a.records]
        exchange.cname = next((a.cname_chain for a in pair if a.cname_chain), ())
        failed = [a for a in pair if a.status.failed]
        if failed and not exchange.addresses:
            exchange.error = failed[0].failure
    return result
