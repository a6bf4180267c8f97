"""``relayguard domain``: DMARC, DKIM and MX findings, the verdict and the JSON. Pure.

Exit codes: 0 pass (nothing above low), 1 warn (a medium finding), 2 fail (high or critical),
3 unknown (a lookup failed, so a part of the audit could not be made, and nothing is high).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from relayguard.dns.dkim import DkimResult
from relayguard.dns.dmarc import DmarcResult
from relayguard.dns.domain_spf import spf_findings
from relayguard.dns.mx import MxResult
from relayguard.dns.spf import Outcome
from relayguard.findings import ExitCode, Finding, Severity, Subject

SCHEMA = "relayguard.domain/1"


def _f(domain: str, indicator: str, severity: Severity, title: str, mitigation: str,
       publish: str | None = None, evidence: list[str] | None = None,
       hint: str | None = None) -> Finding:  # fmt: skip
    """``publish`` is zone-file text, ready to paste; ``hint`` says when or what else."""
    details: dict[str, object] = {"publish": publish} if publish else {}
    if hint:
        details["hint"] = hint
    return Finding(
        indicator=indicator, severity=severity, subject=Subject("domain", domain), title=title,
        evidence=evidence or [], mitigations=[mitigation], details=details,
    )  # fmt: skip


def _dmarc_record(
    tags: dict[str, str], domain: str, drop: frozenset[str] = frozenset(), **changes: str | None
) -> str:
    keep = {k: v for k, v in tags.items() if k not in ("v", "p", "pct", "sp") and k not in drop}
    merged: dict[str, str | None] = {"p": "reject", **keep, **changes}
    merged.setdefault("rua", f"mailto:dmarc@{domain}")
    body = "; ".join(f"{k}={v}" for k, v in merged.items() if v)
    return f'_dmarc.{domain}. IN TXT "v=DMARC1; {body}"'


def dmarc_findings(domain: str, d: DmarcResult) -> list[Finding]:
    out: list[Finding] = []
    evidence = [f"_dmarc.{d.location}: {d.record}"] if d.record else []
    if d.error:
        return [_f(domain, "dmarc-dns-error", Severity.LOW, f"DMARC lookup failed: {d.error}",
                   "enforce-dmarc")]  # fmt: skip
    drop = frozenset(i.tag for i in d.issues if i.tag)
    if d.record is None:
        out.append(_f(domain, "dmarc-missing", Severity.MEDIUM,
                      f"no DMARC record for {domain} or its parents: receivers have no policy "
                      "for mail forged in its name", "enforce-dmarc",
                      _dmarc_record({}, domain)))  # fmt: skip
        return out
    for issue in d.issues:
        severity = {"invalid": Severity.HIGH, "multiple": Severity.HIGH,
                    "unknown-tag": Severity.LOW}.get(issue.code, Severity.LOW)  # fmt: skip
        # an ignored record sits at _dmarc.<domain> itself: fix it there, not at the parent
        where = domain if issue.code == "ignored-record" else d.location or domain
        out.append(_f(domain, f"dmarc-{issue.code}", severity, issue.text, "enforce-dmarc",
                      _dmarc_record(d.tags, where, drop), evidence))  # fmt: skip
    own = d.location == domain
    if not own:
        out.append(_f(domain, "dmarc-inherited", Severity.INFO,
                      f"the policy comes from _dmarc.{d.location} (the organizational domain): "
                      f"{'sp' if 'sp' in d.tags else 'p'}={d.policy} applies to {domain}",
                      "enforce-dmarc", evidence=evidence))  # fmt: skip
    if d.policy == "none":
        out.append(_f(domain, "dmarc-policy-none", Severity.MEDIUM,
                      "DMARC p=none only asks for reports: mail forged as this domain is still "
                      "delivered", "enforce-dmarc",
                      _dmarc_record(d.tags, d.location or domain, drop), evidence))  # fmt: skip
    if own and d.tags.get("sp", "").lower() == "none" and d.policy != "none":
        out.append(_f(domain, "dmarc-subdomain-none", Severity.MEDIUM,
                      "sp=none: forged mail from any subdomain is still delivered",
                      "enforce-dmarc", _dmarc_record(d.tags, domain, drop, sp=None), evidence))
    pct = d.tags.get("pct", "100")
    if pct.isdigit() and int(pct) < 100:
        out.append(_f(domain, "dmarc-partial", Severity.LOW,
                      f"pct={pct}: the policy applies to {pct} % of failing mail only",
                      "enforce-dmarc", _dmarc_record(d.tags, d.location or domain, drop), evidence))
    if d.tags.get("t", "").lower() == "y":
        out.append(_f(domain, "dmarc-testing", Severity.LOW,
                      "t=y: the policy is in testing mode", "enforce-dmarc", evidence=evidence))
    for dest in d.unauthorized:
        out.append(_f(domain, "dmarc-rua-unauthorized", Severity.MEDIUM,
                      f"reports go to {dest}, which does not publish "
                      f"{d.location}._report._dmarc.{dest}: receivers send it no reports "
                      "(RFC 7489 s.7.1)", "enforce-dmarc",
                      f'{d.location}._report._dmarc.{dest}. IN TXT "v=DMARC1"', evidence))
    return out


def dkim_findings(domain: str, k: DkimResult) -> list[Finding]:
    out: list[Finding] = []
    for error in k.errors:
        out.append(_f(domain, "dkim-dns-error", Severity.LOW, f"DKIM lookup failed: {error}",
                      "rotate-dkim-key"))  # fmt: skip
    usable = [key for key in k.keys if not key.revoked and key.error is None]
    for key in k.keys:
        name = f"{key.selector}._domainkey.{domain}"
        ev = [f"{name}: {key.record[:120]}"]
        named = key.origin != "guess"
        if key.error:
            out.append(_f(domain, "dkim-bad-key", Severity.HIGH,
                          f"{name}: {key.error}", "rotate-dkim-key", evidence=ev))
        elif key.revoked:
            out.append(_f(domain, "dkim-revoked", Severity.HIGH if named else Severity.INFO,
                          f"{name} is revoked (empty p=)" + (
                              ": mail signed with this selector fails DKIM" if named else ""),
                          "rotate-dkim-key", evidence=ev))  # fmt: skip
        elif key.key_type == "rsa" and key.bits is not None:
            if key.bits < 1024:
                out.append(_f(domain, "dkim-weak-key", Severity.HIGH,
                              f"{name}: {key.bits}-bit RSA key; RFC 8301 says verifiers must "
                              "refuse keys under 1024 bits", "rotate-dkim-key", evidence=ev))
            elif key.bits < 2048:
                out.append(_f(domain, "dkim-weak-key", Severity.MEDIUM,
                              f"{name}: {key.bits}-bit RSA key; RFC 8301 asks for 2048",
                              "rotate-dkim-key", evidence=ev))  # fmt: skip
            elif key.bits > 4096:
                out.append(_f(domain, "dkim-large-key", Severity.LOW,
                              f"{name}: {key.bits}-bit key; verifiers need only support 4096",
                              "rotate-dkim-key", evidence=ev))  # fmt: skip
        if key.testing and not key.error:
            out.append(_f(domain, "dkim-testing", Severity.LOW,
                          f"{name} has t=y (testing): verifiers may ignore failures",
                          "rotate-dkim-key", evidence=ev))  # fmt: skip
        if key.records > 1:
            out.append(_f(domain, "dkim-multiple-records", Severity.MEDIUM,
                          f"{name} holds {key.records} key records: verifiers may pick either",
                          "rotate-dkim-key", evidence=ev))  # fmt: skip
        hashes = [h.strip().lower() for h in key.tags.get("h", "").split(":") if h.strip()]
        if hashes and "sha256" not in hashes:
            out.append(_f(domain, "dkim-sha1", Severity.MEDIUM,
                          f"{name} allows only {':'.join(hashes)}; RFC 8301 removed SHA-1",
                          "rotate-dkim-key", evidence=ev))  # fmt: skip
    for miss in k.missing:
        name = f"{miss.selector}._domainkey.{domain}"
        if miss.dangling:
            out.append(_f(domain, "dkim-dangling-cname", Severity.HIGH,
                          f"{name} is a CNAME to {miss.dangling}, which does not exist: whoever "
                          "registers it can publish a key for your domain", "rotate-dkim-key"))
        elif miss.origin != "guess":
            out.append(_f(domain, "dkim-selector-missing", Severity.HIGH,
                          f"no DKIM key at {name} ({miss.status}): mail signed with selector "
                          f"{miss.selector} fails DKIM", "rotate-dkim-key"))  # fmt: skip
    if not usable and not any(m.origin != "guess" for m in k.missing) and not k.errors:
        if k.no_domainkey:
            where = "_domainkey." + domain + " does not exist (NXDOMAIN)"
        elif k.guessed:
            where = (f"none of {k.guessed} common selectors has one; name yours with "
                     "--dkim-selector or --message")  # fmt: skip
        else:
            selectors = ", ".join(key.selector for key in k.keys)
            where = f"the selector(s) named ({selectors}) hold only revoked keys"
        if not k.keys or all(key.revoked for key in k.keys):
            out.append(_f(domain, "dkim-missing", Severity.MEDIUM,
                          f"no DKIM key found for {domain}: {where}", "rotate-dkim-key"))
    return out


def mx_findings(domain: str, m: MxResult) -> list[Finding]:
    out: list[Finding] = []
    if m.error:
        return [_f(domain, "mx-dns-error", Severity.LOW, f"MX lookup failed: {m.error}",
                   "publish-spf-dkim-dmarc")]  # fmt: skip
    if m.null_mx:
        text = (f"{domain} has a null MX (RFC 7505): it receives no mail"
                + ("; but it also lists other MX hosts, which is an error" if m.exchanges else ""))
        out.append(_f(domain, "mx-null", Severity.MEDIUM if m.exchanges else Severity.INFO, text,
                      "publish-spf-dkim-dmarc"))  # fmt: skip
    elif not m.exchanges:
        if m.implicit:
            out.append(_f(domain, "mx-missing", Severity.LOW,
                          f"{domain} has no MX: mail for it goes to its address record "
                          f"({', '.join(m.implicit[:3])})", "publish-spf-dkim-dmarc",
                          f"{domain}. IN MX 10 mail.{domain}."))  # fmt: skip
        else:
            out.append(_f(domain, "mx-missing", Severity.MEDIUM,
                          f"{domain} has no MX and no address: receivers that check the sender "
                          "domain refuse its mail", "publish-spf-dkim-dmarc",
                          f"{domain}. IN MX 0 .", hint="the null MX (RFC 7505) if it "
                          f"receives no mail; else {domain}. IN MX 10 <your mail server>."))
    for x in m.exchanges:
        if x.ip_literal:
            out.append(_f(domain, "mx-ip-literal", Severity.HIGH,
                          f"MX {x.name} is an address, not a host name (RFC 5321 s.5.1)",
                          "publish-spf-dkim-dmarc",
                          f"{domain}. IN MX {x.preference} mail.{domain}.",
                          hint=f"and the address record mail.{domain}. IN A {x.name}"))
        elif x.error:
            out.append(_f(domain, "mx-dns-error", Severity.LOW, f"MX {x.name}: {x.error}",
                          "publish-spf-dkim-dmarc"))  # fmt: skip
        elif not x.addresses:
            out.append(_f(domain, "mx-unresolvable", Severity.HIGH,
                          f"MX {x.name} has no address: mail to {domain} through it fails",
                          "publish-spf-dkim-dmarc"))  # fmt: skip
        if x.cname and not x.ip_literal:
            target = x.cname[-1].rstrip(".")
            out.append(_f(domain, "mx-cname", Severity.LOW,
                          f"MX {x.name} is a CNAME (to {target}); RFC 2181 s.10.3 says an MX "
                          "must name the host itself", "publish-spf-dkim-dmarc",
                          f"{domain}. IN MX {x.preference} {target}."))  # fmt: skip
    return out


@dataclass(slots=True)
class DomainReport:
    domain: str
    resolver: str
    resolver_source: str
    spf: Outcome
    spf_ips: list[Outcome]
    dmarc: DmarcResult
    dkim: DkimResult
    mx: MxResult
    spf_probes: list[Outcome] = field(default_factory=list)  # addresses nobody owns (io.py)
    notes: list[str] = field(default_factory=list)  # what was done with the input
    findings: list[Finding] = field(default_factory=list)
    verdict: str = "pass"
    exit_code: ExitCode = ExitCode.OK
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        spf, d, k, m = self.spf, self.dmarc, self.dkim, self.mx
        return {
            "schema": SCHEMA, "domain": self.domain, "verdict": self.verdict,
            "exit_code": int(self.exit_code), "why": self.why,
            "resolver": {"address": self.resolver, "source": self.resolver_source},
            "notes": self.notes,
            "spf": {"record": spf.record, "result": spf.result, "lookups": spf.lookups,
                    "void_lookups": spf.voids, "records": spf.records, "notes": spf.notes,
                    "ips": [{"ip": o.ip, "result": o.result, "matched": o.matched,
                             "explanation": o.explanation} for o in self.spf_ips],
                    "probes": [{"ip": o.ip, "result": o.result, "matched": o.matched}
                               for o in self.spf_probes]},
            "dmarc": {"location": d.location, "record": d.record, "policy": d.policy,
                      "tags": d.tags, "unauthorized_report_domains": d.unauthorized,
                      "error": d.error},
            "dkim": {"guessed": k.guessed, "no_domainkey": k.no_domainkey,
                     "keys": [{"selector": x.selector, "origin": x.origin, "type": x.key_type,
                               "bits": x.bits, "revoked": x.revoked, "testing": x.testing,
                               "error": x.error, "cname": list(x.cname)} for x in k.keys],
                     "missing": [{"selector": x.selector, "origin": x.origin,
                                  "status": x.status, "dangling_cname": x.dangling}
                                 for x in k.missing], "errors": k.errors},
            "mx": {"null_mx": m.null_mx, "implicit": m.implicit, "error": m.error,
                   "exchanges": [{"preference": x.preference, "name": x.name,
                                  "addresses": x.addresses, "cname": list(x.cname),
                                  "ip_literal": x.ip_literal, "error": x.error}
                                 for x in m.exchanges]},
            "findings": [f.to_json() for f in self.findings],
        }  # fmt: skip


# SPF results from the most to the least a forger can wish for.
_FORGER_ORDER = ("pass", "neutral", "none", "softfail", "fail")


def build(report: DomainReport) -> DomainReport:
    enforced = report.dmarc.policy in ("quarantine", "reject")
    found = spf_findings(report.domain, report.spf, report.spf_ips, report.mx, enforced,
                         report.spf_probes)  # fmt: skip
    if report.spf.result in _FORGER_ORDER:
        # spf.result is what a forger's address gets; the audit cannot follow a term that
        # depends on the client address (exists:%{i}...), the probes' real addresses can
        results = [report.spf.result, *(p.result for p in report.spf_probes)]
        report.spf.result = min((r for r in results if r in _FORGER_ORDER),
                                key=_FORGER_ORDER.index)  # fmt: skip
    found += dmarc_findings(report.domain, report.dmarc)
    found += dkim_findings(report.domain, report.dkim)
    found += mx_findings(report.domain, report.mx)
    report.findings = sorted(found, key=lambda f: -f.severity)
    worst = max((f.severity for f in found), default=Severity.INFO)
    errors = [f for f in found if f.indicator.endswith("-dns-error")]
    if worst >= Severity.HIGH:
        report.verdict, report.exit_code = "fail", ExitCode.CRITICAL
    elif errors:
        report.verdict, report.exit_code = "unknown", ExitCode.UNKNOWN
    elif worst >= Severity.MEDIUM:
        report.verdict, report.exit_code = "warn", ExitCode.WARNING
    else:
        report.verdict, report.exit_code = "pass", ExitCode.OK
    top = report.findings[0].title if report.findings else "SPF, DMARC, DKIM and MX are sound"
    count = sum(1 for f in found if f.severity >= Severity.LOW)
    report.why = f"{top}" + (f" (+{count - 1} more)" if count > 1 else "")
    if errors and worst < Severity.HIGH:
        report.why = f"could not check everything: {errors[0].title}"
    return report
