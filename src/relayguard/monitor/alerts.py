"""Alerts: which findings to tell about (duplicate suppression), and the alert document.

:class:`Deduper` is pure (times are passed in): a finding raises an alert when it is new,
when its severity rose, or, once ``suppress`` seconds have passed since the last alert about
it, when it changed (more evidence, a later sample). Its table is bounded and saved in the
state directory, so a restart does not repeat every alert. Delivery is ``sinks.py``'s job.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from relayguard.findings import Finding, Severity
from relayguard.logs.events import iso_time
from relayguard.report.sanitize import clean

ALERT_SCHEMA = "relayguard.alert/1"
MAX_KEYS = 10_000
SAMPLED_SOURCES = frozenset({"queue", "egress", "resources"})


def source_of(finding: Finding) -> str:
    """Where a finding comes from: ``log`` (the detectors) or a sampler."""
    source = finding.details.get("source")
    return source if isinstance(source, str) else "log"


def finding_key(finding: Finding) -> str:
    s = finding.subject
    return f"{source_of(finding)}|{finding.indicator}|{s.kind}:{s.value}"


@dataclass(frozen=True, slots=True)
class Alert:
    time: float
    host: str
    reason: str  # new | escalated | reminder
    finding: Finding
    # the alert table's entry before this alert: put back when the alert was never delivered
    previous: list[Any] | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        f = self.finding
        return {
            "schema": ALERT_SCHEMA,
            "time": iso_time(self.time),
            "host": self.host,
            "reason": self.reason,
            "source": source_of(f),
            "indicator": f.indicator,
            "severity": f.severity.label,
            "subject": {"kind": f.subject.kind, "value": f.subject.value},
            "title": f.title,
            "finding": f.to_json(),
        }

    def summary(self, limit: int = 400) -> str:
        """One printable line, whatever the log or a peer put in the finding."""
        f = self.finding
        subject = clean(f"{f.subject.kind}:{f.subject.value}", 120)
        text = f"{f.severity.label.upper()} {f.indicator} {subject}: {clean(f.title, limit)}"
        return clean(text, limit)


def local_host() -> str:
    return clean(socket.gethostname(), 253) or "localhost"


class Deduper:
    def __init__(
        self, suppress: float, min_severity: Severity, entries: dict[str, Any] | None = None
    ) -> None:
        self.suppress = suppress
        self.min_severity = min_severity
        # key -> [time of the last alert, its severity, [count, last_seen] then]
        self.entries: dict[str, list[Any]] = {}
        self.suppressed = 0
        for key, value in (entries or {}).items():
            if _valid_entry(key, value):
                self.entries[key] = value

    def check(self, finding: Finding, now: float) -> str | None:
        """The reason to alert about ``finding`` now, or None (suppressed or too minor)."""
        if finding.severity < self.min_severity:
            return None
        key = finding_key(finding)
        marker = [finding.count, finding.last_seen]
        prev = self.entries.get(key)
        reason = None
        if prev is None:
            reason = "new"
        elif finding.severity > prev[1]:
            reason = "escalated"
        elif now - prev[0] >= self.suppress and (
            source_of(finding) in SAMPLED_SOURCES or marker != prev[2]
        ):
            reason = "reminder"
        if reason is None:
            if prev is not None and marker != prev[2]:
                self.suppressed += 1
            return None
        self.entries[key] = [now, int(finding.severity), marker]
        if len(self.entries) > MAX_KEYS:
            oldest = sorted(self.entries, key=lambda k: self.entries[k][0])
            for k in oldest[: MAX_KEYS // 10]:
                del self.entries[k]
        return reason

    def revert(self, alert: Alert) -> None:
        """Forget ``alert`` (it was never delivered), so the next run raises it again."""
        key = finding_key(alert.finding)
        entry = self.entries.get(key)
        if entry is None or entry[0] != alert.time:
            return  # a later alert about the same finding replaced it
        if alert.previous is None:
            del self.entries[key]
        else:
            self.entries[key] = alert.previous


def _valid_entry(key: object, value: object) -> bool:
    return (
        isinstance(key, str)
        and isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], int | float)
        and isinstance(value[1], int)
        and isinstance(value[2], list)
    )
