"""The systemd unit for ``relayguard watch`` shipped in contrib/: it verifies, and its command
starts the daemon and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.lab.fixtures import on_ci

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "contrib" / "systemd" / "relayguard-watch.service"


def test_systemd_unit_verifies_and_its_command_watches(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if on_ci():
            pytest.fail("systemd-analyze missing on CI", pytrace=False)
        pytest.skip("systemd-analyze (package systemd) is not installed")
    relayguard = REPO / ".venv" / "bin" / "relayguard"
    unit = UNIT.read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(exec_start.removeprefix("ExecStart="))
    assert argv == [
        "/usr/local/bin/relayguard", "watch", "--config", "/etc/relayguard/relayguard.toml",
    ]  # fmt: skip
    # the default state_dir is the directory the unit creates for it
    assert "StateDirectory=relayguard-watch\n" in unit
    log = tmp_path / "mail.log"
    log.write_text("")
    config = tmp_path / "relayguard.toml"
    config.write_text(f'[watch]\nlog = "{log}"\nstate_dir = "{tmp_path / "state"}"\n')
    local = tmp_path / "relayguard-watch.service"
    local.write_text(unit.replace(argv[0], str(relayguard)).replace(argv[-1], str(config)))
    out = subprocess.run(
        [analyze, "verify", str(local)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "relayguard-watch.service" not in out.stderr, out.stderr

    # the unit's own arguments, with this test's config
    proc = subprocess.Popen(
        [str(relayguard), *argv[1:-1], str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first.startswith("{"), first + proc.stderr.read()
        started = json.loads(first)
        assert isinstance(started.pop("ts"), float)
        assert started == {"event": "watching", "log": str(log), "source": "file"}
        proc.terminate()
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
