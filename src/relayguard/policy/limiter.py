"""Rate limiting with GCRA (the generic cell rate algorithm): one float of state per key.

Theory of operation
-------------------
A :class:`Limit` of ``limit`` units per ``period`` seconds admits one unit every
``interval = period / limit`` seconds on average, and up to ``burst`` units back to back after an
idle spell. The state of a key is its *theoretical arrival time* (TAT): the time at which the key
would be idle again if it stopped now. A request of ``cost`` units at ``now`` would push the TAT
to ``max(tat, now) + cost * interval``; it is admitted when that is at most
``burst * interval`` ahead of ``now``. A refused request leaves the state unchanged and gets
``retry_after``, the wait after which the same request would be admitted.

Time is passed in (seconds; Unix time when several servers share a store, because monotonic
clocks differ between hosts) and must be >= 0, so ``0.0`` is the state of a key never seen.
A key whose TAT is <= now is idle and its state may be deleted (a store TTL of ``tat - now``).

Guarantee (tested with hypothesis): over any window of ``w`` seconds the admitted cost is at
most ``burst + w / interval``; so over any window of one ``period`` it is at most
``limit + burst - 1`` units with integer costs. ``burst=1`` makes "100/hour" mean "never more
than 100 in any hour", at the price of spacing messages ``interval`` apart; a larger burst
trades that exactness for tolerance of short peaks. Conversely a sender whose requests are
never closer than ``cost * interval`` apart (and cost <= burst) is never refused.

Both bounds hold up to a tolerance: a request due within one microsecond, or within the rounding
that a full burst of additions can accumulate on an epoch-sized TAT (``drift * now``, 60 us for a
burst of 500 today), is admitted. That is what keeps the 500th message of a 500-message burst
from being refused by floating-point rounding; it can never admit a whole extra unit.

A request costing more than ``burst`` can never be admitted: it is refused with an infinite
``retry_after``; callers should count such a message in other units or raise the burst.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

NEW: Final = 0.0
"""The state of a key never seen (any TAT <= now is equivalent)."""


class Decision(NamedTuple):
    allowed: bool
    state: float
    """The new TAT to store (unchanged when refused)."""
    retry_after: float
    """Seconds until the same request would be admitted; 0.0 when allowed."""


_TOLERANCE = 1e-6  # seconds
# Relative rounding of one addition to an epoch-sized time (2**-52, twice the bound).
_ROUNDING = 2.0**-52


@dataclass(frozen=True, slots=True)
class Limit:
    """``limit`` units per ``period`` seconds, up to ``burst`` units at once."""

    limit: int
    period: float
    burst: int = 1
    interval: float = field(init=False, repr=False, compare=False)
    capacity: float = field(init=False, repr=False, compare=False)
    drift: float = field(init=False, repr=False, compare=False)
    """Per second of ``now``: how far a full burst of additions can round the TAT."""

    def __post_init__(self) -> None:
        if self.limit < 1 or self.burst < 1 or not 0 < self.period < math.inf:
            raise ValueError(f"bad limit {self.limit}/{self.period}s burst {self.burst}")
        interval = self.period / self.limit
        object.__setattr__(self, "interval", interval)
        object.__setattr__(self, "capacity", self.burst * interval)
        object.__setattr__(self, "drift", (self.burst + 1) * _ROUNDING)

    def allow(self, state: float, now: float, cost: float = 1) -> Decision:
        """Admit ``cost`` units at ``now`` for a key whose TAT is ``state``, or refuse them."""
        if cost <= 0:
            if cost < 0:
                raise ValueError("negative cost: use refund()")
            return Decision(True, state, 0.0)
        if cost > self.burst:
            return Decision(False, state, math.inf)
        tat = (state if state > now else now) + cost * self.interval
        wait = tat - self.capacity - now
        # Tolerance: 50 x 1.2 s lands a hair above 60 s in floating point, and every addition
        # to an epoch-sized TAT rounds by up to ~0.1 us, so a burst of 500 can end 60 us late;
        # neither may refuse the last message of a full burst. The tolerance is a microsecond,
        # or the rounding a full burst can accumulate at this time if that is more: far below
        # anything a mail limit cares about.
        tolerance = self.drift * now
        if wait > (tolerance if tolerance > _TOLERANCE else _TOLERANCE):
            return Decision(False, state, wait)
        return Decision(True, tat, 0.0)

    def refund(self, state: float, now: float, cost: float) -> float:
        """Give back ``cost`` units admitted earlier (a message rejected after its reservation)."""
        tat = state - cost * self.interval
        return tat if tat > now else now

    def remaining(self, state: float, now: float) -> int:
        """Units that could be admitted at once at ``now``."""
        used = state - now if state > now else 0.0
        return int((self.capacity - used) / self.interval + 1e-9)


def allow_all(
    limits: Sequence[Limit], states: Sequence[float], now: float, cost: float = 1
) -> tuple[bool, tuple[float, ...], float]:
    """Several windows of one key (e.g. 100/hour and 1000/day): all admit, or none is charged.

    ``retry_after`` is the longest wait among the refusing windows; since each window only
    relaxes with time, the request is admitted by all of them after that wait.
    """
    new: list[float] = []
    retry_after = 0.0
    for limit, state in zip(limits, states, strict=True):
        allowed, tat, wait = limit.allow(state, now, cost)
        new.append(tat)
        if not allowed and wait > retry_after:
            retry_after = wait
    if retry_after > 0:
        return False, tuple(states), retry_after
    return True, tuple(new), 0.0
