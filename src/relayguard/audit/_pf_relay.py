"""PF-01, PF-02, PF-03, PF-11, PF-12: can an outsider relay through an smtpd service?

Each smtpd service is judged with its own effective lists (master.cf ``-o`` over main.cf over
defaults). A problem that main.cf alone already has is reported once against main.cf, naming
every service that inherits it (PF-01/PF-02/PF-03); a problem that only exists because of a
service's ``-o`` values is reported against that override (PF-11 for submission services,
PF-12 for the others).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from relayguard.audit import _pf_common as common
from relayguard.audit._catalog import make
from relayguard.audit._restrictions import Context, Item, Verdict, evaluate, parse_restrictions
from relayguard.audit.effective import PostfixConfig, Setting, SmtpdService
from relayguard.audit.expand import split_list
from relayguard.findings import Finding, Severity

RELAY, RCPT = "smtpd_relay_restrictions", "smtpd_recipient_restrictions"
# With smtpd_delay_reject = yes (the default) every list is evaluated at RCPT time, so a
# reject_unauth_destination in any of them stops relaying.
LISTS = (
    RELAY,
    RCPT,
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
)
# smtpd_check.c: smtpd refuses to run unless the relay or recipient list names one of these
# (warn_if_reject X does not count X).
_SANITY = frozenset(
    {
        "reject_unauth_destination",
        "defer_unauth_destination",
        "reject",
        "defer",
        "defer_if_permit",
        "check_relay_domains",
    }
)
_SAFE_FIRST = ("permit_mynetworks", "permit_sasl_authenticated", "permit_tls_clientcerts")
SUBMISSION_SAFE = "permit_sasl_authenticated,reject"


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # open | disarmed | no-gate | third-party | disarm-note | local-open
    severity: Severity
    setting: Setting
    item: str
    why: str

    @property
    def ident(self) -> tuple[str, str, str]:
        return (self.kind, self.setting.name, self.item)


@dataclass(slots=True)
class _Group:
    problem: Problem
    services: list[SmtpdService] = field(default_factory=list)


def _context(cfg: PostfixConfig, svc: SmtpdService | None) -> Context:
    names = split_list(cfg.value("smtpd_restriction_classes", svc))
    return Context(cfg.read_file, {n.lower(): cfg.value(n, svc) for n in names})


def _passes_sanity(items: list[Item], ctx: Context, depth: int = 0) -> bool:
    skip = False
    for item in items:
        if skip:
            skip = False
            continue
        if item.name == "warn_if_reject":
            skip = True
        elif item.name in _SANITY or (
            item.name in ctx.classes
            and depth < 5
            and _passes_sanity(parse_restrictions(ctx.classes[item.name]), ctx, depth + 1)
        ):
            return True
    return False


def analyze(cfg: PostfixConfig, svc: SmtpdService | None) -> list[Problem]:
    """The relay problems of one service (None: main.cf and defaults alone)."""
    ctx = _context(cfg, svc)
    settings = {name: cfg.get(name, svc) for name in LISTS}
    parsed = {name: parse_restrictions(s.value) for name, s in settings.items()}
    verdicts = {name: evaluate(items, ctx) for name, items in parsed.items()}
    rejecting = {name for name, v in verdicts.items() if v.rejects}
    problems: list[Problem] = []
    if not (_passes_sanity(parsed[RELAY], ctx) or _passes_sanity(parsed[RCPT], ctx)):
        problems.append(
            Problem(
                "no-gate",
                Severity.HIGH,
                settings[RELAY],
                "",
                "neither the relay nor the recipient list has a relay check: "
                "smtpd stops with 'specify at least one working instance of "
                "reject_unauth_destination ...' and this port takes no mail",
            )
        )
    elif not rejecting:
        problems.append(_why_open(settings, verdicts))
    for name, verdict in verdicts.items():
        others_reject = bool(rejecting - {name})
        if verdict.hazards and not others_reject:
            worst = max(verdict.hazards, key=lambda h: h.severity)
            why = "; ".join(h.why for h in verdict.hazards)
            items = ", ".join(h.item for h in verdict.hazards)
            problems.append(Problem("third-party", worst.severity, settings[name], items, why))
        disarmed = any(p.kind == "disarmed" and p.setting.name == name for p in problems)
        if verdict.bypassed and not disarmed:
            problems.append(
                Problem(
                    "disarm-note",
                    Severity.MEDIUM,
                    settings[name],
                    f"warn_if_reject {verdict.bypassed[0]}",
                    "warn_if_reject only logs what the next restriction would "
                    "reject: leftover from testing",
                )
            )
    if svc is not None and svc.role == "submission" and rejecting:
        local = [evaluate(parsed[name], ctx, local=True).rejects for name in LISTS]
        if not any(local):
            problems.append(
                Problem(
                    "local-open",
                    Severity.MEDIUM,
                    settings[RCPT],
                    "no final reject",
                    "unauthenticated clients may still send to local users "
                    "through the submission port",
                )
            )
    return problems


def _why_open(settings: dict[str, Setting], verdicts: dict[str, Verdict]) -> Problem:
    for name in LISTS:
        opened = verdicts[name].opened_by
        if opened is not None:
            return Problem("open", Severity.CRITICAL, settings[name], opened.item, opened.why)
    for name in LISTS:
        if verdicts[name].bypassed:
            gate = verdicts[name].bypassed[0]
            return Problem(
                "disarmed",
                Severity.CRITICAL,
                settings[name],
                f"warn_if_reject {gate}",
                f"warn_if_reject disarms {gate}, the only relay check",
            )
    return Problem(
        "open", Severity.CRITICAL, settings[RELAY], "", "no list rejects mail for other domains"
    )


def check(cfg: PostfixConfig) -> list[Finding]:
    global_problems = {p.ident: p for p in analyze(cfg, None)}
    groups: dict[tuple[str, str, str], _Group] = {}
    findings: list[Finding] = []
    for svc in cfg.smtpd_services:
        for problem in analyze(cfg, svc):
            if problem.ident in global_problems and problem.setting.origin != "master.cf":
                group = groups.setdefault(problem.ident, _Group(global_problems[problem.ident]))
                group.services.append(svc)
            else:
                findings.append(_service_finding(cfg, svc, problem))
    for group in groups.values():
        findings.append(_main_finding(cfg, group.problem, group.services))
    return findings


def _title(problem: Problem, where: str) -> str:
    titles = {
        "open": f"Open relay: {where} lets any client relay ({problem.item or 'no reject'})",
        "disarmed": f"Open relay: {problem.item} in {where} disarms the relay check",
        "no-gate": f"No relay check in {where}: smtpd refuses to start",
        "third-party": f"{where} lets third parties relay before the relay check: {problem.item}",
        "disarm-note": f"{problem.item} in {where}",
        "local-open": f"Submission accepts unauthenticated clients ({where} has no final reject)",
    }
    return titles[problem.kind]


def _rule(problem: Problem, svc: SmtpdService | None) -> str:
    if problem.kind in ("disarmed", "disarm-note"):
        return "PF-03"
    if svc is not None:
        return "PF-11" if svc.role == "submission" else "PF-12"
    return "PF-02" if problem.setting.name != RELAY else "PF-01"


def safer_list(setting: Setting) -> str:
    """The same list with the relay check first after the safe permits (see PF-01 fix)."""
    raw, exp = parse_restrictions(setting.raw), parse_restrictions(setting.value)
    items = raw if [i.name for i in raw] == [i.name for i in exp] else exp
    before: list[Item] = []
    gate: Item | None = None
    after: list[Item] = []
    for item in items:
        if gate is None and item.name in ("reject_unauth_destination", "defer_unauth_destination"):
            gate = item
        elif gate is None:
            before.append(item)
        else:
            after.append(item)
    safe = [i for i in before if i.name in _SAFE_FIRST]
    moved = [i for i in before if i.name not in (*_SAFE_FIRST, "permit", "warn_if_reject")]
    if not safe:
        safe = [Item("permit_mynetworks"), Item("permit_sasl_authenticated")]
    final = [*safe, gate or Item("reject_unauth_destination"), *moved, *after]
    return ", ".join(i.text for i in final if i.name != "permit")


def _main_finding(cfg: PostfixConfig, problem: Problem, services: list[SmtpdService]) -> Finding:
    setting = problem.setting
    relay = cfg.get(RELAY)
    evidence = [setting.evidence()]
    if problem.kind == "no-gate" or (setting.name != RELAY and not relay.items):
        if setting.name != RELAY:
            evidence.append(relay.evidence())
        fix = [
            common.set_main(
                cfg, RELAY, "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"
            )
        ]
        if problem.kind != "no-gate":
            fix.append(common.set_main(cfg, setting.name, safer_list(setting)))
    else:
        fix = [common.set_main(cfg, setting.name, safer_list(setting))]
    return make(
        _rule(problem, None),
        problem.severity,
        common.key(setting),
        _title(problem, setting.name),
        evidence,
        fix,
        location=setting.where,
        value=setting.value,
        item=problem.item,
        reason=problem.why,
        services=common.services_note(services),
    )


def _service_finding(cfg: PostfixConfig, svc: SmtpdService, problem: Problem) -> Finding:
    setting = problem.setting
    overrides = [cfg.get(n, svc) for n in LISTS if n in svc.service.overrides]
    # the override responsible: the list itself when overridden, else the one that changed
    blamed = setting if setting.origin == "master.cf" else (overrides[0] if overrides else setting)
    evidence = [setting.evidence()]
    evidence += [o.evidence() for o in overrides if o.evidence() not in evidence]
    if svc.role == "submission":
        names = [setting.name] if setting.name in (RELAY, RCPT) else [RCPT]
        fix = [common.set_service(cfg, svc, n, SUBMISSION_SAFE) for n in names]
    elif setting.origin == "master.cf":
        fix = [common.unset_service(cfg, svc, setting.name)]
    else:
        fix = [common.set_service(cfg, svc, setting.name, safer_list(setting))]
    where = f"{svc.name} ({blamed.name})" if blamed.origin == "master.cf" else svc.name
    return make(
        _rule(problem, svc),
        problem.severity,
        common.key(blamed, svc),
        _title(problem, where),
        evidence,
        fix,
        location=setting.where,
        value=setting.value,
        item=problem.item,
        reason=problem.why,
        services=[svc.label],
    )


def check_soft_bounce(cfg: PostfixConfig) -> list[Finding]:
    """PF-03, second half: soft_bounce turns every relay rejection into a retry."""
    setting = cfg.get("soft_bounce")
    if setting.value.strip().lower() != "yes":
        return []
    return [
        make(
            "PF-03",
            Severity.MEDIUM,
            common.key(setting),
            "soft_bounce = yes: relay rejections become 4xx, so relay testers keep retrying "
            "and real rejections never bounce",
            [setting.evidence()],
            [f"{cfg.postconf_cmd()} -X soft_bounce"],
            location=setting.where,
        )
    ]
