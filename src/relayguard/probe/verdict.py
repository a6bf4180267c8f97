"""From test results to a verdict: pure functions over a :class:`ServiceResult`.

Rules (RELAY_TESTS.md section 8, WEAKNESSES.md safety rule 8):

* A relay test accepted at RCPT counts as evidence unless its address is local-looking
  (``relaytest%x@<target>``, quoted or bang forms) and the server also accepts unknown local
  users: then the acceptance may be local delivery.
* Counted evidence is ``open`` unless the controls show an accept-all server (unknown local
  user and unresolvable domain both accepted: ``accept-all``) or the source is likely trusted
  by the server (``trusted-source``). It becomes ``proven`` only when the canary message of
  ``--prove-to`` was accepted after DATA.
* ``closed`` needs an answer to every relay test, and at least one real refusal (relay denied,
  authentication required, a policy 5xx) in every phase. A 4xx may hide an acceptance, so any
  unanswered test makes it ``inconclusive`` with the reason of what stopped it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from relayguard.findings import Finding, Severity
from relayguard.probe.catalogue import BY_ID, CORE_TEST, PLAN, Kind
from relayguard.probe.classify import REFUSED, UNANSWERED, Outcome
from relayguard.probe.result import Phase, Reason, ServiceResult, TestResult, Verdict

# Refusals that show the relay policy itself ran (not just address validation).
_POLICY_REFUSALS = frozenset({Outcome.RELAY_DENIED, Outcome.AUTH_REQUIRED, Outcome.REJECTED})
RELAY_TESTS = tuple(t.id for t in PLAN if t.kind is Kind.RELAY)
# Loopback sources tried for the comparison test, in order (none of them is 127.0.0.1).
COMPARE_LOOPBACK = ("127.0.0.253", "127.0.0.254")
# Reasons for an unanswered test, strongest first.
_UNANSWERED_REASON = (
    (Outcome.THROTTLED, Reason.THROTTLED),
    (Outcome.TEMPORARY, Reason.GREYLISTED),
    (Outcome.NO_REPLY, Reason.TARPIT),
    (Outcome.CONNECTION_LOST, Reason.ERROR),
    (Outcome.NOT_RUN, Reason.ERROR),
)


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: Reason | None
    why: str
    counted: tuple[TestResult, ...] = ()


def key(result: TestResult) -> str:
    return f"{result.phase.value}/{result.test}"


def latest(results: Iterable[TestResult]) -> dict[str, TestResult]:
    """The last attempt of each test, per phase, in first-run order."""
    found: dict[str, TestResult] = {}
    for result in results:
        found[key(result)] = result
    return found


def _control(final: dict[str, TestResult], test_id: str, phase: Phase) -> Outcome | None:
    same = final.get(f"{phase.value}/{test_id}")
    if same is not None:
        return same.outcome
    for result in final.values():
        if result.test == test_id:
            return result.outcome
    return None


def counted_acceptances(service: ServiceResult) -> tuple[TestResult, ...]:
    """Accepted relay tests that are evidence of relaying (see the module rules)."""
    final = latest(service.tests)
    counted = []
    for result in final.values():
        if result.kind is not Kind.RELAY or result.outcome is not Outcome.ACCEPTED:
            continue
        test = BY_ID.get(result.test)
        local_looking = test is not None and test.local_looking
        if local_looking and _control(final, "C1", result.phase) not in REFUSED:
            continue
        counted.append(result)
    return tuple(counted)


def accept_all(service: ServiceResult, phase: Phase) -> bool:
    final = latest(service.tests)
    return (
        _control(final, "C1", phase) is Outcome.ACCEPTED
        and _control(final, "C2", phase) is Outcome.ACCEPTED
    )


def decide(service: ServiceResult) -> Decision:
    """The verdict of one service."""
    if service.closed_before_banner and service.banner_code is None:
        return _no_banner(service)
    if all(t.outcome is Outcome.NOT_RUN for t in service.tests):
        return _no_tests(service)
    counted = counted_acceptances(service)
    if counted:
        return _accepted(service, counted)
    return _refused(service)


def _accepted(service: ServiceResult, counted: tuple[TestResult, ...]) -> Decision:
    first = counted[0]
    if all(accept_all(service, r.phase) for r in counted):
        return Decision(
            Verdict.INCONCLUSIVE,
            Reason.ACCEPT_ALL,
            "the server accepts every recipient, even an unknown local user and an "
            "unresolvable domain: acceptance at RCPT proves nothing without a message",
            counted,
        )
    c = service.comparison
    if c is not None and refused_from_chosen_source(service):
        n = len(_compared(service))
        refusal = f"{c.outcome.value}{f' {c.code}' if c.code else ''}"
        if n == 1:
            return Decision(
                Verdict.CLOSED,
                None,
                f"relays only for the probing address {service.source} (trusted): the same "
                f"test ({c.test}) from {c.source} was refused ({refusal})",
            )
        return Decision(
            Verdict.CLOSED,
            None,
            f"relays only for the probing address {service.source} (trusted): all {n} relay "
            f"tests accepted from it were refused from {c.source} (first: {c.test}, {refusal})",
        )
    if c is not None and service.comparison_chosen and c.outcome in UNANSWERED:
        # Refused there for some tests is not enough: an unanswered one may be relayed.
        compared = _compared(service)
        n = sum(1 for r in compared if r.outcome in UNANSWERED)
        return Decision(
            Verdict.INCONCLUSIVE,
            dict(_UNANSWERED_REASON)[c.outcome],
            f"relaying was accepted from {service.source}; from {c.source}, {n} of "
            f"{len(compared)} repeated relay tests got no final answer ({c.outcome.value})",
            counted,
        )
    if likely_trusted(service):
        return Decision(
            Verdict.INCONCLUSIVE,
            Reason.TRUSTED_SOURCE,
            f"relaying was accepted from {service.source}, an address the server likely "
            "trusts; probe again from an outside address",
            counted,
        )
    n = len(counted)
    what = (
        f"{n} relay test{'s' if n != 1 else ''} accepted (first: {first.test}, {first.technique})"
    )
    if c is not None and c.outcome is Outcome.ACCEPTED:
        what += f"; {c.phase.value}/{c.test} was accepted from {c.source} too"
    if service.proof is not None and service.proof.accepted:
        return Decision(
            Verdict.PROVEN,
            None,
            f"{what}; the canary message to {service.proof.recipient} was accepted",
            counted,
        )
    return Decision(Verdict.OPEN, None, what, counted)


def _refused(service: ServiceResult) -> Decision:
    final = latest(service.tests)
    relay = [r for r in final.values() if r.kind is Kind.RELAY]
    open_questions = [r.outcome for r in relay if r.outcome in UNANSWERED]
    # A relay test of the catalogue with no result at all is as open as one not run.
    for phase in service.phases:
        seen = {r.test for r in relay if r.phase is phase}
        open_questions += [Outcome.NOT_RUN for t in RELAY_TESTS if t not in seen]
    # What stopped the tests: a control's timeout explains the relay tests left unrun.
    causes = [r.outcome for r in final.values() if r.outcome in UNANSWERED]
    if len(causes) < len(open_questions):
        causes.append(Outcome.NOT_RUN)
    for result in relay:
        if result.outcome is Outcome.ACCEPTED:
            # An uncounted local-looking form: local delivery if unknown users are accepted
            # too, a question while the unknown-user control has no answer.
            c1 = _control(final, "C1", result.phase)
            if c1 is not Outcome.ACCEPTED:
                open_questions.append(c1 or Outcome.NOT_RUN)
                causes.append(c1 or Outcome.NOT_RUN)
    if open_questions:
        for outcome, reason in _UNANSWERED_REASON:
            if outcome in causes:
                if reason is Reason.ERROR and service.out_of_time:
                    reason = Reason.TARPIT
                n = len(open_questions)
                return Decision(
                    Verdict.INCONCLUSIVE,
                    reason,
                    f"{n} of {len(relay)} relay tests got no final answer ({outcome.value})",
                )
    phases = service.phases
    undecided = [
        p for p in phases if not _policy_ran(relay, p) and not _tls_deferred(relay, p, phases)
    ]
    if undecided:
        return _why_undecided(relay, undecided[0])
    cores = [r.outcome for r in relay if r.test == CORE_TEST]
    auth = Outcome.AUTH_REQUIRED in cores and all(
        o in (Outcome.AUTH_REQUIRED, Outcome.TLS_REQUIRED) for o in cores
    )
    names = ", ".join(p.value for p in phases)
    return Decision(
        Verdict.CLOSED,
        Reason.AUTH_REQUIRED if auth else None,
        f"all {len(relay)} relay tests were refused ({names})",
    )


def _tls_deferred(relay: list[TestResult], phase: Phase, phases: list[Phase]) -> bool:
    """Every test of a plaintext phase demanded STARTTLS, and the STARTTLS phase ran."""
    mine = [r for r in relay if r.phase is phase]
    return (
        phase is Phase.PLAIN
        and Phase.STARTTLS in phases
        and bool(mine)
        and all(r.outcome is Outcome.TLS_REQUIRED for r in mine)
    )


def _policy_ran(relay: list[TestResult], phase: Phase) -> bool:
    return any(r.phase is phase and r.outcome in _POLICY_REFUSALS for r in relay)


def _why_undecided(relay: list[TestResult], phase: Phase) -> Decision:
    outcomes = {r.outcome for r in relay if r.phase is phase}
    if Outcome.TLS_REQUIRED in outcomes:
        reason, why = Reason.TLS_REQUIRED, "the server requires STARTTLS"
    elif Outcome.SENDER_REJECTED in outcomes and Outcome.RECIPIENT_REJECTED not in outcomes:
        reason, why = Reason.SENDER_REJECTED, "the probe's sender was refused; try --domain"
    else:
        reason = Reason.DOMAIN_REJECTED
        why = "the test domain was refused before any relay check; try --domain"
    return Decision(Verdict.INCONCLUSIVE, reason, f"{why} ({phase.value})")


def _no_banner(service: ServiceResult) -> Decision:
    n = service.closed_before_banner
    return Decision(
        Verdict.INCONCLUSIVE,
        Reason.ERROR,
        f"the server closed {n} connection{'s' if n != 1 else ''} before sending a banner and "
        "never greeted: its SMTP service may be failing (see its logs); nothing was tested",
    )


def _no_tests(service: ServiceResult) -> Decision:
    code = service.banner_code
    if code == 421:
        return Decision(Verdict.INCONCLUSIVE, Reason.THROTTLED, "the server answered 421")
    if code is not None and code >= 500:
        return Decision(
            Verdict.INCONCLUSIVE,
            Reason.REFUSED,
            f"the server refused the session ({code}); probe from another address",
        )
    if service.out_of_time or any("timed out" in e for e in service.errors):
        return Decision(Verdict.INCONCLUSIVE, Reason.TARPIT, "the server did not answer in time")
    why = service.errors[0] if service.errors else "no test could be run"
    return Decision(Verdict.INCONCLUSIVE, Reason.ERROR, why)


# -- the source address ---------------------------------------------------------------------
def refused_from_chosen_source(service: ServiceResult) -> bool:
    """Every comparison test from the address the user named (``--compare-source``) was
    refused (the deciding one is a refusal only then).

    That address is the outside view asked for: the server relays only for the probing
    address. The automatic loopback address proves nothing alike (mynetworks may cover it).
    """
    c = service.comparison
    return service.comparison_chosen and c is not None and c.outcome in REFUSED


def _compared(service: ServiceResult) -> list[TestResult]:
    """The last attempt of each comparison test (the deciding one alone when no list)."""
    final = list(latest(service.comparisons).values())
    if not final and service.comparison is not None:
        final = [service.comparison]
    return final


def deciding_comparison(results: Iterable[TestResult]) -> TestResult | None:
    """Of the comparison tests (last attempt each): the first accepted, which proves relaying
    for an outsider; else the first without a final answer; else the first refusal (all were
    refused). None when there are none."""
    final = list(latest(results).values())
    for result in final:
        if result.outcome is Outcome.ACCEPTED:
            return result
    for result in final:
        if result.outcome not in REFUSED:
            return result
    return final[0] if final else None


def likely_trusted(service: ServiceResult) -> bool:
    """Whether the server likely trusts the probe's own address (mynetworks and the like).

    A comparison test from another address decides when it ran: refused there means the
    probe's address is trusted; accepted there means the server relays for others too.
    Without one, an address on the target itself (or on its private network) is suspect.
    """
    comparison = service.comparison
    if comparison is not None:
        if comparison.outcome is Outcome.ACCEPTED:
            return False
        if comparison.outcome in REFUSED:
            return True
    if service.source is None:
        return False
    try:
        src = ipaddress.ip_address(service.source)
        dst = ipaddress.ip_address(service.address)
    except ValueError:
        return False
    if src == dst or (src.is_loopback and (dst.is_loopback or not service.source_chosen)):
        return True
    return not src.is_global and not dst.is_global and _same_network(src, dst)


def _same_network(
    a: ipaddress.IPv4Address | ipaddress.IPv6Address,
    b: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> bool:
    if a.version != b.version:
        return False
    prefix = 24 if a.version == 4 else 64
    net = ipaddress.ip_network(f"{a}/{prefix}", strict=False)
    return b in net


def comparison_source(service: ServiceResult, given: str | None) -> str | None:
    """The address to repeat an accepted test from, or None when there is none to use.

    ``given`` is ``--compare-source``. Otherwise a loopback ``--source-address`` probing a
    loopback target (the target's own address included) gets another loopback address. A
    source the kernel picked is never compared: the user did not ask for a loopback view.
    """
    if given:
        return given
    if not service.source_chosen or service.source is None:
        return None
    try:
        src = ipaddress.ip_address(service.source)
        dst = ipaddress.ip_address(service.address)
    except ValueError:
        return None
    if src.version != 4 or not (src.is_loopback and dst.is_loopback):
        return None
    for candidate in COMPARE_LOOPBACK:
        if candidate not in (service.source, service.address):
            return candidate
    return None


def needs_comparison(service: ServiceResult) -> bool:
    """An accepted test that is neither accept-all nor compared yet."""
    counted = counted_acceptances(service)
    return (
        bool(counted)
        and service.comparison is None
        and not all(accept_all(service, r.phase) for r in counted)
    )


def overall(services: list[ServiceResult]) -> tuple[Verdict, Reason | None]:
    """proven > open > inconclusive > closed across services; the reason of the first such."""
    for wanted in (Verdict.PROVEN, Verdict.OPEN, Verdict.INCONCLUSIVE, Verdict.CLOSED):
        for service in services:
            if service.verdict is wanted:
                return wanted, service.reason
    return Verdict.INCONCLUSIVE, Reason.ERROR


def exit_code(verdict: Verdict, findings: list[Finding]) -> int:
    """2 open/proven, 3 inconclusive, 1 closed with weaknesses (low or worse), 0 closed."""
    if verdict in (Verdict.OPEN, Verdict.PROVEN):
        return 2
    if verdict is Verdict.INCONCLUSIVE:
        return 3
    return 1 if any(f.severity >= Severity.LOW for f in findings) else 0
