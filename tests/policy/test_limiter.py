"""GCRA semantics at the window edges, and hypothesis properties over request sequences."""

from __future__ import annotations

import math
from bisect import bisect_left
from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayguard.policy.limiter import NEW, Decision, Limit, allow_all

T0 = 1_700_000_000.0  # Unix time, as a store shared by several servers would use


def run(limit: Limit, times: list[float], cost: int = 1) -> list[bool]:
    state, out = NEW, []
    for now in times:
        allowed, state, _ = limit.allow(state, now, cost)
        out.append(allowed)
    return out


def test_100_per_hour_no_burst() -> None:
    limit = Limit(100, 3600)  # one every 36 s
    assert limit.allow(NEW, T0) == Decision(True, T0 + 36, 0.0)
    assert limit.allow(T0 + 36, T0 + 1) == Decision(False, T0 + 36, 35.0)
    assert limit.allow(T0 + 36, T0 + 36) == Decision(True, T0 + 72, 0.0)


def test_burst_then_one_per_interval() -> None:
    limit = Limit(100, 3600, burst=10)
    assert run(limit, [T0] * 11) == [True] * 10 + [False]
    state = T0 + 360.0  # after the burst of 10
    assert limit.allow(state, T0 + 35.9).allowed is False
    assert limit.allow(state, T0 + 35.9).retry_after == pytest.approx(0.1)
    assert limit.allow(state, T0 + 36) == Decision(True, T0 + 396, 0.0)
    assert limit.remaining(state, T0) == 0
    assert limit.remaining(state, T0 + 72) == 2
    assert limit.remaining(NEW, T0) == 10


def test_window_edge_exactly_limit_in_a_period_with_burst_1() -> None:
    limit = Limit(4, 60)  # one every 15 s
    times = [T0 + s for s in (0, 1, 14.999, 15, 29, 30, 45, 59.999, 60)]
    assert run(limit, times) == [True, False, False, True, False, True, True, False, True]


def test_cost_is_charged_in_units() -> None:
    limit = Limit(10, 60, burst=5)  # 6 s per unit
    allowed, state, _ = limit.allow(NEW, T0, cost=3)
    assert (allowed, state) == (True, T0 + 18)
    assert limit.allow(state, T0, cost=3) == Decision(False, state, 6.0)
    assert limit.allow(state, T0, cost=2) == Decision(True, T0 + 30, 0.0)


def test_cost_above_burst_is_never_admitted() -> None:
    limit = Limit(100, 3600, burst=5)
    assert limit.allow(NEW, T0, cost=6) == Decision(False, NEW, math.inf)


def test_zero_and_negative_cost() -> None:
    limit = Limit(1, 60)
    assert limit.allow(T0 + 600, T0, cost=0) == Decision(True, T0 + 600, 0.0)
    with pytest.raises(ValueError):
        limit.allow(NEW, T0, cost=-1)


def test_refund_undoes_a_reservation() -> None:
    limit = Limit(10, 60, burst=2)
    _, state, _ = limit.allow(NEW, T0, cost=2)
    assert limit.allow(state, T0).allowed is False
    state = limit.refund(state, T0, 2)
    assert state == T0
    assert limit.allow(state, T0, cost=2).allowed is True
    assert limit.refund(T0 + 6, T0 + 100, 1) == T0 + 100  # never below now


@pytest.mark.parametrize(
    ("limit", "period", "burst"), [(0, 60, 1), (1, 0, 1), (1, 60, 0), (1, math.inf, 1)]
)
def test_bad_limits(limit: int, period: float, burst: int) -> None:
    with pytest.raises(ValueError):
        Limit(limit, period, burst)


def test_allow_all_charges_every_window_or_none() -> None:
    hour, day = Limit(100, 3600, burst=2), Limit(3, 86400)  # 36 s and 28800 s per unit
    ok, states, wait = allow_all([hour, day], [NEW, NEW], T0)
    assert (ok, states, wait) == (True, (T0 + 36, T0 + 28800), 0.0)
    ok, states2, wait = allow_all([hour, day], states, T0 + 1)
    assert (ok, states2, wait) == (False, states, 28799.0)  # the day window refuses
    ok, states3, wait = allow_all([hour, day], states, T0 + 28800)
    assert (ok, states3) == (True, (T0 + 28836, T0 + 57600))


# Times are generated as integer milliseconds offsets so that every float is exact.
_gaps = st.lists(st.integers(min_value=0, max_value=120_000), min_size=1, max_size=300)
_limits = st.builds(
    Limit,
    limit=st.integers(min_value=1, max_value=200),
    period=st.sampled_from([1.0, 60.0, 3600.0, 86400.0]),
    burst=st.integers(min_value=1, max_value=20),
)


@settings(deadline=None)
@given(_limits, _gaps, st.lists(st.integers(min_value=1, max_value=4), min_size=300))
def test_never_over_admits_in_any_window(limit: Limit, gaps: list[int], costs: list[int]) -> None:
    """Admitted cost in any window [t, t + w) is at most burst + w / interval."""
    scale = limit.period / 3600.0  # spread the gaps over the limit's own time scale
    now, state, admitted = T0, NEW, []
    for gap, cost in zip(gaps, costs, strict=False):
        now += gap / 1000.0 * scale
        allowed, state, wait = limit.allow(state, now, cost)
        if allowed:
            admitted.append((now, cost))
        else:
            assert wait > 0
    times = [t for t, _ in admitted]
    sums = list(accumulate((c for _, c in admitted), initial=0))
    # The documented tolerance (a microsecond, or a full burst's rounding at this time), plus
    # the rounding of the epoch-sized times themselves, in units of this limit.
    slack = (max(1e-6, limit.drift * now) + 1e-6) / limit.interval
    for i, start in enumerate(times):
        # The tight form: from one admission to a later one, at most burst + elapsed / interval.
        for j in range(i, len(times)):
            elapsed = times[j] - start
            assert sums[j + 1] - sums[i] <= limit.burst + elapsed / limit.interval + slack
        for window in (limit.interval, limit.period / 10, limit.period):
            total = sums[bisect_left(times, start + window)] - sums[i]
            assert total <= limit.burst + window / limit.interval + slack
        total = sums[bisect_left(times, start + limit.period)] - sums[i]
        assert total <= limit.limit + limit.burst - 1


@settings(deadline=None)
@given(_limits, st.lists(st.floats(min_value=1.0, max_value=3.0), min_size=1, max_size=300))
def test_steady_sender_under_the_rate_is_never_refused(limit: Limit, slowness: list[float]) -> None:
    now, state = T0, NEW
    for factor in slowness:
        allowed, state, _ = limit.allow(state, now)
        assert allowed
        now += limit.interval * factor * (1 + 1e-9)


def test_sender_at_exactly_the_rate_is_never_refused() -> None:
    limit = Limit(100, 3600)  # 36 s: exact in binary floating point
    assert run(limit, [T0 + 36 * k for k in range(10_000)]) == [True] * 10_000


@settings(deadline=None)
@given(_limits, _gaps)
def test_refused_request_admitted_after_retry_after(limit: Limit, gaps: list[int]) -> None:
    now, state = T0, NEW
    for gap in gaps:
        now += gap / 1000.0
        allowed, new_state, wait = limit.allow(state, now)
        if not allowed:
            assert new_state == state
            # the limiter tolerates a microsecond of float rounding: stay clear of it
            assert limit.allow(state, now + wait * (1 - 1e-9) - 1e-5).allowed is False
            assert limit.allow(state, now + wait + 1e-6).allowed is True
        state = new_state


def test_a_full_burst_is_admitted_despite_floating_point() -> None:
    limit = Limit(50, 60, burst=50)
    state = NEW
    admitted = 0
    for _ in range(60):
        decision = limit.allow(state, 1000.0)
        if decision.allowed:
            admitted += 1
            state = decision.state
    assert admitted == 50
