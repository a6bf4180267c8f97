"""decide(): request + charges + store answer -> reply, record, refund, log event."""

from __future__ import annotations

import pytest

from relayguard.policy.codec import DUNNO, Action, PolicyRequest
from relayguard.policy.decide import (
    STORE_DOWN,
    StoreAnswer,
    StoreFailure,
    containment_keys,
    decide,
    store_key,
)
from relayguard.policy.rules import Charge, RuleSet, parse_rules
from relayguard.policy.stores import MemoryStore

T0 = 1_700_000_000.0


def _rules() -> RuleSet:
    def rule(name: str, action: str, text: str | None = None) -> dict[str, object]:
        table: dict[str, object] = {
            "name": name,
            "key": "sasl_username",
            "count": "messages",
            "windows": ["1/hour"],
            "action": action,
        }
        if text is not None:
            table["text"] = text
        return table

    return parse_rules(
        {
            "rules": [
                rule("warn", "WARN"),
                rule("hold", "HOLD", "Held for review"),
                rule("defer", "DEFER", "451 4.7.1 Slow down"),
                rule("reject", "REJECT", "550 5.7.1 No more"),
            ]
        }
    )


def _request(**attrs: str) -> PolicyRequest:
    base = {"request": "smtpd_access_policy", "protocol_state": "END-OF-MESSAGE"}
    base.update(attrs)
    return PolicyRequest(base)


ALICE = _request(sasl_username="alice", sender="Alice@Example.org", instance="1.1")


def _charges() -> list[Charge]:
    return _rules().charges(ALICE, T0)


def _answer(*allowed: bool) -> StoreAnswer:
    store = MemoryStore()
    decisions = []
    for charge, ok in zip(_charges(), allowed, strict=True):
        skey = store_key(charge)
        if not ok:  # fill the 1/hour window first
            store.allow(skey, charge.windows, T0, 1)
        decisions.append(store.allow(skey, charge.windows, T0, 1))
    return StoreAnswer("", tuple(decisions))


def test_charges_and_keys() -> None:
    charges = _charges()
    assert [store_key(c) for c in charges] == [
        "warn:alice",
        "hold:alice",
        "defer:alice",
        "reject:alice",
    ]
    assert containment_keys(ALICE) == ("alice", "alice@example.org")
    assert containment_keys(_request(sender="Bob@Example.org", client_address="192.0.2.7")) == (
        "bob@example.org",
        "192.0.2.7",
    )
    assert containment_keys(_request()) == ()


# allowed per rule (warn, hold, defer, reject) -> wire, recorded rules, refunded rules, decision
CASES = [
    ((True, True, True, True), b"action=DUNNO\n\n", ["warn", "hold", "defer", "reject"], [], None),
    ((False, True, True, True), b"action=DUNNO\n\n", ["hold", "defer", "reject"], [], "warn"),
    (
        (True, False, True, True),
        b"action=HOLD Held for review\n\n",
        ["warn", "defer", "reject"],
        [],
        "limited",
    ),
    (
        (True, False, False, True),
        b"action=451 4.7.1 Slow down\n\n",
        [],
        ["warn", "reject"],
        "limited",
    ),
    ((True, True, False, False), b"action=550 5.7.1 No more\n\n", [], ["warn", "hold"], "limited"),
    ((False, False, False, False), b"action=550 5.7.1 No more\n\n", [], [], "limited"),
]


@pytest.mark.parametrize(("allowed", "wire", "recorded", "refunded", "decision"), CASES)
def test_decide_table(
    allowed: tuple[bool, ...],
    wire: bytes,
    recorded: list[str],
    refunded: list[str],
    decision: str | None,
) -> None:
    outcome = decide(ALICE, _charges(), _answer(*allowed))
    assert outcome.reply.wire == wire
    assert [c.rule.name for c in outcome.record] == recorded
    assert [c.rule.name for c in outcome.refund] == refunded
    if decision is None:
        assert outcome.event is None
    else:
        assert outcome.event is not None
        assert outcome.event["decision"] == decision
        assert outcome.event["sasl_username"] == "alice"


def test_limited_event_fields() -> None:
    outcome = decide(ALICE, _charges(), _answer(False, True, False, True))
    assert outcome.event == {
        "event": "policy_decision",
        "decision": "limited",
        "action": "DEFER",
        "rule": "defer",
        "key": "alice",
        "text": "Slow down",
        "warned": ["warn"],
        "sasl_username": "alice",
        "sender": "Alice@Example.org",
        "protocol_state": "END-OF-MESSAGE",
    }


def test_contained_is_held_and_charges_nothing() -> None:
    outcome = decide(ALICE, _charges(), StoreAnswer("alice"))
    assert outcome.reply.wire == (
        b"action=HOLD held for review: the sending account is contained by relayguard\n\n"
    )
    assert outcome.record == ()
    assert outcome.refund == ()
    assert outcome.event is not None
    assert (outcome.event["decision"], outcome.event["key"]) == ("contained", "alice")


@pytest.mark.parametrize(
    ("fail_closed", "wire", "decision"),
    [
        (False, b"action=DUNNO\n\n", "fail-open"),
        (True, b"action=DEFER_IF_PERMIT 4.3.0 policy store unavailable\n\n", "fail-closed"),
    ],
)
def test_store_failure(fail_closed: bool, wire: bytes, decision: str) -> None:
    outcome = decide(ALICE, _charges(), StoreFailure("boom"), fail_closed=fail_closed)
    assert outcome.reply.wire == wire
    assert outcome.record == ()
    assert outcome.event is not None
    assert (outcome.event["decision"], outcome.event["error"]) == (decision, "boom")


def test_no_charges_is_silent_dunno() -> None:
    outcome = decide(_request(protocol_state="RCPT"), [], StoreAnswer())
    assert outcome.reply is DUNNO
    assert outcome.event is None
    assert STORE_DOWN.action is Action.DEFER_IF_PERMIT


def test_decision_count_mismatch_is_a_bug() -> None:
    with pytest.raises(ValueError, match="0 decisions for 4 charges"):
        decide(ALICE, _charges(), StoreAnswer())


def test_contain_rule_holds_contains_and_outranks_reject() -> None:
    rules = parse_rules(
        {
            "local_domains": ["example.org"],
            "rules": [
                {
                    "name": "no-more",
                    "key": "sasl_username",
                    "count": "external_domains",
                    "windows": ["1/hour"],
                    "action": "REJECT",
                },
                {
                    "name": "compromise",
                    "key": "sasl_username",
                    "count": "external_domains",
                    "windows": ["1/hour", "5/day"],
                    "action": "CONTAIN",
                },
            ],
        }
    )
    store = MemoryStore()
    rcpt = _request(
        protocol_state="RCPT", sasl_username="alice", recipient="x@one.example", instance="9"
    )
    second = _request(
        protocol_state="RCPT", sasl_username="alice", recipient="y@two.example", instance="9"
    )
    first = rules.charges(rcpt, T0)
    for c in first:
        store.allow(store_key(c), c.windows, T0, c.cost)
    charges = rules.charges(second, T0)
    decisions = tuple(store.allow(store_key(c), c.windows, T0, c.cost) for c in charges)
    outcome = decide(second, charges, StoreAnswer("", decisions))
    assert outcome.reply.wire == (
        b"action=HOLD held for review: the sending account is contained by relayguard\n\n"
    )
    reason = "rule 'compromise': over 1 per hour or 5 per day external_domains of one sasl_username"
    assert outcome.contain == ("alice", reason)
    assert outcome.refund == ()
    assert outcome.event is not None
    assert (outcome.event["decision"], outcome.event["rule"], outcome.event["reason"]) == (
        "contain",
        "compromise",
        reason,
    )
