"""An in-process store: the reference semantics, and the store of unit tests."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from relayguard.policy.limiter import NEW, Decision, Limit
from relayguard.policy.stores.base import (
    Charge,
    Check,
    Contained,
    Verdict,
    check_each,
    decide,
    is_contain_window,
    window_id,
)


class MemoryStore:
    """State in dicts, lost on exit. Idle keys are dropped when touched or by :meth:`purge`."""

    def __init__(self) -> None:
        self._tat: dict[tuple[str, str], float] = {}
        self._contained: dict[str, Contained] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, windows: Sequence[Limit], now: float, cost: float = 1) -> Decision:
        ids = [(key, window_id(w)) for w in windows]
        with self._lock:
            tat = self._tat
            states = [tat.get(i, NEW) for i in ids]
            decision, new = decide(windows, states, now, cost)
            for i, state in zip(ids, new, strict=True):
                if state > now:
                    tat[i] = state
                else:
                    tat.pop(i, None)
        return decision

    def allow_many(self, requests: Sequence[Charge]) -> list[Decision]:
        return [self.allow(*request) for request in requests]

    def check_many(self, checks: Sequence[Check]) -> list[Verdict]:
        return check_each(self, checks)

    def refund_many(self, charges: Sequence[Charge]) -> None:
        for charge in charges:
            self.refund(*charge)

    def refund(self, key: str, windows: Sequence[Limit], now: float, cost: float) -> None:
        with self._lock:
            tat = self._tat
            for w in windows:
                i = (key, window_id(w))
                state = w.refund(tat.get(i, NEW), now, cost)
                if state > now:
                    tat[i] = state
                else:
                    tat.pop(i, None)

    def purge(self, now: float) -> int:
        """Drop every idle state row; the number dropped."""
        with self._lock:
            idle = [i for i, state in self._tat.items() if state <= now]
            for i in idle:
                del self._tat[i]
        return len(idle)

    def states(self) -> dict[tuple[str, str], float]:
        """A copy of the live state rows, by (key, window id): for tests and ``policy show``."""
        with self._lock:
            return dict(self._tat)

    def contain(self, key: str, reason: str, now: float) -> bool:
        with self._lock:
            if key in self._contained:
                return False
            self._contained[key] = Contained(key, reason, now)
            return True

    def release(self, key: str) -> bool:
        with self._lock:
            for i in [i for i in self._tat if is_contain_window(i[0], key)]:
                del self._tat[i]
            return self._contained.pop(key, None) is not None

    def is_contained(self, key: str) -> bool:
        return key in self._contained

    def contained(self) -> list[Contained]:
        with self._lock:
            return sorted(self._contained.values(), key=lambda c: (c.since, c.key))

    def close(self) -> None:
        pass
