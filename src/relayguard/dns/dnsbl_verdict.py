"""Findings, verdict and exit code of a block-list check (pure: the finished core in, a report out).

Exit codes (the monitoring-plugin convention): 0 clean; 1 listed only on informational lists
(UCEPROTECT L2/L3 list the provider, not you); 2 listed; 3 could not tell: a target that did
not resolve, or a subject for which more than ``max_error_ratio`` of the lists gave no usable
answer ("0 of 20 listed" with 5 timeouts is not clean).
"""

from __future__ import annotations

from relayguard.dns.classify import ERROR, LISTED, REASON_TEXT
from relayguard.dns.dnsbl import DnsblCheck
from relayguard.dns.dnsbl_result import (
    DEAD,
    HEALTH_TEXT,
    SKIPPED,
    DnsblReport,
    Health,
    ListResult,
    Subject,
)
from relayguard.dns.lists import RESOLVER_BLOCKED, ListSpec
from relayguard.dns.resolver import ResolverChoice
from relayguard.findings import ExitCode, Finding, Severity
from relayguard.findings import Subject as FindingSubject

CLEAN = "clean"
LISTED_INFORMATIONAL = "listed-informational"
UNKNOWN = "unknown"
DEFAULT_MAX_ERROR_RATIO = 0.2


def _subject(subject: Subject) -> FindingSubject:
    return FindingSubject("ip" if subject.kind == "ip" else "domain", subject.value)


def _listed(subject: Subject, result: ListResult) -> Finding:
    spec = result.spec
    meaning = "; ".join(f"{c}" for c in result.meanings[:4])
    evidence = [f"{result.query} A {', '.join(result.codes)}"]
    if result.txt:
        evidence.append(f"{result.query} TXT {result.txt}")
    what = "lists its provider's network" if spec.informational else "is listed"
    title = (
        f"{subject.value} {what} on {spec.name}: {meaning}"
        if not spec.informational
        else f"{spec.name} {what} ({subject.value}): {meaning}"
    )
    return Finding(
        indicator="dnsbl-listed",
        severity=spec.severity,
        subject=_subject(subject),
        title=title,
        count=1,
        evidence=evidence,
        mitigations=[] if spec.informational else ["request-delisting"],
        details={
            "list": spec.id, "zone": spec.zone, "codes": list(result.codes),
            "meanings": list(result.meanings), "informational": spec.informational,
            "delist": spec.delist, "delist_url": spec.delist_url, "txt": result.txt,
            "query": result.query,
        },
    )  # fmt: skip


def _rdns(subject: Subject) -> list[Finding]:
    rdns = subject.rdns
    if rdns is None:
        return []
    out = []
    who = _subject(subject)
    if not rdns.ptr:
        if rdns.ptr_status in ("timeout", "servfail", "refused", "error"):
            return []  # unknown, not absent
        out.append(Finding(
            indicator="rdns-missing", severity=Severity.MEDIUM, subject=who,
            title=f"{subject.value} has no reverse DNS (PTR): many receivers refuse such mail",
            evidence=[f"PTR {subject.value}: {rdns.ptr_status}"],
            mitigations=["fix-reverse-dns"],
        ))  # fmt: skip
    elif not rdns.confirmed:
        out.append(Finding(
            indicator="rdns-not-confirmed", severity=Severity.MEDIUM, subject=who,
            title=f"the PTR name of {subject.value} does not resolve back to it "
            f"(forward-confirmed reverse DNS fails)",
            evidence=[f"PTR {subject.value}: {', '.join(rdns.ptr)}"],
            mitigations=["fix-reverse-dns"], details={"ptr": list(rdns.ptr)},
        ))  # fmt: skip
    if rdns.helo:
        helo_ok = rdns.helo in rdns.confirmed or rdns.helo in rdns.ptr
        resolves = subject.value in rdns.helo_addresses
        if not (helo_ok and resolves):
            why = []
            if not resolves:
                why.append(f"{rdns.helo} does not resolve to {subject.value}")
            if not helo_ok:
                why.append(f"the PTR is {', '.join(rdns.ptr) or 'missing'}")
            out.append(Finding(
                indicator="helo-mismatch", severity=Severity.MEDIUM, subject=who,
                title=f"HELO name {rdns.helo} does not match {subject.value}: {'; '.join(why)}",
                evidence=[f"HELO {rdns.helo} -> {', '.join(rdns.helo_addresses) or '-'}",
                          f"PTR {subject.value} -> {', '.join(rdns.ptr) or '-'}"],
                mitigations=["fix-reverse-dns"],
            ))  # fmt: skip
    return out


def _named(spec: ListSpec) -> str:
    return spec.name if spec.zone in spec.name else f"{spec.name} ({spec.zone})"


def _list_problems(specs: list[ListSpec], health: dict[tuple[str, str], Health],
                   subjects: list[Subject]) -> list[Finding]:  # fmt: skip
    out = []
    for spec in specs:
        states = [h for (zone, _), h in health.items() if zone == spec.zone]
        errors = [r for s in subjects for r in s.results if r.spec is spec and r.verdict == ERROR]
        who = FindingSubject("host", spec.zone)
        unusable = [h for h in states if not h.usable and h.state != DEAD]
        states = [h for h in states if h.state == DEAD] + unusable[:1]  # one finding per list
        for state in states:
            if state.state == DEAD:
                out.append(Finding(
                    indicator="dnsbl-dead-list", severity=Severity.INFO, subject=who,
                    title=f"{spec.zone} is a dead list and was not queried: {state.detail}",
                ))  # fmt: skip
            elif not state.usable:
                reason = state.reason or state.state
                text = REASON_TEXT.get(reason) or HEALTH_TEXT.get(reason, reason)
                blocked = reason == RESOLVER_BLOCKED
                out.append(Finding(
                    indicator="dnsbl-resolver-blocked" if blocked else "dnsbl-list-unusable",
                    severity=Severity.MEDIUM if blocked else Severity.LOW, subject=who,
                    title=f"{_named(spec)} was not trusted: {text}",
                    evidence=[state.detail] if state.detail else [],
                    mitigations=["use-local-resolver"] if blocked else [],
                    details={"list": spec.id, "health": state.state, "reason": state.reason},
                ))  # fmt: skip
        if errors and all(h.usable for h in states):
            reasons = sorted({r.reason or "error" for r in errors})
            blocked = RESOLVER_BLOCKED in reasons
            out.append(Finding(
                indicator="dnsbl-resolver-blocked" if blocked else "dnsbl-error",
                severity=Severity.MEDIUM if blocked else Severity.LOW, subject=who,
                title=f"{spec.name} gave no usable answer for {len(errors)} subject(s): "
                f"{', '.join(reasons)}",
                evidence=[f"{r.query} {r.reason} {' '.join(r.codes)}".strip() for r in errors[:5]],
                mitigations=["use-local-resolver"] if blocked else [],
                details={"list": spec.id, "reasons": reasons, "count": len(errors)},
            ))  # fmt: skip
    return out


def build_report(
    check: DnsblCheck, choice: ResolverChoice, *, max_error_ratio: float = DEFAULT_MAX_ERROR_RATIO,
    queries: dict[str, int] | None = None,
) -> DnsblReport:  # fmt: skip
    check.finish()
    findings: list[Finding] = []
    if choice.public:
        findings.append(Finding(
            indicator="dnsbl-public-resolver", severity=Severity.MEDIUM,
            subject=FindingSubject("host", choice.server.host),
            title=f"{choice.server.host} is a public resolver: Spamhaus, URIBL and others refuse "
            f"it or answer with error codes", mitigations=["use-local-resolver"],
        ))  # fmt: skip
    for subject in check.subjects:
        findings.extend(_listed(subject, r) for r in subject.results if r.verdict == LISTED)
    for subject in check.subjects:
        findings.extend(_rdns(subject))
    findings.extend(_list_problems(check.lists, check.health, check.subjects))
    verdict, code, why = _verdict(check, max_error_ratio)
    health = {spec.zone: _main_health(check.health, spec) for spec in check.lists}
    return DnsblReport(
        resolver=str(choice.server), resolver_source=choice.source, targets=check.targets,
        subjects=check.subjects, lists=check.lists, health=health, findings=findings,
        verdict=verdict, exit_code=code, why=why, max_error_ratio=max_error_ratio,
        queries=queries or {},
    )  # fmt: skip


def _main_health(health: dict[tuple[str, str], Health], spec: ListSpec) -> Health:
    main = health.get((spec.zone, "d" if spec.kind == "domain" else "4"))
    return main or health.get((spec.zone, "6")) or Health("not-needed")


def _verdict(check: DnsblCheck, max_error_ratio: float) -> tuple[str, ExitCode, str]:
    listed = [(s, r) for s in check.subjects for r in s.results if r.verdict == LISTED]
    real = [(s, r) for s, r in listed if not r.informational]
    if real:
        names = sorted({s.value for s, _ in real})
        lists = sorted({r.spec.name for _, r in real})
        return LISTED, ExitCode.CRITICAL, f"{', '.join(names[:5])} listed on {', '.join(lists[:5])}"
    unsure = [t for t in check.targets if t.error and not t.addresses]
    if unsure:
        return UNKNOWN, ExitCode.UNKNOWN, f"could not check {unsure[0].text}: {unsure[0].error}"
    if not check.subjects:
        return UNKNOWN, ExitCode.UNKNOWN, "nothing to check"
    for subject in check.subjects:
        asked = [r for r in subject.results if r.verdict != "skipped"]
        errors = subject.count(ERROR)
        if not asked:
            return UNKNOWN, ExitCode.UNKNOWN, f"{subject.value}: {_unchecked(subject)}"
        if errors == len(asked) or subject.error_ratio() > max_error_ratio:
            return (UNKNOWN, ExitCode.UNKNOWN,
                    f"{subject.value}: {errors} of {len(subject.results)} lists gave no usable "
                    f"answer, so 'not listed' cannot be trusted")  # fmt: skip
    if listed:
        lists = sorted({r.spec.name for _, r in listed})
        return (LISTED_INFORMATIONAL, ExitCode.WARNING,
                f"listed only on informational lists ({', '.join(lists)}): they list the "
                f"provider's network, not this host")  # fmt: skip
    answered = sum(s.count("not-listed") for s in check.subjects)
    errors = sum(s.count(ERROR) for s in check.subjects)
    note = f" ({errors} list answer(s) unusable)" if errors else ""
    return CLEAN, ExitCode.OK, f"not listed: {answered} list answer(s) say so{note}"


def _unchecked(subject: Subject) -> str:
    """Why no list could be asked about ``subject`` (none of its kind, or all skipped)."""
    what = "IP addresses" if subject.kind == "ip" else "domains"
    if not subject.results:
        return f"none of the lists checks {what}, so nothing can be said"
    reasons = ", ".join(sorted({r.reason or SKIPPED for r in subject.results}))
    return f"every list that checks {what} skipped it ({reasons}), so nothing can be said"
