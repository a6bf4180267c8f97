"""The store contract shared by every backend.

A store holds, per key, one GCRA state (TAT) for each window of the rule that counts it, and the
set of contained keys. :meth:`Store.allow` is one atomic read-decide-write with
:func:`~relayguard.policy.limiter.allow_all` semantics: every window admits the request and is
charged, or none is. Every backend must give identical decisions for identical calls;
:class:`~relayguard.policy.stores.memory.MemoryStore` is the reference.

A window is identified by its limit, period and burst (:func:`window_id`), so editing a rule's
numbers starts that window afresh instead of reinterpreting an old TAT under a new interval.

Calls are short and synchronous. An asyncio server may run them in a worker thread; a store
serialises its own calls, so one store object may be shared by several threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple, Protocol

from relayguard.policy._errors import PolicyError
from relayguard.policy.limiter import Decision, Limit, allow_all


class StoreError(PolicyError):
    """The store could not answer (unreachable, locked, corrupt): apply the fail action."""


class Contained(NamedTuple):
    key: str
    reason: str
    since: float


Charge = tuple[str, Sequence[Limit], float, float]
"""The arguments of one :meth:`Store.allow`: key, windows, now, cost."""


class Check(NamedTuple):
    """One policy request's question to the store (see :meth:`Store.check_many`)."""

    contain_keys: Sequence[str]
    """The keys whose containment is checked first (the login, the sender, the client)."""
    charges: Sequence[Charge]


Verdict = list[Decision] | str
"""The answer to one :class:`Check`: the contained key when one of its keys is contained (nothing
is charged then), else one decision per charge."""


CONTAIN_PREFIX = "contain:"
"""Store keys of CONTAIN rules' windows start with it: ``contain:RULE:KEY``."""


def is_contain_window(store_key: str, key: str) -> bool:
    """``store_key`` holds a CONTAIN rule's windows for ``key``."""
    return (
        store_key.startswith(CONTAIN_PREFIX)
        and store_key.endswith(f":{key}")
        and len(store_key) > len(CONTAIN_PREFIX) + len(key) + 1
    )


@lru_cache(maxsize=4096)
def window_id(limit: Limit) -> str:
    """The name of ``limit``'s state row: stable across restarts and across servers."""
    # float(): Limit(1, 60) == Limit(1, 60.0), so both must name the same row.
    return f"{limit.limit}/{float(limit.period)!r}/{limit.burst}"


class Store(Protocol):
    def allow(self, key: str, windows: Sequence[Limit], now: float, cost: float = 1) -> Decision:
        """Charge ``cost`` to every window of ``key`` at ``now``, all or none.

        ``state`` of the result is the latest TAT over the windows, or ``now`` if that is
        earlier: the key is idle from then on (a TTL of ``state - now``).
        """
        ...

    def allow_many(self, requests: Sequence[Charge]) -> list[Decision]:
        """The decisions of :meth:`allow` called on each request in order, atomically together."""
        ...

    def check_many(self, checks: Sequence[Check]) -> list[Verdict]:
        """The answer to each check in order: the hot path of the server, one call per batch.

        Each check is atomic on its own: one of its keys is contained (that key is the answer,
        nothing is charged), or :meth:`allow_many` of its charges. A backend may make the whole
        batch one transaction.
        """
        ...

    def refund(self, key: str, windows: Sequence[Limit], now: float, cost: float) -> None:
        """Give back ``cost`` units admitted earlier to every window of ``key``."""
        ...

    def refund_many(self, charges: Sequence[Charge]) -> None:
        """:meth:`refund` for each charge (key, windows, now, cost)."""
        ...

    def contain(self, key: str, reason: str, now: float) -> bool:
        """Contain ``key``; True if it was not contained yet (else it keeps its first reason)."""
        ...

    def release(self, key: str) -> bool:
        """Release ``key`` and clear the windows of CONTAIN rules for it (else the key would be
        contained again by its next message); True if it was contained."""
        ...

    def is_contained(self, key: str) -> bool: ...

    def contained(self) -> list[Contained]:
        """Every contained key, oldest first (ties by key)."""
        ...

    def states(self) -> dict[tuple[str, str], float]:
        """The live state rows, by (key, window id): for tests and ``policy show``."""
        ...

    def close(self) -> None: ...


def check_each(store: Store, checks: Sequence[Check]) -> list[Verdict]:
    """:meth:`Store.check_many` from the store's single calls (for stores with no batch path)."""
    verdicts: list[Verdict] = []
    for check in checks:
        held = next((k for k in check.contain_keys if k and store.is_contained(k)), None)
        verdicts.append(held if held is not None else store.allow_many(check.charges))
    return verdicts


def decide(
    windows: Sequence[Limit], states: Sequence[float], now: float, cost: float
) -> tuple[Decision, tuple[float, ...]]:
    """The decision and the states to write: the shared core of every backend."""
    allowed, new, retry_after = allow_all(windows, states, now, cost)
    # Floored at now: an idle key reads the same whether or not its expired rows were deleted.
    return Decision(allowed, max(now, *new), retry_after), new
