"""PF-04..PF-10, PF-22, PF-26: who is trusted, where mail may go, and legacy defaults."""

from __future__ import annotations

from relayguard.audit import _domains, _networks
from relayguard.audit import _pf_common as common
from relayguard.audit._catalog import make
from relayguard.audit._restrictions import parse_restrictions
from relayguard.audit.effective import PostfixConfig, Setting, SmtpdService
from relayguard.audit.expand import split_list
from relayguard.findings import Finding, Severity

LOOPBACK = "127.0.0.0/8 [::1]/128"


def _settings(cfg: PostfixConfig, name: str) -> list[tuple[Setting, SmtpdService | None]]:
    """The main.cf value and every service override of ``name`` (each once)."""
    found: list[tuple[Setting, SmtpdService | None]] = [(cfg.get(name), None)]
    for svc in cfg.smtpd_services:
        if name in svc.service.overrides:
            found.append((cfg.get(name, svc), svc))
    return found


def check_mynetworks(cfg: PostfixConfig) -> list[Finding]:
    """PF-04 (too broad), PF-05 (unset: mynetworks_style), PF-06 (proxy/NAT gateway).

    One value gives one finding: when both PF-04 and PF-06 apply, they are reported together
    with the higher severity (``details.rules`` names both).
    """
    findings: list[Finding] = []
    for setting, svc in _settings(cfg, "mynetworks"):
        if not setting.is_set:
            findings.extend(_style(cfg))
            continue
        entries = _networks.classify(setting.value, cfg.read_file)
        bad = [e for e in entries if e.severity is not None and e.severity >= Severity.LOW]
        fixed = " ".join(_networks.fixed_list(entries))
        broad: Finding | None = None
        if bad:
            worst = max(bad, key=lambda e: e.severity or 0)
            title = f"mynetworks trusts {worst.text}: {worst.why}" + _also(
                worst.text, [e.text for e in bad]
            )
            fix = [common.set_like(cfg, setting, svc, fixed)]
            if worst.unevaluated:
                title = f"mynetworks could not be evaluated: {worst.text} {worst.why[2:]}"
                title += _also(worst.text, [e.text for e in bad])
                fix = [
                    f"# check: postmap -q 192.0.2.1 {e.text} (any answer: that client relays)"
                    for e in bad
                    if e.unevaluated
                ] + ["# or replace the table by an explicit list:", *fix]
            broad = make(
                "PF-04",
                worst.severity or Severity.LOW,
                common.key(setting, svc),
                title,
                [setting.evidence()],
                fix,
                location=setting.where,
                value=setting.value,
                entries=[
                    {"entry": e.text, "severity": e.severity.label, "why": e.why}
                    for e in bad
                    if e.severity is not None
                ],
            )
        bridges = [e.text for e in entries if e.container]
        collapse: Finding | None = None
        if bridges and not _proxy_protocol(cfg):
            collapse = make(
                "PF-06",
                Severity.HIGH,
                common.key(setting, svc),
                f"mynetworks trusts container/bridge network {bridges[0]}: behind Docker, "
                "a proxy or NAT the whole Internet may relay",
                [setting.evidence(), cfg.get("smtpd_upstream_proxy_protocol").evidence()],
                [
                    common.set_like(cfg, setting, svc, fixed),
                    "# or, when a proxy speaks the PROXY protocol to Postfix:",
                    common.set_main(cfg, "smtpd_upstream_proxy_protocol", "haproxy"),
                ],
                location=setting.where,
                networks=bridges,
            )
        findings.extend(_one_finding(broad, collapse))
    return findings


def _one_finding(broad: Finding | None, collapse: Finding | None) -> list[Finding]:
    """PF-04 and PF-06 on one value as one finding: the worse one leads, the other joins."""
    if broad is None or collapse is None:
        return [f for f in (broad, collapse) if f is not None]
    lead, other = (broad, collapse) if broad.severity > collapse.severity else (collapse, broad)
    lead.details["rules"] = sorted([str(lead.details["rule"]), str(other.details["rule"])])
    for line in other.evidence:
        if line not in lead.evidence:
            lead.evidence.append(line)
    fixes = lead.details["fix"]
    for step in other.details["fix"]:
        if step not in fixes:
            fixes.append(step)
    for k, v in other.details.items():
        lead.details.setdefault(k, v)
    for mid in other.mitigations:
        if mid not in lead.mitigations:
            lead.mitigations.append(mid)
    return [lead]


def _proxy_protocol(cfg: PostfixConfig) -> bool:
    if cfg.value("postscreen_upstream_proxy_protocol"):
        return True
    return any(cfg.value("smtpd_upstream_proxy_protocol", s) for s in cfg.smtpd_services)


def _style(cfg: PostfixConfig) -> list[Finding]:
    style = cfg.get("mynetworks_style")
    value = style.value.strip().lower()
    if value not in ("subnet", "class"):
        return []
    severity = Severity.HIGH if value == "class" else Severity.MEDIUM
    scope = "a whole class A/B/C network" if value == "class" else "every host on the local subnet"
    return [
        make(
            "PF-05",
            severity,
            "main.cf:mynetworks_style",
            f"mynetworks is not set and mynetworks_style = {value}: {scope} may relay",
            [style.evidence(), "mynetworks not set"],
            [common.set_main(cfg, "mynetworks", LOOPBACK)],
            location=style.where,
            value=value,
        )
    ]


def _also(worst_text: str, texts: list[str]) -> str:
    """``; also X, Y`` naming the other offending entries of one value."""
    others = [t for t in texts if t != worst_text]
    return f"; also {', '.join(others)}" if others else ""


def check_relay_domains(cfg: PostfixConfig) -> list[Finding]:
    """PF-07 (broad or catch-all relay_domains), PF-08 (no relay_recipient_maps)."""
    setting = cfg.get("relay_domains")
    if not setting.value.strip() or setting.raw.strip() == "$mydestination":
        return []  # empty, or the legacy default (PF-26): those domains are local anyway
    parent = "relay_domains" in split_list(cfg.value("parent_domain_matches_subdomains"))
    entries = _domains.classify(setting.value, cfg.read_file, parent)
    bad = [e for e in entries if e.severity is not None and e.severity >= Severity.LOW]
    findings: list[Finding] = []
    if bad:
        findings.append(_relay_domains_finding(cfg, setting, bad))
    if any(e.catch_all for e in bad):
        return findings  # PF-08 (backscatter) is moot while mail to any domain is relayed
    maps = cfg.get("relay_recipient_maps")
    accepts_all = _domains.catch_all_value(maps.value)
    if not maps.value.strip() or accepts_all:
        title = (
            f"relay_recipient_maps = {maps.value.strip()} accepts every recipient"
            if accepts_all
            else "relay_domains without relay_recipient_maps"
        )
        findings.append(
            make(
                "PF-08",
                Severity.MEDIUM,
                "main.cf:relay_recipient_maps",
                f"{title}: mail for unknown users of relayed domains is accepted, then "
                "bounced (backscatter)",
                [setting.evidence(), maps.evidence()],
                [
                    common.set_main(
                        cfg, "relay_recipient_maps", "hash:/etc/postfix/relay_recipients"
                    ),
                    "postmap /etc/postfix/relay_recipients",
                ],
                location=setting.where,
                relay_domains=[e.text for e in entries],
                manual=True,
            )
        )
    return findings


def _relay_domains_finding(
    cfg: PostfixConfig, setting: Setting, bad: list[_domains.DomainEntry]
) -> Finding:
    worst = max(bad, key=lambda e: e.severity or 0)
    texts = [e.text for e in bad]
    fix = [common.set_main(cfg, "relay_domains", "<your backup-MX domains>")]
    if worst.catch_all:
        title = (
            f"Open relay: relay_domains {worst.text} matches every domain, so "
            "reject_unauth_destination relays mail to anyone"
        )
    elif worst.unevaluated:
        title = f"relay_domains could not be evaluated: {worst.text}"
        fix = [
            f"# check: postmap -q {_domains.SAMPLE_DOMAINS[1]} {e.text} "
            "(any answer: mail to any domain is relayed)"
            for e in bad
            if e.unevaluated and not e.text.startswith("/")
        ] + ["# or replace the table by an explicit list:", *fix]
    else:
        title = f"relay_domains holds {worst.text}: {worst.why}"
    return make(
        "PF-07",
        worst.severity or Severity.LOW,
        "main.cf:relay_domains",
        title + _also(worst.text, texts),
        [setting.evidence()],
        fix,
        location=setting.where,
        value=setting.value,
        entries=[
            {"entry": e.text, "severity": e.severity.label, "why": e.why}
            for e in bad
            if e.severity is not None
        ],
        broad=[e.text for e in bad if not e.unevaluated],
        unreadable=[e.text for e in bad if e.unevaluated],
        manual=True,  # only you know which domains this host is a backup MX for
    )


_LISTS = (
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
)


def _mx_networks_open(cfg: PostfixConfig) -> str | None:
    """Why permit_mx_backup_networks restricts nothing (unset, or it matches every network)."""
    networks = cfg.get("permit_mx_backup_networks")
    if not networks.value.strip():
        return "without permit_mx_backup_networks"
    entries = _networks.classify(networks.value, cfg.read_file)
    wide = [e.text for e in entries if e.severity is Severity.CRITICAL]
    if wide:
        return f"with permit_mx_backup_networks = {wide[0]} (every network)"
    return None


def check_mx_backup(cfg: PostfixConfig) -> list[Finding]:
    """PF-09."""
    networks = cfg.get("permit_mx_backup_networks")
    why_open = _mx_networks_open(cfg)
    if why_open is None:
        return []
    for svc in [None, *cfg.smtpd_services]:
        for name in _LISTS:
            setting = cfg.get(name, svc)
            items = parse_restrictions(setting.value)
            if any(i.name == "permit_mx_backup" for i in items):
                kept = ", ".join(i.text for i in items if i.name != "permit_mx_backup")
                fix = [common.set_like(cfg, setting, svc, kept)]
                if networks.value.strip():
                    fix.append(f"{cfg.postconf_cmd()} -X permit_mx_backup_networks")
                return [
                    make(
                        "PF-09",
                        Severity.MEDIUM,
                        common.key(setting, svc),
                        f"permit_mx_backup in {name} {why_open}: relays for "
                        "any domain whose MX names this host",
                        [setting.evidence(), networks.evidence()],
                        [
                            *fix,
                            "# list the domains you really back up instead",
                            common.set_main(cfg, "relay_domains", "<your backup-MX domains>"),
                        ],
                        location=setting.where,
                    )
                ]
    return []


_ROUTING = (
    (
        "allow_untrusted_routing",
        "yes",
        Severity.HIGH,
        "no",
        "forwards source-routed user@remote@site addresses",
    ),
    (
        "resolve_dequoted_address",
        "no",
        Severity.MEDIUM,
        "yes",
        'lets "user@domain"@backup-mx addresses through a backup MX',
    ),
    (
        "resolve_null_domain",
        "yes",
        Severity.LOW,
        "no",
        "accepts addresses with an empty domain part",
    ),
)


def check_routing(cfg: PostfixConfig) -> list[Finding]:
    """PF-10."""
    findings = []
    for name, bad, severity, good, why in _ROUTING:
        setting = cfg.get(name)
        if setting.value.strip().lower() == bad:
            findings.append(
                make(
                    "PF-10",
                    severity,
                    common.key(setting),
                    f"{name} = {bad}: {why}",
                    [setting.evidence()],
                    [common.set_main(cfg, name, good)],
                    location=setting.where,
                )
            )
    return findings


def check_xclient(cfg: PostfixConfig) -> list[Finding]:
    """PF-22."""
    findings = []
    for name, floor in (
        ("smtpd_authorized_xclient_hosts", Severity.INFO),
        ("smtpd_authorized_xforward_hosts", Severity.MEDIUM),
    ):
        for setting, svc in _settings(cfg, name):
            if not setting.value.strip():
                continue
            entries = _networks.classify(setting.value, cfg.read_file)
            bad = [e for e in entries if e.severity is not None and e.severity > floor]
            if not bad:
                continue
            worst = max(bad, key=lambda e: e.severity or 0)
            severity = worst.severity or Severity.LOW
            if name.endswith("xforward_hosts"):  # XFORWARD only changes what is logged
                severity = Severity.LOW
            findings.append(
                make(
                    "PF-22",
                    severity,
                    common.key(setting, svc),
                    f"{name} includes {worst.text}: those hosts may claim any client address",
                    [setting.evidence()],
                    [common.set_like(cfg, setting, svc, "<proxy_ip>")],
                    location=setting.where,
                )
            )
    return findings


def check_compatibility(cfg: PostfixConfig) -> list[Finding]:
    """PF-26."""
    level, version = cfg.level, cfg.effective_version
    setting = cfg.get("compatibility_level")
    if version >= (3, 0) and level < (2,):
        implicit: list[tuple[str, str]] = []
        for name in ("smtpd_relay_restrictions", "mynetworks_style", "relay_domains"):
            if not cfg.get(name).is_set and not (
                name == "mynetworks_style" and cfg.get("mynetworks").is_set
            ):
                implicit.append((name, cfg.default(name) or ""))
        fix = [common.set_main(cfg, n, v) for n, v in implicit if v]
        fix.append(common.set_main(cfg, "compatibility_level", "3.6"))
        shown = ", ".join(f"{n} = {v or '(empty)'}" for n, v in implicit)
        return [
            make(
                "PF-26",
                Severity.MEDIUM,
                "main.cf:compatibility_level",
                f"compatibility_level {'.'.join(map(str, level))} keeps legacy defaults"
                + (f": {shown}" if shown else ""),
                [setting.evidence()],
                fix,
                location=setting.where,
                implicit=dict(implicit),
                version_known=cfg.version_known,
            )
        ]
    order = cfg.get("smtpd_relay_before_recipient_restrictions")
    if version >= (3, 6) and level < (3, 6) and not order.is_set:
        return [
            make(
                "PF-26",
                Severity.LOW,
                "main.cf:compatibility_level",
                "compatibility_level below 3.6: the recipient list is evaluated before the "
                "relay list",
                [setting.evidence()],
                [common.set_main(cfg, "smtpd_relay_before_recipient_restrictions", "yes")],
                location=setting.where,
            )
        ]
    return []


CHECKS = (
    check_mynetworks,
    check_relay_domains,
    check_mx_backup,
    check_routing,
    check_xclient,
    check_compatibility,
)
