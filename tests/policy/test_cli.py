"""``relayguard policy list|show|contain|release`` on a SQLite store file."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from relayguard.cli.policy import policy
from relayguard.policy.limiter import Limit
from relayguard.policy.stores import SqliteStore

FAR = 4_102_444_800.0  # 2100-01-01T00:00:00Z: a state that is live whenever the test runs


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(policy, list(args))
    return result.exit_code, result.stdout


def test_round_trip(tmp_path: Path) -> None:
    spec = f"sqlite:{tmp_path / 'p.db'}"
    assert _run("list", "--store", spec) == (0, "")
    assert _run("contain", "alice", "--reason", "phished", "--store", spec) == (
        0,
        "alice: contained\n",
    )
    assert _run("contain", "alice", "--store", spec) == (0, "alice: already contained\n")
    assert _run("contain", "bob@example.org", "--store", spec) == (
        0,
        "bob@example.org: contained\n",
    )
    with SqliteStore(tmp_path / "p.db") as store:
        store.allow("user-msgs:alice", (Limit(2, 3600, 2),), FAR, 1)
        since = {c.key: c.since for c in store.contained()}
    stamps = {k: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(v)) for k, v in since.items()}
    code, out = _run("list", "--store", spec)
    assert code == 0
    assert out.splitlines() == [
        f"alice\t{stamps['alice']}\tphished",
        f"bob@example.org\t{stamps['bob@example.org']}\tcontained by an administrator",
    ]
    assert _run("show", "alice", "--store", spec) == (
        0,
        f"alice: contained since {stamps['alice']}: phished\n"
        "  rule user-msgs window 2/3600.0/2: busy until 2100-01-01T00:30:00Z\n",
    )
    result = CliRunner().invoke(policy, ["release", "alice", "--store", spec])
    assert (result.exit_code, result.stdout) == (0, "alice: released\n")
    assert "postsuper -H QUEUE_ID" in result.stderr
    assert _run("release", "alice", "--store", spec) == (0, "alice: was not contained\n")
    assert _run("show", "alice", "--store", spec)[1].splitlines()[0] == "alice: not contained"
    code, out = _run("list", "--store", spec)
    assert out.splitlines() == [
        f"bob@example.org\t{stamps['bob@example.org']}\tcontained by an administrator"
    ]


def test_store_from_config(tmp_path: Path) -> None:
    config = tmp_path / "relayguard.toml"
    config.write_text(f'[policy]\nstore = "sqlite:{tmp_path / "c.db"}"\n')
    assert _run("contain", "carol", "--config", str(config)) == (0, "carol: contained\n")
    assert _run("show", "carol", "--store", f"sqlite:{tmp_path / 'c.db'}")[1].startswith(
        "carol: contained since "
    )


def test_no_store_is_an_error() -> None:
    result = CliRunner().invoke(policy, ["list"])
    assert result.exit_code == 1
    assert str(result.exception) == "give --store SPEC or --config FILE"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "relayguard.toml"
    config.write_text(
        "[policy]\n"
        f'store = "sqlite:{tmp_path / "s.db"}"\n'
        "[[policy.rules]]\n"
        'key = "sasl_username"\ncount = "messages"\nwindows = ["1/hour"]\naction = "REJECT"\n'
    )
    port = _free_port()
    code = "import sys; from relayguard.cli.policy import policy; policy(sys.argv[1:])"
    args = ["serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        listening = json.loads(proc.stderr.readline())
        assert listening["event"] == "listening"
        assert listening["event_loop"] == "uvloop"  # a dependency on Linux
        request = (
            b"request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n"
            b"sasl_username=zoe\ninstance=Z%d\n\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(request % 1 + request % 2)
            got = b""
            while got.count(b"\n\n") < 2:
                got += s.recv(4096)
        assert got == b"action=DUNNO\n\naction=554 5.7.1 Rate limit exceeded\n\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        lines = proc.stderr.read().decode().splitlines()
        assert '"decision":"limited"' in lines[0]
        assert lines[-1].endswith('"event":"stopped","requests":2}')
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
