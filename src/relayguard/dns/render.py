"""Terminal reports of ``relayguard dnsbl`` and ``relayguard domain`` (shared pieces here).

Everything a DNS answer carries (TXT reasons, PTR names, records) goes through :func:`clean` into
a rich ``Text``, never into markup: escape sequences and ``[markup]`` print harmlessly.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from relayguard import mitigations
from relayguard.dns.classify import ERROR, LISTED, NOT_LISTED, REASON_TEXT
from relayguard.dns.dkim import Key
from relayguard.dns.dnsbl_fixes import dnsbl_actions
from relayguard.dns.dnsbl_result import HEALTH_TEXT, SKIPPED, DnsblReport, ListResult, Subject
from relayguard.dns.domain_report import DomainReport
from relayguard.findings import ExitCode, Finding, Severity
from relayguard.report.sanitize import clean
from relayguard.report.terminal import SEVERITY_STYLE

EXIT_STYLE = {
    ExitCode.OK: "bold white on green",
    ExitCode.WARNING: "bold black on yellow",
    ExitCode.CRITICAL: "bold white on red",
    ExitCode.UNKNOWN: "bold black on yellow",
}
VERDICT_STYLE = {LISTED: "bold red", NOT_LISTED: "green", ERROR: "yellow", SKIPPED: "dim"}
MAX_SUBJECTS_SHOWN = 50  # beyond, only subjects with a listing or an error are shown


def headline(console: Console, verdict: str, subject: str, why: str, code: ExitCode) -> None:
    head = Text()
    head.append(f" {verdict.upper()} ", style=EXIT_STYLE[code])
    head.append(" ")
    head.append(clean(subject, 120), style="bold")
    head.append(f"  exit {int(code)}", style="dim")
    console.print(head)
    console.print(Text("  " + clean(why, 400)))


def findings(console: Console, items: list[Finding], verbose: bool) -> None:
    if not items:
        return
    console.print(Text("Findings", style="bold"))
    for f in sorted(items, key=lambda f: -f.severity):
        line = Text("  ")
        line.append(f"{f.severity.label:<8}", style=SEVERITY_STYLE[f.severity])
        line.append(f" {f.indicator}: ", style="bold")
        line.append(clean(f.title, 400))
        console.print(line)
        for ev in f.evidence[: None if verbose else 3]:
            console.print(Text("           " + clean(ev, 300), style="dim"))
        publish = f.details.get("publish")
        if isinstance(publish, str):
            console.print(Text("           publish: ", style="bold").append(clean(publish, 600)))
        hint = f.details.get("hint")
        if isinstance(hint, str):
            console.print(Text("           " + clean(hint, 300), style="dim"))
    console.print()


def fixes(console: Console, items: list[Finding],
          actions: list[mitigations.Action] | None = None) -> None:  # fmt: skip
    actions = mitigations.actions(items) if actions is None else actions
    if not actions:
        return
    console.print(Text("What to do", style="bold"))
    for number, action in enumerate(actions, 1):
        head = Text(f"{number}. {action.mitigation.title}", style="bold")
        head.append(f"  [{action.mitigation.id}]", style="dim")
        console.print(head)
        console.print(Text("   " + action.mitigation.why, style="dim"))
        groups = (
            [("Postfix and Exim", action.postfix)]
            if action.postfix == action.exim
            else [("Postfix", action.postfix), ("Exim", action.exim)]
        )
        for mta, steps in groups:
            console.print(Text(f"   {mta}:", style="bold"))
            for step in steps:
                for line in step.split("\n"):
                    style = "dim" if line.startswith("#") else "cyan"
                    console.print(Text("     " + line, style=style), no_wrap=True,
                                  overflow="ignore", crop=False)  # fmt: skip


# --- dnsbl ------------------------------------------------------------------------------------


def render_dnsbl(report: DnsblReport, console: Console, *, verbose: bool = False) -> None:
    names = ", ".join(t.text for t in report.targets[:3])
    more = f" and {len(report.targets) - 3} more" if len(report.targets) > 3 else ""
    headline(console, report.verdict, names + more, report.why, report.exit_code)
    console.print(Text(
        f"  resolver {report.resolver} (from {report.resolver_source}) · {len(report.lists)} "
        f"lists · {len(report.subjects)} subject(s) · {report.queries.get('sent', 0)} queries",
        style="dim",
    ))  # fmt: skip
    for target in report.targets:
        if target.error:
            console.print(Text("  " + clean(f"{target.text}: {target.error}", 300), style="yellow"))
        elif target.note:
            console.print(Text("  " + clean(f"{target.text}: {target.note}", 300), style="dim"))
    for note in report.notes:
        console.print(Text("  " + clean(note, 300), style="dim"))
    console.print()
    shown = 0
    for subject in report.subjects:
        interesting = any(r.verdict in (LISTED, ERROR) for r in subject.results)
        if shown >= MAX_SUBJECTS_SHOWN and not interesting and not verbose:
            continue
        shown += 1
        _subject(console, subject, verbose)
    hidden = len(report.subjects) - shown
    if hidden:
        console.print(Text(f"  ({hidden} more subjects not listed anywhere; --json has all)",
                           style="dim"))  # fmt: skip
        console.print()
    findings(console, [f for f in report.findings if f.indicator != "dnsbl-listed"], verbose)
    fixes(console, report.findings, dnsbl_actions(report))


def _subject(console: Console, subject: Subject, verbose: bool) -> None:
    s = subject.summary()
    head = Text(clean(subject.value, 100), style="bold")
    if subject.target != subject.value:
        head.append(f"  ({clean(subject.target, 80)})", style="dim")
    head.append(
        f"  listed {s['listed']} · informational {s['listed_informational']} · "
        f"not listed {s['not_listed']} · error {s['error']} · skipped {s['skipped']}"
    )
    console.print(head)
    rdns = subject.rdns
    if rdns is not None:
        if rdns.ptr:
            ok = "forward-confirmed" if rdns.confirmed else "does NOT resolve back"
            line = f"  rDNS {', '.join(rdns.ptr)} ({ok})"
        else:
            line = f"  rDNS none ({rdns.ptr_status})"
        if rdns.helo:
            match = rdns.helo in rdns.ptr and subject.value in rdns.helo_addresses
            line += f" · HELO {rdns.helo} {'matches' if match else 'does NOT match'}"
        console.print(Text(clean(line, 300), style="dim"))
    for result in subject.results:
        if result.verdict in (NOT_LISTED, SKIPPED) and not verbose:
            continue
        _result(console, result)
    console.print()


def _result(console: Console, result: ListResult) -> None:
    label = result.verdict
    if result.verdict == LISTED and result.informational:
        label = "info"
    line = Text("  ")
    line.append(f"{label:<11}", style="dim" if label == "info" else VERDICT_STYLE[result.verdict])
    line.append(f"{clean(result.spec.name, 40):<32} ")
    if result.verdict == LISTED:
        line.append(clean("; ".join(f"{c}" for c in result.codes), 120))
        console.print(line)
        for meaning in result.meanings:
            console.print(Text("             " + clean(meaning, 200)))
        if result.txt:
            console.print(Text("             TXT " + clean(result.txt, 200), style="dim"))
        if result.spec.delist:
            console.print(Text("             delist: " + clean(result.spec.delist, 600)))
        return
    reason = result.reason or ""
    text = REASON_TEXT.get(reason) or HEALTH_TEXT.get(reason) or ""
    codes = f" {', '.join(result.codes)}" if result.codes else ""
    line.append(clean(f"{reason}{codes}" + (f": {text}" if text else ""), 300))
    console.print(line)


# --- domain -----------------------------------------------------------------------------------


def render_domain(report: DomainReport, console: Console, *, verbose: bool = False) -> None:
    headline(console, report.verdict, report.domain, report.why, report.exit_code)
    console.print(Text(f"  resolver {report.resolver} (from {report.resolver_source})",
                       style="dim"))  # fmt: skip
    for note in report.notes:
        console.print(Text("  " + clean(note, 300), style="dim"))
    console.print()
    spf = report.spf
    failed = "(lookup failed)"
    spf_text = spf.record or (failed if spf.result == "temperror" else "(none)")
    dkim_none = failed if report.dkim.errors else "(no key found)"
    mx_none = failed if report.mx.error else ("null MX" if report.mx.null_mx else "(none)")
    rows = [
        ("SPF", f"{spf_text}  -> a forger gets {spf.result}; {spf.lookups} "
                f"lookups, {spf.voids} void"),
        *((f"SPF {o.ip}", f"{o.result}" + (f" ({o.matched})" if o.matched else ""))
          for o in report.spf_ips),
        ("DMARC", f"{report.dmarc.record or (failed if report.dmarc.error else '(none)')}"
                  + (f"  at _dmarc.{report.dmarc.location}" if report.dmarc.location else "")
                  + (f" -> policy {report.dmarc.policy}" if report.dmarc.policy else "")),
        ("DKIM", ", ".join(_key(k) for k in report.dkim.keys) or dkim_none),
        ("MX", ", ".join(f"{x.preference} {x.name}" for x in report.mx.exchanges) or mx_none),
    ]  # fmt: skip
    for label, value in rows:
        line = Text(f"  {label:<22}", style="bold")
        line.append(clean(value, 400))
        console.print(line)
    console.print()
    findings(console, report.findings, verbose)
    # a failed lookup is fixed at the resolver, not by publishing records
    fixable = [f for f in report.findings if not f.indicator.endswith("-dns-error")]
    fixes(console, [f for f in fixable if f.severity >= Severity.LOW])


def _key(key: Key) -> str:
    if key.error:
        return f"{key.selector} (broken)"
    if key.revoked:
        return f"{key.selector} (revoked)"
    size = f"{key.bits}-bit " if key.bits else ""
    return f"{key.selector} ({size}{key.key_type}{', testing' if key.testing else ''})"
