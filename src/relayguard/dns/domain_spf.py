"""SPF findings of ``relayguard domain``, each with the record to publish instead. Pure."""

from __future__ import annotations

from relayguard.dns.mx import MxResult
from relayguard.dns.spf import AUDIT_CEILING, LOOKUP_LIMIT, VOID_LIMIT, Outcome
from relayguard.dns.spf_parse import SpfSyntaxError, parse_record
from relayguard.findings import Finding, Severity, Subject

_PROBLEM = {  # spf.py problem code -> (indicator, severity)
    "multiple": ("spf-multiple", Severity.HIGH),
    "syntax": ("spf-syntax", Severity.HIGH),
    "too-many-lookups": ("spf-too-many-lookups", Severity.HIGH),
    "void-lookups": ("spf-void-lookups", Severity.HIGH),
    "include-loop": ("spf-include-loop", Severity.HIGH),
    "include-missing": ("spf-include-missing", Severity.HIGH),
    "redirect-missing": ("spf-include-missing", Severity.HIGH),
    "too-many-mx": ("spf-too-many-lookups", Severity.HIGH),
    "wide-range": ("spf-wide-range", Severity.HIGH),
    "ptr": ("spf-ptr", Severity.LOW),
    "not-spf": ("spf-missing", Severity.HIGH),
    "dns-error": ("spf-dns-error", Severity.LOW),
}


def _finding(domain: str, indicator: str, severity: Severity, title: str, *,
             evidence: list[str] | None = None, publish: str | None = None) -> Finding:  # fmt: skip
    details: dict[str, object] = {}
    if publish:
        details["publish"] = f'{domain}. IN TXT "{publish}"'
    return Finding(indicator=indicator, severity=severity, subject=Subject("domain", domain),
                   title=title, evidence=evidence or [], mitigations=["fix-spf-record"],
                   details=details)  # fmt: skip


def _lookups(count: int) -> str:
    """The audit stops counting past its ceiling: "over 40", not a made-up 41."""
    return f"over {AUDIT_CEILING}" if count > AUDIT_CEILING else str(count)


def suggested(outcome: Outcome | None, mx: MxResult, ips: list[str], drop: set[str]) -> str:
    """A record that keeps what is sound, drops ``drop`` terms, names ``ips`` and ends in -all."""
    terms: list[str] = []
    text = outcome.record if outcome else None
    if text:
        try:
            record = parse_record(text)
            terms = [m.text for m in record.mechanisms if m.name != "all" and m.text not in drop]
            terms = [t.lstrip("+") for t in terms]
        except SpfSyntaxError:
            terms = []
    if mx.null_mx and not ips:
        return "v=spf1 -all"
    if not terms and mx.exchanges:
        terms = ["mx"]
    for ip in ips:
        term = f"ip6:{ip}" if ":" in ip else f"ip4:{ip}"
        if term not in terms:
            terms.append(term)
    return " ".join(["v=spf1", *terms, "-all"])


def _passes_anyone(audit: Outcome, probes: list[Outcome]) -> str | None:
    """How the record lets an address nobody owns pass (an include or redirect to '+all', an
    'exists' of a name that always exists), or None."""
    if audit.result == "pass":
        return f"'{audit.matched}' matches any address" if audit.matched else "it passes anyone"
    for probe in probes:
        if probe.result == "pass":
            via = f"'{probe.matched}'" if probe.matched else "its redirect"
            return f"{via} lets {probe.ip}, an address nobody owns, pass"
    return None


def spf_findings(
    domain: str, audit: Outcome, per_ip: list[Outcome], mx: MxResult, dmarc_enforced: bool,
    probes: list[Outcome] | None = None,
) -> list[Finding]:  # fmt: skip
    out: list[Finding] = []
    ips = [o.ip for o in per_ip if o.ip]
    # temperror: the lookup failed, which says nothing about the address (spf-dns-error does)
    failing = [o.ip for o in per_ip if o.ip and o.result not in ("pass", "temperror")]
    evidence = [f"{d}: {r}" for d, r in list(audit.records.items())[:6]]
    if audit.record is None and not any(p.code in ("not-spf", "dns-error", "multiple")
                                        for p in audit.problems):  # fmt: skip
        out.append(_finding(
            domain, "spf-missing", Severity.MEDIUM if not mx.null_mx else Severity.LOW,
            f"{domain} publishes no SPF record: anyone can send mail as @{domain}",
            publish=suggested(None, mx, ips, set()),
        ))  # fmt: skip
    drop: set[str] = {term for where, term in audit.void_terms if where == domain}
    for problem in audit.problems:
        indicator, severity = _PROBLEM.get(problem.code, ("spf-" + problem.code, Severity.MEDIUM))
        if problem.code == "wide-range":
            drop.update(t for t in problem.text.split()[:1])
        if problem.code == "ptr":
            drop.update(("ptr", "?ptr", "~ptr", "-ptr"))
        if problem.code == "include-missing" and problem.domain == domain:
            drop.add(problem.text.split()[0])
        where = "" if problem.domain == domain else f" (in {problem.domain})"
        title = {
            "too-many-lookups": f"the SPF record needs {_lookups(audit.lookups)} DNS lookups; "
            f"RFC 7208 allows {LOOKUP_LIMIT}, so receivers get permerror and ignore it",
            "void-lookups": f"{audit.voids} SPF lookups find nothing; over {VOID_LIMIT} is a "
            "permerror",
        }.get(problem.code, problem.text) + where
        out.append(_finding(domain, indicator, severity, title, evidence=evidence))
    record = None
    if audit.record:
        try:
            record = parse_record(audit.record)
        except SpfSyntaxError:
            record = None
    if record is not None:
        last = record.all
        if last is None and record.redirect is None:
            out.append(_finding(
                domain, "spf-no-all", Severity.MEDIUM,
                "the SPF record has no 'all': everyone else gets 'neutral', which receivers "
                "treat like no SPF at all", evidence=evidence,
            ))  # fmt: skip
        elif last is not None and last.qualifier == "+":
            out.append(_finding(
                domain, "spf-pass-all", Severity.CRITICAL,
                f"'{last.text}' authorizes every address on the Internet to send as @{domain} "
                "(checkdmarc calls this record valid)", evidence=evidence,
            ))  # fmt: skip
        elif last is not None and last.qualifier == "?":
            out.append(_finding(
                domain, "spf-neutral-all", Severity.MEDIUM,
                "'?all' says nothing about other senders: forged mail is not refused",
                evidence=evidence,
            ))  # fmt: skip
        elif last is not None and last.qualifier == "~" and not dmarc_enforced:
            out.append(_finding(
                domain, "spf-softfail-all", Severity.LOW,
                "'~all' only marks forged mail, and no enforcing DMARC policy backs it up",
                evidence=evidence,
            ))  # fmt: skip
    if not any(f.indicator == "spf-pass-all" for f in out):
        how = _passes_anyone(audit, probes or [])
        if how is not None:
            matched = audit.matched or next((p.matched for p in probes or [] if p.matched), None)
            if matched:
                drop.add(matched)
            out.append(_finding(
                domain, "spf-pass-all", Severity.CRITICAL,
                f"SPF lets every address on the Internet send as @{domain}: {how}",
                evidence=evidence,
            ))  # fmt: skip
    for ip in failing:
        result = next(o.result for o in per_ip if o.ip == ip)
        out.append(_finding(
            domain, "spf-ip-not-authorized", Severity.HIGH,
            f"{ip} (a sending address of this server) gets SPF {result} for {domain}: "
            "receivers may refuse or junk its mail", evidence=evidence,
        ))  # fmt: skip
    # no record can be worked out for these: the includes must be flattened or fixed by hand
    fixable = [f for f in out if f.indicator not in ("spf-dns-error", "spf-too-many-lookups",
                                                      "spf-include-loop", "spf-syntax")]
    publish = suggested(audit, mx, ips, drop)
    if ((fixable and audit.record is not None) or failing) and publish != audit.record:
        for finding in fixable:
            finding.details.setdefault("publish", f'{domain}. IN TXT "{publish}"')
    return out
