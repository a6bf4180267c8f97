"""The shell of ``relayguard pcap``: open the capture, scan it once, hand back the result."""

from __future__ import annotations

from relayguard.analysis.incidents import build_incidents
from relayguard.config import Config
from relayguard.findings import verdict_for
from relayguard.wire.analyzer import WireAnalyzer, WireOptions
from relayguard.wire.capture import open_capture
from relayguard.wire.flows import FlowTable
from relayguard.wire.result import PcapResult, Reassembly

MAX_SERVERS_SHOWN = 50


def hot_ports(options: WireOptions) -> bytes:
    """A 65536-entry table, 1 for each port a conversation is read on."""
    table = bytearray(65536)
    for port in (*options.relay_ports, *options.submission_ports, *options.tls_ports):
        table[port] = 1
    return bytes(table)


def analyze_capture(path: str, config: Config, options: WireOptions) -> PcapResult:
    analyzer = WireAnalyzer(config, options)
    hot = hot_ports(options)
    table = FlowTable(hot, analyzer, analyzer.on_start, analyzer.on_end)
    with open_capture(path) as capture:
        stats = capture.scan(hot, table.segment)
    table.finish_all()
    findings = analyzer.finish()
    incidents = build_incidents(findings)
    ordered = [f for inc in incidents for f in inc.findings]
    ordered += [f for f in findings if all(f is not g for g in ordered)]
    seen = sorted(analyzer.smtp_servers.items(), key=lambda kv: (-kv[1], kv[0]))
    result = PcapResult(
        verdict=verdict_for(ordered),
        findings=ordered,
        incidents=incidents,
        capture=stats,
        sessions=analyzer.stats,
        reassembly=Reassembly(
            segments=table.segments,
            retransmissions=table.retransmissions,
            gaps=table.gaps,
            flows_evicted=table.evicted,
        ),
        mail_servers=list(options.mail_servers)
        or sorted(analyzer.servers_ours)[:MAX_SERVERS_SHOWN],
        mail_servers_inferred=not options.mail_servers,
        smtp_servers_seen=seen[:MAX_SERVERS_SHOWN],
        local_domains=sorted(analyzer.local.domains),
    )
    _judge(result, analyzer)
    return result


def _judge(result: PcapResult, analyzer: WireAnalyzer) -> None:
    """Notes on what could not be judged; errors when nothing could be read at all."""
    c = result.capture
    if c.packets == 0:
        if c.corrupt_records or c.truncated_end:
            result.errors.append(f"no packet could be read from {c.path} (corrupt or cut short)")
        else:
            result.errors.append(f"{c.path} holds no packets")
        return
    if c.truncated_end:
        result.notes.append("the capture ends inside a packet record (cut short): read up to there")
    if c.snapped:
        result.notes.append(
            f"{c.snapped:,} TCP segment(s) cut short by the capture's snap length: their "
            "sessions could not be read past them (capture with tcpdump -s 0)"
        )
    if not result.local_domains and analyzer.stats.to_our_servers:
        result.notes.append(
            "open-relay-use not evaluated: no local domains (name yours with --local-domain)"
        )
    if result.mail_servers_inferred and not result.mail_servers and result.smtp_servers_seen:
        result.notes.append(
            "no SMTP server in your local networks was seen: name your mail servers with "
            "--mail-server (or your networks with --local-network)"
        )
    if result.sessions.tls or result.sessions.implicit_tls:
        n = result.sessions.tls + result.sessions.implicit_tls
        result.notes.append(f"{n} session(s) encrypted (STARTTLS or implicit TLS): not readable")
    if c.smtp_segments == 0:
        result.notes.append("no TCP segment on an SMTP port (see --port, --submission-port)")
