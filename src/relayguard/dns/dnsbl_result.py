"""The result of ``relayguard dnsbl``: per subject and list a verdict; the summary; the exit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relayguard.dns.classify import ERROR, LISTED, NOT_LISTED, REASON_TEXT
from relayguard.dns.lists import ListSpec
from relayguard.findings import ExitCode, Finding

SCHEMA = "relayguard.dnsbl/1"
SKIPPED = "skipped"

# Health states of a list (RFC 5782 s.5 test points).
HEALTHY = "healthy"
NOT_CHECKED = "not-checked"
LISTS_EVERYTHING = "lists-everything"
TEST_POINT_MISSING = "test-point-missing"
UNAVAILABLE = "unavailable"
DEAD = "dead"  # built-in list of dead zones: never queried

HEALTH_TEXT = {
    HEALTHY: "answers its RFC 5782 test points correctly",
    NOT_CHECKED: "health check turned off for this list",
    LISTS_EVERYTHING: "lists the never-listed test point 127.0.0.1 / INVALID: it answers "
    "'listed' for everything (a dead list or a squatter's wildcard); its answers are ignored",
    TEST_POINT_MISSING: "does not list its test point 127.0.0.2 / TEST: the zone is empty or "
    "dead; its answers are ignored",
    UNAVAILABLE: "its test points could not be queried",
    DEAD: "a dead list, never queried",
}


@dataclass(frozen=True, slots=True)
class Health:
    state: str
    reason: str | None = None  # when unavailable: why (timeout, resolver-blocked, ...)
    detail: str = ""

    @property
    def usable(self) -> bool:
        return self.state in (HEALTHY, NOT_CHECKED)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "reason": self.reason, "detail": self.detail}


@dataclass(slots=True)
class ListResult:
    spec: ListSpec
    verdict: str  # listed | not-listed | error | skipped
    reason: str | None = None
    query: str = ""
    codes: tuple[str, ...] = ()
    meanings: tuple[str, ...] = ()
    txt: str | None = None
    ttl: int = 0
    elapsed: float = 0.0

    @property
    def informational(self) -> bool:
        return self.spec.informational

    def to_json(self) -> dict[str, Any]:
        return {
            "list": self.spec.id,
            "zone": self.spec.zone,
            "verdict": self.verdict,
            "informational": self.spec.informational,
            "reason": self.reason,
            "reason_text": REASON_TEXT.get(self.reason or "", HEALTH_TEXT.get(self.reason or ""))
            if self.reason
            else None,
            "query": self.query,
            "codes": list(self.codes),
            "meanings": list(self.meanings),
            "txt": self.txt,
            "ttl": self.ttl,
            "elapsed_ms": round(self.elapsed * 1000, 1),
            "delist": self.spec.delist if self.verdict == LISTED else None,
            "delist_url": self.spec.delist_url if self.verdict == LISTED else None,
        }


@dataclass(slots=True)
class Rdns:
    """Forward-confirmed reverse DNS of one address, and the HELO name against it."""

    ptr: tuple[str, ...] = ()
    ptr_status: str = ""  # noerror | nxdomain | nodata | timeout ...
    confirmed: tuple[str, ...] = ()  # PTR names whose A/AAAA include the address
    unconfirmed: tuple[str, ...] = ()
    helo: str | None = None
    helo_addresses: tuple[str, ...] = ()
    helo_status: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "ptr": list(self.ptr),
            "ptr_status": self.ptr_status,
            "fcrdns": bool(self.confirmed),
            "confirmed": list(self.confirmed),
            "unconfirmed": list(self.unconfirmed),
            "helo": self.helo,
            "helo_addresses": list(self.helo_addresses),
            "helo_status": self.helo_status or None,
        }


@dataclass(slots=True)
class Subject:
    """One address or domain checked, and the target on the command line it came from."""

    value: str
    kind: str  # ip | domain
    target: str
    results: list[ListResult] = field(default_factory=list)
    rdns: Rdns | None = None

    def count(self, verdict: str, informational: bool | None = None) -> int:
        return sum(
            1
            for r in self.results
            if r.verdict == verdict and (informational is None or r.informational == informational)
        )

    def summary(self) -> dict[str, int]:
        return {
            "lists": len(self.results),
            "listed": self.count(LISTED, informational=False),
            "listed_informational": self.count(LISTED, informational=True),
            "not_listed": self.count(NOT_LISTED),
            "error": self.count(ERROR),
            "skipped": self.count(SKIPPED),
        }

    def error_ratio(self) -> float:
        asked = len(self.results) - self.count(SKIPPED)
        return self.count(ERROR) / asked if asked else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.value,
            "kind": self.kind,
            "target": self.target,
            "summary": self.summary(),
            "results": [r.to_json() for r in self.results],
            "rdns": self.rdns.to_json() if self.rdns else None,
        }


@dataclass(slots=True)
class TargetState:
    """A command-line target: what it resolved to (names) or why it could not be checked."""

    text: str
    kind: str  # ip | name
    addresses: list[str] = field(default_factory=list)
    error: str | None = None  # could not be resolved: nothing about it can be said
    note: str | None = None  # e.g. a domain without A/AAAA: checked on domain lists only

    def to_json(self) -> dict[str, Any]:
        return {"target": self.text, "kind": self.kind, "addresses": self.addresses,
                "error": self.error, "note": self.note}  # fmt: skip


@dataclass(slots=True)
class DnsblReport:
    resolver: str
    resolver_source: str
    targets: list[TargetState]
    subjects: list[Subject]
    lists: list[ListSpec]
    health: dict[str, Health]
    findings: list[Finding]
    verdict: str
    exit_code: ExitCode
    why: str
    max_error_ratio: float
    queries: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. --from-postfix addresses left out

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "verdict": self.verdict,
            "exit_code": int(self.exit_code),
            "why": self.why,
            "resolver": {"address": self.resolver, "source": self.resolver_source},
            "notes": self.notes,
            "targets": [t.to_json() for t in self.targets],
            "lists": [
                {
                    "id": s.id,
                    "name": s.name,
                    "zone": s.zone,
                    "type": s.kind,
                    "ipv6": s.ipv6,
                    "informational": s.informational,
                    "health": self.health[s.zone].to_json(),
                }
                for s in self.lists
            ],
            "subjects": [s.to_json() for s in self.subjects],
            "findings": [f.to_json() for f in self.findings],
            "queries": self.queries,
        }
