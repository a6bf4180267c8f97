"""Findings from what a probe saw (WEAKNESSES.md): the relay verdict and the SMTP weaknesses.

Pure: a decided :class:`ServiceResult` in, :class:`Finding` objects out. Indicator ids are a
public interface, listed in docs/probe-json.md.
"""

from __future__ import annotations

from typing import Final

from relayguard.findings import Finding, Severity, Subject
from relayguard.probe.greeting import auth_mechanisms, software_leak
from relayguard.probe.result import SLOW_REPLY, Phase, Reason, ServiceResult, TestResult, Verdict
from relayguard.probe.verdict import accept_all, latest, refused_from_chosen_source

_OLD_TLS: Final = frozenset({"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"})
_CLEAR_MECHANISMS: Final = frozenset({"PLAIN", "LOGIN"})
SUBMISSION_PORTS: Final = frozenset({587, 465})

INDICATORS: Final = (
    "open-relay",
    "relay-trusted-source",
    "smtp-accept-all",
    "smtp-accepts-unknown-users",
    "smtp-auth-before-tls",
    "smtp-auth-anonymous",
    "smtp-no-starttls",
    "smtp-starttls-broken",
    "smtp-weak-tls",
    "smtp-vrfy-enabled",
    "smtp-expn-enabled",
    "smtp-xclient-offered",
    "smtp-xforward-offered",
    "smtp-banner-version",
    "smtp-tarpit",
    "smtp-no-connection-limit",
)


def findings_for(service: ServiceResult) -> list[Finding]:
    subject = Subject("service", service.name)
    found = _relay(service, subject)
    found += _controls(service, subject)
    found += _auth(service, subject)
    found += _tls(service, subject)
    found += _enumeration(service, subject)
    found += _extensions(service, subject)
    found += _banner(service, subject)
    found += _timing(service, subject)
    return found


def _finding(
    indicator: str,
    severity: Severity,
    subject: Subject,
    title: str,
    evidence: list[str],
    mitigations: list[str],
    **details: object,
) -> Finding:
    return Finding(
        indicator=indicator,
        severity=severity,
        subject=subject,
        title=title,
        count=1,
        evidence=evidence,
        mitigations=mitigations,
        details=dict(details),
    )


def _evidence(result: TestResult) -> list[str]:
    """The test's dialogue up to its RSET: [EHLO,] MAIL, RCPT and the replies."""
    lines = list(result.dialogue)
    if "C: RSET" in lines:
        lines = lines[: lines.index("C: RSET")]
    return lines[:12]


def _relay(service: ServiceResult, subject: Subject) -> list[Finding]:
    if service.verdict in (Verdict.OPEN, Verdict.PROVEN):
        counted = [r for r in latest(service.tests).values() if _key(r) in service.counted]
        first = counted[0] if counted else None
        mitigations = ["close-open-relay", "narrow-mynetworks", "remove-access-ok", "test-relay"]
        if service.port in SUBMISSION_PORTS:
            mitigations.insert(0, "require-auth-submission")
        proven = service.verdict is Verdict.PROVEN and service.proof is not None
        title = f"{service.name} relays mail for anyone: {service.why}"
        evidence = _evidence(first) if first else []
        if proven and service.proof is not None:
            evidence += list(service.proof.dialogue[-4:])
        return [
            _finding(
                "open-relay",
                Severity.CRITICAL,
                subject,
                title,
                evidence,
                mitigations,
                tests=[_key(r) for r in counted],
                techniques=sorted({r.technique for r in counted}),
                source_address=service.source,
                proven=proven,
                message_id=service.proof.message_id if proven and service.proof else None,
            )
        ]
    if service.verdict is Verdict.CLOSED and refused_from_chosen_source(service):
        c = service.comparison
        assert c is not None
        several = len({(r.phase, r.test) for r in service.comparisons}) > 1
        return [
            _finding(
                "relay-trusted-source",
                Severity.INFO,
                subject,
                f"{service.name} relayed for {service.source}, which it trusts, and refused "
                f"the same test{'s' if several else ''} from {c.source}",
                [],
                ["test-relay"],
                source_address=service.source,
                comparison=c.outcome.value,
            )
        ]
    if service.reason is Reason.TRUSTED_SOURCE:
        return [
            _finding(
                "relay-trusted-source",
                Severity.INFO,
                subject,
                f"{service.name} relayed for {service.source}, which it likely trusts: this "
                "says nothing about outside clients",
                [],
                ["test-relay"],
                source_address=service.source,
                comparison=service.comparison.outcome.value if service.comparison else None,
            )
        ]
    return []


def _key(result: TestResult) -> str:
    return f"{result.phase.value}/{result.test}"


def _controls(service: ServiceResult, subject: Subject) -> list[Finding]:
    final = latest(service.tests)
    c1 = next((r for r in final.values() if r.test == "C1"), None)
    if c1 is None or c1.outcome.value != "accepted":
        return []
    if accept_all(service, c1.phase):
        return [
            _finding(
                "smtp-accept-all",
                Severity.LOW,
                subject,
                f"{service.name} accepts every recipient, even an unknown local user and an "
                "unresolvable domain (catch-all, honeypot or mail catcher)",
                _evidence(c1),
                ["stop-backscatter"],
            )
        ]
    return [
        _finding(
            "smtp-accepts-unknown-users",
            Severity.MEDIUM,
            subject,
            f"{service.name} accepts mail for an unknown local user; bounces later go to "
            "forged senders (backscatter)",
            _evidence(c1),
            ["stop-backscatter"],
        )
    ]


def _auth(service: ServiceResult, subject: Subject) -> list[Finding]:
    found: list[Finding] = []
    plain = service.extensions.get(Phase.PLAIN)
    if plain is not None and "AUTH" in plain:
        mechs = auth_mechanisms(plain)
        clear = sorted(_CLEAR_MECHANISMS.intersection(mechs))
        found.append(
            _finding(
                "smtp-auth-before-tls",
                Severity.HIGH if clear else Severity.MEDIUM,
                subject,
                f"{service.name} offers AUTH ({' '.join(mechs)}) before TLS: passwords can "
                "travel in clear",
                [f"S: 250-AUTH {plain['AUTH']}"],
                ["require-auth-submission"],
                mechanisms=list(mechs),
            )
        )
    for phase, ext in service.extensions.items():
        if "ANONYMOUS" in auth_mechanisms(ext):
            found.append(
                _finding(
                    "smtp-auth-anonymous",
                    Severity.CRITICAL,
                    subject,
                    f"{service.name} offers AUTH ANONYMOUS: anyone can log in and relay",
                    [f"S: 250-AUTH {ext['AUTH']}"],
                    ["disable-anonymous-auth"],
                    phase=phase.value,
                )
            )
            break
    return found


def _tls(service: ServiceResult, subject: Subject) -> list[Finding]:
    found: list[Finding] = []
    plain = service.extensions.get(Phase.PLAIN)
    if not service.implicit_tls and plain is not None and "STARTTLS" not in plain:
        found.append(
            _finding(
                "smtp-no-starttls",
                Severity.MEDIUM,
                subject,
                f"{service.name} does not offer STARTTLS: mail and logins cross the network "
                "in clear",
                [],
                ["enable-starttls"],
            )
        )
    for info in service.tls:
        if info.error is not None:
            found.append(
                _finding(
                    "smtp-starttls-broken",
                    Severity.MEDIUM,
                    subject,
                    f"TLS on {service.name} failed: {info.error}",
                    [],
                    ["enable-starttls"],
                    phase=info.phase.value,
                )
            )
        elif info.version in _OLD_TLS:
            found.append(
                _finding(
                    "smtp-weak-tls",
                    Severity.MEDIUM,
                    subject,
                    f"{service.name} negotiated {info.version}, a TLS version with known "
                    "weaknesses",
                    [],
                    ["enable-starttls"],
                    version=info.version,
                    cipher=info.cipher,
                )
            )
    return found


def _enumeration(service: ServiceResult, subject: Subject) -> list[Finding]:
    vrfy = service.vrfy
    if vrfy is None:
        return []
    found: list[Finding] = []
    if 200 <= vrfy.known < 300 and vrfy.unknown >= 500:
        found.append(
            _finding(
                "smtp-vrfy-enabled",
                Severity.MEDIUM,
                subject,
                f"{service.name} answers VRFY differently for real and unknown users: "
                "addresses can be harvested",
                [line for line in vrfy.dialogue if "VRFY" in line or line.startswith("S: ")][:6],
                ["disable-vrfy"],
                known=vrfy.known,
                unknown=vrfy.unknown,
            )
        )
    if vrfy.expn == 250:
        found.append(
            _finding(
                "smtp-expn-enabled",
                Severity.MEDIUM,
                subject,
                f"{service.name} expands mailing lists with EXPN",
                [line for line in vrfy.dialogue if "EXPN" in line][:2],
                ["disable-vrfy"],
            )
        )
    return found


def _extensions(service: ServiceResult, subject: Subject) -> list[Finding]:
    found: list[Finding] = []
    offered: dict[str, Phase] = {}
    for phase, ext in service.extensions.items():
        for keyword in ("XCLIENT", "XFORWARD"):
            if keyword in ext:
                offered.setdefault(keyword, phase)
    if "XCLIENT" in offered:
        found.append(
            _finding(
                "smtp-xclient-offered",
                Severity.CRITICAL,
                subject,
                f"{service.name} offers XCLIENT to the probe: a client can pose as any "
                "trusted address",
                [],
                ["restrict-xclient"],
                phase=offered["XCLIENT"].value,
            )
        )
    if "XFORWARD" in offered:
        found.append(
            _finding(
                "smtp-xforward-offered",
                Severity.LOW,
                subject,
                f"{service.name} offers XFORWARD to the probe: a client can forge the logged "
                "client name and address",
                [],
                ["restrict-xclient"],
                phase=offered["XFORWARD"].value,
            )
        )
    return found


def _banner(service: ServiceResult, subject: Subject) -> list[Finding]:
    lines = [line[3:] for line in (*service.greeting, *service.help_lines) if line[:3] == "S: "]
    leak = software_leak(lines)
    if leak is None:
        return []
    named = " ".join(x for x in (leak.product, leak.version, leak.os and f"({leak.os})") if x)
    return [
        _finding(
            "smtp-banner-version",
            Severity.LOW,
            subject,
            f"{service.name} names its software: {named}",
            [f"S: {leak.text}"],
            ["hide-banner-version"],
            product=leak.product,
            version=leak.version,
            os=leak.os,
        )
    ]


def _slow_title(service: ServiceResult) -> str:
    if not service.slow_replies:
        return f"{service.name} did not answer in time: a tarpit or an overloaded server"
    n = service.slow_replies
    return (
        f"{service.name} answers slowly (slowest reply {service.slowest_reply:.1f} s, {n} "
        f"repl{'ies' if n != 1 else 'y'} over {SLOW_REPLY:.0f} s): a tarpit or an overloaded "
        "server"
    )


def _timing(service: ServiceResult, subject: Subject) -> list[Finding]:
    found: list[Finding] = []
    if service.slow_replies or service.reason is Reason.TARPIT:
        found.append(
            _finding(
                "smtp-tarpit",
                Severity.INFO,
                subject,
                _slow_title(service),
                [],
                [],
                slowest_reply_seconds=round(service.slowest_reply, 3),
            )
        )
    rate = service.rate
    if rate is not None and rate.refused == 0 and rate.served == rate.attempted:
        found.append(
            _finding(
                "smtp-no-connection-limit",
                Severity.LOW,
                subject,
                f"{service.name} served {rate.served} connections in {rate.seconds:.1f} s "
                "from one address without a limit",
                [],
                ["limit-connections"],
                connections=rate.served,
            )
        )
    return found
