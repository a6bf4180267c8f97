"""PF-13..PF-18: authentication and limits, per smtpd service.

A service that listens on loopback only is reachable from this host alone, so exposure-related
findings about it drop to low severity.
"""

from __future__ import annotations

from relayguard.audit import _pf_common as common
from relayguard.audit._catalog import make
from relayguard.audit._pf_hardening import tls_companion_steps
from relayguard.audit._restrictions import parse_restrictions
from relayguard.audit.effective import PostfixConfig, SmtpdService
from relayguard.audit.expand import split_list
from relayguard.findings import Finding, Severity

_LISTS = (
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
)
_MISMATCH = frozenset(
    {
        "reject_sender_login_mismatch",
        "reject_authenticated_sender_login_mismatch",
        "reject_known_sender_login_mismatch",
    }
)
# Suggested starting points (per anvil_rate_time_unit, 60 s), generous for a small office.
RATE_LIMITS = (
    ("smtpd_client_connection_rate_limit", "60"),
    ("smtpd_client_message_rate_limit", "100"),
    ("smtpd_client_recipient_rate_limit", "300"),
)
AUTH_RATE_LIMIT = ("smtpd_client_auth_rate_limit", "10")
# (parameter, largest sensible value): 0 switches the limit off.
_CEILINGS = (
    ("smtpd_client_connection_count_limit", 1000),
    ("smtpd_soft_error_limit", 100),
    ("smtpd_hard_error_limit", 100),
    ("smtpd_junk_command_limit", 1000),
)


def _exposed(svc: SmtpdService, severity: Severity) -> Severity:
    return Severity.LOW if svc.loopback and severity > Severity.LOW else severity


def _sasl(cfg: PostfixConfig, svc: SmtpdService) -> bool:
    return common.flag(cfg.get("smtpd_sasl_auth_enable", svc))


def check_tls_auth(cfg: PostfixConfig) -> list[Finding]:
    """PF-13."""
    found = []
    for svc in cfg.smtpd_services:
        if not _sasl(cfg, svc):
            continue
        auth_only = cfg.get("smtpd_tls_auth_only", svc)
        level = common.tls_level(cfg, svc)
        wrapper = common.flag(cfg.get("smtpd_tls_wrappermode", svc))
        if wrapper or level == "encrypt" or (common.flag(auth_only) and level == "may"):
            continue
        if level in ("none", ""):
            title = "AUTH offered without any TLS: passwords cross the network in clear text"
        else:
            title = "AUTH offered before STARTTLS (smtpd_tls_auth_only = no)"
        fix = [common.set_like(cfg, auth_only, svc, "yes")]
        manual: dict[str, bool] = {}
        if level in ("none", ""):
            # the same complete TLS switch-on as PF-23's: certificate, protocols, level
            steps = tls_companion_steps(cfg)
            level_step = common.set_main(cfg, "smtpd_tls_security_level", "may")
            fix = [*steps.cert, *steps.protocols, level_step, *fix]
            if steps.cert:
                manual["manual"] = True
        found.append(
            make(
                "PF-13",
                _exposed(svc, Severity.HIGH),
                common.key(auth_only, svc),
                title,
                [auth_only.evidence(), cfg.get("smtpd_tls_security_level", svc).evidence()],
                fix,
                location=auth_only.where,
                tls_level=level,
                services=[svc.label],
                **manual,
            )
        )
    return common.merge(found)


def check_sasl_options(cfg: PostfixConfig) -> list[Finding]:
    """PF-14."""
    found = []
    for svc in cfg.smtpd_services:
        if not _sasl(cfg, svc):
            continue
        for name in ("smtpd_sasl_security_options", "smtpd_sasl_tls_security_options"):
            setting = cfg.get(name, svc)
            if "noanonymous" in [o.lower() for o in split_list(setting.value)]:
                continue
            severity = Severity.MEDIUM if svc.loopback else Severity.CRITICAL
            found.append(
                make(
                    "PF-14",
                    severity,
                    common.key(setting, svc),
                    f"{name} lacks noanonymous: an anonymous login counts as authenticated and "
                    "may relay",
                    [setting.evidence()],
                    [common.set_like(cfg, setting, svc, "noanonymous")],
                    location=setting.where,
                    value=setting.value,
                    services=[svc.label],
                )
            )
    return common.merge(found)


def check_auth_on_25(cfg: PostfixConfig) -> list[Finding]:
    """PF-15."""
    found = []
    for svc in cfg.smtpd_services:
        if svc.role != "smtp" or svc.port != "25" or not _sasl(cfg, svc):
            continue
        setting = cfg.get("smtpd_sasl_auth_enable", svc)
        fix = [common.set_like(cfg, setting, svc, "no")]
        fix += [
            common.set_service(cfg, s, "smtpd_sasl_auth_enable", "yes")
            for s in cfg.smtpd_services
            if s.role == "submission"
        ]
        found.append(
            make(
                "PF-15",
                _exposed(svc, Severity.MEDIUM),
                common.key(setting, svc),
                "AUTH offered on port 25: password guessing from the whole Internet",
                [setting.evidence()],
                fix,
                location=setting.where,
                services=[svc.label],
            )
        )
    return common.merge(found)


def check_sender_login(cfg: PostfixConfig) -> list[Finding]:
    """PF-16."""
    found = []
    for svc in cfg.smtpd_services:
        if svc.role != "submission" or not _sasl(cfg, svc):
            continue
        maps = cfg.get("smtpd_sender_login_maps", svc)
        names = {i.name for n in _LISTS for i in parse_restrictions(cfg.value(n, svc))}
        if maps.value.strip() and names & _MISMATCH:
            continue
        sender = cfg.get("smtpd_sender_restrictions", svc)
        current = sender.value.strip()
        wanted = "reject_authenticated_sender_login_mismatch" + (f", {current}" if current else "")
        fix = []
        if not maps.value.strip():
            fix.append(
                common.set_main(cfg, "smtpd_sender_login_maps", "hash:/etc/postfix/sender_login")
            )
            fix.append("postmap /etc/postfix/sender_login")
        if not names & _MISMATCH:
            fix.append(common.set_like(cfg, sender, svc, wanted))
        found.append(
            make(
                "PF-16",
                _exposed(svc, Severity.MEDIUM),
                common.key(maps, svc),
                "Authenticated users may send as any sender (no sender login check)",
                [maps.evidence(), sender.evidence()],
                fix,
                location=maps.where,
                services=[svc.label],
                manual=True,
            )
        )
    return common.merge(found)


def check_rate_limits(cfg: PostfixConfig) -> list[Finding]:
    """PF-17."""
    found = []
    for svc in cfg.smtpd_services:
        if svc.loopback:
            continue
        limits = list(RATE_LIMITS)
        if _sasl(cfg, svc) and cfg.default(AUTH_RATE_LIMIT[0]) is not None:
            limits.append(AUTH_RATE_LIMIT)
        off = [(n, v) for n, v in limits if cfg.value(n, svc).strip() in ("0", "")]
        if len(off) < len(limits):
            continue
        severity = Severity.MEDIUM if svc.role == "submission" else Severity.LOW
        settings = [cfg.get(n, svc) for n, _ in off]
        found.append(
            make(
                "PF-17",
                severity,
                f"master.cf:{svc.name}/smtpd_client_message_rate_limit",
                f"No per-client rate limit on {svc.name}: one client or account may send "
                f"without bound",
                [s.evidence() for s in settings],
                [common.set_service(cfg, svc, n, v) for n, v in off],
                services=[svc.label],
                exempt=cfg.value("smtpd_client_event_limit_exceptions", svc),
            )
        )
    return found


def check_limits(cfg: PostfixConfig) -> list[Finding]:
    """PF-18."""
    found = []
    for name, ceiling in _CEILINGS:
        for svc in [None, *cfg.smtpd_services]:
            setting = cfg.get(name, svc)
            if svc is not None and setting.origin != "master.cf":
                continue
            try:
                number = int(setting.value.strip())
            except ValueError:
                continue
            if 0 < number <= ceiling:
                continue
            state = "off (0)" if number == 0 else f"{number}, very high"
            found.append(
                make(
                    "PF-18",
                    Severity.LOW,
                    common.key(setting, svc),
                    f"{name} is {state}",
                    [setting.evidence()],
                    [
                        common.unset_service(cfg, svc, name)
                        if svc is not None
                        else f"{cfg.postconf_cmd()} -X {name}"
                    ],
                    location=setting.where,
                )
            )
    return found


CHECKS = (
    check_tls_auth,
    check_sasl_options,
    check_auth_on_25,
    check_sender_login,
    check_rate_limits,
    check_limits,
)
