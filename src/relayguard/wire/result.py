"""What ``relayguard pcap`` found, and its JSON document ``relayguard.pcap/1``.

See docs/pcap.md. Within /1 fields may be added, never renamed or removed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from relayguard import mitigations
from relayguard.analysis.result import Incident
from relayguard.findings import VERDICT_EXIT, ExitCode, Finding, Verdict
from relayguard.logs.events import iso_time
from relayguard.report.json_report import _action, _mitigation, _plain
from relayguard.wire._stats import CaptureStats
from relayguard.wire.analyzer import SessionStats

PCAP_SCHEMA = "relayguard.pcap/1"


@dataclass(slots=True)
class Reassembly:
    segments: int = 0
    retransmissions: int = 0  # segments that carried no new bytes
    gaps: int = 0  # holes never filled (lost or not captured)
    flows_evicted: int = 0  # connections dropped to bound memory


@dataclass(slots=True, kw_only=True)
class PcapResult:
    verdict: Verdict
    findings: list[Finding]
    incidents: list[Incident]
    capture: CaptureStats
    sessions: SessionStats
    reassembly: Reassembly
    mail_servers: list[str]  # given, or the SMTP servers seen that were taken as ours
    mail_servers_inferred: bool
    smtp_servers_seen: list[tuple[str, int]]  # hosts that answered 220, with session counts
    local_domains: list[str]
    # low-severity findings left out, per indicator (see wire/bounds.py)
    findings_omitted: dict[str, int] = field(default_factory=dict)
    clients_forgotten: int = 0  # per-client detector state dropped to bound memory
    notes: list[str] = field(default_factory=list)  # what could not be judged, and why
    errors: list[str] = field(default_factory=list)  # any error makes the exit code 3

    @property
    def exit_code(self) -> ExitCode:
        if self.errors:
            return ExitCode.UNKNOWN
        return VERDICT_EXIT[self.verdict]

    @property
    def skipped(self) -> dict[str, int]:
        """What was not read or not understood, by reason (only the non-zero ones)."""
        c = self.capture
        s = self.sessions
        counts = {
            "corrupt_records": c.corrupt_records,
            "corrupt_bytes": c.corrupt_bytes,
            "packet_blocks_without_interface": c.unknown_interface,
            "malformed_packets": c.malformed,
            "ip_fragments": c.ip_fragments,
            "unsupported_link_packets": c.unsupported_link,
            "segments_cut_by_snaplen": c.snapped,
            "stream_gaps": self.reassembly.gaps,
            "flows_evicted": self.reassembly.flows_evicted,
            "sessions_begun_before_capture": s.midstream,
            "sessions_not_followed_to_the_end": s.broken,
            "clients_forgotten": self.clients_forgotten,
        }
        return {k: v for k, v in counts.items() if v}


def to_json(result: PcapResult) -> dict[str, Any]:
    findings = list(result.findings)
    index = {id(f): i for i, f in enumerate(findings)}
    capture = result.capture.to_json()
    capture["first_time"] = iso_time(result.capture.first_time)
    capture["last_time"] = iso_time(result.capture.last_time)
    sessions = asdict(result.sessions)
    used = [
        entry for entry in map(mitigations.get, mitigations.used_by(findings)) if entry is not None
    ]
    doc: dict[str, Any] = {
        "schema": PCAP_SCHEMA,
        "verdict": result.verdict.value,
        "exit_code": int(result.exit_code),
        "errors": list(result.errors),
        "notes": list(result.notes),
        "findings": [f.to_json() for f in findings],
        "findings_omitted": dict(sorted(result.findings_omitted.items())),
        "incidents": [
            {
                "id": inc.id,
                "title": inc.title,
                "severity": inc.severity.label,
                "subjects": [{"kind": s.kind, "value": s.value} for s in inc.subjects],
                "findings": [index[id(f)] for f in inc.findings if id(f) in index],
                "mitigations": mitigations.used_by(inc.findings),
                "actions": [_action(a) for a in mitigations.actions(inc.findings)],
                "first_seen": iso_time(inc.first_seen),
                "last_seen": iso_time(inc.last_seen),
            }
            for inc in result.incidents
        ],
        "capture": capture,
        "reassembly": asdict(result.reassembly),
        "sessions": sessions,
        "skipped": result.skipped,
        "mail_servers": list(result.mail_servers),
        "mail_servers_inferred": result.mail_servers_inferred,
        "smtp_servers_seen": [{"value": ip, "count": n} for ip, n in result.smtp_servers_seen],
        "local_domains": list(result.local_domains),
        "mitigations": [_mitigation(m) for m in used],
    }
    plain: dict[str, Any] = _plain(doc)
    return plain


def dumps(result: PcapResult, *, indent: int | None = 2) -> str:
    """ASCII-only JSON: every control character and non-ASCII character is a ``\\u`` escape."""
    return json.dumps(to_json(result), indent=indent, ensure_ascii=True, allow_nan=False)
