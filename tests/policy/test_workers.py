"""``relayguard policy serve`` with ``workers = 2``: real processes on one socket and one store."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from tests.policy.serve import Client, Served, request, write_config
from tests.policy.test_served import DEFERRED, DUNNO, _metrics, _rules
from tests.ports import free_port

_CODE = "import sys; from relayguard.cli import main; sys.exit(main(sys.argv[1:]))"


def _workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sorted(int(c) for c in children)


def _wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_two_workers_share_one_limit_metrics_reload_and_stop(tmp_path: Path) -> None:
    metrics_port = free_port()
    config = write_config(
        tmp_path / "p.toml",
        f"sqlite:{tmp_path / 'p.sqlite'}",
        _rules("30/hour"),
        workers=2,
        metrics_listen=f"127.0.0.1:{metrics_port}",
    )
    served = Served(config)
    opened: list[Client] = []
    try:
        (listening,) = served.of("listening")
        assert listening["workers"] == 2 and listening["address"] == f"127.0.0.1:{served.port}"
        assert len(_workers_of(served.process.pid)) == 2
        clients = [Client(served.port) for _ in range(12)]
        opened.extend(clients)
        replies = [
            clients[i % 12].ask(request("END-OF-MESSAGE", "carol", f"M{i}")) for i in range(60)
        ]
        assert replies.count(DUNNO) == 30
        assert replies.count(DEFERRED) == 30
        assert replies[:30] == [DUNNO] * 30  # one limit for both workers, in arrival order

        def counted() -> bool:
            return _metrics(metrics_port).get("relayguard_policy_requests_total") == 60

        _wait_for(counted)  # the workers' snapshots, added up
        decisions = _metrics(metrics_port)
        assert decisions['relayguard_policy_decisions_total{action="DUNNO",decision="ok"}'] == 30
        assert decisions["relayguard_policy_connections"] == 12

        served.signal(signal.SIGHUP)
        _wait_for(lambda: len(served.of("reloaded")) == 2)
        assert sorted(e["worker"] for e in served.of("reloaded")) == [0, 1]
        assert not served.of("unparsed")  # workers share stderr: every line whole
    finally:
        for client in opened:
            client.close()
        code = served.stop()
    assert code == 0
    stopped = served.of("stopped")
    by_worker = [e for e in stopped if "worker" in e]
    assert sorted(e["worker"] for e in by_worker) == [0, 1]
    assert sum(e["requests"] for e in by_worker) == 60
    assert [e for e in stopped if "workers" in e] == [
        {"ts": stopped[-1]["ts"], "event": "stopped", "requests": 60, "workers": 2}
    ]


def test_a_dead_worker_is_started_again(tmp_path: Path) -> None:
    """Killed workers are started again; what they had counted stays in /metrics and in the
    final total (a counter that went down would look like a reset to Prometheus)."""
    metrics_port = free_port()
    config = write_config(
        tmp_path / "p.toml",
        f"sqlite:{tmp_path / 'p.sqlite'}",
        _rules("1000/hour"),
        workers=2,
        metrics_listen=f"127.0.0.1:{metrics_port}",
    )
    served = Served(config)
    opened: list[Client] = []

    def requests_total() -> float | None:
        return _metrics(metrics_port).get("relayguard_policy_requests_total")

    try:
        opened.extend(Client(served.port) for _ in range(8))
        assert [
            c.ask(request("END-OF-MESSAGE", "dave", f"D{i}")) for i, c in enumerate(opened)
        ] == [DUNNO] * 8
        _wait_for(lambda: requests_total() == 8)
        _wait_for(lambda: _metrics(metrics_port)["relayguard_policy_connections"] == 8)
        for kills, pid in enumerate(_workers_of(served.process.pid), 1):  # the clients' workers
            os.kill(pid, signal.SIGKILL)
            _wait_for(lambda: len(served.of("worker_exited")) == kills)  # noqa: B023
            _wait_for(lambda: len(_workers_of(served.process.pid)) == 2)
            assert pid not in _workers_of(served.process.pid)
            assert requests_total() == 8
        exited = served.of("worker_exited")
        assert [e["exit_code"] for e in exited] == [-signal.SIGKILL] * 2
        client = Client(served.port)
        opened.append(client)
        assert client.ask(request("END-OF-MESSAGE", "dave", "D9")) == DUNNO
        _wait_for(lambda: requests_total() == 9)
        # the killed workers' 8 connections are gone with them
        assert _metrics(metrics_port)["relayguard_policy_connections"] == 1
    finally:
        for client in opened:
            client.close()
        assert served.stop() == 0
    assert not Path(f"/proc/{served.process.pid}").exists() or served.process.poll() is not None
    (total,) = [e for e in served.of("stopped") if "workers" in e]
    assert total["requests"] == 9


def test_workers_on_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "policy.sock"
    config = write_config(
        tmp_path / "p.toml",
        f"sqlite:{tmp_path / 'p.sqlite'}",
        _rules("1000/hour"),
        workers=2,
        listen=f"unix:{path}",
        listen_mode="0660",
    )
    process = subprocess.Popen(
        [sys.executable, "-c", _CODE, "policy", "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        assert b'"event":"listening"' in process.stderr.readline()
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        import socket

        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(path))
            s.sendall(request("RCPT", "erin", "E1"))
            assert s.recv(4096) == b"action=DUNNO\n\n"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        assert process.stderr is not None
        process.stderr.close()
    assert not path.exists()  # the supervisor made it, the supervisor removes it


def test_workers_need_a_shared_store_and_a_sane_count(tmp_path: Path) -> None:
    config = write_config(tmp_path / "p.toml", "memory:", _rules("1/hour"), workers=2)
    for args, message in (
        (
            ["--config", str(config)],
            "relayguard: error: policy.workers above 1 needs a shared store (sqlite: or redis://)",
        ),
        (
            ["--config", str(write_config(tmp_path / "q.toml", "memory:", _rules("1/hour"))),
             "--workers", "2"],
            "relayguard: error: several workers need a shared store (sqlite: or redis://)",
        ),
        (
            ["--config", str(write_config(tmp_path / "r.toml", "memory:", _rules("1/hour"))),
             "--workers", "0"],
            "relayguard: error: --workers must be a whole number from 1 to 64",
        ),
    ):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-c", _CODE, "policy", "serve", "--listen", "127.0.0.1:1", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (done.returncode, done.stderr.strip()) == (3, message)


def test_a_worker_that_cannot_start_stops_the_server(tmp_path: Path) -> None:
    """A store that cannot be opened (a directory): exit 3 with the worker's one-line error."""
    (tmp_path / "dir.sqlite").mkdir()
    config = write_config(
        tmp_path / "p.toml", f"sqlite:{tmp_path / 'dir.sqlite'}", _rules("1/hour"), workers=2
    )
    done = subprocess.run(
        [sys.executable, "-c", _CODE, "policy", "serve", "--config", str(config),
         "--listen", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 3
    errors = [x for x in done.stderr.splitlines() if x.startswith("relayguard: error: ")]
    assert errors and all("dir.sqlite" in x for x in errors)
    assert "Traceback" not in done.stderr


def test_tcp_connections_are_spread_over_the_workers(tmp_path: Path) -> None:
    """One SO_REUSEPORT socket per worker: a burst of connections (smtpd processes reconnecting
    after a restart) is spread by the kernel, not all taken by the first worker to wake."""
    config = write_config(
        tmp_path / "p.toml", f"sqlite:{tmp_path / 'p.sqlite'}", _rules("1000/hour"), workers=2
    )
    served = Served(config)
    opened: list[Client] = []
    try:
        sockets = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        port = f":{served.port:04X}"
        listening = [s for s in sockets if s[1].endswith(port) and s[3] == "0A"]
        assert len(listening) == 2  # two listening sockets on the one port
        opened.extend(Client(served.port) for _ in range(40))  # all connected before any asks
        replies = [client.ask(request("RCPT", f"u{i}", f"S{i}")) for i, client in enumerate(opened)]
        assert replies == [DUNNO] * 40
    finally:
        for client in opened:
            client.close()
        assert served.stop() == 0
    by_worker = {e["worker"]: e["requests"] for e in served.of("stopped") if "worker" in e}
    assert sorted(by_worker) == [0, 1]
    assert sum(by_worker.values()) == 40
    assert min(by_worker.values()) > 0  # all 40 on one of two sockets: one chance in 2**39


def test_a_second_server_on_the_port_of_workers_is_refused(tmp_path: Path) -> None:
    """SO_REUSEPORT would let a second server of the same user share the port and take half
    the connections: it must stop with the usual one-line error instead."""
    config = write_config(
        tmp_path / "p.toml", f"sqlite:{tmp_path / 'p.sqlite'}", _rules("1000/hour"), workers=2
    )
    other = write_config(
        tmp_path / "q.toml", f"sqlite:{tmp_path / 'q.sqlite'}", _rules("1000/hour"), workers=2
    )
    served = Served(config)
    try:
        args = ["policy", "serve", "--config", str(other), "--listen", f"127.0.0.1:{served.port}"]
        second = subprocess.run(
            [sys.executable, "-c", _CODE, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 3
        assert second.stderr == (
            f"relayguard: error: cannot listen on 127.0.0.1:{served.port}: the address is "
            "already in use (another server is listening there?)\n"
        )
    finally:
        assert served.stop() == 0


def test_workers_on_port_zero_report_the_port_they_got(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "p.toml", f"sqlite:{tmp_path / 'p.sqlite'}", _rules("1000/hour"), workers=2
    )
    args = ["policy", "serve", "--config", str(config), "--listen", "127.0.0.1:0"]
    process = subprocess.Popen([sys.executable, "-c", _CODE, *args], stderr=subprocess.PIPE)
    try:
        assert process.stderr is not None
        listening = json.loads(process.stderr.readline())
        host, port = listening["address"].rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        client = Client(int(port))
        try:
            assert client.ask(request("RCPT", "erin", "E1")) == DUNNO
        finally:
            client.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        assert process.stderr is not None
        process.stderr.close()


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    """SIGKILL to the supervisor (nothing it can forward): its workers notice within about a
    second and stop, instead of serving on unsupervised and holding the port."""
    config = write_config(
        tmp_path / "p.toml", f"sqlite:{tmp_path / 'p.sqlite'}", _rules("1000/hour"), workers=2
    )
    served = Served(config)
    workers = _workers_of(served.process.pid)
    try:
        served.process.kill()
        served.process.wait(10)

        def all_gone() -> bool:
            return not any(Path(f"/proc/{pid}").exists() and
                           "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
                           for pid in workers)  # fmt: skip

        _wait_for(all_gone)
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        served.stop()
    assert sorted(e["worker"] for e in served.of("supervisor_gone")) == [0, 1]
