"""relay-probing: clients told "Relay access denied" (or Exim's "relay not permitted",
Sendmail's "Relaying denied"). Someone is testing whether this server relays."""

from __future__ import annotations

from typing import ClassVar

from relayguard.analysis.detectors.base import Context, Detector, Evidence, Span, ranked
from relayguard.analysis.locality import domain_of
from relayguard.findings import Finding, Severity, Subject
from relayguard.logs import events as E
from relayguard.logs.events import Event

_MAX_KEPT = 200


class _State:
    __slots__ = ("domains", "evidence", "helos", "senders", "span")

    def __init__(self) -> None:
        self.span = Span()
        self.domains: set[str] = set()
        self.senders: dict[str, int] = {}
        self.helos: set[str] = set()
        self.evidence = Evidence()


class RelayProbing(Detector):
    indicator = "relay-probing"
    events: ClassVar[tuple[str, ...]] = (E.RELAY_DENIED,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.s = ctx.config.detectors.relay_probing
        self.by_ip: dict[str, _State] = {}

    def on_event(self, ev: Event) -> None:
        ip = ev.client_ip or "unknown"
        st = self.by_ip.get(ip)
        if st is None:
            st = self.by_ip[ip] = _State()
        st.span.add(ev.time)
        st.evidence.add(ev.raw)
        if len(st.domains) < _MAX_KEPT:
            st.domains.add(domain_of(ev.recipient))
        sender = "<>" if ev.sender == "" else (ev.sender or "?")
        if sender in st.senders or len(st.senders) < _MAX_KEPT:
            st.senders[sender] = st.senders.get(sender, 0) + 1
        if ev.helo and len(st.helos) < 20:
            st.helos.add(ev.helo)

    def finish(self) -> list[Finding]:
        out = []
        for ip, st in self.by_ip.items():
            n = st.span.count
            severity = Severity.MEDIUM if n >= self.s.min_denials else Severity.LOW
            senders = ranked(st.senders)
            out.append(
                Finding(
                    indicator=self.indicator,
                    severity=severity,
                    subject=Subject("ip", ip),
                    title=(
                        f"{ip} was refused relaying {n} time(s) to {len(st.domains)} "
                        f"domain(s) with {len(senders)} sender form(s): relay probing"
                    ),
                    first_seen=st.span.first,
                    last_seen=st.span.last,
                    count=n,
                    evidence=st.evidence.lines(),
                    mitigations=["block-relay-probers", "test-relay"],
                    details={
                        "recipient_domains": len(st.domains),
                        "senders": [{"value": s, "count": c} for s, c in senders[:20]],
                        "helos": sorted(st.helos),
                    },
                )
            )
        return out
