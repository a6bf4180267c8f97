"""Every Postfix rule (PF-01..PF-28) run on one configuration, findings worst first."""

from __future__ import annotations

from collections.abc import Callable

from relayguard.audit import _pf_auth, _pf_hardening, _pf_networks, _pf_relay
from relayguard.audit.effective import PostfixConfig
from relayguard.findings import Finding

Check = Callable[[PostfixConfig], list[Finding]]

CHECKS: tuple[Check, ...] = (
    _pf_relay.check,
    _pf_relay.check_soft_bounce,
    *_pf_networks.CHECKS,
    *_pf_auth.CHECKS,
    *_pf_hardening.CHECKS,
)


def audit_postfix(cfg: PostfixConfig) -> list[Finding]:
    findings = [f for check in CHECKS for f in check(cfg)]
    return sort_findings(findings)


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Worst first, then by rule id and subject, so output is stable."""
    return sorted(
        findings, key=lambda f: (-f.severity, str(f.details.get("rule", "")), f.subject.value)
    )
