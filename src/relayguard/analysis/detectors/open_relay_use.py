"""open-relay-use: external-to-external mail accepted from a client that is neither
authenticated nor in the trusted networks. The server relayed for a stranger."""

from __future__ import annotations

from relayguard.analysis.detectors.base import Context, Detector, Evidence, Span, ranked
from relayguard.analysis.messages import Message
from relayguard.findings import Finding, Severity, Subject
from relayguard.logs.events import Event

_RELAY_ORIGINS = frozenset({"smtpd", "exim", "sendmail"})
_MAX_DOMAINS = 5000


class _State:
    __slots__ = ("domains", "evidence", "messages", "senders", "span")

    def __init__(self) -> None:
        self.span = Span()  # counts recipients
        self.messages = 0
        self.domains: set[str] = set()
        self.senders: dict[str, int] = {}
        self.evidence = Evidence()


class OpenRelayUse(Detector):
    indicator = "open-relay-use"
    wants_external_recipients = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.s = ctx.config.detectors.open_relay_use
        self.by_ip: dict[str, _State] = {}

    def on_external_recipient(self, msg: Message, ev: Event, domain: str) -> None:
        if msg.sasl_username or msg.is_ndr or msg.origin not in _RELAY_ORIGINS:
            return
        ip = msg.client_ip
        if not ip or self.ctx.trusted.contains(ip):
            return
        if ev.orig_recipient and not self.ctx.local.is_external(ev.orig_recipient):
            return  # a local address forwarding outside, not a relay
        st = self.by_ip.get(ip)
        if st is None:
            st = self.by_ip[ip] = _State()
        st.span.add(ev.time)
        if len(st.domains) < _MAX_DOMAINS:
            st.domains.add(domain)
        if msg.external_recipients == 1:
            st.messages += 1
            st.evidence.add(msg.first_line)
            sender = msg.sender or "<>"
            if sender in st.senders or len(st.senders) < 100:
                st.senders[sender] = st.senders.get(sender, 0) + 1
        st.evidence.add(ev.raw)

    def finish(self) -> list[Finding]:
        out = []
        for ip, st in self.by_ip.items():
            if st.messages < self.s.min_messages:
                continue
            senders = ranked(st.senders)
            out.append(
                Finding(
                    indicator=self.indicator,
                    severity=Severity.CRITICAL,
                    subject=Subject("ip", ip),
                    title=(
                        f"open relay used: {ip} (not authenticated, not trusted) had "
                        f"{st.messages} messages relayed to {st.span.count} external "
                        f"recipients in {len(st.domains)} domains"
                    ),
                    first_seen=st.span.first,
                    last_seen=st.span.last,
                    count=st.messages,
                    evidence=st.evidence.lines(),
                    mitigations=[
                        "close-open-relay",
                        "narrow-mynetworks",
                        "remove-access-ok",
                        "test-relay",
                        "hold-queued-mail",
                        "check-blocklists",
                    ],
                    details={
                        "messages": st.messages,
                        "external_recipients": st.span.count,
                        "domains": len(st.domains),
                        "senders": [{"value": s, "count": c} for s, c in senders[:20]],
                    },
                )
            )
        return out
