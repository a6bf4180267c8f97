"""PF-19..PF-21, PF-23..PF-25, PF-27, PF-28: hardening that limits what an abuser gets."""

from __future__ import annotations

import re
from dataclasses import dataclass

from relayguard.audit import _networks
from relayguard.audit import _pf_common as common
from relayguard.audit._catalog import make
from relayguard.audit._maps import _entries
from relayguard.audit.effective import PostfixConfig, Setting, SmtpdService
from relayguard.audit.expand import split_list
from relayguard.findings import Finding, Severity

PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_WEAK_CIPHERS = frozenset({"export", "low", "null"})
_OS_NAMES = re.compile(
    r"\b(debian|ubuntu|centos|red ?hat|fedora|freebsd|openbsd|netbsd|suse|alpine|rocky ?linux"
    r"|almalinux|gentoo|arch ?linux)\b"
)
_CERT_PARAMS = (
    "smtpd_tls_chain_files",
    "smtpd_tls_cert_file",
    "smtpd_tls_eccert_file",
    "smtpd_tls_dcert_file",
)


def _exposed(cfg: PostfixConfig) -> list[SmtpdService]:
    return [s for s in cfg.smtpd_services if not s.loopback]


def _simple(
    cfg: PostfixConfig, rule: str, name: str, bad: str, good: str, title: str
) -> list[Finding]:
    setting = cfg.get(name)
    if setting.value.strip().lower() != bad or not _exposed(cfg):
        return []
    return [
        make(
            rule,
            Severity.LOW,
            common.key(setting),
            title,
            [setting.evidence()],
            [common.set_main(cfg, name, good)],
            location=setting.where,
        )
    ]


def check_helo(cfg: PostfixConfig) -> list[Finding]:
    """PF-19 (HELO-based permits are judged with the relay lists, PF-01/PF-02)."""
    return _simple(
        cfg,
        "PF-19",
        "smtpd_helo_required",
        "no",
        "yes",
        "smtpd_helo_required = no: clients may skip HELO and its checks",
    )


def check_vrfy(cfg: PostfixConfig) -> list[Finding]:
    """PF-20."""
    return _simple(
        cfg,
        "PF-20",
        "disable_vrfy_command",
        "no",
        "yes",
        "VRFY is enabled: anyone may test which addresses exist",
    )


def check_unknown_recipients(cfg: PostfixConfig) -> list[Finding]:
    """PF-21."""
    found: list[Finding] = []

    def add(
        severity: Severity, setting: Setting, title: str, fix: str, svc: SmtpdService | None = None
    ) -> None:
        found.append(
            make(
                "PF-21",
                severity,
                common.key(setting, svc),
                title,
                [setting.evidence()],
                [fix],
                location=setting.where,
            )
        )

    maps = cfg.get("local_recipient_maps")
    if maps.is_set and not maps.value.strip():
        add(
            Severity.MEDIUM,
            maps,
            "local_recipient_maps is empty: mail for any local name is accepted, then bounced",
            f"{cfg.postconf_cmd()} -X local_recipient_maps",
        )
    luser = cfg.get("luser_relay")
    if luser.value.strip():
        add(
            Severity.MEDIUM,
            luser,
            f"luser_relay = {luser.value}: unknown local users are accepted",
            f"{cfg.postconf_cmd()} -X luser_relay",
        )
    code = cfg.get("unknown_local_recipient_reject_code")
    if code.value.strip() == "450":
        add(
            Severity.LOW,
            code,
            "unknown_local_recipient_reject_code = 450: unknown users get a "
            "retry instead of a rejection",
            common.set_main(cfg, code.name, "550"),
        )
    for svc in cfg.smtpd_services:
        setting = cfg.get("smtpd_reject_unlisted_recipient", svc)
        if svc.role == "smtp" and setting.value.strip().lower() == "no":
            fix = (
                common.unset_service(cfg, svc, setting.name)
                if setting.origin == "master.cf"
                else common.set_main(cfg, setting.name, "yes")
            )
            add(
                Severity.MEDIUM,
                setting,
                f"smtpd_reject_unlisted_recipient = no on {svc.name}: "
                "unknown recipients accepted, then bounced",
                fix,
                svc,
            )
    virtual = cfg.get("virtual_alias_maps")
    for table in split_list(virtual.value):
        kind, _, path = table.partition(":")
        text = cfg.read_file(path) if kind in ("hash", "texthash", "lmdb", "btree", "cdb") else None
        catch_all = [k for k, _ in _entries(kind, text or "") if k.startswith("@")]
        if catch_all:
            add(
                Severity.LOW,
                virtual,
                f"catch-all {catch_all[0]} in {table}: mail for any "
                "user of that domain is accepted",
                f"# remove {catch_all[0]} from {path}",
            )
    return common.merge(found)


@dataclass(frozen=True, slots=True)
class TlsSteps:
    cert: list[str]
    protocols: list[str]


def tls_companion_steps(cfg: PostfixConfig) -> TlsSteps:
    """What TLS needs besides a security level: a certificate, and no pre-1.2 protocols."""
    cert: list[str] = []
    if not any(cfg.get(n).value.strip() for n in _CERT_PARAMS):
        cert.append(
            common.set_main(
                cfg, "smtpd_tls_chain_files", "/etc/postfix/<key.pem> /etc/postfix/<cert.pem>"
            )
        )
    protocols = [
        common.set_main(cfg, name, ">=TLSv1.2")
        for name in ("smtpd_tls_protocols", "smtpd_tls_mandatory_protocols")
        if any(p in enabled_protocols(cfg.get(name).value) for p in PROTOCOLS[:4])
    ]
    return TlsSteps(cert, protocols)


def enabled_protocols(value: str) -> set[str]:
    """Postfix protocol syntax (``>=TLSv1.2``, ``!SSLv2, !SSLv3``, ``TLSv1.2 TLSv1.3``)."""
    items = split_list(value.replace(":", " "))
    included = [i for i in items if not i.startswith(("!", ">=", "<="))]
    enabled = set(included) & set(PROTOCOLS) if included else set(PROTOCOLS)
    for item in items:
        if item.startswith("!"):
            enabled.discard(item[1:])
        elif item.startswith(">=") and item[2:] in PROTOCOLS:
            enabled -= set(PROTOCOLS[: PROTOCOLS.index(item[2:])])
        elif item.startswith("<=") and item[2:] in PROTOCOLS:
            enabled -= set(PROTOCOLS[PROTOCOLS.index(item[2:]) + 1 :])
    return enabled


def check_tls(cfg: PostfixConfig) -> list[Finding]:
    """PF-23."""
    found: list[Finding] = []
    tls_on = False
    for svc in cfg.smtpd_services:
        level = common.tls_level(cfg, svc)
        wrapper = common.flag(cfg.get("smtpd_tls_wrappermode", svc))
        tls_on = tls_on or wrapper or level in ("may", "encrypt")
        setting = cfg.get("smtpd_tls_security_level", svc)
        if level in ("none", "") and not wrapper:
            severity = Severity.LOW if svc.loopback else Severity.MEDIUM
            # Turning TLS on must not leave the next audit a missing certificate or old
            # protocols to report: the fix carries those steps too.
            companions = tls_companion_steps(cfg)
            found.append(
                make(
                    "PF-23",
                    severity,
                    common.key(setting, svc),
                    f"No STARTTLS on {svc.name}: mail and logins travel readable",
                    [setting.evidence()],
                    [
                        *companions.cert,
                        *companions.protocols,
                        common.set_service(cfg, svc, setting.name, "encrypt")
                        if svc.role == "submission"
                        else common.set_like(cfg, setting, svc, "may"),
                    ],
                    location=setting.where,
                    services=[svc.label],
                    # without a certificate of yours, TLS cannot be switched on blindly
                    **({"manual": True} if companions.cert else {}),
                )
            )
        elif svc.role == "submission" and level == "may" and not wrapper:
            found.append(
                make(
                    "PF-23",
                    Severity.LOW if svc.loopback else Severity.MEDIUM,
                    common.key(setting, svc),
                    f"TLS is optional on submission service {svc.name}",
                    [setting.evidence()],
                    [common.set_service(cfg, svc, setting.name, "encrypt")],
                    location=setting.where,
                    services=[svc.label],
                )
            )
    if not tls_on:
        return common.merge(found)
    certs = [cfg.get(n) for n in _CERT_PARAMS]
    if tls_companion_steps(cfg).cert:
        found.append(
            make(
                "PF-23",
                Severity.MEDIUM,
                "main.cf:smtpd_tls_chain_files",
                "TLS is enabled but no certificate is configured: STARTTLS fails",
                [c.evidence() for c in certs[:2]],
                tls_companion_steps(cfg).cert,
            )
        )
    for name in ("smtpd_tls_protocols", "smtpd_tls_mandatory_protocols"):
        setting = cfg.get(name)
        old = [p for p in PROTOCOLS[:4] if p in enabled_protocols(setting.value)]
        if old:
            severity = Severity.MEDIUM if old[0].startswith("SSL") else Severity.LOW
            found.append(
                make(
                    "PF-23",
                    severity,
                    common.key(setting),
                    f"{name} allows {', '.join(old)}",
                    [setting.evidence()],
                    [common.set_main(cfg, name, ">=TLSv1.2")],
                    location=setting.where,
                    enabled=old,
                )
            )
    for name in ("smtpd_tls_ciphers", "smtpd_tls_mandatory_ciphers"):
        setting = cfg.get(name)
        if setting.value.strip().lower() in _WEAK_CIPHERS:
            found.append(
                make(
                    "PF-23",
                    Severity.MEDIUM,
                    common.key(setting),
                    f"{name} = {setting.value}: weak ciphers",
                    [setting.evidence()],
                    [common.set_main(cfg, name, "medium")],
                    location=setting.where,
                )
            )
    return common.merge(found)


def check_banner(cfg: PostfixConfig) -> list[Finding]:
    """PF-24."""
    setting = cfg.get("smtpd_banner")
    raw, value = setting.raw, setting.value.lower()
    leaks = []
    if "mail_version" in raw:
        leaks.append("the Postfix version")
    if "mail_name" in raw or "postfix" in value:
        leaks.append("the software (Postfix)")
    leaks += [f"the OS ({m.group(0)})" for m in _OS_NAMES.finditer(value)]
    if not leaks:
        return []
    return [
        make(
            "PF-24",
            Severity.LOW,
            common.key(setting),
            f"smtpd_banner names {', '.join(leaks)}",
            [setting.evidence()],
            [common.set_main(cfg, "smtpd_banner", "$myhostname ESMTP")],
            location=setting.where,
            leaks=leaks,
        )
    ]


def check_listening(cfg: PostfixConfig) -> list[Finding]:
    """PF-25."""
    setting = cfg.get("inet_interfaces")
    if setting.value.strip().lower() != "all" or not cfg.smtpd_services:
        return []
    exposed = [s.label for s in _exposed(cfg)]
    return [
        make(
            "PF-25",
            Severity.INFO,
            common.key(setting),
            "SMTP listens on every interface: if this host only sends mail, listen on "
            "loopback only",
            [setting.evidence()],
            [common.set_main(cfg, "inet_interfaces", "loopback-only")],
            location=setting.where,
            services=exposed,
        )
    ]


def check_smuggling(cfg: PostfixConfig) -> list[Finding]:
    """PF-27."""
    found = []
    for name, good in (
        ("smtpd_forbid_bare_newline", "normalize"),
        ("smtpd_forbid_unauth_pipelining", "yes"),
    ):
        setting = cfg.get(name)
        if not setting.is_set and not cfg.version_known:
            continue  # the default depends on a version we do not know
        if setting.value.strip().lower() not in ("no", "false", "0"):
            continue
        found.append(
            make(
                "PF-27",
                Severity.LOW,
                common.key(setting),
                f"{name} is off: SMTP smuggling protection disabled",
                [setting.evidence()],
                [common.set_main(cfg, name, good)],
                location=setting.where,
            )
        )
    return found


def check_postscreen(cfg: PostfixConfig) -> list[Finding]:
    """PF-28."""
    if cfg.postscreen is None:
        return []
    found = []
    access = cfg.get("postscreen_access_list")
    if "permit_mynetworks" in access.value.lower():
        entries = _networks.classify(cfg.value("mynetworks"), cfg.read_file)
        broad = [
            e.text for e in entries if e.severity is not None and e.severity >= Severity.MEDIUM
        ]
        if broad:
            found.append(
                make(
                    "PF-28",
                    Severity.MEDIUM,
                    common.key(access),
                    f"postscreen allowlists mynetworks, which includes {broad[0]}",
                    [access.evidence()],
                    [common.set_main(cfg, access.name, "permit_mynetworks")],
                    location=access.where,
                )
            )
    weak = [
        cfg.get(n)
        for n in ("postscreen_dnsbl_action", "postscreen_greet_action")
        if cfg.value(n).strip().lower() == "ignore"
    ]
    sites = cfg.get("postscreen_dnsbl_sites")
    if weak or not sites.value.strip():
        fix = [common.set_main(cfg, s.name, "enforce") for s in weak]
        if not sites.value.strip():
            fix.append(common.set_main(cfg, sites.name, "zen.spamhaus.org*2"))
        found.append(
            make(
                "PF-28",
                Severity.LOW,
                "main.cf:postscreen_dnsbl_action",
                "postscreen only watches: no enforce action or no DNSBL sites",
                [s.evidence() for s in [*weak, sites]],
                fix,
            )
        )
    return found


CHECKS = (
    check_helo,
    check_vrfy,
    check_unknown_recipients,
    check_tls,
    check_banner,
    check_listening,
    check_smuggling,
    check_postscreen,
)
