"""``postconf -n`` / ``-M`` / ``-P`` output, read instead of the configuration directory.

``postconf -n`` prints main.cf settings one per logical line and ``postconf -M`` prints master.cf
entries with their ``-o`` options on the entry line (folded with ``-f``): both are valid
main.cf / master.cf text, so the file parsers read them. ``postconf -P`` prints one
``service/type/name = value`` line per master.cf override (Postfix >= 2.11); its values replace
those of ``-M`` for the same service and name.
"""

from __future__ import annotations

from dataclasses import replace

from relayguard.audit._errors import ConfigSyntaxError
from relayguard.audit.maincf import MainCf, logical_lines, parse_main_cf
from relayguard.audit.mastercf import MasterCf, Override, parse_master_cf


def parse_postconf_n(text: str, file: str = "postconf-n") -> MainCf:
    return parse_main_cf(text, file)


def parse_postconf_m(text: str, file: str = "postconf-M") -> MasterCf:
    return parse_master_cf(text, file)


def parse_postconf_p(text: str, file: str = "postconf-P") -> dict[tuple[str, str], list[Override]]:
    """``service/type/name = value`` lines -> overrides per (service, type)."""
    found: dict[tuple[str, str], list[Override]] = {}
    for logical in logical_lines(text):
        joined = logical.text
        head, sep, value = joined.partition("=")
        path = head.strip()
        # the service name may itself hold a "/" only in unix-domain paths, never for smtpd:
        # split from the right, the type and name have none
        service, _, rest = path.rpartition("/")
        service, _, type_ = service.rpartition("/")
        if not sep or not service or not type_ or not rest:
            raise ConfigSyntaxError(file, logical.line, "want service/type/parameter = value")
        item = Override(rest, value.strip(), file, logical.line, joined)
        found.setdefault((service, type_), []).append(item)
    return found


def merge_overrides(
    master: MasterCf, extra: dict[tuple[str, str], list[Override]]
) -> tuple[MasterCf, list[str]]:
    """master.cf entries with ``postconf -P`` values applied; warnings for unknown services."""
    warnings: list[str] = []
    services = []
    used: set[tuple[str, str]] = set()
    for service in master.services:
        key = (service.name, service.type)
        items = extra.get(key)
        if items:
            used.add(key)
            merged = dict(service.overrides)
            for item in items:
                merged[item.name] = item
            service = replace(service, overrides=merged)
        services.append(service)
    for service_name, type_ in extra:
        if (service_name, type_) not in used:
            warnings.append(f"postconf -P names {service_name}/{type_}, absent from postconf -M")
    return replace(master, services=tuple(services)), warnings
