"""PF-29: configurations Postfix refuses, so a service (or all of Postfix) does not run.

* an smtpd command line with a word that is no option: the short ``-o name=value`` form ends
  at the first blank, so ``-o x=a b`` leaves ``b`` as an argument and smtpd dies with
  "fatal: unexpected command-line argument: b" on every connection;
* a ``$name`` that expands to itself, directly or through others: "unreasonable macro call
  nesting", fatal for every program that reads the parameter.
"""

from __future__ import annotations

from relayguard.audit._catalog import make
from relayguard.audit.effective import PostfixConfig
from relayguard.audit.expand import macro_loop
from relayguard.audit.mastercf import Service, StrayArg, unbrace
from relayguard.findings import Finding, Severity


def broken_services(cfg: PostfixConfig) -> list[Service]:
    """Services whose command line smtpd rejects: their other findings are moot until fixed."""
    return [s for s in cfg.master.services if s.stray]


def _long_form(stray: list[StrayArg]) -> str:
    """``-o { name = value rest }``: what the author most likely meant."""
    after = stray[0].after or ""
    body = unbrace(after[2:].strip())
    name, _, value = body.partition("=")
    words = " ".join([value.strip(), *(s.token for s in stray)]).strip()
    return f"-o {{ {name.strip()} = {words} }}"


def check_stray_arguments(cfg: PostfixConfig) -> list[Finding]:
    findings: list[Finding] = []
    for service in broken_services(cfg):
        groups: dict[str | None, list[StrayArg]] = {}
        for stray in service.stray:
            groups.setdefault(stray.after, []).append(stray)
        for after, strays in groups.items():
            first = strays[0]
            words = " ".join(s.token for s in strays)
            if after is not None:
                fix = (
                    f"# EDIT {service.file} line {first.line}: replace '{after} {words}' by "
                    f"'{_long_form(strays)}' (Postfix >= 3.0), or join the words with commas; "
                    "then audit again: that value is judged once smtpd can read it"
                )
                cause = "the short -o form ends at the first blank"
            else:
                fix = f"# EDIT {service.file} line {first.line}: remove '{words}'"
                cause = f"{service.command} takes options only"
            findings.append(
                make(
                    "PF-29",
                    Severity.HIGH,
                    f"master.cf:{service.name}/{service.type}",
                    f"{service.name}/{service.type} cannot start: {cause}, so '{first.token}' is "
                    f"a stray argument ({service.command}: fatal: unexpected command-line "
                    f"argument: {first.token})",
                    [f"{s.where}: {s.source}" for s in strays],
                    [fix],
                    location=first.where,
                    services=[f"{service.name}/{service.type}"],
                    arguments=[s.token for s in strays],
                    manual=True,
                )
            )
    return findings


def check_macro_loops(cfg: PostfixConfig) -> list[Finding]:
    findings: list[Finding] = []
    scopes: list[Service | None] = [None, *cfg.master.services]
    reported: set[tuple[str, str]] = set()
    for service in scopes:
        names = cfg.main.params if service is None else service.overrides
        lookup = cfg.lookup(service)
        for name in names:
            chain = macro_loop(name, lookup)
            if chain is None:
                continue
            setting = cfg.get(name, service)
            key = (
                f"master.cf:{service.name}/{name}"
                if service is not None and setting.origin == "master.cf"
                else f"main.cf:{name}"
            )
            if (key, name) in reported:
                continue
            reported.add((key, name))
            findings.append(
                make(
                    "PF-29",
                    Severity.HIGH,
                    key,
                    f"Postfix will not start: {name} expands to itself "
                    f"({' -> '.join('$' + n for n in chain)}): fatal: unreasonable macro call "
                    "nesting",
                    [setting.evidence()],
                    [f"# EDIT {setting.where}: give {name} a value that does not refer to itself"],
                    location=setting.where,
                    chain=chain,
                    manual=True,
                )
            )
    return findings


CHECKS = (check_stray_arguments, check_macro_loops)
