"""The terminal report of ``relayguard analyze``: verdict first, then what to do about it.

Order: verdict and why (and the errors that make it UNKNOWN); period and input; incidents
(timeline, findings, evidence); findings outside incidents; what to do for each incident, with
the Postfix and Exim commands filled in for it; top tables; traffic totals.

Every string that comes from a log goes through :func:`clean` and into a rich ``Text`` (never
into a markup string), so a sender named ``[red]x[/red]`` or one carrying escape sequences
prints literally and harmlessly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from relayguard import mitigations
from relayguard.analysis.result import AnalysisResult, Incident, InputStats, TrafficStats
from relayguard.findings import ExitCode, Finding, Severity, Subject, TimelineEntry, Verdict
from relayguard.report.json_report import summary
from relayguard.report.sanitize import clean

# Length bounds for printed peer-controlled text (characters).
VALUE_LIMIT = 200
TITLE_LIMIT = 300
OVERVIEW_ROWS = 15  # incidents listed one per line before the details
DETAILED_INCIDENTS = 5  # incidents told in full without --verbose
EVIDENCE_LIMIT = 300
EVIDENCE_LIMIT_VERBOSE = 4000
# How much is shown without --verbose.
EVIDENCE_LINES = 3
TIMELINE_LINES = 12
DETAIL_KEYS = 6
LIST_ITEMS = 5
TOP_ROWS = 10
ERROR_LINES = 5
ACTION_INCIDENTS = 5  # incidents that get their own "What to do" without --verbose

VERDICT_STYLE = {
    Verdict.ABUSED: ("bold white on red", "red"),
    Verdict.SUSPICIOUS: ("bold black on yellow", "yellow"),
    Verdict.CLEAN: ("bold white on green", "green"),
}
UNKNOWN_STYLE = ("bold white on magenta", "magenta")
SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
TOP_TITLES = {
    "sasl_users": "Top SASL users",
    "senders": "Top senders",
    "client_ips": "Top client IPs",
    "recipient_domains": "Top recipient domains",
}
TRAFFIC_ROWS = (
    ("messages", "messages queued"),
    ("recipients", "recipients"),
    ("external_recipients", "external recipients"),
    ("delivered", "delivered"),
    ("deferred", "deferred attempts"),
    ("bounced", "bounced"),
    ("rejected", "rejected"),
    ("relay_denied", "relay denied"),
    ("auth_failures", "SASL login failures"),
    # Postfix logs sasl_username= once per message (smtpd client= line), not once per login.
    ("auth_successes", "authenticated submissions"),
    ("ndrs", "bounce notices (NDRs)"),
    ("incomplete_messages", "incomplete messages"),
)


def fmt_time(t: float | None) -> str:
    """``2026-12-03 16:18:19Z`` (UTC, whole seconds), or ``-`` when unknown."""
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def fmt_duration(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {s}s"
    return f"{s}s"


def fmt_span(first: float | None, last: float | None) -> str:
    if first is None and last is None:
        return "time unknown"
    if first is None or last is None or first == last:
        return fmt_time(first if first is not None else last)
    return f"{fmt_time(first)} to {fmt_time(last)} ({fmt_duration(last - first)})"


def fmt_subject(subject: Subject) -> str:
    return f"{subject.kind}:{clean(subject.value, VALUE_LIMIT)}"


# The detail keys that hold times, and only those: a key such as ``deferred_at_end`` or
# ``history_windows`` holds a count. Detectors write times as ISO strings (``iso_time``);
# a float Unix time under one of these keys is shown as a time too, an int never is.
_TIME_KEYS = frozenset({"start", "first_seen", "last_seen", "login_time"})


def _is_time_key(key: object) -> bool:
    return isinstance(key, str) and (key in _TIME_KEYS or key.endswith("_time"))


def _fmt_iso(text: str) -> str | None:
    """``2026-12-03T16:18:19Z`` as ``2026-12-03 16:18:19Z``; None when it is not such a time."""
    if not 19 <= len(text) <= 40 or text[4:5] != "-" or text[10:11] != "T":
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    return fmt_time(t.timestamp())


def fmt_value(value: Any, key: object = None) -> str:
    """A detail value on one line: lists shortened, numbers and times readable, text cleaned."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if _is_time_key(key):
        if isinstance(value, float):
            return fmt_time(value)
        if isinstance(value, str):
            shown = _fmt_iso(value)
            if shown is not None:
                return shown
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, dict):
        if value.keys() == {"value", "count"}:
            return f"{fmt_value(value['value'])} ({fmt_value(value['count'])})"
        pairs = list(value.items())
        items = [f"{clean(str(k), 60)}={fmt_value(v, k)}" for k, v in pairs[:LIST_ITEMS]]
        more = len(pairs) - len(items)
        sep = ", "
    elif isinstance(value, list | tuple | set | frozenset):
        seq = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        items = [fmt_value(v, key) for v in seq[:LIST_ITEMS]]
        more = len(seq) - len(items)
        # Records in a list are separated more visibly than the fields inside them.
        sep = "; " if any(isinstance(v, dict) for v in seq[:LIST_ITEMS]) else ", "
    else:
        return clean(str(value), VALUE_LIMIT)
    text = sep.join(items)
    if more > 0:
        text += f" (+{more} more)"
    return clean(text, VALUE_LIMIT * 2)


def _joined(items: Sequence[str], limit: int = LIST_ITEMS) -> str:
    """The first ``limit`` items, comma separated, with a count of the rest."""
    text = ", ".join(items[:limit])
    hidden = len(items) - limit
    return text + f" (+{hidden} more)" if hidden > 0 else text


def _indent(renderable: Text | Table, columns: int) -> Padding:
    return Padding(renderable, (0, 0, 0, columns), expand=False)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _more_hint(hidden: int, what: str) -> Text:
    return Text(f"(+{hidden:,} more {what}: run with --verbose)", style="dim")


# --- sections -------------------------------------------------------------------------------


def _verdict(result: AnalysisResult, console: Console, verbose: bool) -> None:
    code = result.exit_code
    verdict = result.verdict.value.upper()
    head = Text()
    if code is ExitCode.UNKNOWN:
        # The findings may be right about what was read, but not about what was not.
        badge_style, border = UNKNOWN_STYLE
        head.append(" UNKNOWN ", style=badge_style)
        head.append(f"  exit {int(code)}", style="dim")
        if result.input.lines_parsed:
            head.append(f" — could not read all input; the part read looks {verdict}")
        else:
            head.append(" — no mail log lines to judge")
    else:
        badge_style, border = VERDICT_STYLE.get(result.verdict, ("bold", "white"))
        head.append(f" {verdict} ", style=badge_style)
        head.append(f"  exit {int(code)}", style="dim")
    body = Text.assemble(head, "\n", Text(clean(summary(result), TITLE_LIMIT), style="bold"))
    if result.findings:
        body.append("\n")
        body.append(_counts(result), style="dim")
    errors = result.errors if verbose else result.errors[:ERROR_LINES]
    for error in errors:
        body.append("\nerror: ", style="bold red")
        body.append(clean(error, TITLE_LIMIT))
    if len(errors) < len(result.errors):
        body.append("\n")
        body.append(_more_hint(len(result.errors) - len(errors), "errors"))
    console.print(Panel(body, title="relayguard analyze", title_align="left", border_style=border))


def _counts(result: AnalysisResult) -> str:
    """``1 incident, 2 findings (1 critical, 1 high)``."""
    by_severity: dict[Severity, int] = {}
    for finding in result.findings:
        by_severity[finding.severity] = by_severity.get(finding.severity, 0) + 1
    levels = ", ".join(f"{by_severity[s]} {s.label}" for s in sorted(by_severity, reverse=True))
    text = _plural(len(result.incidents), "incident") + ", " if result.incidents else ""
    return f"{text}{_plural(len(result.findings), 'finding')} ({levels})"


def _input(stats: InputStats, console: Console) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(Text("Period"), Text(fmt_span(stats.first_time, stats.last_time)))
    if stats.sources:
        grid.add_row(Text("Sources"), Text(_joined([clean(s, VALUE_LIMIT) for s in stats.sources])))
    lines = (
        f"{stats.lines_read:,} read, {stats.lines_parsed:,} parsed, {stats.lines_empty:,} empty, "
        f"{stats.lines_unparsed:,} not understood"
    )
    if stats.lines_bad_timestamp:
        lines += ", " + _plural(stats.lines_bad_timestamp, "bad timestamp")
    if stats.lines_truncated:
        lines += f", {stats.lines_truncated:,} truncated at 64 KiB"
    grid.add_row(Text("Lines"), Text(lines))
    mtas = [f"{clean(k, 40)} {v:,}" for k, v in stats.by_mta.items() if v]
    if mtas:
        grid.add_row(Text("By MTA"), Text(", ".join(mtas)))
    console.print(grid)
    if stats.lines_unparsed:
        n = _plural(stats.lines_unparsed, "line")
        # with --show-unparsed the samples are printed after the report
        hint = "shown at the end" if stats.unparsed_samples else "run with --show-unparsed"
        console.print(Text(f"{n} not understood: {hint}", style="yellow"))
    if stats.lines_bad_timestamp:
        n = _plural(stats.lines_bad_timestamp, "line")
        text = f"{n} with an unreadable timestamp: given the previous line's time"
        console.print(Text(text, style="yellow"))


def _timeline(entries: Sequence[TimelineEntry], console: Console, verbose: bool) -> None:
    shown = entries if verbose else entries[:TIMELINE_LINES]
    table = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False)
    table.add_column(no_wrap=True, style="dim")
    table.add_column(overflow="fold")
    for entry in shown:
        table.add_row(Text(fmt_time(entry.time)), Text(clean(entry.text, TITLE_LIMIT)))
    console.print(_indent(table, 4))
    if len(shown) < len(entries):
        console.print(_indent(_more_hint(len(entries) - len(shown), "timeline entries"), 4))


def _finding(finding: Finding, console: Console, verbose: bool) -> None:
    head = Text("  ")
    sev = finding.severity
    head.append(f" {sev.label.upper()} ", style=SEVERITY_STYLE.get(sev, ""))
    head.append(" ")
    head.append(clean(finding.indicator, 60), style="bold")
    head.append("  ")
    head.append(fmt_subject(finding.subject))
    if finding.count:
        head.append(f"  count {finding.count:,}")
    console.print(head)
    body: list[Text] = [Text(clean(finding.title, TITLE_LIMIT))]
    body.append(Text(fmt_span(finding.first_seen, finding.last_seen), style="dim"))
    if finding.related:
        body.append(Text("related: " + _joined([fmt_subject(s) for s in finding.related])))
    details = list(finding.details.items())
    shown_details = details if verbose else details[:DETAIL_KEYS]
    for key, value in shown_details:
        line = Text(f"{clean(str(key), 60)}: ", style="bold")
        line.append(fmt_value(value, key))
        body.append(line)
    if len(shown_details) < len(details):
        body.append(_more_hint(len(details) - len(shown_details), "details"))
    for text in body:
        console.print(_indent(text, 6))
    _evidence(finding.evidence, console, verbose)


def _evidence(evidence: Sequence[str], console: Console, verbose: bool) -> None:
    if not evidence:
        return
    limit = EVIDENCE_LIMIT_VERBOSE if verbose else EVIDENCE_LIMIT
    shown = evidence if verbose else evidence[:EVIDENCE_LINES]
    for line in shown:
        text = Text("| ", style="dim")
        text.append(clean(line, limit))
        text.overflow = "fold"
        console.print(_indent(text, 6))
    if len(shown) < len(evidence):
        console.print(_indent(_more_hint(len(evidence) - len(shown), "evidence lines"), 6))


def _incident(incident: Incident, console: Console, verbose: bool) -> None:
    head = Text()
    head.append(clean(incident.id, 20), style="bold")
    head.append(" ")
    sev = incident.severity
    head.append(f" {sev.label.upper()} ", style=SEVERITY_STYLE.get(sev, ""))
    head.append(" ")
    head.append(clean(incident.title, TITLE_LIMIT), style="bold")
    console.print(head)
    if incident.subjects:
        subjects = _joined([fmt_subject(s) for s in incident.subjects], LIST_ITEMS * 2)
        console.print(_indent(Text("subjects: " + subjects), 4))
    span = fmt_span(incident.first_seen, incident.last_seen)
    console.print(_indent(Text(span, style="dim"), 4))
    if incident.timeline:
        _timeline(incident.timeline, console, verbose)
    for finding in incident.findings:
        _finding(finding, console, verbose)


def _mitigations(
    ids: Iterable[str],
    values: dict[str, str],
    console: Console,
    explained: set[str],
    mtas: tuple[str, ...] = ("Postfix", "Exim"),
    several: dict[str, list[str]] | None = None,
) -> None:
    """Numbered catalogue entries, steps filled with ``values``; each "why" only the first time."""
    for number, mid in enumerate(ids, 1):
        entry = mitigations.get(mid)
        head = Text(f"{number}. ", style="bold")
        if entry is None:
            head.append(clean(mid, 60), style="bold")
            head.append("  (no catalogue entry)", style="dim")
            console.print(head)
            continue
        head.append(entry.title, style="bold")
        head.append(f"  [{entry.id}]", style="dim")
        console.print(head)
        if entry.id not in explained:
            explained.add(entry.id)
            console.print(_indent(Text(entry.why), 3))
        filled = mitigations.action(entry, values, several)
        for mta, steps in (("Postfix", filled.postfix), ("Exim", filled.exim)):
            if mta not in mtas:
                continue
            console.print(_indent(Text(f"{mta}:", style="bold"), 3))
            for step in steps:
                # Printed as is (no wrapping, no cropping) so a copied command still works.
                console.print(_step_text(step), no_wrap=True, overflow="ignore", crop=False)


def _fill_note(fill: mitigations.Fill) -> Text | None:
    """Which placeholders below were filled in, and why the others were not."""
    parts: list[str] = []
    if fill.values:
        # The values passed the strict shell-safe patterns; clean() is belt and braces.
        filled = [f"{k} = {clean(v, VALUE_LIMIT)}" for k, v in fill.values.items()]
        parts.append("filled in: " + ", ".join(filled))
    for placeholder, values in fill.several.items():
        shown = _joined([clean(v, VALUE_LIMIT) for v in values])
        if placeholder == "<ip>" and mitigations.expands(values):
            parts.append(f"{placeholder}: one command for each of {shown}")
        else:
            parts.append(f"{placeholder} left as is, one of {shown}: run the commands for each")
    for placeholder in fill.unsafe:
        parts.append(f"{placeholder} left as is: the value in the log is not a plain one")
    if not parts:
        return None
    return Text("; ".join(parts), style="dim")


def _mtas_to_show(result: AnalysisResult) -> tuple[str, ...]:
    """The commands of the MTA whose log this was (both when the log shows neither or both);
    the JSON always carries both."""
    seen = {name for name, n in result.input.by_mta.items() if n}
    if "exim" in seen and "postfix" not in seen:
        return ("Exim",)
    if "postfix" in seen and "exim" not in seen:
        return ("Postfix",)
    return ("Postfix", "Exim")


def _what_to_do(
    incidents: Sequence[Incident],
    findings: Sequence[Finding],
    console: Console,
    verbose: bool,
    mtas: tuple[str, ...],
) -> None:
    """Per incident, the mitigations with the commands filled in; then those of the rest."""
    explained: set[str] = set()
    with_actions = [inc for inc in incidents if mitigations.used_by(inc.findings)]
    shown = with_actions if verbose else with_actions[:ACTION_INCIDENTS]
    for incident in shown:
        console.print(Rule(Text(f"What to do for {clean(incident.id, 20)}")))
        fill = mitigations.fill_for(incident.findings)
        note = _fill_note(fill)
        if note is not None:
            console.print(note)
        _mitigations(
            mitigations.used_by(incident.findings),
            fill.values,
            console,
            explained,
            mtas,
            fill.several,
        )
        console.print()
    if len(shown) < len(with_actions):
        ids = _joined([clean(inc.id, 20) for inc in with_actions[len(shown) :]])
        console.print(Text(f"What to do for {ids}: run with --verbose", style="dim"))
        console.print()
    in_incident = {id(f) for inc in incidents for f in inc.findings}
    orphans = [f for f in findings if id(f) not in in_incident]
    used = mitigations.used_by(orphans)
    if used:
        title = "What to do for the other findings" if incidents else "What to do"
        console.print(Rule(Text(title)))
        _mitigations(used, {}, console, explained, mtas)
        console.print()


def _step_text(step: str) -> Text:
    """One catalogue step, indented; comment lines dim, commands highlighted."""
    text = Text()
    for i, line in enumerate(step.split("\n")):
        if i:
            text.append("\n")
        text.append("     " + line, style="dim" if line.startswith("#") else "cyan")
    return text


def _top(traffic: TrafficStats, console: Console, verbose: bool) -> None:
    for name, rows in traffic.top.items():
        if not rows:
            continue
        title = TOP_TITLES.get(name, "Top " + clean(name, 40).replace("_", " "))
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column(Text(title, style="bold"), overflow="fold")
        table.add_column(Text("count", style="bold"), justify="right", no_wrap=True)
        shown = rows if verbose else rows[:TOP_ROWS]
        for value, count in shown:
            table.add_row(Text(clean(str(value), VALUE_LIMIT)), Text(f"{count:,}"))
        console.print(table)
        if len(shown) < len(rows):
            console.print(_more_hint(len(rows) - len(shown), "rows"))


def _traffic(traffic: TrafficStats, console: Console) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column(Text("Traffic", style="bold"))
    table.add_column(Text("count", style="bold"), justify="right", no_wrap=True)
    for attr, label in TRAFFIC_ROWS:
        table.add_row(Text(label), Text(f"{getattr(traffic, attr):,}"))
    console.print(table)
    if traffic.local_domains:
        domains = [clean(d, VALUE_LIMIT) for d in traffic.local_domains]
        text = Text("Local domains: ", style="bold")
        text.append(_joined(domains, LIST_ITEMS * 2))
        if traffic.local_domains_inferred:
            text.append("  (inferred from the log: set local_domains in the config)", style="dim")
        console.print(text)


def _unparsed(samples: Sequence[str], console: Console) -> None:
    console.print(Rule(Text("Lines not understood (samples)")))
    for line in samples:
        console.print(Text(clean(line, EVIDENCE_LIMIT_VERBOSE), overflow="fold"))


def _overview(incidents: Sequence[Incident], console: Console, verbose: bool) -> None:
    """One line per incident, worst first: the whole picture on one screen."""
    console.print(Rule(Text("Overview")))
    table = Table(box=None, show_header=False, pad_edge=False, expand=False)
    table.add_column("id", no_wrap=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("title", no_wrap=True, overflow="ellipsis", max_width=console.width - 16)
    rows = incidents if verbose else incidents[:OVERVIEW_ROWS]
    for inc in rows:
        sev = inc.severity
        table.add_row(
            Text(clean(inc.id, 20), style="bold"),
            Text(f" {sev.label.upper()} ", style=SEVERITY_STYLE.get(sev, "")),
            Text(clean(inc.title, TITLE_LIMIT)),
        )
    console.print(table)
    if len(incidents) > len(rows):
        console.print(_more_hint(len(incidents) - len(rows), "incidents"))


def render_findings(
    incidents: Sequence[Incident],
    findings: Sequence[Finding],
    console: Console,
    *,
    verbose: bool = False,
    mtas: tuple[str, ...] = ("Postfix", "Exim"),
) -> None:
    """Overview, incidents, the findings in none, and what to do: what every report built
    from findings shows (``analyze``, ``pcap``)."""
    in_incident = {id(f) for inc in incidents for f in inc.findings}
    orphans = [f for f in findings if id(f) not in in_incident]
    if len(incidents) > 1:
        _overview(incidents, console, verbose)
    if incidents:
        console.print(Rule(Text(f"Incidents ({len(incidents)})")))
        shown = incidents if verbose else incidents[:DETAILED_INCIDENTS]
        for incident in shown:
            _incident(incident, console, verbose)
            console.print()
        hidden = len(incidents) - len(shown)
        if hidden:
            console.print(_more_hint(hidden, "incidents in detail"))
            console.print()
    if orphans:
        console.print(Rule(Text(f"Other findings ({len(orphans)})")))
        for finding in orphans:
            _finding(finding, console, verbose)
        console.print()
    _what_to_do(incidents, findings, console, verbose, mtas)


def render(result: AnalysisResult, console: Console, *, verbose: bool = False) -> None:
    """Print the analysis for a person who has 30 seconds to decide what to do."""
    _verdict(result, console, verbose)
    _input(result.input, console)
    render_findings(
        result.incidents, result.findings, console, verbose=verbose, mtas=_mtas_to_show(result)
    )

    if any(result.traffic.top.values()):
        _top(result.traffic, console, verbose)
    _traffic(result.traffic, console)
    if verbose and result.input.unparsed_samples:
        _unparsed(result.input.unparsed_samples, console)
