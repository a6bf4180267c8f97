"""What a probe observed, per service (address + port), and the ``relayguard.probe/1`` JSON.

The runner fills a :class:`ServiceResult` as it goes; :mod:`verdict` and :mod:`weaknesses`
read it. Every string that came from the server is stored already sanitised and bounded
(:func:`peer_text`), so JSON consumers and terminals get the same safe text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from relayguard.findings import Finding
from relayguard.probe.catalogue import Kind
from relayguard.probe.classify import Outcome
from relayguard.probe.dialogue import Reply
from relayguard.report.sanitize import clean

SCHEMA: Final = "relayguard.probe/1"
# Bounds on what is kept of the server's words: a line of a transcript, lines per transcript.
PEER_LINE_LIMIT: Final = 300
TRANSCRIPT_LINES: Final = 40
# A reply slower than this many seconds is a tarpit sign (postscreen's greet wait is 6 s).
SLOW_REPLY: Final = 5.0


class Verdict(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    INCONCLUSIVE = "inconclusive"
    PROVEN = "proven"


class Reason(StrEnum):
    ACCEPT_ALL = "accept-all"
    GREYLISTED = "greylisted"
    TARPIT = "tarpit"
    AUTH_REQUIRED = "auth-required"
    TRUSTED_SOURCE = "trusted-source"
    THROTTLED = "throttled"
    DOMAIN_REJECTED = "domain-rejected"
    SENDER_REJECTED = "sender-rejected"
    TLS_REQUIRED = "tls-required"
    REFUSED = "refused"
    ERROR = "error"


class Phase(StrEnum):
    PLAIN = "plain"
    STARTTLS = "starttls"  # after STARTTLS on a plaintext port
    TLS = "tls"  # implicit TLS (port 465)


def peer_text(text: str, limit: int = PEER_LINE_LIMIT) -> str:
    return clean(text, limit)


def reply_lines(reply: Reply) -> list[str]:
    """``S: `` lines of a reply, sanitised; a very long reply keeps its first lines."""
    wire = reply.wire()
    kept = [f"S: {peer_text(line)}" for line in wire[:TRANSCRIPT_LINES]]
    if len(wire) > TRANSCRIPT_LINES:
        kept.append(f"S: ({len(wire) - TRANSCRIPT_LINES} more lines)")
    return kept


@dataclass(frozen=True, slots=True, kw_only=True)
class TestResult:
    test: str
    kind: Kind
    phase: Phase
    technique: str
    helo: str
    sender: str
    recipient: str
    outcome: Outcome
    code: int | None = None
    enhanced: str | None = None
    reply: str = ""  # the deciding reply, sanitised, lines joined by " / "
    seconds: float = 0.0  # how long the deciding reply took
    attempt: int = 1
    source: str | None = None  # set on the comparison test, which runs from another address
    dialogue: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.test,
            "kind": self.kind.value,
            "phase": self.phase.value,
            "technique": self.technique,
            "helo": self.helo,
            "sender": self.sender,
            "recipient": self.recipient,
            "outcome": self.outcome.value,
            "code": self.code,
            "enhanced": self.enhanced,
            "reply": self.reply,
            "seconds": round(self.seconds, 3),
            "attempt": self.attempt,
            "source": self.source,
            "dialogue": list(self.dialogue),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsInfo:
    phase: Phase
    version: str | None = None
    cipher: str | None = None
    error: str | None = None  # why STARTTLS or the handshake failed

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "version": self.version,
            "cipher": self.cipher,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class VrfyResult:
    """Replies to ``VRFY postmaster``, ``VRFY <random>`` and ``EXPN postmaster`` (0: not sent)."""

    known: int = 0
    unknown: int = 0
    expn: int = 0
    dialogue: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProofResult:
    recipient: str
    accepted: bool
    message_id: str
    code: int | None
    dialogue: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RateResult:
    attempted: int
    served: int  # got a 220 banner
    refused: int  # 421/4xx/5xx banner or connection refused
    seconds: float


@dataclass(slots=True, kw_only=True)
class ServiceResult:
    """One address and port, as probed from ``source``."""

    address: str
    port: int
    implicit_tls: bool = False
    source: str | None = None  # our address as the server saw it (the socket's local end)
    source_chosen: bool = False  # --source-address named it
    host: str | None = None  # the name in the banner
    banner: tuple[str, ...] = ()  # sanitised banner lines
    banner_code: int | None = None
    extensions: dict[Phase, dict[str, str]] = field(default_factory=dict)
    tls: list[TlsInfo] = field(default_factory=list)
    tests: list[TestResult] = field(default_factory=list)
    comparison: TestResult | None = None  # the deciding one of ``comparisons``
    comparisons: list[TestResult] = field(default_factory=list)  # every attempt, in order
    comparison_chosen: bool = False  # --compare-source named the comparison's address
    vrfy: VrfyResult | None = None
    help_lines: tuple[str, ...] = ()
    proof: ProofResult | None = None
    rate: RateResult | None = None
    connections: int = 0
    closed_before_banner: int = 0  # connections the server accepted, then closed unanswered
    slowest_reply: float = 0.0
    slow_replies: int = 0
    out_of_time: bool = False  # the total budget ran out
    errors: list[str] = field(default_factory=list)
    greeting: list[str] = field(default_factory=list)  # first connection: banner and EHLO
    verdict: Verdict = Verdict.INCONCLUSIVE
    reason: Reason | None = None
    why: str = ""
    counted: tuple[str, ...] = ()  # "phase/id" of accepted tests taken as relay evidence

    @property
    def name(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    @property
    def phases(self) -> list[Phase]:
        seen: dict[Phase, None] = {}
        for result in self.tests:
            seen.setdefault(result.phase, None)
        return list(seen)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "port": self.port,
            "implicit_tls": self.implicit_tls,
            "source_address": self.source,
            "verdict": self.verdict.value,
            "reason": self.reason.value if self.reason else None,
            "why": self.why,
            "counted": list(self.counted),
            "host": self.host,
            "banner": list(self.banner),
            "extensions": {p.value: dict(ext) for p, ext in self.extensions.items()},
            "tls": [t.to_json() for t in self.tls],
            "tests": [t.to_json() for t in self.tests],
            "comparison": self.comparison.to_json() if self.comparison else None,
            "comparisons": [t.to_json() for t in self.comparisons],
            "comparison_chosen": self.comparison_chosen,
            "vrfy": _vrfy_json(self.vrfy),
            "proof": _proof_json(self.proof),
            "rate": _rate_json(self.rate),
            "connections": self.connections,
            "closed_before_banner": self.closed_before_banner,
            "slowest_reply_seconds": round(self.slowest_reply, 3),
            "slow_replies": self.slow_replies,
            "out_of_time": self.out_of_time,
            "errors": list(self.errors),
            "greeting": list(self.greeting),
        }


def _vrfy_json(v: VrfyResult | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"known": v.known, "unknown": v.unknown, "expn": v.expn, "dialogue": list(v.dialogue)}


def _proof_json(p: ProofResult | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "recipient": p.recipient,
        "accepted": p.accepted,
        "message_id": p.message_id,
        "code": p.code,
        "dialogue": list(p.dialogue),
    }


def _rate_json(r: RateResult | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "attempted": r.attempted,
        "served": r.served,
        "refused": r.refused,
        "seconds": round(r.seconds, 3),
    }


@dataclass(slots=True, kw_only=True)
class ProbeResult:
    host: str
    services: list[ServiceResult]
    verdict: Verdict
    reason: Reason | None
    findings: list[Finding]
    exit_code: int
    started: str  # ISO 8601 UTC
    seconds: float
    error: str | None = None  # the target could not be probed at all

    def to_json(self) -> dict[str, Any]:
        from relayguard import mitigations

        used = mitigations.used_by(self.findings)
        catalogue = [m for m in (mitigations.get(mid) for mid in used) if m is not None]
        return {
            "schema": SCHEMA,
            "host": self.host,
            "started": self.started,
            "seconds": round(self.seconds, 3),
            "verdict": self.verdict.value,
            "reason": self.reason.value if self.reason else None,
            "exit_code": self.exit_code,
            "error": self.error,
            "services": [s.to_json() for s in self.services],
            "findings": [f.to_json() for f in self.findings],
            "mitigations": [
                {
                    "id": m.id,
                    "title": m.title,
                    "why": m.why,
                    "postfix": list(m.postfix),
                    "exim": list(m.exim),
                }
                for m in catalogue
            ],
        }
