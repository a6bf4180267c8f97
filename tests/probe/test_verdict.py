"""Verdict rules as tables: test outcomes in, verdict and reason out. No sockets."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from relayguard.findings import Finding, Severity, Subject
from relayguard.probe.catalogue import BY_ID, PLAN, Kind
from relayguard.probe.classify import Outcome
from relayguard.probe.result import (
    Phase,
    ProofResult,
    Reason,
    ServiceResult,
    Verdict,
)
from relayguard.probe.result import TestResult as Trial  # not "Test*": pytest would collect it
from relayguard.probe.verdict import (
    comparison_source,
    decide,
    deciding_comparison,
    exit_code,
    likely_trusted,
    overall,
)

RELAY_IDS = [t.id for t in PLAN if t.kind is Kind.RELAY]  # the 29 relay tests


def result(key: str, outcome: str, attempt: int = 1) -> Trial:
    phase, _, test_id = key.rpartition("/")
    test = BY_ID[test_id]
    return Trial(
        test=test_id, kind=test.kind, phase=Phase(phase or "plain"), technique=test.technique,
        helo="probe.example.com", sender="probe@example.org", recipient="r@example.net",
        outcome=Outcome(outcome), attempt=attempt,
    )  # fmt: skip


def service(
    spec: str, *, default: str = "relay-denied", tls: str | None = None, **kw: Any
) -> ServiceResult:
    """``spec``: ``id:outcome`` words (``starttls/R01:accepted`` for another phase). Controls
    default to C1 recipient-rejected, C2 relay-denied, C3 accepted; RELAY_IDS to ``default``."""
    given = dict(word.split(":") for word in spec.split())
    plain = {"C1": "recipient-rejected", "C2": "relay-denied", "C3": "accepted"}
    plain |= dict.fromkeys(RELAY_IDS, default)
    if tls is not None:  # a STARTTLS phase with every relay test answered so
        plain |= {f"starttls/{i}": tls for i in RELAY_IDS}
    tests = [result(k, given.pop(k, v)) for k, v in plain.items()]
    tests += [result(k, v) for k, v in given.items()]
    options: dict[str, Any] = {"address": "198.51.100.25", "port": 25, "source": "203.0.113.5"} | kw
    return ServiceResult(tests=tests, **options)


CASES = [
    # spec, keyword arguments, verdict, reason
    ("", {}, Verdict.CLOSED, None),
    ("R01:accepted", {}, Verdict.OPEN, None),
    ("R16a:accepted S01:accepted", {}, Verdict.OPEN, None),
    ("R01:accepted C1:accepted C2:accepted", {}, Verdict.INCONCLUSIVE, Reason.ACCEPT_ALL),
    # C1 accepted alone: a catch-all for local users, not accept-all
    ("R01:accepted C1:accepted", {}, Verdict.OPEN, None),
    # a local-looking form accepted where unknown local users are accepted: local delivery
    ("R04:accepted C1:accepted", {}, Verdict.CLOSED, None),
    ("R04:accepted C1:recipient-rejected", {}, Verdict.OPEN, None),
    ("R04:accepted C1:not-run", {}, Verdict.INCONCLUSIVE, Reason.ERROR),
    ("R04:accepted C1:temporary", {}, Verdict.INCONCLUSIVE, Reason.GREYLISTED),
    ("R01:temporary", {}, Verdict.INCONCLUSIVE, Reason.GREYLISTED),
    ("H01:temporary R02:throttled", {}, Verdict.INCONCLUSIVE, Reason.THROTTLED),
    ("R01:no-reply R02:not-run", {}, Verdict.INCONCLUSIVE, Reason.TARPIT),
    ("C1:no-reply", {"default": "not-run"}, Verdict.INCONCLUSIVE, Reason.TARPIT),
    ("R01:connection-lost", {}, Verdict.INCONCLUSIVE, Reason.ERROR),
    ("R01:not-run", {"out_of_time": True}, Verdict.INCONCLUSIVE, Reason.TARPIT),
    ("", {"default": "recipient-rejected"}, Verdict.INCONCLUSIVE, Reason.DOMAIN_REJECTED),
    ("", {"default": "sender-rejected"}, Verdict.INCONCLUSIVE, Reason.SENDER_REJECTED),
    ("", {"default": "form-rejected"}, Verdict.INCONCLUSIVE, Reason.DOMAIN_REJECTED),
    # one real policy refusal makes the validation refusals of the other forms count
    ("R01:relay-denied", {"default": "recipient-rejected"}, Verdict.CLOSED, None),
    ("", {"default": "auth-required"}, Verdict.CLOSED, Reason.AUTH_REQUIRED),
    ("", {"default": "tls-required"}, Verdict.INCONCLUSIVE, Reason.TLS_REQUIRED),
    ("", {"default": "tls-required", "tls": "relay-denied"}, Verdict.CLOSED, None),
    ("", {"default": "tls-required", "tls": "auth-required"}, Verdict.CLOSED,
     Reason.AUTH_REQUIRED),
    ("starttls/R01:temporary", {"default": "tls-required", "tls": "relay-denied"},
     Verdict.INCONCLUSIVE, Reason.GREYLISTED),
    ("starttls/R01:accepted", {}, Verdict.OPEN, None),
    # the probe's own address, or its private network, is likely trusted
    ("R01:accepted", {"source": "198.51.100.25"}, Verdict.INCONCLUSIVE, Reason.TRUSTED_SOURCE),
    ("R01:accepted", {"address": "10.0.0.25", "source": "10.0.0.5"}, Verdict.INCONCLUSIVE,
     Reason.TRUSTED_SOURCE),
    ("R01:accepted", {"address": "203.0.113.80", "source": "10.0.0.5"}, Verdict.OPEN, None),
    ("R01:accepted", {"address": "127.0.0.1", "source": "127.0.0.1"}, Verdict.INCONCLUSIVE,
     Reason.TRUSTED_SOURCE),
    ("R01:accepted", {"address": "127.0.0.1", "source": "127.0.0.2", "source_chosen": True},
     Verdict.INCONCLUSIVE, Reason.TRUSTED_SOURCE),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "kw", "verdict", "reason"), CASES)
def test_decide(spec: str, kw: dict[str, Any], verdict: Verdict, reason: Reason | None) -> None:
    decision = decide(service(spec, **kw))
    assert (decision.verdict, decision.reason) == (verdict, reason)


def test_counted_and_why() -> None:
    decision = decide(service("R01:accepted R16a:accepted R04:accepted"))
    assert [f"{r.phase.value}/{r.test}" for r in decision.counted] == [
        "plain/R01",
        "plain/R04",
        "plain/R16a",
    ]
    assert decision.why == "3 relay tests accepted (first: R01, external recipient)"
    closed = decide(service(""))
    assert closed.why == "all 29 relay tests were refused (plain)"
    grey = decide(service("R01:temporary H01:temporary"))
    assert grey.why == "2 of 29 relay tests got no final answer (temporary)"


def test_latest_attempt_decides() -> None:
    s = service("")
    s.tests.insert(3, result("R01", "temporary", attempt=1))
    s.tests.append(result("R01", "relay-denied", attempt=2))
    assert decide(s).verdict is Verdict.CLOSED
    s.tests.append(result("R01", "temporary", attempt=3))
    assert decide(s).reason is Reason.GREYLISTED


@pytest.mark.parametrize(
    ("comparison", "verdict", "reason"),
    [
        (Outcome.ACCEPTED, Verdict.OPEN, None),
        (Outcome.RELAY_DENIED, Verdict.INCONCLUSIVE, Reason.TRUSTED_SOURCE),
        (Outcome.NO_REPLY, Verdict.INCONCLUSIVE, Reason.TRUSTED_SOURCE),  # no answer: suspect
    ],
)
def test_comparison_decides_trust(
    comparison: Outcome, verdict: Verdict, reason: Reason | None
) -> None:
    s = service("R01:accepted", address="127.0.0.1", source="127.0.0.2", source_chosen=True)
    s.comparison = result("R01", comparison.value)
    assert (decide(s).verdict, decide(s).reason) == (verdict, reason)


def test_comparison_refused_makes_even_a_public_source_trusted() -> None:
    s = service("R01:accepted")
    assert not likely_trusted(s)
    s.comparison = result("R01", "relay-denied")
    assert likely_trusted(s)


@pytest.mark.parametrize(
    ("compared", "deciding"),
    [
        ("R01:relay-denied R02:relay-denied", "R01:relay-denied"),
        ("R01:relay-denied R02:accepted R03:temporary", "R02:accepted"),
        ("R01:relay-denied R02:temporary R03:no-reply", "R02:temporary"),
        ("starttls/R01:relay-denied R01:not-run", "R01:not-run"),
        ("", None),
    ],
)
def test_deciding_comparison(compared: str, deciding: str | None) -> None:
    results = [result(*word.split(":")) for word in compared.split()]
    got = deciding_comparison(results)
    assert (f"{got.test}:{got.outcome.value}" if got else None) == deciding


def test_deciding_comparison_takes_the_last_attempt() -> None:
    retried = [result("R01", "temporary"), result("R01", "relay-denied", attempt=2)]
    got = deciding_comparison(retried)
    assert got is not None and (got.outcome, got.attempt) == (Outcome.RELAY_DENIED, 2)


@pytest.mark.parametrize(
    ("compared", "verdict", "reason", "why"),
    [
        ("R01:relay-denied R02:relay-denied", Verdict.CLOSED, None,
         "relays only for the probing address 127.0.0.77 (trusted): all 2 relay tests "
         "accepted from it were refused from 127.0.0.2 (first: R01, relay-denied)"),
        ("R01:relay-denied", Verdict.CLOSED, None,
         "relays only for the probing address 127.0.0.77 (trusted): the same test (R01) "
         "from 127.0.0.2 was refused (relay-denied)"),
        ("R01:relay-denied R02:accepted", Verdict.OPEN, None,
         "2 relay tests accepted (first: R01, external recipient); plain/R02 was accepted "
         "from 127.0.0.2 too"),
        ("R01:relay-denied R02:temporary", Verdict.INCONCLUSIVE, Reason.GREYLISTED,
         "relaying was accepted from 127.0.0.77; from 127.0.0.2, 1 of 2 repeated relay tests "
         "got no final answer (temporary)"),
        ("R01:no-reply R02:not-run", Verdict.INCONCLUSIVE, Reason.TARPIT,
         "relaying was accepted from 127.0.0.77; from 127.0.0.2, 2 of 2 repeated relay tests "
         "got no final answer (no-reply)"),
    ],
)  # fmt: skip
def test_every_named_comparison_must_be_refused_for_closed(
    compared: str, verdict: Verdict, reason: Reason | None, why: str
) -> None:
    s = service("R01:accepted R02:accepted", address="127.0.0.1", source="127.0.0.77",
                source_chosen=True, comparison_chosen=True)  # fmt: skip
    s.comparisons = [
        replace(result(*word.split(":")), source="127.0.0.2") for word in compared.split()
    ]
    s.comparison = deciding_comparison(s.comparisons)
    decision = decide(s)
    assert (decision.verdict, decision.reason, decision.why) == (verdict, reason, why)


def test_proven_needs_an_accepted_message() -> None:
    s = service("R01:accepted")
    s.proof = ProofResult(recipient="c@canary.example", accepted=False, message_id="<m>", code=554)
    assert decide(s).verdict is Verdict.OPEN
    s.proof = ProofResult(recipient="c@canary.example", accepted=True, message_id="<m>", code=250)
    decision = decide(s)
    assert decision.verdict is Verdict.PROVEN
    assert decision.why.endswith("; the canary message to c@canary.example was accepted")


@pytest.mark.parametrize(
    ("kw", "reason", "why"),
    [
        ({"banner_code": 554}, Reason.REFUSED,
         "the server refused the session (554); probe from another address"),
        ({"banner_code": 421}, Reason.THROTTLED, "the server answered 421"),
        ({"out_of_time": True}, Reason.TARPIT, "the server did not answer in time"),
        ({"errors": ["cannot connect to 192.0.2.1 port 25: Connection refused"]}, Reason.ERROR,
         "cannot connect to 192.0.2.1 port 25: Connection refused"),
        ({}, Reason.ERROR, "no test could be run"),
    ],
)  # fmt: skip
def test_nothing_ran(kw: dict[str, Any], reason: Reason, why: str) -> None:
    s = ServiceResult(address="192.0.2.1", port=25, tests=[result("C1", "not-run")], **kw)
    decision = decide(s)
    assert (decision.verdict, decision.reason, decision.why) == (Verdict.INCONCLUSIVE, reason, why)


@pytest.mark.parametrize(
    ("source", "chosen", "target", "given", "expected"),
    [
        ("127.0.0.2", True, "127.0.0.1", None, "127.0.0.253"),
        ("127.0.0.253", True, "127.0.0.1", None, "127.0.0.254"),
        ("127.0.0.1", False, "127.0.0.1", None, None),  # the kernel's choice: from itself
        ("127.0.0.1", True, "127.0.0.1", None, "127.0.0.253"),  # as --help says
        ("10.0.0.5", True, "10.0.0.25", None, None),
        ("::1", True, "::1", None, None),
        ("203.0.113.5", False, "198.51.100.25", "203.0.113.6", "203.0.113.6"),
    ],
)
def test_comparison_source(
    source: str, chosen: bool, target: str, given: str | None, expected: str | None
) -> None:
    s = ServiceResult(address=target, port=25, source=source, source_chosen=chosen)
    assert comparison_source(s, given) == expected


def finding(severity: Severity) -> Finding:
    return Finding(indicator="x", severity=severity, subject=Subject("service", "a:25"), title="t")


@pytest.mark.parametrize(
    ("verdict", "severities", "code"),
    [
        (Verdict.CLOSED, [], 0),
        (Verdict.CLOSED, [Severity.INFO], 0),
        (Verdict.CLOSED, [Severity.INFO, Severity.LOW], 1),
        (Verdict.CLOSED, [Severity.CRITICAL], 1),
        (Verdict.OPEN, [], 2),
        (Verdict.PROVEN, [Severity.CRITICAL], 2),
        (Verdict.INCONCLUSIVE, [Severity.HIGH], 3),
    ],
)
def test_exit_code(verdict: Verdict, severities: list[Severity], code: int) -> None:
    assert exit_code(verdict, [finding(s) for s in severities]) == code


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([Verdict.CLOSED, Verdict.OPEN], Verdict.OPEN),
        ([Verdict.INCONCLUSIVE, Verdict.CLOSED], Verdict.INCONCLUSIVE),
        ([Verdict.OPEN, Verdict.PROVEN], Verdict.PROVEN),
        ([Verdict.CLOSED, Verdict.CLOSED], Verdict.CLOSED),
        ([], Verdict.INCONCLUSIVE),
    ],
)
def test_overall(verdicts: list[Verdict], expected: Verdict) -> None:
    services = [ServiceResult(address="192.0.2.1", port=p, verdict=v) for p, v in
                enumerate(verdicts, 25)]  # fmt: skip
    assert overall(services)[0] is expected


def test_a_missing_relay_test_is_an_open_question() -> None:
    s = service("")
    s.tests = [t for t in s.tests if t.test != "H04"]
    decision = decide(s)
    assert (decision.verdict, decision.reason) == (Verdict.INCONCLUSIVE, Reason.ERROR)
    assert decision.why == "1 of 28 relay tests got no final answer (not-run)"
