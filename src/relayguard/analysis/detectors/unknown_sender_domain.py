"""unknown-sender-domain: mail relayed outside with an envelope sender domain that is not ours.

Unauthenticated mail from an untrusted client, sent to external recipients with a foreign sender
domain, is the open-relay signature. Authenticated users (and local scripts) sending as domains
this server does not handle are forging, or were taken over. Mail forwarded from a local
address (``orig_to=`` local) keeps its original sender and is not counted.
"""

from __future__ import annotations

from relayguard.analysis.detectors.base import Context, Detector, Evidence, Span, ranked
from relayguard.analysis.locality import domain_of
from relayguard.analysis.messages import Message
from relayguard.findings import Finding, Severity, Subject
from relayguard.logs.events import Event

_MAX_DOMAINS = 500


class _State:
    __slots__ = ("domains", "evidence", "span")

    def __init__(self) -> None:
        self.span = Span()
        self.domains: dict[str, int] = {}
        self.evidence = Evidence()


class UnknownSenderDomain(Detector):
    indicator = "unknown-sender-domain"
    wants_external_recipients = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.s = ctx.config.detectors.unknown_sender_domain
        self.by_subject: dict[tuple[str, str], _State] = {}

    def on_external_recipient(self, msg: Message, ev: Event, domain: str) -> None:
        if msg.external_recipients != 1 or msg.is_ndr or not msg.sender:
            return
        sdom = domain_of(msg.sender)
        if not sdom or self.ctx.local.is_local(sdom):
            return
        if ev.orig_recipient and not self.ctx.local.is_external(ev.orig_recipient):
            return  # forwarded from a local address
        if msg.sasl_username:
            key = ("sasl_user", msg.sasl_username)
        elif msg.origin == "pickup":
            key = ("sender", msg.sender.lower())
        elif msg.client_ip and not self.ctx.trusted.contains(msg.client_ip):
            key = ("ip", msg.client_ip)
        else:
            return
        st = self.by_subject.get(key)
        if st is None:
            st = self.by_subject[key] = _State()
        st.span.add(msg.time if msg.time is not None else ev.time)
        if sdom in st.domains or len(st.domains) < _MAX_DOMAINS:
            st.domains[sdom] = st.domains.get(sdom, 0) + 1
        st.evidence.add(msg.first_line)

    def finish(self) -> list[Finding]:
        out = []
        for (kind, value), st in self.by_subject.items():
            minimum = 1 if kind == "ip" else self.s.min_messages
            if st.span.count < minimum:
                continue
            domains = ranked(st.domains)
            shown = ", ".join(d for d, _ in domains[:5]) + (" ..." if len(domains) > 5 else "")
            if kind == "ip":
                title = (
                    f"{st.span.count} unauthenticated messages from {value} relayed outside "
                    f"with foreign sender domains ({shown})"
                )
                mitigations = ["close-open-relay", "narrow-mynetworks", "test-relay"]
            else:
                title = (
                    f"{value} sent {st.span.count} external messages as "
                    f"{len(domains)} domain(s) this server does not handle ({shown})"
                )
                mitigations = ["sender-login-maps", "reset-password", "hold-queued-mail"]
            out.append(
                Finding(
                    indicator=self.indicator,
                    severity=Severity.MEDIUM,
                    subject=Subject(kind, value),
                    title=title,
                    first_seen=st.span.first,
                    last_seen=st.span.last,
                    count=st.span.count,
                    evidence=st.evidence.lines(),
                    mitigations=mitigations,
                    details={"sender_domains": [{"value": d, "count": c} for d, c in domains]},
                )
            )
        return out
