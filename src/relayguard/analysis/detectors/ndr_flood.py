"""ndr-flood: bounce notifications (NDRs) out of proportion to the mail handled, and
backscatter: NDRs sent to outside addresses for mail that strangers submitted, i.e. bounces to
forged senders. Accept-then-bounce makes a server a spam source even when it relays nothing."""

from __future__ import annotations

from typing import ClassVar

from relayguard.analysis.detectors.base import Context, Detector, Evidence, Span, ranked
from relayguard.analysis.messages import Message
from relayguard.findings import Finding, Severity, Subject
from relayguard.logs import events as E
from relayguard.logs.events import Event


class NdrFlood(Detector):
    indicator = "ndr-flood"
    events: ClassVar[tuple[str, ...]] = (E.NDR, E.QUEUED)
    wants_external_recipients = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.s = ctx.config.detectors.ndr_flood
        self.ndrs = Span()
        self.kinds: dict[str, int] = {}
        self.queued = 0
        self.backscatter = Span()
        self.backscatter_domains: dict[str, int] = {}
        self.evidence = Evidence()
        self.host = ""

    def on_event(self, ev: Event) -> None:
        if ev.type == E.QUEUED:
            self.queued += 1
            return
        self.host = self.host or ev.host
        self.ndrs.add(ev.time)
        kind = ev.ndr_kind or "non-delivery"
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.evidence.add(ev.raw)

    def on_external_recipient(self, msg: Message, ev: Event, domain: str) -> None:
        if not msg.is_ndr or msg.parent_sasl_username:
            return
        if msg.parent_client_ip and self.ctx.trusted.contains(msg.parent_client_ip):
            return
        self.backscatter.add(ev.time)
        d = domain
        if d in self.backscatter_domains or len(self.backscatter_domains) < 200:
            self.backscatter_domains[d] = self.backscatter_domains.get(d, 0) + 1
        self.evidence.add(ev.raw)

    def finish(self) -> list[Finding]:
        n = self.ndrs.count
        originals = max(1, self.queued - n)
        ratio = n / originals
        flood = n >= self.s.min_ndrs and ratio >= self.s.ratio
        backscatter = self.backscatter.count >= self.s.backscatter_min
        if not (flood or backscatter):
            return []
        parts = [f"{n} bounce notifications for {originals} messages ({ratio:.0%})"]
        if self.backscatter.count:
            parts.append(
                f"{self.backscatter.count} sent to outside addresses for unauthenticated "
                "mail (backscatter to forged senders)"
            )
        domains = ranked(self.backscatter_domains)
        return [
            Finding(
                indicator=self.indicator,
                severity=Severity.MEDIUM,
                subject=Subject("host", self.host or "mail server"),
                title="; ".join(parts),
                first_seen=self.ndrs.first,
                last_seen=max(
                    (t for t in (self.ndrs.last, self.backscatter.last) if t is not None),
                    default=None,
                ),
                count=n,
                evidence=self.evidence.lines(),
                mitigations=["stop-backscatter", "check-blocklists"],
                details={
                    "ndrs": n,
                    "by_kind": self.kinds,
                    "queued_messages": self.queued,
                    "ratio": round(ratio, 3),
                    "backscatter": self.backscatter.count,
                    "backscatter_domains": [{"value": d, "count": c} for d, c in domains[:20]],
                },
            )
        ]
