"""outbound-spike: an entity sending far more outside mail than it normally does.

Entities are the SASL user of authenticated mail, else the client IP of mail received over SMTP,
else the envelope sender of locally submitted mail (a web script using sendmail). Per entity and
per fixed window (an hour by default) we count messages with external recipients, external
recipients and distinct external recipient domains.

A closed window is judged against the entity's own history of *active* windows (robust
statistics: median and median absolute deviation, so one earlier burst does not raise the bar)
once there are ``baseline_windows`` of them; before that, against absolute ceilings. A ceiling
breach is provisional: at the end of the log, if the entity has enough history by then and the
breach is ordinary for it (a steady newsletter), it is dropped. A log with no history, such as
a fresh server or a one-hour excerpt, keeps its ceiling breaches.
"""

from __future__ import annotations

from collections import deque
from statistics import median

from relayguard.analysis.detectors.base import Context, Detector
from relayguard.analysis.messages import Message
from relayguard.findings import Finding, Severity, Subject, TimelineEntry
from relayguard.logs.events import Event, iso_time

_MAX_DOMAINS_PER_WINDOW = 10_000
_EVIDENCE_PER_WINDOW = 4
_MAX_SPIKES_KEPT = 24


class _Window:
    __slots__ = ("domains", "evidence", "first", "index", "last", "messages", "recipients")

    def __init__(self, index: int, t: float) -> None:
        self.index = index
        self.first = t
        self.last = t
        self.messages = 0
        self.recipients = 0
        self.domains: set[str] = set()
        self.evidence: list[str] = []

    def values(self) -> tuple[int, int, int]:
        return self.messages, self.recipients, len(self.domains)


class _Spike:
    __slots__ = ("basis", "evidence", "first", "last", "values")

    def __init__(self, w: _Window, basis: str) -> None:
        self.values = w.values()
        self.first = w.first
        self.last = w.last
        self.evidence = list(w.evidence)
        self.basis = basis


class _Entity:
    __slots__ = ("current", "history", "pending", "spikes")

    def __init__(self, history: int) -> None:
        self.current: _Window | None = None
        self.history: deque[tuple[int, int, int]] = deque(maxlen=history)
        self.pending: list[_Spike] = []  # ceiling breaches, confirmed or dropped at the end
        self.spikes: list[_Spike] = []  # breaches of the entity's own baseline


class OutboundSpike(Detector):
    indicator = "outbound-spike"
    wants_external_recipients = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.s = ctx.config.detectors.outbound_spike
        self.entities: dict[tuple[str, str], _Entity] = {}

    @staticmethod
    def entity_of(msg: Message) -> tuple[str, str] | None:
        if msg.is_ndr:
            return None
        if msg.sasl_username:
            return ("sasl_user", msg.sasl_username)
        if msg.client_ip and msg.origin != "pickup":
            return ("ip", msg.client_ip)
        if msg.sender:
            return ("sender", msg.sender.lower())
        return None

    def on_external_recipient(self, msg: Message, ev: Event, domain: str) -> None:
        if ev.time is None:
            return
        key = self.entity_of(msg)
        if key is None:
            return
        ent = self.entities.get(key)
        if ent is None:
            ent = self.entities[key] = _Entity(self.s.history)
        index = int(ev.time // self.s.window)
        w = ent.current
        if w is None or index > w.index:
            if w is not None:
                self._close(w, ent.history, ent.spikes, ent.pending)
            w = ent.current = _Window(index, ev.time)
        w.last = max(w.last, ev.time)
        w.recipients += 1
        if len(w.domains) < _MAX_DOMAINS_PER_WINDOW:
            w.domains.add(domain)
        if msg.external_recipients == 1:
            w.messages += 1
        if len(w.evidence) < _EVIDENCE_PER_WINDOW:
            w.evidence.append(ev.raw)

    def _close(
        self,
        w: _Window,
        history: deque[tuple[int, int, int]],
        spikes: list[_Spike],
        pending: list[_Spike],
    ) -> None:
        """Judge a finished window and add it to ``history``."""
        values = w.values()
        if len(history) >= self.s.baseline_windows:
            basis = self._baseline_breach(values, list(history))
            if basis and len(spikes) < _MAX_SPIKES_KEPT:
                spikes.append(_Spike(w, basis))
        else:
            basis = self._ceiling_breach(values)
            if basis and len(pending) < _MAX_SPIKES_KEPT:
                pending.append(_Spike(w, basis))
        history.append(values)

    def _ceiling_breach(self, values: tuple[int, int, int]) -> str:
        s = self.s
        m, r, d = values
        parts = []
        if m >= s.ceiling_messages:
            parts.append(f"{m} messages >= ceiling {s.ceiling_messages}")
        if r >= s.ceiling_recipients:
            parts.append(f"{r} recipients >= ceiling {s.ceiling_recipients}")
        if d >= s.ceiling_domains:
            parts.append(f"{d} domains >= ceiling {s.ceiling_domains}")
        return "; ".join(parts)

    def _baseline_breach(
        self, values: tuple[int, int, int], history: list[tuple[int, int, int]]
    ) -> str:
        if values[1] < self.s.floor:
            return ""  # too few recipients to matter, whatever the ratio
        parts = []
        for i, name in enumerate(("messages", "recipients", "domains")):
            series = [h[i] for h in history]
            med = median(series)
            mad = median(abs(x - med) for x in series)
            limit = max(med * self.s.baseline_factor, med + self.s.baseline_mads * 1.4826 * mad)
            if values[i] > limit:
                parts.append(f"{values[i]} {name} vs usual {med:g} per window")
        return "; ".join(parts)

    def finish(self) -> list[Finding]:
        out = []
        for key, ent in self.entities.items():
            # the open window is judged as if it ended now, on copies: feeding may go on
            spikes = list(ent.spikes)
            pending = list(ent.pending)
            if ent.current is not None:
                window_history = deque(ent.history, maxlen=ent.history.maxlen)
                self._close(ent.current, window_history, spikes, pending)
                history = list(window_history)
            else:
                history = list(ent.history)
            for p in pending:
                if len(history) > self.s.baseline_windows:
                    rest = list(history)
                    if p.values in rest:
                        rest.remove(p.values)
                    if not self._baseline_breach(p.values, rest):
                        continue  # ordinary for this entity once its whole history is known
                spikes.append(p)
            if spikes:
                out.append(self._finding(key, spikes, len(history)))
        return out

    def _finding(self, key: tuple[str, str], spikes: list[_Spike], windows: int) -> Finding:
        spikes.sort(key=lambda sp: sp.first)
        worst = max(spikes, key=lambda sp: sp.values[1])
        m, r, d = worst.values
        hours = self.s.window / 3600
        per = "hour" if hours == 1 else f"{hours:g} hours"
        title = (
            f"{key[1]} sent {m} messages to {r} external recipients in {d} domains "
            f"within one {'window of ' + per if hours != 1 else per}"
        )
        if len(spikes) > 1:
            title += f" ({len(spikes)} spike windows)"
        evidence: list[str] = []
        for sp in spikes[:3]:
            evidence.extend(sp.evidence)
        timeline = [
            TimelineEntry(
                sp.first, f"{sp.values[0]} msgs, {sp.values[1]} rcpts, {sp.values[2]} domains"
            )
            for sp in spikes
        ]
        return Finding(
            indicator=self.indicator,
            severity=Severity.HIGH,
            subject=Subject(key[0], key[1]),
            title=title,
            first_seen=spikes[0].first,
            last_seen=spikes[-1].last,
            count=sum(sp.values[0] for sp in spikes),
            evidence=evidence,
            mitigations=["hold-queued-mail", "rate-limit-outbound", "reset-password"]
            if key[0] == "sasl_user"
            else ["hold-queued-mail", "rate-limit-outbound"],
            timeline=timeline,
            details={
                "window_seconds": self.s.window,
                "history_windows": windows,
                "spikes": [
                    {
                        "start": iso_time(sp.first),
                        "messages": sp.values[0],
                        "recipients": sp.values[1],
                        "domains": sp.values[2],
                        "basis": sp.basis,
                    }
                    for sp in spikes
                ],
            },
        )
