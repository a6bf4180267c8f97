"""Helpers shared by the Postfix rules: config keys, evidence lines and fix commands."""

from __future__ import annotations

import shlex

from relayguard.audit.effective import PostfixConfig, Setting, SmtpdService
from relayguard.audit.mastercf import Service


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


def set_like(
    cfg: PostfixConfig, setting: Setting, service: SmtpdService | None, value: str
) -> str:
    """Set ``value`` where ``setting`` came from: the service's -o, else main.cf."""
    if setting.origin == "master.cf" and service is not None:
        return set_service(cfg, service, setting.name, value)
    return set_main(cfg, setting.name, value)


def services_note(services: list[SmtpdService]) -> list[str]:
    return [s.label for s in services]
