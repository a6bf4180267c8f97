"""The analysis engine: feeds a stream of events to the correlator and the detectors.

This is the hot path of ``relayguard analyze``: it runs once per parsed line, so it does
little per event, dispatches by event type through a prebuilt table, and leaves the work to
the few detectors that asked for that type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from relayguard.analysis.detectors import REGISTRY, Context, Detector
from relayguard.analysis.detectors.base import ranked
from relayguard.analysis.incidents import build_incidents
from relayguard.analysis.locality import (
    MAILBOX_AGENTS,
    LocalDomains,
    TrustedNetworks,
    domain_of,
)
from relayguard.analysis.messages import Correlator, Message
from relayguard.analysis.result import AnalysisResult, TrafficStats
from relayguard.config import Config
from relayguard.findings import Finding, verdict_for
from relayguard.logs import events as E
from relayguard.logs.events import Event
from relayguard.logs.stats import InputStats

_EXPIRE_EVERY = 1 << 16
_MAX_TOP_KEYS = 50_000
_TOP_N = 10
_MAX_OUTBOUND_IDS = 200_000


def _is_local_hop(ip: str, ctx: Context) -> bool:
    return ip.startswith("127.") or ip == "::1" or ctx.trusted.contains(ip)


_LOCAL_TABLE_HINTS = ("local recipient table", "virtual mailbox table", "mailbox unavailable")


class _Top:
    """A counter that stays bounded: past the cap the rarest keys are dropped."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, key: str, n: int = 1) -> None:
        c = self.counts
        c[key] = c.get(key, 0) + n
        if len(c) > _MAX_TOP_KEYS:
            keep = sorted(c.items(), key=lambda kv: -kv[1])[: _MAX_TOP_KEYS // 2]
            self.counts = dict(keep)

    def top(self) -> list[tuple[str, int]]:
        return ranked(self.counts)[:_TOP_N]


class Analyzer:
    def __init__(self, config: Config) -> None:
        a = config.analyze
        self.local = LocalDomains(a.local_domains)
        self.ctx = Context(config, self.local, TrustedNetworks(a.trusted_networks))
        self.detectors: list[Detector] = [cls(self.ctx) for cls in REGISTRY]
        self.correlator = Correlator(a.max_open_messages, a.message_max_age)
        self.traffic = TrafficStats()
        self.top = {
            name: _Top() for name in ("sasl_users", "senders", "client_ips", "recipient_domains")
        }
        # Message-IDs of mail already counted as outbound, to recognise the same message
        # when a content filter or a second Postfix instance puts it back in the queue.
        self._outbound_ids: dict[str, None] = {}
        self._last_time: float | None = None
        self._fed = 0  # events fed so far
        self._build_dispatch()

    def _build_dispatch(self) -> None:
        self.recipient_handlers = [
            d.on_external_recipient for d in self.detectors if d.wants_external_recipients
        ]
        # event type -> handlers, the engine's own bookkeeping first, then the detectors'
        c = self.correlator
        table: dict[str, list[Callable[[Event], object]]] = {
            E.DELIVERY: [self._delivery],
            E.QUEUED: [c.on_queued],
            E.CLIENT: [c.on_client],
            E.AUTH_SUCCESS: [c.on_client, self._auth_success],
            E.PICKUP: [c.on_pickup],
            E.MESSAGE_ID: [c.on_message_id],
            E.NDR: [c.on_ndr, self._ndr],
            E.REMOVED: [c.on_removed],
            E.AUTH_FAILURE: [self._auth_failure],
            E.REJECT: [self._reject],
            E.RELAY_DENIED: [self._reject],
        }
        for det in self.detectors:
            for t in det.events:
                table.setdefault(t, []).append(det.on_event)
        self.dispatch = table

    # The state is plain data (see analysis/snapshot.py); the dispatch tables of bound
    # methods are rebuilt rather than stored.
    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        del state["dispatch"], state["recipient_handlers"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._build_dispatch()

    def feed_all(self, events: Iterable[Event]) -> None:
        get = self.dispatch.get
        # counted across calls: a live feed comes in many small batches
        n = self._fed
        try:
            for ev in events:
                n += 1
                handlers = get(ev.type)
                if handlers is not None:
                    for handle in handlers:
                        handle(ev)
                if not n & (_EXPIRE_EVERY - 1) and ev.time is not None:
                    self.correlator.expire(ev.time)
        finally:
            self._fed = n

    def feed(self, ev: Event) -> None:
        self.feed_all((ev,))

    # --- the engine's own bookkeeping ----------------------------------------------------
    def _auth_success(self, ev: Event) -> None:
        self.traffic.auth_successes += 1
        if self.local.inferred:
            self.local.learn(domain_of(ev.sasl_username))

    def _auth_failure(self, ev: Event) -> None:
        self.traffic.auth_failures += 1

    def _ndr(self, ev: Event) -> None:
        self.traffic.ndrs += 1

    def _reject(self, ev: Event) -> None:
        tr = self.traffic
        tr.rejected += 1
        if ev.type == E.RELAY_DENIED:
            tr.relay_denied += 1
        elif self.local.inferred and ev.reply and any(h in ev.reply for h in _LOCAL_TABLE_HINTS):
            self.local.learn(domain_of(ev.recipient))

    def _delivery(self, ev: Event) -> None:
        tr = self.traffic
        status = ev.status
        if status == "sent":
            tr.delivered += 1
        elif status == "deferred":
            tr.deferred += 1
        elif status == "bounced":
            tr.bounced += 1
        rcpt = ev.recipient
        if not rcpt or ev.queue_id is None:
            return
        msg = self.correlator.on_delivery(ev)
        if not msg.add_recipient(rcpt.lower()):
            return
        tr.recipients += 1
        domain = domain_of(rcpt)
        if ev.relay == "local" or ev.program.rpartition("/")[2] in MAILBOX_AGENTS:
            if self.local.inferred:
                self.local.learn(domain)
            return
        if not domain or domain in self.local.domains:
            return
        if msg.external_recipients == 0 and self._reinjected(msg):
            msg.reinjected = True
        if msg.reinjected:
            return
        tr.external_recipients += 1
        msg.external_recipients += 1
        top = self.top
        top["recipient_domains"].add(domain)
        if msg.external_recipients == 1:
            if msg.sasl_username:
                top["sasl_users"].add(msg.sasl_username)
            if msg.sender:
                top["senders"].add(msg.sender.lower())
            if msg.client_ip:
                top["client_ips"].add(msg.client_ip)
        for handle in self.recipient_handlers:
            handle(msg, ev, domain)

    def _reinjected(self, msg: Message) -> bool:
        """True for a message whose Message-ID was already counted going out and that came
        back from a trusted or loopback client (amavis, a second instance's hand-off)."""
        mid = msg.message_id
        if not mid:
            return False
        ip = msg.client_ip
        if mid in self._outbound_ids and ip is not None and _is_local_hop(ip, self.ctx):
            return True
        if len(self._outbound_ids) >= _MAX_OUTBOUND_IDS:
            for old in list(self._outbound_ids)[: _MAX_OUTBOUND_IDS // 2]:
                del self._outbound_ids[old]
        self._outbound_ids[mid] = None
        return False

    def finish(self, input_stats: InputStats | None = None) -> AnalysisResult:
        """The findings so far. Changes no state: feeding may go on, and ``finish`` may be
        called again (``relayguard watch`` asks after every batch of lines)."""
        findings: list[Finding] = []
        for det in self.detectors:
            findings.extend(det.finish())
        incidents = build_incidents(findings)
        ordered = [f for inc in incidents for f in inc.findings]
        tr = self.traffic
        tr.messages = self.correlator.queued
        tr.incomplete_messages = self.correlator.evicted + len(self.correlator.open)
        tr.local_domains = sorted(self.local.domains)
        tr.local_domains_inferred = self.local.inferred
        tr.top = {name: top.top() for name, top in self.top.items()}
        return AnalysisResult(
            verdict=verdict_for(ordered),
            findings=ordered,
            incidents=incidents,
            input=input_stats or InputStats(),
            traffic=tr,
        )
