"""Running the real Suricata on a capture with a rule file, for the ids-rules tests.

Outside CI the tests that need it skip when it is missing; on CI (CI=true) they fail, like the
mail lab's (``scripts/install-test-deps`` installs it, from Debian backports on bookworm).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.lab.fixtures import on_ci

CONFIG = Path("/etc/suricata/suricata.yaml")


def require_suricata() -> str:
    path = shutil.which("suricata")
    if path is None or not CONFIG.exists():
        why = "suricata is not installed: run scripts/install-test-deps"
        if on_ci():
            pytest.fail(f"on CI: {why}", pytrace=False)
        pytest.skip(why)
    return path


def run_suricata(
    pcap: Path, rules: Path, out: Path, home_net: str, smtp_servers: str
) -> list[dict[str, object]]:
    """The alerts (eve.json records) Suricata raises on ``pcap`` with ``rules``."""
    binary = require_suricata()
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        binary, "-r", str(pcap), "-c", str(CONFIG), "-S", str(rules), "-l", str(out),
        "-k", "none", "--runmode", "single",
        "--set", f"vars.address-groups.HOME_NET={home_net}",
        "--set", f"vars.address-groups.SMTP_SERVERS={smtp_servers}",
        "--set", "outputs.1.eve-log.types.0=alert",  # alerts only
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    log = (
        (out / "suricata.log").read_text(errors="replace")
        if (out / "suricata.log").exists()
        else ""
    )
    assert done.returncode == 0, done.stderr + log
    assert "rule(s) failed" not in log and "error parsing signature" not in log.lower(), log
    alerts = []
    for line in (out / "eve.json").read_text().splitlines():
        record = json.loads(line)
        if record.get("event_type") == "alert":
            alerts.append(record)
    return alerts


def check_rules_load(rules: Path, out: Path, home_net: str, smtp_servers: str) -> str:
    """``suricata -T``: every rule must load; returns the engine's log."""
    binary = require_suricata()
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        binary, "-T", "-c", str(CONFIG), "-S", str(rules), "-l", str(out),
        "--set", f"vars.address-groups.HOME_NET={home_net}",
        "--set", f"vars.address-groups.SMTP_SERVERS={smtp_servers}",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr
