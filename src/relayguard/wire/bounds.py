"""What a capture with a great many clients may cost: per-client state, and findings kept.

A capture of a botnet touching a server once from each of 50,000 addresses gives 50,000
low-severity findings (one relay refusal each, below every threshold): nobody reads them, and
they would cost a gigabyte of memory and 150 MB of JSON. So low-severity findings are kept per
indicator up to :data:`MAX_LOW_FINDINGS`, the most frequent first; the rest are counted. And
the per-client state of the detectors the wire feeds is bounded as the log analyzer bounds
its attacking IPs (auth-bruteforce): at :data:`MAX_TRACKED_CLIENTS`, clients seen once are
forgotten, then the least busy half.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from relayguard.analysis.detectors.auth_bruteforce import _MAX_TRACKED_IPS
from relayguard.findings import Finding, Severity

MAX_TRACKED_CLIENTS: Final = _MAX_TRACKED_IPS
MAX_LOW_FINDINGS: Final = 50  # per indicator

S = TypeVar("S")


def forget_quiet_clients(by_ip: dict[str, S], count: Callable[[S], int]) -> dict[str, S]:
    """``by_ip`` without the clients seen once; if still full, only its busiest half."""
    kept = {ip: st for ip, st in by_ip.items() if count(st) > 1}
    if len(kept) >= MAX_TRACKED_CLIENTS // 2:
        busiest = sorted(kept.items(), key=lambda kv: -count(kv[1]))
        kept = dict(busiest[: MAX_TRACKED_CLIENTS // 2])
    return kept


def top_of(by_ip: dict[str, S], count: Callable[[S], int], keep: int) -> dict[str, S]:
    """The ``keep`` busiest entries of ``by_ip``, ties in address order."""
    if len(by_ip) <= keep:
        return by_ip
    ranked = sorted(by_ip.items(), key=lambda kv: (-count(kv[1]), kv[0]))
    return dict(ranked[:keep])


def cap_low_findings(
    findings: list[Finding], keep: int = MAX_LOW_FINDINGS
) -> tuple[list[Finding], dict[str, int]]:
    """``findings`` with at most ``keep`` low/info ones per indicator (highest count first,
    then earliest, then subject), and how many were left out per indicator."""
    low: dict[str, list[Finding]] = {}
    for f in findings:
        if f.severity <= Severity.LOW:
            low.setdefault(f.indicator, []).append(f)
    dropped: set[int] = set()
    omitted: dict[str, int] = {}
    for indicator, group in low.items():
        if len(group) <= keep:
            continue
        group.sort(key=lambda f: (-f.count, f.first_seen or 0.0, f.subject.value))
        dropped.update(id(f) for f in group[keep:])
        omitted[indicator] = len(group) - keep
    if not dropped:
        return findings, {}
    return [f for f in findings if id(f) not in dropped], omitted
