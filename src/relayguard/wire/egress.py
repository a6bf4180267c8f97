"""egress-smtp: one of your hosts that is not a mail server talks straight to outside port 25.

The wire shows what no MTA log can: a web server or desktop delivering mail itself, past the
MTA and its limits. Per source host: sessions, messages the remote servers accepted, their
recipients and recipient domains, the servers it talked to. Decided at the end of the capture,
when it is known which hosts answered SMTP themselves (those are mail servers).
"""

from __future__ import annotations

from relayguard.analysis.detectors.base import Evidence, Span, ranked
from relayguard.config import EgressSmtpSettings
from relayguard.findings import Finding, Severity, Subject

_MAX_HOSTS = 10_000
_MAX_KEPT = 200  # servers, domains kept per host


class _Host:
    __slots__ = ("domains", "evidence", "messages", "recipients", "servers", "sessions", "tls")

    def __init__(self) -> None:
        self.sessions = Span()
        self.messages = 0
        self.recipients = 0
        self.tls = 0
        self.domains: set[str] = set()
        self.servers: dict[str, int] = {}
        self.evidence = Evidence()


class EgressSmtp:
    indicator = "egress-smtp"

    def __init__(self, settings: EgressSmtpSettings) -> None:
        self.s = settings
        self.hosts: dict[str, _Host] = {}
        self.dropped = 0  # hosts not tracked once the table was full

    def _host(self, ip: str) -> _Host | None:
        host = self.hosts.get(ip)
        if host is None:
            if len(self.hosts) >= _MAX_HOSTS:
                self.dropped += 1
                return None
            host = self.hosts[ip] = _Host()
        return host

    def session(self, ip: str, server: str, time: float, evidence: str, tls: bool) -> None:
        host = self._host(ip)
        if host is None:
            return
        host.sessions.add(time)
        if server in host.servers or len(host.servers) < _MAX_KEPT:
            host.servers[server] = host.servers.get(server, 0) + 1
        if tls:
            host.tls += 1
        host.evidence.add(evidence)

    def message(self, ip: str, domains: list[str], evidence: str) -> None:
        host = self._host(ip)
        if host is None:
            return
        host.messages += 1
        host.recipients += len(domains)
        for domain in domains:
            if len(host.domains) < _MAX_KEPT:
                host.domains.add(domain)
        host.evidence.add(evidence)

    def finish(self, mail_servers: set[str]) -> list[Finding]:
        out = []
        for ip, host in self.hosts.items():
            n = host.sessions.count
            if ip in mail_servers or n < self.s.min_sessions:
                continue
            high = host.messages >= max(1, self.s.high_messages)
            servers = ranked(host.servers)
            what = (
                f"{host.messages} message(s) to {host.recipients} recipient(s) in "
                f"{len(host.domains)} domain(s) accepted by outside servers"
                if host.messages
                else "no message seen accepted"
            )
            opaque = f"; {host.tls} session(s) hidden by TLS" if host.tls else ""
            out.append(
                Finding(
                    indicator=self.indicator,
                    severity=Severity.HIGH if high else Severity.MEDIUM,
                    subject=Subject("ip", ip),
                    title=(
                        f"{ip} is not a mail server but opened {n} SMTP session(s) to "
                        f"{len(servers)} outside server(s): {what}{opaque}"
                    ),
                    first_seen=host.sessions.first,
                    last_seen=host.sessions.last,
                    count=n,
                    evidence=host.evidence.lines(),
                    mitigations=["block-egress-smtp", "check-blocklists"],
                    details={
                        "sessions": n,
                        "messages": host.messages,
                        "recipients": host.recipients,
                        "recipient_domains": len(host.domains),
                        "servers": [{"value": s, "count": c} for s, c in servers[:20]],
                        "tls_sessions": host.tls,
                    },
                )
            )
        return out
