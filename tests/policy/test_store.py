"""Stores: exact decisions on both backends, identical semantics, persistence, concurrency."""

from __future__ import annotations

import math
import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relayguard.policy.limiter import Decision, Limit
from relayguard.policy.stores import (
    Contained,
    MemoryStore,
    SqliteStore,
    Store,
    StoreError,
    window_id,
)
from relayguard.policy.stores import sqlite as sqlite_store
from relayguard.policy.stores.redis import RedisStore

T0 = 1_700_000_000.0
A = Limit(2, 10, burst=2)  # one per 5 s, 2 at once
B = Limit(4, 100, burst=3)  # one per 25 s, 3 at once
AB = (A, B)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite":
        s = SqliteStore(tmp_path / "p.db")
    else:
        s = RedisStore(request.getfixturevalue("redis_server").url)
    yield s
    s.close()


def live(s: Store, now: float) -> dict[tuple[str, str], float]:
    return {k: v for k, v in s.states().items() if v > now}


def test_window_id() -> None:
    assert window_id(A) == "2/10.0/2"
    assert window_id(Limit(2, 10.0, burst=2)) == "2/10.0/2"
    assert window_id(Limit(100, 3600)) == "100/3600.0/1"


# (offset from T0, cost) -> decision (state relative to T0), for key "u" on windows A and B.
SEQUENCE = [
    ((0, 1), (True, 25, 0.0)),
    ((0, 1), (True, 50, 0.0)),
    ((0, 1), (False, 50, 5.0)),  # A refuses; B would admit but is not charged
    ((5, 1), (True, 75, 0.0)),
    ((10, 1), (False, 75, 15.0)),  # B refuses; A would admit but is not charged
    ((25, 1), (True, 100, 0.0)),
    ((25, 3), (False, 100, math.inf)),  # more than A's burst: never admitted
    ((25, 0), (True, 100, 0.0)),  # free
]


def test_exact_sequence_all_or_none(store: Store) -> None:
    for (offset, cost), (allowed, state, retry) in SEQUENCE:
        assert store.allow("u", AB, T0 + offset, cost) == Decision(allowed, T0 + state, retry)
    assert store.states() == {("u", "2/10.0/2"): T0 + 30, ("u", "4/100.0/3"): T0 + 100}
    # another key is independent
    assert store.allow("v", AB, T0 + 25) == Decision(True, T0 + 50, 0.0)


def test_allow_many_equals_allow_in_turn(store: Store, tmp_path: Path) -> None:
    requests = [("u", AB, T0 + offset, cost) for (offset, cost), _ in SEQUENCE]
    expected = [Decision(a, T0 + state, retry) for _, (a, state, retry) in SEQUENCE]
    assert store.allow_many(requests[:3]) == expected[:3]
    assert store.allow_many([]) == []
    assert store.allow_many(requests[3:]) == expected[3:]


def test_refund(store: Store) -> None:
    assert store.allow("u", AB, T0) == Decision(True, T0 + 25, 0.0)
    assert store.allow("u", AB, T0) == Decision(True, T0 + 50, 0.0)
    store.refund("u", AB, T0 + 1, 1)
    assert store.states() == {("u", "2/10.0/2"): T0 + 5, ("u", "4/100.0/3"): T0 + 25}
    store.refund("u", AB, T0 + 1, 5)  # more than was charged: back to idle, rows gone
    assert store.states() == {}
    assert store.allow("u", AB, T0 + 1) == Decision(True, T0 + 26, 0.0)


def test_containment_round_trip(store: Store) -> None:
    assert store.contained() == []
    assert store.is_contained("bob") is False
    assert store.contain("bob", "42 external domains/hour", T0 + 5) is True
    assert store.contain("alice", "analyze: compromised-account", T0) is True
    assert store.contain("bob", "again", T0 + 9) is False  # keeps its first reason and time
    assert store.is_contained("bob") is True
    assert store.is_contained("carol") is False
    assert store.contained() == [
        Contained("alice", "analyze: compromised-account", T0),
        Contained("bob", "42 external domains/hour", T0 + 5),
    ]
    assert store.release("bob") is True
    assert store.release("bob") is False
    assert store.is_contained("bob") is False
    assert store.contained() == [Contained("alice", "analyze: compromised-account", T0)]


def test_release_clears_the_contain_rules_windows_of_the_key_only(store: Store) -> None:
    for key in (
        "contain:domains:bob@example.org",  # a CONTAIN rule's window of the released key
        "contain:rcpts:bob@example.org",
        "contain:domains:rebob@example.org",  # another key ending the same way
        "msgs:bob@example.org",  # a DEFER rule: kept
        "contain:domains:alice@example.org",
    ):
        assert store.allow(key, [B], T0).allowed is True
    assert store.contain("bob@example.org", "over 50 domains", T0) is True
    assert store.release("bob@example.org") is True
    assert sorted(k for k, _w in live(store, T0)) == [
        "contain:domains:alice@example.org",
        "contain:domains:rebob@example.org",
        "msgs:bob@example.org",
    ]
    # releasing a key that is not contained still clears its CONTAIN windows
    assert store.release("alice@example.org") is False
    assert "contain:domains:alice@example.org" not in {k for k, _w in live(store, T0)}


def test_sqlite_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with SqliteStore(path) as s:
        for _ in range(3):
            assert s.allow("u", [B], T0).allowed is True
        assert s.allow("u", [B], T0) == Decision(False, T0 + 75, 25.0)
        assert s.contain("u", "too many domains", T0) is True
    with SqliteStore(path) as s:
        assert s.allow("u", [B], T0 + 1) == Decision(False, T0 + 75, 24.0)
        assert s.allow("u", [B], T0 + 25) == Decision(True, T0 + 100, 0.0)
        assert s.contained() == [Contained("u", "too many domains", T0)]
        assert s.is_contained("u") is True
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
    finally:
        db.close()


def test_sqlite_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        SqliteStore(tmp_path / "missing" / "p.db")
    path = tmp_path / "new.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 3")
    db.close()
    with pytest.raises(StoreError, match="schema 3, newer"):
        SqliteStore(path)
    s = SqliteStore(tmp_path / "p.db")
    s.close()
    with pytest.raises(StoreError):
        s.allow("u", AB, T0)


def test_sqlite_expires_idle_rows_in_bounded_batches(tmp_path: Path) -> None:
    limit = Limit(1, 10)
    with SqliteStore(tmp_path / "p.db") as s:
        for n in range(300):  # charges 1-300; the sweeps at 64..256 find nothing idle
            assert s.allow(f"old{n}", [limit], T0).allowed is True
        assert len(s.states()) == 300
        later = T0 + 100
        for n in range(19):
            s.allow(f"new{n}", [limit], later)
        assert len(s.states()) == 319
        s.allow("new19", [limit], later)  # charge 320 sweeps SWEEP_ROWS idle rows
        assert len(s.states()) == 300 - sqlite_store.SWEEP_ROWS + 20
        for n in range(20, 84):
            s.allow(f"new{n}", [limit], later)  # charge 384 sweeps the rest
        assert len(s.states()) == 84
        assert all(key.startswith("new") for key, _ in s.states())
        assert s.purge(T0 + 1000) == 84
        assert s.states() == {}


# Hypothesis: random operations on three keys and overlapping window sets.
WINDOW_SETS = [(A,), (A, B), (B, Limit(10, 3600, burst=5)), (Limit(3, 7.5),)]
op = st.one_of(
    st.tuples(
        st.just("allow"),
        st.sampled_from(["k1", "k2", "k3"]),
        st.integers(0, len(WINDOW_SETS) - 1),
        st.floats(-2, 40, allow_nan=False),  # time step; small negatives are clock skew
        st.integers(0, 4),
    ),
    st.tuples(
        st.just("refund"),
        st.sampled_from(["k1", "k2", "k3"]),
        st.integers(0, len(WINDOW_SETS) - 1),
        st.floats(0, 5, allow_nan=False),
        st.integers(1, 2),
    ),
    st.tuples(st.sampled_from(["contain", "release"]), st.sampled_from(["k1", "k2"])),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(op, max_size=80))
def test_memory_and_sqlite_agree(ops: list[tuple[Any, ...]]) -> None:
    mem, sql = MemoryStore(), SqliteStore(":memory:")
    now = T0
    try:
        for o in ops:
            kind, key = o[0], str(o[1])
            if kind == "allow" or kind == "refund":
                windows = WINDOW_SETS[int(o[2])]
                now += float(o[3])
                cost = int(o[4])
                if kind == "allow":
                    assert mem.allow(key, windows, now, cost) == sql.allow(key, windows, now, cost)
                else:
                    mem.refund(key, windows, now, cost)
                    sql.refund(key, windows, now, cost)
            elif kind == "contain":
                assert mem.contain(key, "r", now) == sql.contain(key, "r", now)
            else:
                assert mem.release(key) == sql.release(key)
            assert live(mem, now) == live(sql, now)
            assert mem.contained() == sql.contained()
    finally:
        sql.close()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 30, allow_nan=False), st.integers(1, 3)), min_size=1, max_size=150
    )
)
def test_sqlite_never_over_admits_any_window(steps: list[tuple[float, int]]) -> None:
    windows = (A, B, Limit(10, 3600, burst=5))
    admitted: list[tuple[float, int]] = []
    now = T0
    with SqliteStore(":memory:") as s:
        for step, cost in steps:
            now += step
            before = s.states()
            if s.allow("u", windows, now, cost).allowed:
                admitted.append((now, cost))
            else:
                assert s.states() == before  # a refusal charges no window
    for w in windows:
        for i, (start, _) in enumerate(admitted):
            total = 0
            for t, cost in admitted[i:]:
                total += cost
                assert total <= w.burst + (t - start) / w.interval + 1e-6


@pytest.mark.parametrize("threads", [2, 4])
def test_two_sqlite_stores_on_one_file_do_not_over_admit(tmp_path: Path, threads: int) -> None:
    path = tmp_path / "shared.db"
    limit = Limit(100, 3600, burst=100)
    stores = [SqliteStore(path, busy_timeout=10) for _ in range(threads)]
    counts = [0] * threads
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run(n: int) -> None:
        try:
            start.wait()
            for _ in range(150):
                counts[n] += stores[n].allow("u", [limit], T0).allowed
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for s in stores:
        s.close()
    assert errors == []
    assert sum(counts) == 100
    with SqliteStore(path) as s:
        assert s.states() == {("u", "100/3600.0/100"): T0 + 3600}


def _charge(path: str, n: int) -> int:
    with SqliteStore(path, busy_timeout=10) as s:
        return sum(s.allow("u", [Limit(50, 50, burst=50)], T0).allowed for _ in range(n))


def test_two_processes_on_one_file_do_not_over_admit(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    SqliteStore(path).close()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        counts = pool.starmap(_charge, [(path, 200), (path, 200)])
    assert sum(counts) == 50


def test_opening_waits_for_another_process_setting_up_the_same_file(tmp_path: Path) -> None:
    """Policy workers open one new file at once; the switch to WAL answers "locked" at once."""
    path = tmp_path / "p.sqlite"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    try:
        store = SqliteStore(path, busy_timeout=0.05)  # far shorter than the lock is held
        store.contain("k", "r", 1.0)
        assert [c.key for c in store.contained()] == ["k"]
        store.close()
    finally:
        release.join()
        other.close()


def test_a_store_waits_for_a_write_lock_held_less_than_busy_timeout(tmp_path: Path) -> None:
    """Another process's transaction holds the write lock for a while: the charge and the purge
    wait for it (polling, see LOCK_POLL) and succeed; neither fails at the first "locked"."""
    path = tmp_path / "p.sqlite"
    store = SqliteStore(path, busy_timeout=10)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        results: list[object] = []
        for call in (
            lambda: store.allow("u", [Limit(5, 60)], T0).allowed,
            lambda: store.purge(T0 + 3600),
        ):
            other.execute("BEGIN IMMEDIATE")
            release = threading.Timer(0.2, lambda: other.execute("COMMIT"))
            release.start()
            try:
                results.append(call())
            finally:
                release.join()
    finally:
        other.close()
        store.close()
    assert results == [True, 1]  # charged; then its one row, idle by then, purged
