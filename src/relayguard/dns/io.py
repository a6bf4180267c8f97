"""The I/O shell of the DNS checks: build a resolver, drive a core with it, close it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from relayguard.dns._errors import TargetError
from relayguard.dns.dnsbl import DnsblCheck, Target
from relayguard.dns.dnsbl_result import DnsblReport
from relayguard.dns.dnsbl_verdict import DEFAULT_MAX_ERROR_RATIO, build_report
from relayguard.dns.lists import ListSpec
from relayguard.dns.names import normalize_domain, parse_ip
from relayguard.dns.resolver import Resolver, ResolverChoice, drive_incremental
from relayguard.dns.transport import Server

MAX_TARGETS = 100_000


@dataclass(frozen=True, slots=True)
class ResolverOptions:
    timeout: float = 2.0
    tries: int = 2
    rate: float = 0.0  # queries per second per list, 0 = no limit
    max_in_flight: int = 64


def parse_targets(texts: Iterable[str]) -> list[Target]:
    """IPs stay IPs; anything else must be a domain name (IDNA-encoded, lower-cased)."""
    out: dict[str, Target] = {}
    for text in texts:
        raw = text.strip()
        ip = parse_ip(raw)
        if ip is not None:
            out.setdefault(str(ip), Target(raw, ip=ip))
        else:
            if "/" in raw or raw.count(":") > 1:
                raise TargetError(f"{raw[:80]!r} is not an IP address or a domain name")
            name = normalize_domain(raw, what="IP address or domain name")
            out.setdefault(name, Target(raw, name=name))
        if len(out) > MAX_TARGETS:
            raise TargetError(f"more than {MAX_TARGETS} targets")
    if not out:
        raise TargetError("no target: name an IP address, a host name or a domain")
    return list(out.values())


def make_resolver(choice: ResolverChoice, lists: list[ListSpec], opts: ResolverOptions) -> Resolver:
    routes: dict[str, Server] = {s.zone: s.nameserver for s in lists if s.nameserver}
    return Resolver(
        choice.server, timeout=opts.timeout, tries=opts.tries, rate=opts.rate,
        max_in_flight=opts.max_in_flight, routes=routes,
    )  # fmt: skip


async def _dnsbl(
    targets: list[Target], lists: list[ListSpec], choice: ResolverChoice, helo: str | None,
    opts: ResolverOptions, max_error_ratio: float,
) -> DnsblReport:  # fmt: skip
    resolver = make_resolver(choice, lists, opts)
    check = DnsblCheck(targets, lists, helo=helo)
    try:
        await drive_incremental(resolver, check, workers=opts.max_in_flight)
    finally:
        resolver.close()
    stats = resolver.stats
    queries = {"sent": stats.sent, "cached": stats.cached, "retried": stats.retried,
               "tcp": stats.tcp}  # fmt: skip
    return build_report(check, choice, max_error_ratio=max_error_ratio, queries=queries)


def check_dnsbl(
    targets: list[Target], lists: list[ListSpec], choice: ResolverChoice, *,
    helo: str | None = None, options: ResolverOptions | None = None,
    max_error_ratio: float = DEFAULT_MAX_ERROR_RATIO,
) -> DnsblReport:  # fmt: skip
    return asyncio.run(
        _dnsbl(targets, lists, choice, helo, options or ResolverOptions(), max_error_ratio)
    )
