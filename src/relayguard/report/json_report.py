"""``relayguard analyze --json``: schema ``relayguard.analyze/1``, see docs/analyze-json.md.

Within /1 fields may be added, never renamed or removed. The output holds only plain JSON types
(``json.loads(dumps(r)) == to_json(r)``): detector details are converted on the way out.
"""

from __future__ import annotations

import json
import math
from typing import Any

from relayguard import mitigations
from relayguard.analysis.result import (
    ANALYZE_SCHEMA,
    AnalysisResult,
    Incident,
    InputStats,
    TrafficStats,
)
from relayguard.findings import Finding, Severity, Verdict
from relayguard.logs.events import iso_time

TRAFFIC_COUNTERS = (
    "messages",
    "recipients",
    "external_recipients",
    "delivered",
    "deferred",
    "bounced",
    "rejected",
    "relay_denied",
    "auth_failures",
    "auth_successes",
    "ndrs",
    "incomplete_messages",
)


def in_report_order(result: AnalysisResult) -> list[Finding]:
    """Findings as the report tells them: incident by incident, then those in no incident."""
    seen: set[int] = set()
    ordered: list[Finding] = []
    for finding in [f for inc in result.incidents for f in inc.findings] + result.findings:
        if id(finding) not in seen:
            seen.add(id(finding))
            ordered.append(finding)
    return ordered


def summary(result: AnalysisResult) -> str:
    """One sentence saying why the verdict is what it is."""
    if result.verdict is not Verdict.CLEAN:
        if result.incidents:
            return max(result.incidents, key=lambda i: i.severity).title
        if result.findings:
            return max(result.findings, key=lambda f: f.severity).title
    if result.input.lines_read == 0:
        return "No log lines were read."
    if result.errors:
        # A clean verdict over part of the input proves nothing: say what it covers.
        if result.input.lines_parsed == 0:
            return "No line of the input was understood as a mail log."
        parsed = result.input.lines_parsed
        return f"No sign of relay abuse in the {parsed:,} lines understood, but input is missing."
    text = f"No sign of relay abuse in {result.input.lines_read:,} lines"
    notes = sum(1 for f in result.findings if f.severity <= Severity.LOW)
    if notes:
        text += f"; {notes} low-severity note{'' if notes == 1 else 's'} below"
    return text + "."


def _plain(value: Any) -> Any:
    """``value`` as plain JSON types: sets/tuples become lists, keys strings, NaN null."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return [_plain(v) for v in sorted(value, key=str)]
    return str(value)


def _incident(incident: Incident, index: dict[int, int]) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title,
        "severity": incident.severity.label,
        "subjects": [{"kind": s.kind, "value": s.value} for s in incident.subjects],
        "findings": [index[id(f)] for f in incident.findings],
        "mitigations": mitigations.used_by(incident.findings),
        "actions": [_action(a) for a in mitigations.actions(incident.findings)],
        "timeline": [{"time": iso_time(e.time), "text": e.text} for e in incident.timeline],
        "first_seen": iso_time(incident.first_seen),
        "last_seen": iso_time(incident.last_seen),
    }


def _stats(inp: InputStats, traffic: TrafficStats) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "sources": list(inp.sources),
        "bytes_read": inp.bytes_read,
        "lines_read": inp.lines_read,
        "lines_parsed": inp.lines_parsed,
        "lines_unparsed": inp.lines_unparsed,
        "lines_bad_timestamp": inp.lines_bad_timestamp,
        "lines_truncated": inp.lines_truncated,
        "lines_empty": inp.lines_empty,
        "by_mta": dict(inp.by_mta),
        "first_time": iso_time(inp.first_time),
        "last_time": iso_time(inp.last_time),
    }
    for name in TRAFFIC_COUNTERS:
        stats[name] = getattr(traffic, name)
    stats["local_domains"] = list(traffic.local_domains)
    stats["local_domains_inferred"] = traffic.local_domains_inferred
    stats["top"] = {
        name: [{"value": value, "count": count} for value, count in rows]
        for name, rows in traffic.top.items()
    }
    return stats


def _mitigation(entry: mitigations.Mitigation) -> dict[str, Any]:
    return {
        "id": entry.id,
        "title": entry.title,
        "why": entry.why,
        "postfix": list(entry.postfix),
        "exim": list(entry.exim),
    }


def _action(action: mitigations.Action) -> dict[str, Any]:
    return {
        "mitigation": action.mitigation.id,
        "postfix": list(action.postfix),
        "exim": list(action.exim),
    }


def to_json(result: AnalysisResult) -> dict[str, Any]:
    """The ``relayguard.analyze/1`` document for ``result``."""
    # Incidents refer to findings by index; a finding that is only in an incident is appended.
    findings = list(result.findings)
    index = {id(f): i for i, f in enumerate(findings)}
    for finding in (f for inc in result.incidents for f in inc.findings):
        if id(finding) not in index:
            index[id(finding)] = len(findings)
            findings.append(finding)
    used = [
        entry
        for entry in map(mitigations.get, mitigations.used_by(in_report_order(result)))
        if entry is not None
    ]
    doc: dict[str, Any] = {
        "schema": ANALYZE_SCHEMA,
        "verdict": result.verdict.value,
        "exit_code": int(result.exit_code),
        "errors": list(result.errors),
        "summary": summary(result),
        "findings": [f.to_json() for f in findings],
        "incidents": [_incident(inc, index) for inc in result.incidents],
        "stats": _stats(result.input, result.traffic),
        "mitigations": [_mitigation(m) for m in used],
    }
    if result.input.unparsed_samples:
        doc["unparsed_samples"] = list(result.input.unparsed_samples)
    if result.extra:
        doc["extra"] = result.extra
    plain: dict[str, Any] = _plain(doc)
    return plain


def dumps(result: AnalysisResult, *, indent: int | None = 2) -> str:
    """``to_json`` as text, ASCII only (non-ASCII characters are ``\\u`` escapes)."""
    return json.dumps(to_json(result), indent=indent, ensure_ascii=True, allow_nan=False)
