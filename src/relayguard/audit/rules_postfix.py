"""Every Postfix rule (PF-01..PF-28) run on one configuration, findings worst first."""

from __future__ import annotations

from collections.abc import Callable

from relayguard.audit import _pf_auth, _pf_fatal, _pf_hardening, _pf_networks, _pf_relay
from relayguard.audit.effective import PostfixConfig
from relayguard.findings import Finding

Check = Callable[[PostfixConfig], list[Finding]]

CHECKS: tuple[Check, ...] = (
    *_pf_fatal.CHECKS,
    _pf_relay.check,
    _pf_relay.check_soft_bounce,
    *_pf_networks.CHECKS,
    *_pf_auth.CHECKS,
    *_pf_hardening.CHECKS,
)


def audit_postfix(cfg: PostfixConfig) -> list[Finding]:
    findings = [f for check in CHECKS for f in check(cfg)]
    # A service smtpd cannot start reports that alone: fixing its -o values with postconf -P
    # would leave the stray argument in place.
    broken = _pf_fatal.broken_services(cfg)
    if broken:
        prefixes = tuple(f"master.cf:{s.name}/" for s in broken)
        labels = {f"{s.name}/{s.type}" for s in broken}
        findings = [f for f in findings if not _only_about(f, prefixes, labels)]
    return sort_findings(findings)


def _only_about(finding: Finding, prefixes: tuple[str, ...], labels: set[str]) -> bool:
    """Is ``finding`` (not PF-29 itself) about broken services only?"""
    if finding.details.get("rule") == "PF-29":
        return False
    if finding.subject.value.startswith(prefixes):
        return True
    services = set(finding.details.get("services") or ())
    return bool(services) and services <= labels


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Worst first, then by rule id and subject, so output is stable."""
    return sorted(
        findings, key=lambda f: (-f.severity, str(f.details.get("rule", "")), f.subject.value)
    )
