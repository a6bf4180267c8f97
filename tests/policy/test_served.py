"""Real ``relayguard policy serve`` processes on a real Redis: shared limits, Redis dying."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.policy.redis_server import RedisServer
from tests.policy.serve import Client, request, serving, timed, write_config

DUNNO = "action=DUNNO"
DEFERRED = "action=450 4.7.1 Sending limit reached"


def _rules(limit: str) -> str:
    return (
        "[[policy.rules]]\n"
        'name = "user-msgs"\nkey = "sasl_username"\ncount = "messages"\n'
        f'windows = ["{limit}"]\naction = "DEFER"\n'
        'text = "450 4.7.1 Sending limit reached"\n'
    )


def test_two_servers_on_one_redis_enforce_one_limit(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "p.toml", redis_server.url, _rules("1000/hour"))
    with serving(config) as one, serving(config) as two:
        admitted = [0] * 4
        deferred = [0] * 4

        def send(n: int, port: int) -> None:
            client = Client(port)
            for i in range(400):
                reply = client.ask(request("END-OF-MESSAGE", "shared", f"{n}.{i}"))
                admitted[n] += reply == DUNNO
                deferred[n] += reply == DEFERRED
            client.close()

        ports = [one.port, two.port, one.port, two.port]
        threads = [threading.Thread(target=send, args=(n, p)) for n, p in enumerate(ports)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # 1,600 attempts on two servers: the limit holds for both together. The window refills at
    # 1000/hour (0.28 a second) while the test runs, hence "within 1%" rather than exactly.
    assert 1000 <= sum(admitted) <= 1010
    assert sum(admitted) + sum(deferred) == 1600
    assert all(a > 0 for a in admitted)  # both servers admitted some of the mail


def test_redis_killed_mid_run_fails_open_in_bounded_time_then_counting_resumes(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "p.toml",
        redis_server.url,
        _rules("5/hour"),
        store_timeout=0.2,
        store_retry=0.5,
    )
    with serving(config) as served:
        client = Client(served.port)
        assert [client.ask(request("END-OF-MESSAGE", "u", f"a{i}")) for i in range(3)] == [
            DUNNO
        ] * 3
        redis_server.kill()
        answers = [timed(client, request("END-OF-MESSAGE", "u", f"b{i}")) for i in range(8)]
        assert [reply for reply, _ in answers] == [DUNNO] * 8  # fail-open, nothing refused
        # Bounded: a refused connection fails at once; nothing waits for Redis to come back.
        assert max(seconds for _, seconds in answers) < 3
        redis_server.start()  # empty: this Redis keeps nothing on disk
        time.sleep(0.6)  # store_retry has passed: the store is tried again
        replies = [client.ask(request("END-OF-MESSAGE", "u", f"c{i}")) for i in range(6)]
        assert replies == [DUNNO] * 5 + [DEFERRED]
        client.close()
    kinds = [e["event"] for e in served.events if e["event"] != "listening"]
    assert kinds == ["store_down", "store_up", "policy_decision", "stopped"]
    assert "ConnectionError" in served.of("store_down")[0]["error"]


def test_frozen_redis_fails_closed_within_the_timeout(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "p.toml",
        redis_server.url,
        _rules("5/hour"),
        store_timeout=0.2,
        store_retry=0.5,
        fail_mode="closed",
    )
    with serving(config) as served:
        client = Client(served.port)
        assert client.ask(request("END-OF-MESSAGE", "v", "a")) == DUNNO
        redis_server.freeze()  # accepts connections, never answers
        answers = [timed(client, request("END-OF-MESSAGE", "v", f"b{i}")) for i in range(3)]
        redis_server.thaw()
        assert [reply for reply, _ in answers] == [
            "action=DEFER_IF_PERMIT 4.3.0 policy store unavailable"
        ] * 3
        assert answers[0][1] >= 0.2  # the first one waited for the store's timeout...
        assert max(seconds for _, seconds in answers) < 3  # ...and nothing waited for Redis
        client.close()
    down = served.of("store_down")
    assert len(down) == 1
    assert "Timeout" in down[0]["error"]
    assert down[0]["fail_mode"] == "closed"
    assert [e["decision"] for e in served.of("policy_decision")] == ["fail-closed"] * 3


def _metrics(port: int) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_sighup_reloads_rules_and_metrics_count_everything(tmp_path: Path) -> None:
    import signal

    from tests.ports import free_port

    metrics_port = free_port()
    store = f"sqlite:{tmp_path / 'p.db'}"
    config = write_config(
        tmp_path / "p.toml", store, _rules("2/hour"), metrics_listen=f"127.0.0.1:{metrics_port}"
    )
    with serving(config) as served:
        client = Client(served.port)
        first = [client.ask(request("END-OF-MESSAGE", "w", f"a{i}")) for i in range(3)]
        assert first == [DUNNO, DUNNO, DEFERRED]
        m = _metrics(metrics_port)
        assert m["relayguard_policy_requests_total"] == 3
        assert m['relayguard_policy_decisions_total{action="DEFER",decision="limited"}'] == 1
        assert m['relayguard_policy_decisions_total{action="DUNNO",decision="ok"}'] == 2
        assert m["relayguard_policy_request_duration_seconds_count"] == 3
        assert m["relayguard_policy_store_up"] == 1
        assert m["relayguard_policy_connections"] == 1

        config.write_text(config.read_text().replace('"2/hour"', '"4/hour"'))
        served.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not served.of("reloaded") and time.monotonic() < deadline:
            time.sleep(0.02)
        # a new window starts afresh: four more now, the fifth deferred
        again = [client.ask(request("END-OF-MESSAGE", "w", f"b{i}")) for i in range(5)]
        assert again == [DUNNO] * 4 + [DEFERRED]

        config.write_text("[policy]\nrules = 3\n")
        served.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not served.of("reload_failed") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.ask(request("END-OF-MESSAGE", "w", "c")) == DEFERRED  # old rules kept
        assert _metrics(metrics_port)["relayguard_policy_reloads_total"] == 1
        client.close()
    assert served.process.returncode == 0
    assert served.of("reloaded") == [
        {"event": "reloaded", "rules": 1, "ts": served.of("reloaded")[0]["ts"]}
    ]
    assert served.of("reload_failed")[0]["error"] == "rules must be a list of tables ([[rules]])"


def test_redis_down_at_start_serves_in_the_fail_mode_until_it_comes_up(tmp_path: Path) -> None:
    later = RedisServer()  # started on its port only once the policy server runs
    config = write_config(
        tmp_path / "p.toml",
        later.url,
        _rules("1/hour"),
        fail_mode="closed",
        store_retry=0.05,
    )
    try:
        with serving(config) as served:
            assert [e["event"] for e in served.events[:2]] == ["store_down", "listening"]
            down = served.events[0]
            assert (down["fail_mode"], down["error"].startswith("redis: ConnectionError: ")) == (
                "closed",
                True,
            )
            client = Client(served.port)
            refused = "action=DEFER_IF_PERMIT 4.3.0 policy store unavailable"
            assert client.ask(request("END-OF-MESSAGE", "amy", "a1")) == refused
            later.start()
            time.sleep(0.1)  # past store_retry: the next request tries the store again
            assert client.ask(request("END-OF-MESSAGE", "amy", "a2")) == DUNNO
            assert client.ask(request("END-OF-MESSAGE", "amy", "a3")) == DEFERRED
            client.close()
            assert len(served.of("store_up")) == 1
    finally:
        later.close()


def test_a_refused_redis_password_stops_serve_with_a_hint(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from tests.policy.serve import _CODE

    wrong = f"redis://:not-the-password@127.0.0.1:{redis_server.port}/0"
    config = write_config(tmp_path / "p.toml", wrong, _rules("1/hour"))
    done = subprocess.run(
        [sys.executable, "-c", _CODE, "policy", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (3, "")
    assert done.stderr == (
        "relayguard: error: redis refused the login: invalid username-password pair or user is "
        "disabled. (the password is the one in the store URL, which wins over "
        "RELAYGUARD_REDIS_PASSWORD)\n"
    )
