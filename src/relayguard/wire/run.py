"""The shell of ``relayguard pcap``: open the capture, scan it once, hand back the result."""

from __future__ import annotations

from relayguard.analysis.incidents import build_incidents
from relayguard.config import Config
from relayguard.findings import Verdict, verdict_for
from relayguard.wire.analyzer import WireAnalyzer, WireOptions
from relayguard.wire.bounds import MAX_LOW_FINDINGS
from relayguard.wire.capture import (
    LINK_ETHERNET,
    LINK_SLL,
    LINK_SLL2,
    SUPPORTED_LINKS,
    link_name,
    open_capture,
)
from relayguard.wire.conversation import MAX_MORE_DOMAINS, MAX_RECIPIENTS
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
        findings_omitted=dict(analyzer.findings_omitted),
        clients_forgotten=analyzer.clients_forgotten,
    )
    _judge(result, analyzer)
    return result


def _judge(result: PcapResult, analyzer: WireAnalyzer) -> None:
    """Notes on what could not be judged; errors when nothing could be read at all."""
    c = result.capture
    if c.packets == 0:
        if c.unknown_interface:
            result.errors.append(
                f"no packet could be read from {c.path}: its {c.unknown_interface:,} packet "
                "block(s) refer to an interface that has no interface description block"
            )
        elif c.corrupt_records or c.truncated_end:
            result.errors.append(f"no packet could be read from {c.path} (corrupt or cut short)")
        else:
            result.errors.append(f"{c.path} holds no packets")
        return
    if _nothing_decoded(result):
        return
    for indicator, n in sorted(result.findings_omitted.items()):
        result.notes.append(
            f"+{n:,} more low-severity {indicator} finding(s) not shown: the "
            f"{MAX_LOW_FINDINGS} with the highest counts are kept (JSON findings_omitted)"
        )
    if c.stopped_at is not None:
        stopped = (
            f"reading stopped at byte {c.stopped_at:,} of {c.bytes_total:,} "
            f"({c.bytes_not_read:,} bytes not read): a pcapng block with an impossible length"
        )
        if result.verdict == Verdict.CLEAN and c.bytes_not_read * 100 > c.bytes_total:
            # a clean verdict on the first 3 packets of 539 says nothing about the others
            result.errors.append(f"{stopped}; too much is unread to call the capture clean")
        else:
            result.notes.append(stopped)
    if c.unknown_interface:
        result.notes.append(
            f"{c.unknown_interface:,} pcapng packet block(s) skipped: they refer to an "
            "interface that has no interface description block"
        )
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
    if result.sessions.recipients_not_judged:
        result.notes.append(
            f"{result.sessions.recipients_not_judged:,} accepted recipient(s) counted but not "
            f"judged: past {MAX_RECIPIENTS:,} in one transaction, and in more than "
            f"{MAX_MORE_DOMAINS:,} other domains"
        )
    if result.sessions.tls or result.sessions.implicit_tls:
        n = result.sessions.tls + result.sessions.implicit_tls
        result.notes.append(f"{n} session(s) encrypted (STARTTLS or implicit TLS): not readable")
    if c.smtp_segments == 0:
        result.notes.append("no TCP segment on an SMTP port (see --port, --submission-port)")


def _nothing_decoded(result: PcapResult) -> bool:
    """An error when not one packet could be decoded (and why); a note for unsupported links."""
    c = result.capture
    unsupported = sorted(k for k in c.link_types if k not in SUPPORTED_LINKS)
    links = ", ".join(map(str, unsupported))
    if c.not_ip + c.unsupported_link + c.malformed < c.packets:
        if c.unsupported_link:
            result.notes.append(
                f"{c.unsupported_link:,} packet(s) on link type {links} skipped: not supported"
            )
        return False
    n = f"{c.packets:,} packet(s)"
    if c.unsupported_link == c.packets:
        why = f"link type {links} is not supported: none of the {n} could be decoded"
    elif c.malformed == c.packets:
        why = f"all {n} are malformed: none could be decoded"
    else:
        kinds = ", ".join(link_name(k) for k in sorted(c.link_types))
        why = f"none of the {n} is an IP packet (the file says {kinds})"
        if any(k not in (LINK_ETHERNET, LINK_SLL, LINK_SLL2) for k in c.link_types):
            why += ": was the capture written with the wrong link type?"
    result.errors.append(why)
    return True
