"""The Exim rules EX-01..EX-11 on a parsed configuration.

Fixes for Exim are edits to the configuration file (there is no ``postconf``): each is a
``#`` comment naming the file, line and new text, followed by ``exim -bV`` to validate.
"""

from __future__ import annotations

from pathlib import Path

from relayguard.audit import _networks
from relayguard.audit._catalog import make
from relayguard.audit.exim import AclStatement, EximConfig, Option, split_exim_list
from relayguard.findings import Finding, Severity

# ACL conditions an outside, unauthenticated client can satisfy by itself.
_ATTACKER_CONDITIONS = frozenset(
    {
        "verify",
        "senders",
        "sender_domains",
        "local_parts",
        "recipients",
        "encrypted",
        "ratelimit",
        "!hosts",
        "!authenticated",
        "!domains",
        "!senders",
        "!sender_domains",
        "!local_parts",
        "!recipients",
        "!verify",
        "!encrypted",
        "!dnslists",
    }
)
_MODIFIERS = frozenset(
    {
        "message",
        "log_message",
        "logwrite",
        "control",
        "set",
        "add_header",
        "remove_header",
        "delay",
        "endpass",
        "continue",
        "queue",
        "udpsend",
        "log_reject_target",
        "debug",
    }
)
_TRUE = frozenset({"yes", "true", "1", "${iftrue}", "${iftrue{yes}{no}}", "${iftrue{1}{0}}"})
_TLS_HINTS = ("tls_in_cipher", "tls_cipher", "encrypted")
VALIDATE = "exim -bV"


def _key(cfg: EximConfig, name: str) -> str:
    return f"{Path(cfg.file).name}:{name}"


def _ev(cfg: EximConfig, option: Option) -> str:
    return f"{cfg.where(option.line)}: {option.source}"


def _edit(cfg: EximConfig, line: int | None, text: str) -> list[str]:
    at = f"line {line}" if line else "main section"
    return [f"# {cfg.file}, {at}: {text}", VALIDATE]


def check_relay_hosts(cfg: EximConfig) -> list[Finding]:
    """EX-01."""
    found = cfg.lists.get("relay_from_hosts")
    if found is None:
        return []
    option = found[1]
    bad: list[_networks.NetEntry] = []
    for item in split_exim_list(option.value):
        if item == "*":
            bad.append(_networks.NetEntry(item, None, Severity.CRITICAL, "every host may relay"))
        elif (net := _networks.parse_network(item)) is not None:
            entry = _networks.judge(net, item)
            if entry.severity is not None and entry.severity >= Severity.LOW:
                bad.append(entry)
    if not bad:
        return []
    worst = max(bad, key=lambda e: e.severity or 0)
    return [
        make(
            "EX-01",
            worst.severity or Severity.LOW,
            _key(cfg, "relay_from_hosts"),
            f"relay_from_hosts includes {worst.text}: {worst.why}",
            [_ev(cfg, option)],
            _edit(cfg, option.line, "hostlist relay_from_hosts = <; 127.0.0.1 ; ::1"),
            location=cfg.where(option.line),
            entries=[e.text for e in bad],
        )
    ]


def check_relay_domains(cfg: EximConfig) -> list[Finding]:
    """EX-02."""
    found = cfg.lists.get("relay_to_domains")
    if found is None:
        return []
    option = found[1]
    items = split_exim_list(option.value)
    if "*" in items:
        severity, what = Severity.CRITICAL, "*: mail to every domain is relayed"
    elif wild := [i for i in items if i.startswith(("*", "^", "@mx_"))]:
        severity, what = Severity.MEDIUM, f"{wild[0]}: a pattern, not an exact domain"
    elif tlds := [i for i in items if "." not in i and not i.startswith(("+", "@", "!"))]:
        severity, what = Severity.HIGH, f"{tlds[0]}: a whole top-level domain"
    else:
        return []
    return [
        make(
            "EX-02",
            severity,
            _key(cfg, "relay_to_domains"),
            f"relay_to_domains holds {what}",
            [_ev(cfg, option)],
            _edit(cfg, option.line, "domainlist relay_to_domains = <domain>"),
            location=cfg.where(option.line),
        )
    ]


def _is_gate(statement: AclStatement) -> bool:
    names = {n for n, _ in statement.conditions}
    values = dict(statement.conditions)
    if statement.verb == "require" and "domains" in names:
        return "*" not in split_exim_list(values["domains"])
    return statement.verb == "deny" and "!domains" in names


def _accepts_attacker(statement: AclStatement) -> str | None:
    """ "open" / "maybe" when an outsider can pass this accept; None when it cannot."""
    conditions = [(n, v) for n, v in statement.conditions if n not in _MODIFIERS]
    verdict = "open"
    for name, value in conditions:
        if name in _ATTACKER_CONDITIONS:
            continue
        if name in ("hosts", "domains") and "*" in split_exim_list(value):
            continue
        if name in ("condition", "acl", "dnslists", "!condition", "!acl"):
            verdict = "maybe"
            continue
        return None  # hosts, authenticated, domains: the outsider is not in them
    return verdict


def rcpt_acl(cfg: EximConfig) -> tuple[Option | None, list[AclStatement]]:
    option = cfg.option("acl_smtp_rcpt")
    if option is None:
        return None, []
    return option, cfg.acls.get(option.value.strip(), [])


def check_rcpt_acl(cfg: EximConfig) -> list[Finding]:
    """EX-03."""
    option, statements = rcpt_acl(cfg)
    if option is None:
        return []  # no RCPT ACL: Exim refuses every recipient over SMTP
    for statement in statements:
        if _is_gate(statement):
            return []
        if statement.verb != "accept":
            continue
        verdict = _accepts_attacker(statement)
        if verdict is None:
            continue
        severity = Severity.CRITICAL if verdict == "open" else Severity.HIGH
        return [
            make(
                "EX-03",
                severity,
                _key(cfg, option.value.strip()),
                f"{option.value.strip()}: an accept outsiders can pass comes before the relay "
                "domains check",
                [f"{cfg.where(statement.line)}: {statement.source}", _ev(cfg, option)],
                _edit(
                    cfg,
                    statement.line,
                    "move this accept after 'require domains = +local_domains : +relay_to_domains'",
                ),
                location=cfg.where(statement.line),
                statement=statement.source,
            )
        ]
    return []


def check_local_parts(cfg: EximConfig) -> list[Finding]:
    """EX-04."""
    found: list[Finding] = []
    option, statements = rcpt_acl(cfg)
    hack = cfg.option("percent_hack_domains")
    if hack is not None and hack.value.strip():
        found.append(
            make(
                "EX-04",
                Severity.MEDIUM,
                _key(cfg, "percent_hack_domains"),
                f"percent_hack_domains = {hack.value}: user%other@domain is routed onward",
                [_ev(cfg, hack)],
                _edit(cfg, hack.line, "remove percent_hack_domains"),
                location=cfg.where(hack.line),
            )
        )
    if option is None:
        return found
    # the default ACL has two: one for local domains, one for all others
    scopes = [
        dict(s.conditions).get("domains", "")
        for s in statements
        if s.verb == "deny"
        and any(n == "local_parts" and all(c in v for c in "@%!") for n, v in s.conditions)
    ]
    guarded = any(not d.startswith("!") for d in scopes) and any(
        d.startswith("!") or not d for d in scopes
    )
    if not guarded:
        found.append(
            make(
                "EX-04",
                Severity.MEDIUM,
                _key(cfg, option.value.strip()),
                "The RCPT ACL lacks the deny for local parts with @ % ! / | (source routing)",
                [_ev(cfg, option)],
                _edit(
                    cfg,
                    None,
                    "restore: deny domains = +local_domains / local_parts = "
                    "^[.] : ^.*[@%!/|]  and  deny domains = !+local_domains / local_parts = "
                    "^[./|] : ^.*[@%!] : ^.*/\\\\.\\\\./",
                ),
                location=cfg.where(option.line),
            )
        )
    return found


def _true(option: Option | None) -> bool:
    return option is not None and option.value.replace(" ", "").lower() in _TRUE


def check_domain_literals(cfg: EximConfig) -> list[Finding]:
    """EX-05."""
    option = cfg.option("allow_domain_literals")
    if not _true(option):
        return []
    assert option is not None
    routers = [
        d
        for d in cfg.drivers.get("routers", [])
        if "ipliteral" in (d.options.get("driver") or Option("", "", 0, "")).value
    ]
    severity = Severity.MEDIUM if routers else Severity.LOW
    return [
        make(
            "EX-05",
            severity,
            _key(cfg, "allow_domain_literals"),
            "allow_domain_literals is on"
            + (f" with ipliteral router {routers[0].name}" if routers else ""),
            [_ev(cfg, option)],
            _edit(cfg, option.line, "remove allow_domain_literals"),
            location=cfg.where(option.line),
        )
    ]


def _server_authenticators(cfg: EximConfig) -> list[tuple[str, dict[str, Option], int]]:
    found = []
    for driver in cfg.drivers.get("authenticators", []):
        if any(name.startswith("server_") for name in driver.options):
            found.append((driver.name, driver.options, driver.line))
    return found


def check_auth_tls(cfg: EximConfig) -> list[Finding]:
    """EX-06."""
    advertise = cfg.option("auth_advertise_hosts")
    value = advertise.value if advertise else "*"
    if not value.strip() or any(h in value for h in _TLS_HINTS):
        return []
    acl = cfg.option("acl_smtp_auth")
    if acl is not None and any(
        "!encrypted" in dict(s.conditions) for s in cfg.acls.get(acl.value.strip(), [])
    ):
        return []
    open_drivers = [
        name
        for name, options, _ in _server_authenticators(cfg)
        if not any(
            h in options.get("server_advertise_condition", Option("", "", 0, "")).value
            for h in _TLS_HINTS
        )
    ]
    if not open_drivers:
        return []
    evidence = [_ev(cfg, advertise)] if advertise else ["auth_advertise_hosts not set (default *)"]
    return [
        make(
            "EX-06",
            Severity.HIGH,
            _key(cfg, "auth_advertise_hosts"),
            f"AUTH ({', '.join(open_drivers)}) is advertised before TLS",
            evidence,
            _edit(
                cfg,
                advertise.line if advertise else None,
                "auth_advertise_hosts = ${if eq{$tls_in_cipher}{}{}{*}}",
            ),
            location=cfg.where(advertise.line) if advertise else None,
            authenticators=open_drivers,
        )
    ]


def check_authenticators(cfg: EximConfig) -> list[Finding]:
    """EX-07."""
    found = []
    for name, options, _ in _server_authenticators(cfg):
        condition = options.get("server_condition")
        if _true(condition):
            assert condition is not None
            found.append(
                make(
                    "EX-07",
                    Severity.CRITICAL,
                    _key(cfg, f"authenticators/{name}"),
                    f"Authenticator {name} accepts any password (server_condition = "
                    f"{condition.value})",
                    [_ev(cfg, condition)],
                    _edit(cfg, condition.line, "server_condition = <a real credential check>"),
                    location=cfg.where(condition.line),
                )
            )
    return found


def check_vrfy(cfg: EximConfig) -> list[Finding]:
    """EX-08."""
    found = []
    for name, command in (("acl_smtp_vrfy", "VRFY"), ("acl_smtp_expn", "EXPN")):
        option = cfg.option(name)
        if option is None:
            continue
        target = option.value.strip()
        accepts = target == "accept" or any(s.verb == "accept" for s in cfg.acls.get(target, []))
        if accepts:
            found.append(
                make(
                    "EX-08",
                    Severity.MEDIUM,
                    _key(cfg, name),
                    f"{command} is answered ({name} = {target} accepts): address harvesting",
                    [_ev(cfg, option)],
                    _edit(cfg, option.line, f"remove {name}"),
                    location=cfg.where(option.line),
                )
            )
    return found


def check_banner(cfg: EximConfig) -> list[Finding]:
    """EX-09."""
    option = cfg.option("smtp_banner")
    if option is None:
        leaks, evidence = (
            ["version", "software"],
            ["smtp_banner not set: default names Exim and $version_number"],
        )
    else:
        leaks = [
            w
            for w, hint in (("version", "version_"), ("software", "exim"))
            if hint in option.value.lower()
        ]
        evidence = [_ev(cfg, option)]
    if not leaks:
        return []
    return [
        make(
            "EX-09",
            Severity.LOW,
            _key(cfg, "smtp_banner"),
            f"smtp_banner reveals the {' and '.join(leaks)}",
            evidence,
            _edit(
                cfg, option.line if option else None, "smtp_banner = $smtp_active_hostname ESMTP"
            ),
            location=cfg.where(option.line) if option else None,
        )
    ]


def check_limits(cfg: EximConfig) -> list[Finding]:
    """EX-10."""
    per_host = cfg.option("smtp_accept_max_per_host")
    ratelimit_hosts = cfg.option("smtp_ratelimit_hosts")
    acl_limits = any(
        n == "ratelimit" for acl in cfg.acls.values() for s in acl for n, _ in s.conditions
    )
    if per_host is not None or ratelimit_hosts is not None or acl_limits:
        return []
    severity = Severity.MEDIUM if _server_authenticators(cfg) else Severity.LOW
    return [
        make(
            "EX-10",
            severity,
            _key(cfg, "smtp_accept_max_per_host"),
            "No per-host connection limit and no ratelimit conditions",
            ["smtp_accept_max_per_host, smtp_ratelimit_hosts and ACL ratelimit are all unset"],
            _edit(
                cfg,
                None,
                "smtp_accept_max_per_host = 5; in the RCPT ACL: defer ratelimit = "
                "300 / 1h / per_rcpt / $authenticated_id",
            ),
        )
    ]


def check_tls(cfg: EximConfig) -> list[Finding]:
    """EX-11."""
    found = []
    advertise = cfg.option("tls_advertise_hosts")
    if advertise is not None and not advertise.value.strip():
        found.append(
            make(
                "EX-11",
                Severity.MEDIUM,
                _key(cfg, "tls_advertise_hosts"),
                "tls_advertise_hosts is empty: STARTTLS is never offered",
                [_ev(cfg, advertise)],
                _edit(cfg, advertise.line, "tls_advertise_hosts = *"),
                location=cfg.where(advertise.line),
            )
        )
    if cfg.option("tls_certificate") is None:
        found.append(
            make(
                "EX-11",
                Severity.LOW,
                _key(cfg, "tls_certificate"),
                "No tls_certificate: no STARTTLS, or a self-signed certificate (Exim >= 4.92)",
                ["tls_certificate not set"],
                _edit(
                    cfg,
                    None,
                    "tls_certificate = /etc/exim4/<cert.pem>; tls_privatekey = "
                    "/etc/exim4/<key.pem>",
                ),
            )
        )
    return found


CHECKS = (
    check_relay_hosts,
    check_relay_domains,
    check_rcpt_acl,
    check_local_parts,
    check_domain_literals,
    check_auth_tls,
    check_authenticators,
    check_vrfy,
    check_banner,
    check_limits,
    check_tls,
)


def audit_exim(cfg: EximConfig) -> list[Finding]:
    return [f for check in CHECKS for f in check(cfg)]
