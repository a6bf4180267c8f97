"""The audit's result and its three outputs: JSON (``relayguard.audit/1``), text, fix script."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from relayguard.audit import mitigations
from relayguard.audit.effective import PostfixConfig
from relayguard.audit.exim import EximConfig
from relayguard.audit.rules_exim import audit_exim
from relayguard.audit.rules_postfix import audit_postfix, sort_findings
from relayguard.findings import VERDICT_EXIT, Finding, Severity, Verdict, verdict_for

AUDIT_SCHEMA = "relayguard.audit/1"
# What the JSON shows per smtpd service: the parameters the rules read.
EFFECTIVE_PARAMS = (
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "mynetworks",
    "mynetworks_style",
    "relay_domains",
    "smtpd_sasl_auth_enable",
    "smtpd_sasl_security_options",
    "smtpd_tls_security_level",
    "smtpd_tls_auth_only",
    "smtpd_tls_wrappermode",
    "smtpd_sender_login_maps",
    "smtpd_client_message_rate_limit",
    "smtpd_reject_unlisted_recipient",
)
_PLACEHOLDER = re.compile(r"<[A-Za-z][\w. -]*>")


@dataclass(slots=True)
class AuditResult:
    findings: list[Finding]
    postfix: PostfixConfig | None = None
    exim: EximConfig | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        return verdict_for(self.findings)

    @property
    def exit_code(self) -> int:
        return int(VERDICT_EXIT[self.verdict])


def run_audit(
    postfix: PostfixConfig | None, exim: EximConfig | None, inputs: dict[str, Any]
) -> AuditResult:
    findings: list[Finding] = []
    warnings: list[str] = []
    if postfix is not None:
        findings += audit_postfix(postfix)
        warnings += postfix.warnings
        if not postfix.smtpd_services:
            warnings.append(
                f"{postfix.master.file}: no smtpd service: this Postfix receives no SMTP "
                "mail, so no relay rule was checked per service (is it the right master.cf?)"
            )
    if exim is not None:
        findings += audit_exim(exim)
        warnings += exim.warnings
    return AuditResult(sort_findings(findings), postfix, exim, inputs, warnings)


def _services(cfg: PostfixConfig) -> list[dict[str, Any]]:
    out = []
    for svc in cfg.smtpd_services:
        effective = {}
        for name in EFFECTIVE_PARAMS:
            s = cfg.get(name, svc)
            effective[name] = {"value": s.value, "origin": s.origin, "location": s.where}
        out.append({
            "service": svc.name, "type": svc.service.type, "role": svc.role, "port": svc.port,
            "loopback_only": svc.loopback, "location": svc.service.where, "effective": effective,
        })  # fmt: skip
    return out


def to_json(result: AuditResult) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": AUDIT_SCHEMA,
        "verdict": result.verdict.value,
        "exit_code": result.exit_code,
        "summary": summary(result),
        "inputs": result.inputs,
        "counts": {s.label: sum(f.severity == s for f in result.findings) for s in Severity},
        "findings": [f.to_json() for f in result.findings],
        "mitigations": [],
        "fix": fix_commands(result),
        "warnings": list(result.warnings),
    }
    if result.postfix is not None:
        cfg = result.postfix
        doc["postfix"] = {
            "mail_version": ".".join(map(str, cfg.effective_version)),
            "mail_version_known": cfg.version_known,
            "compatibility_level": ".".join(map(str, cfg.level)),
            "config_directory": cfg.config_dir,
            "services": _services(cfg),
        }
    seen: dict[str, None] = {}
    for finding in result.findings:
        for mid in finding.mitigations:
            seen.setdefault(mid, None)
    for mid in seen:
        entry = mitigations.get(mid)
        if entry is not None:
            doc["mitigations"].append({
                "id": entry.id, "title": entry.title, "why": entry.why,
                "postfix": list(entry.postfix), "exim": list(entry.exim),
            })  # fmt: skip
    return doc


def summary(result: AuditResult) -> str:
    if not result.findings or result.verdict is Verdict.CLEAN:
        low = sum(f.severity >= Severity.LOW for f in result.findings)
        return "No relay weakness found" + (f" ({low} low-severity notes)" if low else "")
    worst = result.findings[0]
    return f"{worst.severity.label}: {worst.title}"


def fix_commands(result: AuditResult) -> list[str]:
    """Every fix step of findings above info, each once, in finding order."""
    seen: dict[str, None] = {}
    for finding in result.findings:
        if finding.severity <= Severity.INFO:
            continue
        for step in finding.details.get("fix", []):
            seen.setdefault(step, None)
    return list(seen)


def fix_script(result: AuditResult) -> str:
    """A POSIX shell script with the fixes; lines needing a value of yours stay commented.

    Steps with a ``<placeholder>``, every step of a finding marked ``manual`` (its fix
    needs a file you write first), and the alternative after a ``# or`` line are printed as
    ``# EDIT:`` comments.
    """
    lines = [
        "#!/bin/sh",
        "# relayguard audit --fix: commands that fix the findings below. Nothing was changed.",
        "# Review, edit the lines marked EDIT, then run this script as root.",
        "set -e",
    ]
    done: set[str] = set()
    postfix_changed = False
    for finding in result.findings:
        steps = [s for s in finding.details.get("fix", []) if s not in done]
        if finding.severity <= Severity.INFO or not steps:
            continue
        rule = finding.details.get("rule", "")
        lines += ["", f"# {rule} {finding.severity.label}: {finding.title}"]
        manual = bool(finding.details.get("manual"))
        for step in steps:
            done.add(step)
            if step.startswith("#"):
                lines.append(step)
                # "# or, ...": what follows is an alternative to the steps above, not more
                manual = manual or step.startswith("# or")
            elif manual or _PLACEHOLDER.search(step):
                lines.append(f"# EDIT: {step}")
            else:
                lines.append(step)
                postfix_changed = postfix_changed or step.startswith("postconf")
    if postfix_changed and result.postfix is not None:
        cmd = result.postfix.postconf_cmd().replace("postconf", "postfix", 1)
        lines += ["", f"{cmd} check", f"{cmd} reload"]
    if len(lines) == 4:
        lines += ["", "# nothing to fix"]
    return "\n".join(lines) + "\n"


# The text headline judges a configuration, not a server's history: no "ABUSED" here.
HEADLINE = {Verdict.CLEAN: "OK", Verdict.SUSPICIOUS: "NEEDS FIXES", Verdict.ABUSED: "UNSAFE"}


def error_json(message: str) -> dict[str, Any]:
    """What ``--json`` prints when the configuration could not be audited (exit code 3)."""
    return {"schema": AUDIT_SCHEMA, "verdict": None, "exit_code": 3, "error": message}


def render_text(result: AuditResult, verbose: bool = False) -> str:
    counts = ", ".join(
        f"{n} {s.label}"
        for s in sorted(Severity, reverse=True)
        if (n := sum(f.severity == s for f in result.findings))
    )
    out = [f"relayguard audit: {HEADLINE[result.verdict]} ({counts or 'no findings'})"]
    out.append(summary(result))
    cfg = result.postfix
    if cfg is not None:
        version = ".".join(map(str, cfg.effective_version))
        known = "" if cfg.version_known else " (assumed; pass --mail-version)"
        level = ".".join(map(str, cfg.level))
        out.append(f"Postfix {version}{known}, compatibility_level {level}, {cfg.config_dir}")
        for svc in cfg.smtpd_services:
            where = "loopback only" if svc.loopback else "network"
            out.append(f"  smtpd service {svc.label}: {svc.role}, port {svc.port}, {where}")
    for finding in result.findings:
        if finding.severity <= Severity.INFO and not verbose:
            continue
        rule = finding.details.get("rule", "")
        out += ["", f"{finding.severity.label.upper():8} {rule}  {finding.subject.value}"]
        out.append(f"  {finding.title}")
        out += [f"  > {line}" for line in finding.evidence]
        services = finding.details.get("services")
        if services:
            out.append(f"  services: {', '.join(services)}")
        out.append(f"  why: {finding.details.get('why', '')}")
        out += [f"  fix: {step}" for step in finding.details.get("fix", [])]
    for warning in result.warnings:
        out.append(f"warning: {warning}")
    return "\n".join(out) + "\n"
