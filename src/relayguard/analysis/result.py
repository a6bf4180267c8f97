"""What ``relayguard analyze`` hands to the renderers: verdict, incidents, findings, stats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relayguard.findings import (
    VERDICT_EXIT,
    ExitCode,
    Finding,
    Severity,
    Subject,
    TimelineEntry,
    Verdict,
)
from relayguard.logs.stats import InputStats

ANALYZE_SCHEMA = "relayguard.analyze/1"

__all__ = ["ANALYZE_SCHEMA", "AnalysisResult", "Incident", "InputStats", "TrafficStats"]


@dataclass(slots=True, kw_only=True)
class Incident:
    """Findings about one account or IP (and what they share), told as one story."""

    id: str  # "I1", "I2", ... in order of severity then first_seen
    title: str
    severity: Severity
    subjects: list[Subject]
    findings: list[Finding]  # the same objects as in AnalysisResult.findings
    timeline: list[TimelineEntry]
    first_seen: float | None = None
    last_seen: float | None = None


@dataclass(slots=True, kw_only=True)
class TrafficStats:
    """pflogsumm-style totals, so the report can be read against what admins already know."""

    messages: int = 0  # queued messages (qmgr from= / Exim <=)
    recipients: int = 0
    external_recipients: int = 0
    delivered: int = 0
    deferred: int = 0  # delivery attempts with status deferred
    bounced: int = 0
    rejected: int = 0
    relay_denied: int = 0
    auth_failures: int = 0
    auth_successes: int = 0
    ndrs: int = 0
    incomplete_messages: int = 0  # queue ids evicted or still open at the end of input
    local_domains: list[str] = field(default_factory=list)
    local_domains_inferred: bool = False
    # name -> [(value, count)] for "top senders", "top sasl users", "top client IPs", ...
    top: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class AnalysisResult:
    verdict: Verdict
    findings: list[Finding]
    incidents: list[Incident]
    input: InputStats
    traffic: TrafficStats
    # Why the verdict cannot be trusted: unreadable inputs, nothing understood. Any error
    # makes the exit code 3 (UNKNOWN) whatever the findings say.
    errors: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> ExitCode:
        if self.errors:
            return ExitCode.UNKNOWN
        return VERDICT_EXIT[self.verdict]
