"""queue-buildup: deferred messages piling up in the queue.

A message is outstanding from its first deferral until its queue file is removed (delivered,
bounced or expired). The peak number outstanding at once is what an admin would have seen in
``mailq``; the top deferral reasons and next hops say why.
"""

from __future__ import annotations

import re
from typing import ClassVar

from relayguard.analysis.detectors.base import Context, Detector, Evidence, Span, ranked
from relayguard.findings import Finding, Severity, Subject, TimelineEntry
from relayguard.logs import events as E
from relayguard.logs.events import Event

_MAX_OUTSTANDING = 1_000_000
_MAX_REASONS = 100
_NUMBERS = re.compile(r"\d+")


class QueueBuildup(Detector):
    indicator = "queue-buildup"
    events: ClassVar[tuple[str, ...]] = (E.DELIVERY, E.REMOVED, E.EXPIRED, E.CONNECT_FAILED)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.s = ctx.config.detectors.queue_buildup
        self.outstanding: set[tuple[str, str]] = set()
        self.peak = 0
        self.peak_time: float | None = None
        self.deferrals = Span()
        self.expired = 0
        self.connect_failures = 0
        self.reasons: dict[str, int] = {}
        self.hops: dict[str, int] = {}
        self.evidence = Evidence()
        self.host = ""
        self.recovered_at: float | None = None

    def on_event(self, ev: Event) -> None:
        t = ev.type
        if t == E.DELIVERY:
            if ev.status != "deferred" or ev.queue_id is None:
                return
            self.host = self.host or ev.host
            self.deferrals.add(ev.time)
            self.evidence.add(ev.raw)
            self._count(self.reasons, _NUMBERS.sub("#", (ev.reply or "?")[:120]))
            self._count(self.hops, ev.relay or "?")
            key = (ev.host, ev.queue_id)
            if key not in self.outstanding and len(self.outstanding) < _MAX_OUTSTANDING:
                self.outstanding.add(key)
                if len(self.outstanding) > self.peak:
                    self.peak = len(self.outstanding)
                    self.peak_time = ev.time
                self.recovered_at = None
        elif t == E.CONNECT_FAILED:
            self.connect_failures += 1
        elif ev.queue_id is not None:
            if t == E.EXPIRED:
                self.expired += 1
            key = (ev.host, ev.queue_id)
            if key in self.outstanding:
                self.outstanding.discard(key)
                if not self.outstanding:
                    self.recovered_at = ev.time

    @staticmethod
    def _count(counter: dict[str, int], key: str) -> None:
        if key in counter or len(counter) < _MAX_REASONS:
            counter[key] = counter.get(key, 0) + 1

    def finish(self) -> list[Finding]:
        if self.peak < self.s.min_deferred:
            return []
        severity = Severity.HIGH if self.peak >= self.s.high_deferred else Severity.MEDIUM
        reasons = ranked(self.reasons)
        hops = ranked(self.hops)
        now = len(self.outstanding)
        state = "recovered" if now == 0 else f"{now} still deferred at the end of the log"
        timeline = [
            TimelineEntry(self.deferrals.first, "first deferral"),
            TimelineEntry(self.peak_time, f"peak: {self.peak} messages deferred"),
        ]
        if self.recovered_at is not None:
            timeline.append(TimelineEntry(self.recovered_at, "all deferred messages left"))
        return [
            Finding(
                indicator=self.indicator,
                severity=severity,
                subject=Subject("host", self.host or "mail server"),
                title=(
                    f"queue build-up: {self.peak} messages deferred at once "
                    f"({self.deferrals.count} deferrals, {self.expired} expired); {state}"
                ),
                first_seen=self.deferrals.first,
                last_seen=self.deferrals.last,
                count=self.deferrals.count,
                evidence=self.evidence.lines(),
                mitigations=["inspect-deferred-queue", "check-blocklists", "purge-spam-queue"],
                timeline=timeline,
                details={
                    "peak_deferred": self.peak,
                    "deferred_at_end": now,
                    "deferrals": self.deferrals.count,
                    "expired": self.expired,
                    "connect_failures": self.connect_failures,
                    "top_reasons": [{"value": r, "count": c} for r, c in reasons[:5]],
                    "top_next_hops": [{"value": h, "count": c} for h, c in hops[:5]],
                },
            )
        ]
