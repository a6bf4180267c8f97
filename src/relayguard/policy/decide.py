"""The policy decision: request + charges + what the store said -> reply. Pure, no I/O, no clock.

The server asks the store, for one request, whether the account is contained and, if not, to
admit every charge (:meth:`Store.allow_many` with :func:`store_key` keys); it passes what came
back (a :class:`StoreAnswer`, or a :class:`StoreFailure` on error or timeout) to :func:`decide`
and carries out the :class:`Outcome`: send ``reply``, give back ``refund``, record ``record``
in the rule set, and log ``event`` when it is not None (every non-DUNNO decision, WARN and store
failures).

Precedence when several windows are full: a CONTAIN rule first (the message is held and the
rule's key contained: ``contain`` of the outcome), then REJECT, then DEFER, then HOLD; WARN only
logs.
When the mail is refused (DEFER, REJECT) the charges admitted for it are refunded, so a
message deferred by one rule does not use up another rule's allowance each time it is retried;
when the refusal is of the whole message (at DATA or END-OF-MESSAGE), ``refused_message`` asks
the caller to give back what the message's earlier stages were charged too
(:meth:`RuleSet.refundable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from relayguard.policy.codec import DUNNO, Action, PolicyReply, PolicyRequest
from relayguard.policy.limiter import Decision
from relayguard.policy.rules import (
    CONTAINED_TEXT,
    DATA,
    END_OF_MESSAGE,
    RESERVED_NAME,
    Charge,
    client_address_key,
    sasl_username_key,
    sender_key,
)

STORE_DOWN: Final = PolicyReply(Action.DEFER_IF_PERMIT, "4.3.0 policy store unavailable")

_SEVERITY: Final = {Action.REJECT: 3, Action.DEFER: 2, Action.HOLD: 1}
_HOLD_CONTAINED: Final = PolicyReply(Action.HOLD, CONTAINED_TEXT)


def containment_keys(request: PolicyRequest) -> tuple[str, ...]:
    """The keys a containment may name: the SASL login, the envelope sender, the client address.

    Containing a login holds its mail whatever sender it uses; containing an address holds every
    message with that envelope sender (a forged or cracked mailbox used without a login).
    """
    keys = (sasl_username_key(request), sender_key(request), client_address_key(request))
    return tuple(k for k in keys if k)


def store_key(charge: Charge) -> str:
    """The store key of one charge: rules never share state even when their keys coincide.

    ``NAME:KEY``; for a CONTAIN rule ``contain:NAME:KEY``, so that releasing KEY can find and
    clear the windows that contained it (no rule name is ``contain`` or starts ``contain:``).
    """
    rule = charge.rule
    if rule.contains:
        return f"{RESERVED_NAME}:{rule.name}:{charge.key}"
    return f"{rule.name}:{charge.key}"


@dataclass(frozen=True, slots=True)
class StoreAnswer:
    """What the store said: the ``contained`` key of the request, else one decision per charge."""

    contained: str = ""
    decisions: tuple[Decision, ...] = ()


@dataclass(frozen=True, slots=True)
class StoreFailure:
    """The store raised or did not answer in time."""

    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    reply: PolicyReply
    record: tuple[Charge, ...] = ()
    """Charges admitted for mail that goes on: pass to :meth:`RuleSet.record`."""
    refund: tuple[Charge, ...] = ()
    """Charges admitted for mail that was refused: give them back to the store."""
    contain: tuple[str, str] | None = None
    """(key, reason): a CONTAIN rule overflowed; contain the key in the store and raise an alert."""
    refused_message: bool = False
    """The whole message is refused (DEFER or REJECT at DATA or END-OF-MESSAGE): give back what
    its earlier stages were charged too."""
    event: dict[str, object] | None = field(default=None, compare=False)


def _event(
    request: PolicyRequest, decision: str, reply: PolicyReply, **extra: object
) -> dict[str, object]:
    event: dict[str, object] = {
        "event": "policy_decision",
        "decision": decision,
        "action": reply.action.value,
    }
    event.update(extra)
    for name in ("sasl_username", "sender", "client_address", "queue_id", "protocol_state"):
        value = request.attributes.get(name, "")
        if value:
            event[name] = value
    return event


def decide(
    request: PolicyRequest,
    charges: Sequence[Charge],
    answer: StoreAnswer | StoreFailure,
    *,
    fail_closed: bool = False,
) -> Outcome:
    """The outcome of ``request`` given ``charges`` and the store's ``answer`` to them."""
    if isinstance(answer, StoreFailure):
        reply = STORE_DOWN if fail_closed else DUNNO
        mode = "fail-closed" if fail_closed else "fail-open"
        return Outcome(reply, event=_event(request, mode, reply, error=answer.reason))
    if answer.contained:
        event = _event(request, "contained", _HOLD_CONTAINED, key=answer.contained)
        return Outcome(_HOLD_CONTAINED, event=event)
    if len(answer.decisions) != len(charges):
        raise ValueError(f"{len(answer.decisions)} decisions for {len(charges)} charges")
    admitted: list[Charge] = []
    blocking: Charge | None = None
    containing: Charge | None = None
    warned: list[str] = []
    for charge, decision in zip(charges, answer.decisions, strict=True):
        if decision.allowed:
            admitted.append(charge)
            continue
        action = charge.action.action
        if charge.rule.contains:
            containing = containing or charge
        elif action is Action.WARN:
            warned.append(charge.rule.name)
        elif blocking is None or _SEVERITY[action] > _SEVERITY[blocking.action.action]:
            blocking = charge
    if containing is not None:
        reason = containing.rule.describe()
        reply = containing.action
        event = _event(
            request, "contain", reply, rule=containing.rule.name, key=containing.key, reason=reason
        )
        return Outcome(reply, record=tuple(admitted), contain=(containing.key, reason), event=event)
    if blocking is None:
        if not warned:
            return Outcome(DUNNO, record=tuple(admitted))
        event = _event(request, "warn", DUNNO, rules=warned)
        return Outcome(DUNNO, record=tuple(admitted), event=event)
    reply = blocking.action
    event = _event(
        request, "limited", reply, rule=blocking.rule.name, key=blocking.key, text=reply.text
    )
    if warned:
        event["warned"] = warned
    if reply.action is Action.HOLD:
        return Outcome(reply, record=tuple(admitted), event=event)
    whole = request.protocol_state in (DATA, END_OF_MESSAGE)
    return Outcome(reply, refund=tuple(admitted), refused_message=whole, event=event)
