"""Group findings into incidents: everything about one account or IP, told as one story.

Findings are nodes joined by the subjects they name (their own and their ``related`` ones):
a compromised account names the IPs that attacked it, so the brute force from those IPs, the
takeover and the spam that followed become one incident with one timeline.
"""

from __future__ import annotations

from relayguard.analysis.result import Incident
from relayguard.findings import MAX_TIMELINE, Finding, Subject, TimelineEntry

_NO_TIME = float("inf")


def build_incidents(findings: list[Finding]) -> list[Incident]:
    parent: dict[Subject, Subject] = {}

    def find(s: Subject) -> Subject:
        parent.setdefault(s, s)
        while parent[s] != s:
            parent[s] = parent[parent[s]]
            s = parent[s]
        return s

    for f in findings:
        root = find(f.subject)
        for other in f.related:
            parent[find(other)] = root

    groups: dict[Subject, list[Finding]] = {}
    for f in findings:
        groups.setdefault(find(f.subject), []).append(f)

    incidents = [_incident(members) for members in groups.values()]
    incidents.sort(key=lambda i: (-i.severity, i.first_seen or _NO_TIME))
    for n, inc in enumerate(incidents, 1):
        inc.id = f"I{n}"
    return incidents


def _incident(members: list[Finding]) -> Incident:
    members.sort(key=lambda f: (-f.severity, f.first_seen or _NO_TIME))
    lead = members[0]
    subjects: list[Subject] = []
    for f in members:
        if f.subject not in subjects:
            subjects.append(f.subject)
    timeline: list[TimelineEntry] = []
    for f in members:
        if f.timeline:
            timeline.extend(f.timeline)
        else:
            timeline.append(TimelineEntry(f.first_seen, f"{f.indicator}: {f.title}"))
    timeline.sort(key=lambda e: e.time if e.time is not None else _NO_TIME)
    if len(timeline) > MAX_TIMELINE:
        more = TimelineEntry(None, f"... {len(timeline) - MAX_TIMELINE + 1} more entries")
        timeline = [*timeline[: MAX_TIMELINE - 1], more]
    firsts = [f.first_seen for f in members if f.first_seen is not None]
    lasts = [f.last_seen for f in members if f.last_seen is not None]
    return Incident(
        id="",
        title=lead.title,
        severity=lead.severity,
        subjects=subjects,
        findings=members,
        timeline=timeline,
        first_seen=min(firsts, default=None),
        last_seen=max(lasts, default=None),
    )
