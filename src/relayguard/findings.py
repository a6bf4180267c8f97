"""The shared vocabulary: findings, severities, verdicts and exit codes.

Every capability produces :class:`Finding` objects; every report is built from them. Indicator
ids, severities, verdicts and subject kinds are a public interface (JSON, metrics, exit codes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from relayguard.logs.events import iso_time

# Evidence kept per finding: the first lines (how it started) and the last (where it is now).
MAX_EVIDENCE = 12
MAX_TIMELINE = 40


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()


class Verdict(StrEnum):
    CLEAN = "clean"
    SUSPICIOUS = "suspicious"
    ABUSED = "abused"


class ExitCode(IntEnum):
    """The monitoring-plugin convention: OK, WARNING, CRITICAL, UNKNOWN."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


VERDICT_EXIT = {
    Verdict.CLEAN: ExitCode.OK,
    Verdict.SUSPICIOUS: ExitCode.WARNING,
    Verdict.ABUSED: ExitCode.CRITICAL,
}

SUBJECT_KINDS = ("sasl_user", "ip", "sender", "domain", "host", "service", "config_key", "process")


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str
    value: str

    def __post_init__(self) -> None:
        if self.kind not in SUBJECT_KINDS:
            raise ValueError(f"unknown subject kind {self.kind!r}")

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    time: float | None
    text: str


@dataclass(slots=True, kw_only=True)
class Finding:
    indicator: str
    severity: Severity
    subject: Subject
    title: str
    first_seen: float | None = None
    last_seen: float | None = None
    count: int = 0
    evidence: list[str] = field(default_factory=list)
    mitigations: list[str] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    # Detector-specific figures (rates, domain counts, lists of IPs): shown and exported as is.
    details: dict[str, Any] = field(default_factory=dict)
    # Other subjects this finding ties together (e.g. the attacking IPs of a compromised
    # account); the incident builder merges findings that share subjects.
    related: list[Subject] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "indicator": self.indicator,
            "severity": self.severity.label,
            "subject": {"kind": self.subject.kind, "value": self.subject.value},
            "title": self.title,
            "first_seen": iso_time(self.first_seen),
            "last_seen": iso_time(self.last_seen),
            "count": self.count,
            "evidence": list(self.evidence),
            "mitigations": list(self.mitigations),
            "timeline": [{"time": iso_time(e.time), "text": e.text} for e in self.timeline],
            "details": self.details,
            "related": [{"kind": s.kind, "value": s.value} for s in self.related],
        }


# Attacks on the server that say nothing about mail leaving it: however heavy, they make a
# server "suspicious", never "abused" (that takes evidence of relaying, a takeover or a listing).
ATTACK_ONLY = frozenset({"auth-bruteforce", "relay-probing"})


def verdict_for(findings: list[Finding]) -> Verdict:
    """high/critical abuse -> abused; medium, or any attack -> suspicious; low/info -> clean."""
    verdict = Verdict.CLEAN
    for f in findings:
        if f.severity >= Severity.HIGH and f.indicator not in ATTACK_ONLY:
            return Verdict.ABUSED
        if f.severity >= Severity.MEDIUM:
            verdict = Verdict.SUSPICIOUS
    return verdict
