"""From SMTP conversations to findings, with the log analyzer's own detectors.

Theory of operation
-------------------
What the wire shows about a session to one of *your* mail servers is what its log would
say: a failed AUTH is a SASL failure, a recipient in an outside domain accepted from an
untrusted unauthenticated client is relaying, a "Relay access denied" reply is relay probing,
a message taken with outside recipients is outbound volume. So those facts are fed, as the
log analyzer's own events and messages, to the same detector classes with the same
configuration: the findings mean exactly what they mean for ``relayguard analyze``, with the
same thresholds and mitigations. What only the wire shows, a host of yours delivering mail
itself to outside port 25, is the :mod:`egress <relayguard.wire.egress>` detector's.

Which hosts are yours: ``mail_servers`` (``--mail-server``) when given, else every SMTP server
in the local networks (``--local-network``, by default the private, loopback, link-local and
shared address space, plus the trusted networks). Which recipient domains are yours: only the
configured ones. The log analyzer can learn them from mailbox deliveries; the wire shows none,
and a guess would turn every inbound message into "relaying". Without them open-relay-use is
not evaluated, and the report says so.

Everything a peer chose (names, addresses, reply texts) is stored with undecodable bytes as
``\\xNN`` escapes, so it is valid text in JSON; the renderers escape the rest.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from relayguard.analysis.detectors.auth_bruteforce import AuthBruteforce
from relayguard.analysis.detectors.base import Context
from relayguard.analysis.detectors.open_relay_use import OpenRelayUse
from relayguard.analysis.detectors.outbound_spike import OutboundSpike
from relayguard.analysis.detectors.relay_probing import RelayProbing
from relayguard.analysis.locality import LocalDomains, TrustedNetworks
from relayguard.analysis.messages import Message
from relayguard.config import Config
from relayguard.findings import Finding
from relayguard.logs import events as E
from relayguard.logs.events import Event
from relayguard.report.terminal import fmt_time
from relayguard.wire.bounds import (
    MAX_LOW_FINDINGS,
    MAX_TRACKED_CLIENTS,
    cap_low_findings,
    forget_quiet_clients,
    top_of,
)
from relayguard.wire.conversation import AuthAttempt, Conversation, Transaction
from relayguard.wire.egress import EgressSmtp
from relayguard.wire.flows import Flow

DEFAULT_LOCAL_NETWORKS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
)
# Reply fragments that mean "I do not relay for you" (Postfix, Exim, Sendmail, Exchange,
# qmail, policy services), lower-cased.
RELAY_DENIALS = (
    "relay access denied",
    "relaying denied",
    "relay not permitted",
    "relaying not permitted",
    "unable to relay",
    "relay denied",
    "not permitted to relay",
    "sorry, that domain isn't in my list of allowed rcpthosts",
)
_MAX_SERVERS = 10_000
PROGRAM = "relayguard-pcap"  # the "program" of the events made from the wire


def peer_text(text: str, limit: int = 500) -> str:
    """Peer-chosen text with undecodable bytes (surrogate escapes) as ``\\xNN``, bounded."""
    text = text[:limit]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


@dataclass(slots=True)
class WireOptions:
    mail_servers: list[str] = field(default_factory=list)
    local_networks: list[str] = field(default_factory=list)
    relay_ports: tuple[int, ...] = (25,)
    submission_ports: tuple[int, ...] = (587,)
    tls_ports: tuple[int, ...] = (465,)


@dataclass(slots=True)
class SessionStats:
    sessions: int = 0
    to_our_servers: int = 0
    egress: int = 0
    other: int = 0
    tls: int = 0  # STARTTLS accepted: the rest is opaque
    implicit_tls: int = 0
    midstream: int = 0  # begun before the capture: counted, not parsed
    broken: int = 0  # parsing stopped (protocol error, bytes missing)
    auth_attempts: int = 0
    auth_failures: int = 0
    auth_successes: int = 0
    transactions: int = 0
    messages: int = 0  # messages a server took (250 after the body)
    recipients_accepted: int = 0
    external_recipients: int = 0
    relay_denied: int = 0
    recipients_not_judged: int = 0  # accepted past the per-transaction bounds: only counted
    broken_reasons: dict[str, int] = field(default_factory=dict)


class WireAnalyzer:
    """The observer of every conversation; see the module docstring."""

    def __init__(self, config: Config, options: WireOptions) -> None:
        self.config = config
        self.options = options
        a = config.analyze
        self.local = LocalDomains(a.local_domains)
        self.trusted = TrustedNetworks(a.trusted_networks)
        self.ctx = Context(config, self.local, self.trusted)
        self.mail_servers_given = bool(options.mail_servers)
        self.mail_servers = TrustedNetworks(options.mail_servers)
        self.local_networks = TrustedNetworks(
            list(options.local_networks or DEFAULT_LOCAL_NETWORKS) + list(a.trusted_networks)
        )
        self.our_literals = {_literal(n) for n in options.mail_servers} - {""}
        self.auth = AuthBruteforce(self.ctx)
        self.relay = OpenRelayUse(self.ctx)
        self.spike = OutboundSpike(self.ctx)
        self.probing = RelayProbing(self.ctx)
        self.egress = EgressSmtp(config.detectors.egress_smtp)
        self.stats = SessionStats()
        self.smtp_servers: dict[str, int] = {}  # hosts that answered 220: sessions
        self.servers_ours: set[str] = set()
        self._delivered_relay: dict[str, int] = {}
        self.relay_ports = frozenset(options.relay_ports)
        self.tls_ports = frozenset(options.tls_ports)
        self.clients_forgotten = 0  # per-client detector state dropped to bound memory
        self.findings_omitted: dict[str, int] = {}  # low-severity findings not kept

    # -- which side is whose -----------------------------------------------------------------
    def ours(self, server: str) -> bool:
        if self.mail_servers_given:
            return self.mail_servers.contains(server)
        return self.local_networks.contains(server)

    def _is_egress(self, flow: Flow) -> bool:
        return (
            flow.server_port in self.relay_ports
            and not self.ours(flow.server)
            and self.local_networks.contains(flow.client)
            and not self.mail_servers.contains(flow.client)
        )

    # -- the flow table's callbacks ------------------------------------------------------------
    def on_start(self, flow: Flow) -> bool:
        """Whether the connection is parsed (implicit TLS is opaque from the first byte)."""
        return flow.server_port not in self.tls_ports

    def on_end(self, flow: Flow, why: str) -> None:
        st = self.stats
        st.sessions += 1
        conv = flow.conv
        tls = flow.server_port in self.tls_ports
        if tls:
            st.implicit_tls += 1
        elif conv is None:
            st.midstream += 1
        else:
            if conv.tls_time is not None:
                st.tls += 1
                tls = True
            if conv.broken is not None:
                st.broken += 1
                reasons = st.broken_reasons
                if conv.broken in reasons or len(reasons) < 50:
                    reasons[conv.broken] = reasons.get(conv.broken, 0) + 1
            if conv.banner is not None and conv.banner.code == 220:
                servers = self.smtp_servers
                if flow.server in servers or len(servers) < _MAX_SERVERS:
                    servers[flow.server] = servers.get(flow.server, 0) + 1
        if self.ours(flow.server):
            st.to_our_servers += 1
            if len(self.servers_ours) < _MAX_SERVERS:
                self.servers_ours.add(flow.server)
        elif self._is_egress(flow):
            st.egress += 1
            line = f"{_where(flow, flow.first)} session{_session_summary(conv, tls)}"
            self.egress.session(flow.client, flow.server, flow.first, line, tls)
        else:
            st.other += 1

    # -- the conversations' observer -------------------------------------------------------------
    def on_auth(self, conv: Conversation, attempt: AuthAttempt) -> None:
        flow = cast(Flow, conv.owner)
        if not self.ours(flow.server):
            return
        st = self.stats
        st.auth_attempts += 1
        user = peer_text(attempt.username, 256) if attempt.username else None
        shown = f" ({user})" if user else ""
        line = (
            f"{_where(flow, attempt.time)} AUTH {attempt.mechanism}{shown} -> "
            f"{peer_text(attempt.text, 200)}"
        )
        if attempt.code == 235:
            st.auth_successes += 1
            return
        if attempt.code != 535:
            return
        st.auth_failures += 1
        ev = Event(attempt.time, "wire", PROGRAM, None, line)
        ev.type = E.AUTH_FAILURE
        ev.mta = "wire"
        ev.client_ip = flow.client
        ev.sasl_username = user
        ev.sasl_method = attempt.mechanism
        self.auth.on_event(ev)

    def on_transaction(self, conv: Conversation, txn: Transaction) -> None:
        flow = cast(Flow, conv.owner)
        st = self.stats
        st.transactions += 1
        if txn.delivered:
            st.messages += 1
        st.recipients_accepted += txn.accepted_count
        st.recipients_not_judged += txn.more_uncounted
        sender = peer_text(txn.sender, 300)
        if self.ours(flow.server):
            self._inbound(flow, conv, txn, sender)
        elif self._is_egress(flow) and txn.delivered:
            pairs = [(p.mailbox, peer_text(p.domain, 260)) for p in txn.accepted if p.domain]
            pairs += _unkept(txn, lambda d: bool(d))
            self.egress.message(flow.client, [d for _, d in pairs], _txn_line(flow, txn, sender))
            self._outbound(("ip", flow.client), flow, txn, sender, pairs)

    def _inbound(self, flow: Flow, conv: Conversation, txn: Transaction, sender: str) -> None:
        st = self.stats
        for refusal in txn.refused:
            low = refusal.text.lower()
            if not any(d in low for d in RELAY_DENIALS):
                continue
            st.relay_denied += 1
            ev = Event(refusal.time, "wire", PROGRAM, None, "")
            ev.type = E.RELAY_DENIED
            ev.mta = "wire"
            ev.client_ip = flow.client
            ev.recipient = peer_text(refusal.recipient, 300)
            ev.sender = sender
            ev.helo = peer_text(conv.helo or "", 256) or None
            ev.raw = (
                f"{_where(flow, refusal.time)} RCPT TO:<{ev.recipient}> -> "
                f"{peer_text(refusal.text, 200)}"
            )
            self._make_room(flow.client)
            self.probing.on_event(ev)
        if not self.local.domains:
            return
        pairs = [
            (p.mailbox, peer_text(p.domain, 260)) for p in txn.accepted if self._external(p.domain)
        ]
        pairs += _unkept(txn, self._external)
        if not pairs:
            return
        st.external_recipients += len(pairs)
        if self.mail_servers.contains(flow.client):
            return  # one of our servers handing mail to another: not new mail
        user = peer_text(conv.user, 256).lower() if conv.user else None
        if not conv.authenticated and not self.trusted.contains(flow.client):
            self._make_room(flow.client)
            msg = _message(flow, txn, sender, None, _txn_line(flow, txn, sender))
            for mailbox, domain in pairs:
                msg.external_recipients += 1
                self.relay.on_external_recipient(msg, _rcpt_event(flow, txn, mailbox), domain)
            if txn.delivered:
                self._delivered_relay[flow.client] = self._delivered_relay.get(flow.client, 0) + 1
        if txn.delivered:
            entity = ("sasl_user", user) if user else ("ip", flow.client)
            self._outbound(entity, flow, txn, sender, pairs)

    def _make_room(self, client: str) -> None:
        """Bound the per-client state of relay-probing and open-relay-use, as the log
        analyzer bounds auth-bruteforce's: forget the quiet clients when the table is full."""
        probing = self.probing
        if client not in probing.by_ip and len(probing.by_ip) >= MAX_TRACKED_CLIENTS:
            before = len(probing.by_ip)
            probing.by_ip = forget_quiet_clients(probing.by_ip, lambda st: st.span.count)
            self.clients_forgotten += before - len(probing.by_ip)
        relay = self.relay
        if client not in relay.by_ip and len(relay.by_ip) >= MAX_TRACKED_CLIENTS:
            before = len(relay.by_ip)
            relay.by_ip = forget_quiet_clients(relay.by_ip, lambda st: st.span.count)
            self.clients_forgotten += before - len(relay.by_ip)
            self._delivered_relay = {
                ip: n for ip, n in self._delivered_relay.items() if ip in relay.by_ip
            }

    def _outbound(
        self,
        entity: tuple[str, str],
        flow: Flow,
        txn: Transaction,
        sender: str,
        pairs: list[tuple[str, str]],
    ) -> None:
        """Count a message with outside recipients (mailbox, domain) for ``entity``."""
        user = entity[1] if entity[0] == "sasl_user" else None
        msg = _message(flow, txn, sender, user, _txn_line(flow, txn, sender))
        for mailbox, domain in pairs:
            msg.external_recipients += 1
            self.spike.on_external_recipient(msg, _rcpt_event(flow, txn, mailbox), domain)

    def _external(self, domain: str) -> bool:
        if not domain:
            return False  # a bare local part: the server's own domain is appended
        if domain.startswith("["):
            return domain not in self.our_literals
        domains = self.local.domains
        if domain in domains:
            return False
        return not any(domain.endswith("." + d) for d in domains)

    # -- the end --------------------------------------------------------------------------
    def finish(self) -> list[Finding]:
        findings: list[Finding] = []
        relay = self.relay.finish()
        for f in relay:
            f.details["messages_delivered"] = self._delivered_relay.get(f.subject.value, 0)
        findings += relay
        findings += self.auth.finish()
        findings += self._probing_findings()
        findings += self.spike.finish()
        inferred_mtas = set(self.smtp_servers)
        findings += self.egress.finish(inferred_mtas)
        findings, omitted = cap_low_findings(findings)
        for indicator, n in omitted.items():
            self.findings_omitted[indicator] = self.findings_omitted.get(indicator, 0) + n
        return findings

    def _probing_findings(self) -> list[Finding]:
        # the low ones beyond the cap are left out before the findings are made: building
        # 50,000 findings to keep 50 is what costs the memory
        probing = self.probing
        need = probing.s.min_denials
        low = {ip: st for ip, st in probing.by_ip.items() if st.span.count < need}
        if len(low) > MAX_LOW_FINDINGS:
            kept = top_of(low, lambda st: st.span.count, MAX_LOW_FINDINGS)
            probing.by_ip = {
                ip: st for ip, st in probing.by_ip.items() if st.span.count >= need or ip in kept
            }
            self.findings_omitted[probing.indicator] = len(low) - len(kept)
        return probing.finish()


def _literal(network: str) -> str:
    """``[192.0.2.25]`` / ``[ipv6:2001:db8::25]`` for a single-address network, else ""."""
    try:
        net = ipaddress.ip_network(network.strip(), strict=False)
    except ValueError:
        return ""
    if net.num_addresses != 1:
        return ""
    addr = net.network_address
    return f"[{addr}]" if addr.version == 4 else f"[ipv6:{addr}]"


def _where(flow: Flow, time: float) -> str:
    return (
        f"{fmt_time(time)} {_endpoint(flow.client, flow.client_port)} > "
        f"{_endpoint(flow.server, flow.server_port)}"
    )


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _session_summary(conv: Conversation | None, tls: bool) -> str:
    if conv is None:
        return " (begun before the capture)" if not tls else " (implicit TLS)"
    parts = []
    if conv.helo:
        parts.append(f"EHLO {peer_text(conv.helo, 100)}")
    parts.append(f"{conv.messages} message(s) accepted")
    if conv.tls_time is not None:
        parts.append("then STARTTLS (opaque)")
    return ": " + ", ".join(parts)


def _txn_line(flow: Flow, txn: Transaction, sender: str) -> str:
    rcpts = [peer_text(p.mailbox, 200) for p in txn.accepted[:3]]
    more = txn.accepted_count - len(rcpts)
    shown = ", ".join(f"<{r}>" for r in rcpts) + (f" (+{more} more)" if more > 0 else "")
    outcome = f"DATA -> {txn.data_code}" if txn.data_code is not None else "no DATA"
    return (
        f"{_where(flow, txn.time)} MAIL FROM:<{sender}> RCPT TO: {shown or '-'} accepted, {outcome}"
    )


UNKEPT = "(address not kept)"


def _unkept(txn: Transaction, wanted: Callable[[str], bool]) -> list[tuple[str, str]]:
    """(mailbox, domain) for each recipient accepted past the addresses kept, in a wanted
    domain: the domain is known, the address stands in as :data:`UNKEPT`."""
    return [
        (f"{UNKEPT}@{domain}", peer_text(domain, 260))
        for domain, n in txn.more_accepted.items()
        if wanted(domain)
        for _ in range(n)
    ]


def _message(flow: Flow, txn: Transaction, sender: str, user: str | None, line: str) -> Message:
    msg = Message("wire", f"{flow.client}:{flow.client_port}", txn.time)
    msg.client_ip = flow.client
    msg.origin = "smtpd"
    msg.sender = sender
    msg.sasl_username = user
    msg.first_line = line
    return msg


def _rcpt_event(flow: Flow, txn: Transaction, mailbox: str) -> Event:
    time = txn.data_time if txn.data_time is not None else txn.time
    recipient = peer_text(mailbox, 300)
    line = f"{_where(flow, time)} RCPT TO:<{recipient}> accepted"
    ev = Event(time, "wire", PROGRAM, None, line)
    ev.type = E.DELIVERY
    ev.mta = "wire"
    ev.recipient = recipient
    ev.client_ip = flow.client
    return ev
