"""The I/O shell of the DNS checks: build a resolver, drive a core with it, close it."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from relayguard.dns._errors import TargetError
from relayguard.dns.dnsbl import DnsblCheck, Target
from relayguard.dns.dnsbl_result import DnsblReport
from relayguard.dns.dnsbl_verdict import DEFAULT_MAX_ERROR_RATIO, build_report
from relayguard.dns.lists import ListSpec
from relayguard.dns.names import (
    IPAddress,
    is_public_ip,
    normalize_domain,
    target_ip,
    unmapped,
)
from relayguard.dns.resolver import Resolver, ResolverChoice, drive_all, drive_incremental
from relayguard.dns.transport import Server

if TYPE_CHECKING:  # the domain audit's modules are imported when it runs
    from relayguard.dns.domain_report import DomainReport

MAX_TARGETS = 100_000
# Addresses nobody owns, whose SPF result must be fail: 240.0.0.0/4 is reserved (RFC 1112) and
# 100::/64 discard-only (RFC 6666). Not the documentation ranges: examples (and the test lab)
# authorize those. A pass for them means the record lets anyone send (an include or redirect
# to '+all', an 'exists' of a wildcard).
SPF_PROBES: tuple[IPAddress, ...] = (
    ipaddress.IPv4Address("240.0.0.1"), ipaddress.IPv6Address("100::1"))


@dataclass(frozen=True, slots=True)
class ResolverOptions:
    timeout: float = 2.0
    tries: int = 2
    rate: float = 0.0  # queries per second per list, 0 = no limit
    max_in_flight: int = 64


PRIVATE_NOTE = "block lists never see private addresses (checked anyway, for a private list)"


def parse_targets(texts: Iterable[str], origins: list[str] | None = None) -> list[Target]:
    """IPs stay IPs (an IPv4-mapped IPv6 address is its IPv4 address); anything else must be
    a domain name (IDNA-encoded, lower-cased). ``origins[i]`` names where ``texts[i]`` came
    from (``--targets-file FILE line 3: ``) in its error."""
    out: dict[str, Target] = {}
    for index, text in enumerate(texts):
        where = origins[index] if origins else ""
        raw = text.strip()
        ip = target_ip(raw, where)
        if ip is not None:
            notes = []
            plain = unmapped(ip)
            if plain != ip:
                notes.append(f"IPv4-mapped: checked as {plain}")
            if not is_public_ip(plain):
                notes.append(PRIVATE_NOTE)
            key = str(plain)
            if key not in out:
                out[key] = Target(raw, ip=plain, note="; ".join(notes) or None)
        else:
            if "/" in raw or raw.count(":") > 1:
                raise TargetError(f"{where}{raw[:80]!r} is not an IP address or a domain name")
            try:
                name = normalize_domain(raw, what="an IP address or a domain name")
            except TargetError as exc:
                raise TargetError(f"{where}{exc}") from None
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


def check_dnsbl(
    targets: list[Target], lists: list[ListSpec], choice: ResolverChoice, *,
    helo: str | None = None, options: ResolverOptions | None = None,
    max_error_ratio: float = DEFAULT_MAX_ERROR_RATIO,
) -> DnsblReport:  # fmt: skip
    opts = options or ResolverOptions()
    resolver = make_resolver(choice, lists, opts)
    check = DnsblCheck(targets, lists, helo=helo)
    try:
        drive_incremental(resolver, check, workers=opts.max_in_flight)
    finally:
        resolver.close()
    stats = resolver.stats
    queries = {"sent": stats.sent, "cached": stats.cached, "retried": stats.retried,
               "tcp": stats.tcp}  # fmt: skip
    return build_report(check, choice, max_error_ratio=max_error_ratio, queries=queries)


def audit_domain(
    domain: str, choice: ResolverChoice, *, ips: list[IPAddress] | None = None,
    selectors: list[tuple[str, str]] | None = None, options: ResolverOptions | None = None,
    notes: list[str] | None = None,
) -> DomainReport:  # fmt: skip
    from relayguard.dns import dkim, dmarc, mx, spf
    from relayguard.dns.domain_report import DomainReport, build

    ips = ips or []
    timestamp = int(time.time())
    resolver = make_resolver(choice, [], options or ResolverOptions())
    try:
        audit, mx_result, dmarc_result, dkim_result, *per_ip_and_probes = drive_all(resolver, [
            spf.evaluate(domain, timestamp=timestamp),
            mx.check(domain),
            dmarc.check(domain),
            dkim.check(domain, selectors or []),
            *(spf.evaluate(domain, ip, timestamp=timestamp) for ip in ips),
            *(spf.evaluate(domain, probe, timestamp=timestamp) for probe in SPF_PROBES),
        ])  # fmt: skip
    finally:
        resolver.close()
    if not mx_result.exists:  # NXDOMAIN: the name does not exist at all
        raise TargetError(f"{domain} does not exist (NXDOMAIN from {choice.server})")
    per_ip, probes = per_ip_and_probes[: len(ips)], per_ip_and_probes[len(ips) :]
    report = DomainReport(
        domain, str(choice.server), choice.source, audit, per_ip, dmarc_result,
        dkim_result, mx_result, spf_probes=probes, notes=notes or [],
    )  # fmt: skip
    return build(report)
