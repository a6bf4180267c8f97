"""The terminal report of ``relayguard pcap``: verdict, what was read and skipped, findings.

Findings, incidents and "what to do" are drawn by the same code as ``relayguard analyze``.
Every string a peer chose goes through :func:`clean` into a rich ``Text`` (never markup).
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from relayguard.findings import ExitCode
from relayguard.report.sanitize import clean
from relayguard.report.terminal import (
    UNKNOWN_STYLE,
    VERDICT_STYLE,
    fmt_span,
    render_findings,
)
from relayguard.wire.capture import link_name
from relayguard.wire.result import PcapResult


def render(result: PcapResult, console: Console, *, verbose: bool = False) -> None:
    _verdict(result, console)
    _input(result, console)
    render_findings(result.incidents, result.findings, console, verbose=verbose)
    _sessions(result, console)


def _verdict(result: PcapResult, console: Console) -> None:
    code = result.exit_code
    if code == ExitCode.UNKNOWN:
        style, _ = UNKNOWN_STYLE
        label = "UNKNOWN"
    else:
        style, _ = VERDICT_STYLE[result.verdict]
        label = result.verdict.value.upper()
    head = Text()
    head.append(f" {label} ", style=style)
    head.append(f"  exit {int(code)}", style="dim")
    n = len(result.findings)
    head.append(f"  {n} finding{'s' if n != 1 else ''}")
    omitted = sum(result.findings_omitted.values())
    if omitted:
        head.append(f" (+{omitted:,} more low)")
    if result.incidents:
        head.append(f" in {len(result.incidents)} incident(s)")
    console.print(head)
    for error in result.errors:
        console.print(Text("error: " + clean(error, 300), style="bold"))
    for note in result.notes:
        console.print(Text("note: " + clean(note, 300), style="dim"))
    console.print()


def _input(result: PcapResult, console: Console) -> None:
    c = result.capture
    links = ", ".join(link_name(k) for k in sorted(c.link_types))
    rows = [
        ("Capture", f"{clean(c.path, 200)} ({c.format}{', ' + links if links else ''})"),
        ("Period", fmt_span(c.first_time, c.last_time)),
        ("Packets", f"{c.packets:,} read ({c.packet_bytes:,} bytes), "
                    f"{c.smtp_segments:,} TCP segments on SMTP ports"),
    ]  # fmt: skip
    servers = ", ".join(clean(s, 60) for s in result.mail_servers[:8]) or "none seen"
    if len(result.mail_servers) > 8:
        servers += f" (+{len(result.mail_servers) - 8} more)"
    how = "inferred: SMTP servers in your local networks" if result.mail_servers_inferred else ""
    rows.append(("Servers", servers + (f"  ({how})" if how else "")))
    domains = ", ".join(clean(d, 80) for d in result.local_domains[:8]) or "none given"
    rows.append(("Domains", domains))
    skipped = result.skipped
    if skipped:
        rows.append(
            ("Skipped", ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in skipped.items()))
        )
    for label, value in rows:
        line = Text(f"{label:<9}", style="bold")
        line.append(value)
        console.print(line)
    console.print()


def _sessions(result: PcapResult, console: Console) -> None:
    s = result.sessions
    rows = [
        ("SMTP sessions", s.sessions),
        ("  to your mail servers", s.to_our_servers),
        ("  straight out from your other hosts", s.egress),
        ("  encrypted (STARTTLS / implicit TLS)", s.tls + s.implicit_tls),
        ("AUTH attempts", s.auth_attempts),
        ("  failed (535)", s.auth_failures),
        ("  succeeded (235)", s.auth_successes),
        ("transactions", s.transactions),
        ("messages accepted", s.messages),
        ("recipients accepted", s.recipients_accepted),
        ("  in outside domains, at your servers", s.external_recipients),
        ("relay denied replies", s.relay_denied),
    ]
    for label, value in rows:
        line = Text(f"{label:<40}")
        line.append(f"{value:>10,}")
        console.print(line)
    if s.broken_reasons:
        console.print(Text("Sessions not followed to the end:", style="bold"))
        for why, n in sorted(s.broken_reasons.items(), key=lambda kv: -kv[1])[:10]:
            console.print(Text(f"  {n:>6,}  {clean(why, 200)}"))
