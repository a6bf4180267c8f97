"""The terminal report of ``relayguard probe``: verdict first, then tests, weaknesses, fixes.

Every string the server chose (replies, host names, banners) goes through :func:`clean` into
a rich ``Text`` (never into markup), so escape sequences and ``[markup]`` print harmlessly.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from relayguard import mitigations
from relayguard.findings import Severity
from relayguard.probe.result import ProbeResult, ServiceResult, Verdict
from relayguard.probe.verdict import latest
from relayguard.report.sanitize import clean

VERDICT_STYLE = {
    Verdict.PROVEN: "bold white on red",
    Verdict.OPEN: "bold white on red",
    Verdict.INCONCLUSIVE: "bold black on yellow",
    Verdict.CLOSED: "bold white on green",
}
SERVICE_STYLE = {
    Verdict.PROVEN: "bold red",
    Verdict.OPEN: "bold red",
    Verdict.INCONCLUSIVE: "yellow",
    Verdict.CLOSED: "green",
}
SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
HEADLINE = {
    Verdict.PROVEN: "is an open relay: the canary message was accepted",
    Verdict.OPEN: "relays mail for anyone",
    Verdict.INCONCLUSIVE: "could not be decided",
    Verdict.CLOSED: "is not an open relay",
}
DIALOGUE_LIMIT = 300


def render(result: ProbeResult, console: Console, *, verbose: bool = False) -> None:
    _verdict(result, console)
    for service in result.services:
        _tests(service, console, verbose)
    _findings(result, console)
    _fixes(result, console)


def _verdict(result: ProbeResult, console: Console) -> None:
    head = Text()
    head.append(f" {result.verdict.value.upper()} ", style=VERDICT_STYLE[result.verdict])
    head.append(" ")
    head.append(clean(result.host, 120), style="bold")
    head.append(f" {HEADLINE[result.verdict]}")
    if result.reason is not None:
        head.append(f" ({result.reason.value})")
    head.append(f"  exit {result.exit_code}", style="dim")
    console.print(head)
    if result.error:
        console.print(Text("  " + clean(result.error, 300)))
    for s in result.services:
        line = Text(f"  {s.name} ", style="bold")
        line.append(s.verdict.value, style=SERVICE_STYLE[s.verdict])
        if s.reason is not None:
            line.append(f"/{s.reason.value}")
        line.append(f": {clean(s.why, 300)}")
        console.print(line)
    console.print()


def _tests(service: ServiceResult, console: Console, verbose: bool) -> None:
    title = Text(f"Tests on {service.name}", style="bold")
    title.append(f"  from {clean(service.source or '?', 60)}", style="dim")
    n = service.connections
    title.append(f", {n} connection{'s' if n != 1 else ''}", style="dim")
    console.print(title)
    for banner in service.banner[:3]:
        console.print(Text("  banner: " + clean(banner, 200), style="dim"))
    for tls in service.tls:
        line = Text(f"  TLS ({tls.phase.value}): ", style="dim")
        line.append(clean(tls.error or f"{tls.version} {tls.cipher}", 200))
        console.print(line)
    counted = set(service.counted)
    rows = list(latest(service.tests).items())
    compared = list(latest(service.comparisons).values())
    if not compared and service.comparison is not None:
        compared = [service.comparison]
    for c in compared:
        rows.append((f"{c.phase.value}/{c.test} from {clean(c.source or '?', 45)}", c))
    for key, r in rows:
        line = Text(f"  {key:<14} ")
        line.append(f"{r.outcome.value:<19}", style="bold red" if key in counted else "")
        line.append(f" {r.code or '-':>3} {r.enhanced or '':<7} ")
        line.append(r.technique, style="dim")
        if r.attempt > 1:
            line.append(f" (try {r.attempt})", style="dim")
        console.print(line, no_wrap=True, overflow="ellipsis")
        if verbose:
            envelope = f"{r.helo} <{r.sender}> -> <{r.recipient}>"
            console.print(Text("      " + clean(envelope, DIALOGUE_LIMIT), style="dim"))
            for said in r.dialogue:
                console.print(Text("      " + clean(said, DIALOGUE_LIMIT)))
    if service.comparison is not None and not service.comparison_chosen:
        console.print(
            Text(
                f"  comparison from {clean(service.comparison.source or '?', 45)}: chosen "
                "automatically (another loopback address); name one with --compare-source",
                style="dim",
            )
        )
    for error in service.errors:
        console.print(Text("  note: " + clean(error, 300), style="dim"))
    console.print()


def _findings(result: ProbeResult, console: Console) -> None:
    if not result.findings:
        if any(s.banner_code is not None for s in result.services):
            console.print("No weaknesses found.")
        else:
            console.print("Nothing was tested: no weaknesses could be looked for.")
        return
    console.print(Text("Weaknesses", style="bold"))
    for f in result.findings:
        head = Text("  ")
        head.append(f" {f.severity.label.upper()} ", style=SEVERITY_STYLE[f.severity])
        head.append(" ")
        head.append(f.indicator, style="bold")
        head.append("  " + clean(f.subject.value, 80))
        console.print(head)
        console.print(Text("      " + clean(f.title, 400)))
        for line in f.evidence[:4]:
            console.print(Text("      | " + clean(line, 200), style="dim"))
    console.print()


def _fixes(result: ProbeResult, console: Console) -> None:
    ids = mitigations.used_by(result.findings)
    if not ids:
        return
    console.print(Text("What to do", style="bold"))
    for number, mid in enumerate(ids, 1):
        entry = mitigations.get(mid)
        if entry is None:
            console.print(Text(f"{number}. {mid}"))
            continue
        head = Text(f"{number}. {entry.title}", style="bold")
        head.append(f"  [{entry.id}]", style="dim")
        console.print(head)
        for mta, steps in (("Postfix", entry.postfix), ("Exim", entry.exim)):
            console.print(Text(f"   {mta}:", style="bold"))
            for step in steps:
                for line in step.split("\n"):
                    style = "dim" if line.startswith("#") else "cyan"
                    console.print(
                        Text("     " + line, style=style),
                        no_wrap=True,
                        overflow="ignore",
                        crop=False,
                    )
