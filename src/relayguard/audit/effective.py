"""The effective value of a Postfix parameter, globally and per smtpd service.

Effective value for a service = its master.cf ``-o`` value, else the main.cf value, else the
built-in default of this version and compatibility_level. ``$name`` inside a service's value
resolves against the same chain, so ``-o smtpd_relay_restrictions=$mua_relay_restrictions``
finds ``mua_relay_restrictions`` in main.cf.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from relayguard.audit import _defaults
from relayguard.audit._defaults import Version
from relayguard.audit.expand import expand, split_list
from relayguard.audit.maincf import MainCf
from relayguard.audit.mastercf import MasterCf, Service

# Reads a file named in the configuration (a cidr table, a /file in mynetworks); None when it
# cannot be read. Injected so the rules stay free of I/O.
FileReader = Callable[[str], str | None]

# where a raw value came from: (file:line, the line as written, the service of an -o)
_Origin = tuple[str, str, str | None]

SUBMISSION_NAMES = frozenset({"submission", "submissions", "smtps", "587", "465"})
_PORTS = {"smtp": "25", "submission": "587", "submissions": "465", "smtps": "465"}
_LOOPBACK_HOSTS = ("127.", "localhost", "[::1]", "::1")


def no_files(path: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Setting:
    """A parameter's value for one service (or main.cf) and where it comes from."""

    name: str
    raw: str
    value: str  # expanded
    origin: str  # "master.cf" | "main.cf" | "default"
    where: str | None  # "main.cf:12"; None for a default
    source: str | None  # the line as written
    service: str | None = None  # the service whose -o set it

    @property
    def items(self) -> list[str]:
        return split_list(self.value)

    @property
    def is_set(self) -> bool:
        return self.origin != "default"

    def evidence(self) -> str:
        if self.where is None:
            shown = self.raw if self.raw else "(empty)"
            return f"{self.name} not set: built-in default is {shown}"
        return f"{self.where}: {self.source}"

    @property
    def flag(self) -> bool:
        return self.value.strip().lower() in ("yes", "true", "1")


@dataclass(frozen=True, slots=True)
class SmtpdService:
    """A master.cf entry whose command is smtpd: an inet listener or postscreen's ``pass``."""

    service: Service
    role: str  # "submission" | "smtp" (port 25 and other plain SMTP ports)
    port: str
    loopback: bool  # listens on loopback only (service address or inet_interfaces)

    @property
    def name(self) -> str:
        return self.service.name

    @property
    def label(self) -> str:
        return f"{self.service.name}/{self.service.type}"


@dataclass
class PostfixConfig:  # not slotted: cached_property needs __dict__
    main: MainCf
    master: MasterCf
    config_dir: str = "/etc/postfix"
    version: Version | None = None
    read_file: FileReader = no_files
    warnings: list[str] = field(default_factory=list)

    @cached_property
    def effective_version(self) -> Version:
        if self.version is not None:
            return self.version
        declared = self.main.get("mail_version")
        parsed = _defaults.parse_version(declared.value) if declared else None
        return parsed or max(_defaults.ASSUMED_VERSION, self.level)

    @property
    def version_known(self) -> bool:
        declared = self.main.get("mail_version")
        return self.version is not None or (
            declared is not None and _defaults.parse_version(declared.value) is not None
        )

    @cached_property
    def level(self) -> Version:
        param = self.main.get("compatibility_level")
        return _defaults.parse_level(param.value) if param else (0,)

    # -- values -------------------------------------------------------------------------
    def _raw(self, name: str, service: Service | None) -> tuple[str, str, _Origin] | None:
        if service is not None and name in service.overrides:
            o = service.overrides[name]
            return o.value, "master.cf", (o.where, o.source, service.name)
        param = self.main.get(name)
        if param is not None:
            return param.value, "main.cf", (param.where, param.source, None)
        return None

    def default(self, name: str) -> str | None:
        if name == "config_directory":
            return self.config_dir
        if name == "mail_version":
            return ".".join(map(str, self.effective_version))
        return _defaults.default(name, self.effective_version, self.level)

    def lookup(self, service: Service | None) -> Callable[[str], str | None]:
        def find(name: str) -> str | None:
            found = self._raw(name, service)
            return found[0] if found else self.default(name)

        return find

    def get(self, name: str, service: SmtpdService | Service | None = None) -> Setting:
        svc = service.service if isinstance(service, SmtpdService) else service
        found = self._raw(name, svc)
        if found is None:
            raw = self.default(name) or ""
            return Setting(name, raw, expand(raw, self.lookup(svc)), "default", None, None)
        raw, origin, (where, source, owner) = found
        value = expand(raw, self.lookup(svc))
        return Setting(name, raw, value, origin, where, source, owner)

    def value(self, name: str, service: SmtpdService | Service | None = None) -> str:
        return self.get(name, service).value

    # -- services -----------------------------------------------------------------------
    @cached_property
    def postscreen(self) -> Service | None:
        for service in self.master.services:
            if service.type == "inet" and service.command == "postscreen":
                return service
        return None

    @cached_property
    def smtpd_services(self) -> list[SmtpdService]:
        """Every smtpd that talks to the network, in master.cf order."""
        interfaces = split_list(self.value("inet_interfaces").lower())
        all_loopback = bool(interfaces) and all(
            i in ("loopback-only", "localhost") or i.startswith(_LOOPBACK_HOSTS) for i in interfaces
        )
        found: list[SmtpdService] = []
        for service in self.master.services:
            if service.command != "smtpd" or service.type not in ("inet", "pass"):
                continue
            host, _, port = service.name.rpartition(":")
            if service.type == "pass":
                port, loopback = "25", all_loopback
                if self.postscreen is not None:
                    ps_host = self.postscreen.name.rpartition(":")[0]
                    loopback = all_loopback or ps_host.startswith(_LOOPBACK_HOSTS)
            else:
                port = _PORTS.get(port, port)
                loopback = all_loopback or host.startswith(_LOOPBACK_HOSTS)
            found.append(SmtpdService(service, self._role(service, port), port, loopback))
        return found

    def _role(self, service: Service, port: str) -> str:
        bare = service.name.rpartition(":")[2]
        if bare in SUBMISSION_NAMES or port in SUBMISSION_NAMES:
            return "submission"
        overrides = service.overrides
        syslog = overrides["syslog_name"].value if "syslog_name" in overrides else ""
        if "submission" in syslog or "smtps" in syslog:
            return "submission"
        wrapper = overrides.get("smtpd_tls_wrappermode")
        if wrapper is not None and wrapper.value.lower() == "yes":
            return "submission"
        return "smtp"

    def postconf_cmd(self) -> str:
        """``postconf`` with ``-c DIR`` when the instance is not the default one."""
        if self.config_dir.rstrip("/") in ("/etc/postfix", ""):
            return "postconf"
        return f"postconf -c {shlex.quote(self.config_dir)}"
