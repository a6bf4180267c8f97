"""Helpers shared by the Postfix rules: config keys, evidence lines and fix commands."""

from __future__ import annotations

import shlex

from relayguard.audit.effective import PostfixConfig, Setting, SmtpdService
from relayguard.audit.mastercf import Service
from relayguard.findings import Finding


def key(setting: Setting, service: SmtpdService | Service | None = None) -> str:
    """``main.cf:name`` or, for a master.cf override, ``master.cf:service/name``."""
    svc = service.service if isinstance(service, SmtpdService) else service
    if setting.origin == "master.cf" and svc is not None:
        return f"master.cf:{svc.name}/{setting.name}"
    return f"main.cf:{setting.name}"


def set_main(cfg: PostfixConfig, name: str, value: str) -> str:
    return f"{cfg.postconf_cmd()} -e {shlex.quote(f'{name} = {value}')}"


def set_service(cfg: PostfixConfig, service: SmtpdService | Service, name: str, value: str) -> str:
    svc = service.service if isinstance(service, SmtpdService) else service
    # -P values cannot hold blanks in the short -o form: commas separate just as well
    compact = ",".join(value.replace(",", " ").split())
    return f"{cfg.postconf_cmd()} -P {shlex.quote(f'{svc.name}/{svc.type}/{name}={compact}')}"


def unset_service(cfg: PostfixConfig, service: SmtpdService | Service, name: str) -> str:
    svc = service.service if isinstance(service, SmtpdService) else service
    return f"{cfg.postconf_cmd()} -PX {shlex.quote(f'{svc.name}/{svc.type}/{name}')}"


def set_like(cfg: PostfixConfig, setting: Setting, service: SmtpdService | None, value: str) -> str:
    """Set ``value`` where ``setting`` came from: the service's -o, else main.cf."""
    if setting.origin == "master.cf" and service is not None:
        return set_service(cfg, service, setting.name, value)
    return set_main(cfg, setting.name, value)


def services_note(services: list[SmtpdService]) -> list[str]:
    return [s.label for s in services]


def merge(findings: list[Finding]) -> list[Finding]:
    """One finding per indicator, subject and title; their services and fixes combined."""
    merged: dict[tuple[str, str, str], Finding] = {}
    for finding in findings:
        k = (finding.indicator, finding.subject.value, finding.title)
        first = merged.get(k)
        if first is None:
            merged[k] = finding
            continue
        services = first.details.setdefault("services", [])
        for svc in finding.details.get("services", []):
            if svc not in services:
                services.append(svc)
        for line in finding.evidence:
            if line not in first.evidence:
                first.evidence.append(line)
        fixes = first.details.setdefault("fix", [])
        for cmd in finding.details.get("fix", []):
            if cmd not in fixes:
                fixes.append(cmd)
    return list(merged.values())


def flag(setting: Setting) -> bool:
    return setting.value.strip().lower() in ("yes", "true", "1")


def tls_level(cfg: PostfixConfig, svc: SmtpdService | None) -> str:
    """The effective smtpd TLS level (none, may, encrypt), legacy switches included."""
    level = cfg.value("smtpd_tls_security_level", svc).strip().lower()
    if level:
        return level
    if flag(cfg.get("smtpd_enforce_tls", svc)):
        return "encrypt"
    if flag(cfg.get("smtpd_use_tls", svc)):
        return "may"
    return "none"
