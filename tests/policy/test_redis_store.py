"""The Redis store against a real redis-server: same decisions as the reference, shared limits,
password and TLS, bounded calls when Redis hangs or dies."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayguard.errors import ConfigError
from relayguard.policy.limiter import Decision, Limit
from relayguard.policy.stores import MemoryStore, StoreError, open_store
from relayguard.policy.stores.base import Check
from relayguard.policy.stores.redis import RedisStore, redis_options
from tests.policy.redis_server import PASSWORD, RedisServer
from tests.policy.test_server import EXPECTED_REPLIES, EXPECTED_STATES, refunds_across_stages
from tests.ports import free_port

T0 = 1_700_000_000.0
WINDOW_SETS = [
    (Limit(2, 10, burst=2),),
    (Limit(2, 10, burst=2), Limit(4, 100, burst=3)),
    (Limit(10, 3600, burst=5), Limit(3, 7.5)),
]

check_op = st.tuples(
    st.sampled_from(["k1", "k2", "k3"]),  # charged key
    st.sampled_from([(), ("k1",), ("x", "k2")]),  # containment keys
    st.integers(0, len(WINDOW_SETS) - 1),
    st.floats(-1, 20, allow_nan=False),  # time step (small negatives: clock skew)
    st.integers(0, 4),  # cost
)
op = st.one_of(
    st.tuples(st.just("check"), st.lists(check_op, min_size=1, max_size=4)),
    st.tuples(st.just("refund"), check_op),
    st.tuples(st.sampled_from(["contain", "release"]), st.sampled_from(["k1", "k2"])),
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(op, max_size=40))
def test_redis_decides_exactly_like_the_reference(
    redis_server: RedisServer, ops: list[tuple[Any, ...]]
) -> None:
    redis_server.flush()
    mem, red = MemoryStore(), RedisStore(redis_server.url)
    now = T0
    try:
        for kind, arg in ops:
            if kind == "check":
                checks = []
                for key, keys, w, step, cost in arg:
                    now += step
                    checks.append(Check(keys, [(key, WINDOW_SETS[w], now, float(cost))]))
                assert red.check_many(checks) == mem.check_many(checks)
            elif kind == "refund":
                key, _keys, w, step, cost = arg
                now += abs(step)
                charge = (key, WINDOW_SETS[w], now, float(cost))
                mem.refund_many([charge])
                red.refund_many([charge])
            elif kind == "contain":
                assert red.contain(arg, "r", now) == mem.contain(arg, "r", now)
            else:
                assert red.release(arg) == mem.release(arg)
            live_mem = {k: v for k, v in mem.states().items() if v > now}
            assert {k: v for k, v in red.states().items() if v > now} == live_mem
            assert red.contained() == mem.contained()
    finally:
        red.close()


def test_several_clients_share_one_limit_exactly(redis_server: RedisServer) -> None:
    limit = (Limit(500, 3600, burst=500),)
    stores = [RedisStore(redis_server.url) for _ in range(4)]
    counts = [0] * 4
    start = threading.Barrier(4)

    def run(n: int) -> None:
        start.wait()
        for _ in range(40):  # batches of 5: 800 attempts in all
            checks = [Check((), [("shared", limit, T0, 1.0)])] * 5
            for verdict in stores[n].check_many(checks):
                assert not isinstance(verdict, str)
                counts[n] += verdict[0].allowed

    workers = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for s in stores:
        s.close()
    assert sum(counts) == 500


def test_password_is_required_and_checked(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a refused login is a configuration error (no retry fixes it), with where the password
    # came from
    monkeypatch.delenv("RELAYGUARD_REDIS_PASSWORD", raising=False)
    no_password = f"redis://127.0.0.1:{redis_server.port}/0"
    with pytest.raises(ConfigError) as info:
        RedisStore(no_password).ping()
    assert str(info.value).endswith(
        "(give the password in the URL, redis://:PASSWORD@HOST, or in the environment "
        "variable RELAYGUARD_REDIS_PASSWORD)"
    )
    monkeypatch.setenv("RELAYGUARD_REDIS_PASSWORD", "nope")
    with pytest.raises(ConfigError) as info:
        RedisStore(no_password).ping()
    assert str(info.value) == (
        "redis refused the login: invalid username-password pair or user is disabled. "
        "(the password comes from the environment variable RELAYGUARD_REDIS_PASSWORD)"
    )
    wrong = f"redis://:nope@127.0.0.1:{redis_server.port}/0"
    with pytest.raises(ConfigError, match=r"^redis refused the login: invalid username-password"):
        RedisStore(wrong).ping()
    out_of_range = f"{redis_server.url.rpartition('/')[0]}/99"
    with pytest.raises(ConfigError, match=r"^redis refused the store URL: .*DB index"):
        RedisStore(out_of_range).ping()


def test_unreachable_redis_is_a_store_error(redis_server: RedisServer) -> None:
    port = free_port()
    with pytest.raises(StoreError, match=f"^redis: ConnectionError: Error 111 connecting to "
                       f"127.0.0.1:{port}. Connection refused.$"):  # fmt: skip
        RedisStore(f"redis://:x@127.0.0.1:{port}/0").ping()


def test_refusing_a_message_gives_back_its_earlier_stages(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url)
    try:
        assert refunds_across_stages(store) == (EXPECTED_REPLIES, EXPECTED_STATES)
    finally:
        store.close()


def test_password_from_the_environment(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAYGUARD_REDIS_PASSWORD", PASSWORD)
    store = open_store(f"redis://127.0.0.1:{redis_server.port}/0")
    assert isinstance(store, RedisStore)
    store.ping()
    assert store.contain("alice", "phished", T0) is True
    store.close()


def test_tls_with_a_verified_certificate(redis_tls: RedisServer) -> None:
    redis_tls.flush()
    store = RedisStore(redis_tls.url)
    store.ping()
    assert store.allow("u", WINDOW_SETS[0], T0).allowed is True
    assert store.is_contained("u") is False
    store.close()
    plain = f"redis://:{PASSWORD}@127.0.0.1:{redis_tls.port}/0"
    with pytest.raises(StoreError):
        RedisStore(plain, timeout=1).ping()
    untrusted = f"rediss://:{PASSWORD}@127.0.0.1:{redis_tls.port}/0"  # system CAs only
    with pytest.raises(StoreError, match=r"(?i)certificate"):
        RedisStore(untrusted, timeout=1).ping()


def test_frozen_redis_fails_within_the_timeout_then_recovers(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, timeout=0.2)
    assert store.allow("u", WINDOW_SETS[0], T0).allowed is True
    redis_server.freeze()
    start = time.monotonic()
    with pytest.raises(StoreError, match=r"(?i)timeout|timed out"):
        store.allow("u", WINDOW_SETS[0], T0)
    assert time.monotonic() - start < 5  # about the 0.2 s timeout, far below "forever"
    redis_server.thaw()
    # The call that timed out had reached Redis, which ran it when it woke up: it counted. A
    # timeout can only err on the strict side. Then the state is there and counting goes on.
    assert store.allow("u", WINDOW_SETS[0], T0) == Decision(False, T0 + 10, 5.0)
    assert store.allow("u", WINDOW_SETS[0], T0 + 5).allowed is True
    store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://", "expected redis://HOST"),
        ("redis://h:99999", "bad redis store URL"),
        ("redis://h/x", "bad database number 'x'"),
        ("redis://h?colour=red", "unknown option 'colour'"),
        ("redis://h?ca=/x.pem", "TLS options need rediss://"),
    ],
)
def test_bad_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        redis_options(url, 1.0)


def test_url_options(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    kwargs, prefix = redis_options(
        f"rediss://app:p%40ss@redis.example:6380/2?prefix=mx1:&ca={ca}&verify_host=no", 0.3
    )
    assert prefix == "mx1:"
    picked = {k: kwargs[k] for k in ("host", "port", "db", "username", "password", "ssl")}
    assert picked == {
        "host": "redis.example",
        "port": 6380,
        "db": 2,
        "username": "app",
        "password": "p@ss",
        "ssl": True,
    }
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_check_hostname"]) == (str(ca), False)
    with pytest.raises(ConfigError) as info:
        redis_options(f"rediss://h/0?ca={tmp_path / 'gone.pem'}&cert={ca}", 0.3)
    assert str(info.value) == f"redis store URL: ca={tmp_path / 'gone.pem'}: no such CA file"
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.3, 0.3)


def test_packed_arguments_round_trip() -> None:
    from relayguard.policy.stores._redis_lua import pack, unpack

    fields = ["", "a", "12:x", "ünï", "a\x00b\n:"]
    packed = pack(fields)
    assert packed == b"0:1:a4:12:x5:\xc3\xbcn\xc3\xaf5:a\x00b\n:"
    assert unpack(packed) == [f.encode() for f in fields]
    for bad in (b"3:ab", b"x:a", b"5"):
        with pytest.raises(ValueError):
            unpack(bad)


def test_keys_with_any_bytes_travel_packed(redis_server: RedisServer) -> None:
    """Keys are log-controlled: colons, digits, newlines and non-ASCII must not shift fields."""
    store = RedisStore(redis_server.url)
    try:
        odd = "3:ü\n12:x@example.org"
        windows = (Limit(2, 3600, burst=2),)
        store.contain("9:held:", "r", T0)
        verdicts = store.check_many(
            [
                Check((odd,), [(odd, windows, T0, 1.0)]),
                Check(("9:held:",), [(odd, windows, T0, 1.0)]),
                Check((), [(odd, windows, T0, 1.0), (odd, windows, T0, 1.0)]),
            ]
        )
        assert verdicts[1] == "9:held:"
        assert [d.allowed for d in verdicts[0]] == [True]  # type: ignore[union-attr]
        assert [d.allowed for d in verdicts[2]] == [True, False]  # type: ignore[union-attr]
        assert set(store.states()) == {(odd, "2/3600.0/2")}
    finally:
        store.close()
