"""``relayguard watch`` as a daemon against the real Postfix lab: the live follower, the queue
sampler, the egress sampler, metrics and webhook alerts, end to end."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.lab import scenarios
from tests.lab.config import USERS
from tests.lab.postfix import MailLab
from tests.ports import free_port

RELAYGUARD = str(Path(sys.executable).parent / "relayguard")
PYTHON = "/usr/bin/python3"  # not the venv's: user nobody may not reach it
WAIT = 90.0  # generous: the machine is shared; nothing here asserts a duration


class Receiver:
    """A local webhook receiver that records every POSTed alert."""

    def __init__(self) -> None:
        self.bodies: queue.Queue[dict[str, Any]] = queue.Queue()
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                bodies.put(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Daemon:
    """``relayguard watch`` in a child process; its stdout alert lines collected."""

    def __init__(self, lab: MailLab, tmp: Path, webhook: str) -> None:
        self.metrics_port = free_port()
        cfg = tmp / "watch.toml"
        cfg.write_text(
            f"""
[analyze]
local_domains = ["lab.test"]

[watch]
log = "{lab.maillog}"
state_dir = "{tmp / "state"}"
start_at = "end"
interval = 1
postfix_config = "{lab.config_dir}"
queue_threshold = 3
smtp_ports = [{lab.sink_port}]
metrics_listen = "127.0.0.1:{self.metrics_port}"

[watch.alerts]
webhook = "{webhook}"
webhook_timeout = 2.0
"""
        )
        self.proc = subprocess.Popen(
            [RELAYGUARD, "watch", "--config", str(cfg)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.alerts: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.proc.stderr is not None
        started = self.proc.stderr.readline()
        assert '"event":"watching"' in started, started + self.proc.stderr.read()
        self.log: list[str] = []  # stderr after the start-up line (drained: the pipe never fills)
        threading.Thread(target=self._read_log, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.alerts.put(json.loads(line))

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    def wait_alert(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                alert = self.alerts.get(timeout=1.0)
            except queue.Empty:
                assert self.proc.poll() is None, "".join(self.log)
                continue
            if match(alert):
                return alert
        raise AssertionError("no such alert")

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            return str(r.read().decode())

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def daemon(mail_lab: MailLab, tmp_path: Path, receiver: Receiver) -> Iterator[Daemon]:
    d = Daemon(mail_lab, tmp_path, receiver.url)
    yield d
    d.stop()


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")):
            head, _, value = line.rpartition(" ")
            if head == name or head.startswith(name + "{"):
                return float(value)
    return None


def test_sink_down_queue_alert_and_metric(
    mail_lab: MailLab, daemon: Daemon, receiver: Receiver
) -> None:
    mail_lab.sink.stop()
    try:
        for i in range(5):
            mail_lab.send(
                "127.0.0.2",
                "bob@lab.test",
                [f"queued{i}@outside.example"],
                user="bob@lab.test",
                password=USERS["bob@lab.test"],
                submission=True,
            )
        alert = daemon.wait_alert(
            lambda a: a["indicator"] == "queue-buildup" and a["source"] == "queue"
        )
        assert alert["finding"]["count"] >= 5
        assert alert["finding"]["details"]["top_senders"][0] == {
            "value": "bob@lab.test",
            "count": alert["finding"]["count"],
        }
        text = daemon.metrics()
        queued = sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith("relayguard_queue_messages{")
        )
        assert queued >= 5
        hooked = receiver.bodies.get(timeout=WAIT)
        assert hooked["schema"] == "relayguard.alert/1"
        assert hooked["indicator"] == "queue-buildup"
    finally:
        mail_lab.purge()
        mail_lab.sink.start()


def test_brute_force_then_login_is_a_compromised_account_alert(
    mail_lab: MailLab, daemon: Daemon
) -> None:
    attacker = "127.0.0.91"
    scenarios.bruteforce(mail_lab, attacker, 12)
    brute = daemon.wait_alert(lambda a: a["indicator"] == "auth-bruteforce")
    assert brute["subject"] == {"kind": "ip", "value": attacker}
    mail_lab.send(
        attacker,
        "alice@lab.test",
        ["victim@outside.example"],
        user="alice@lab.test",
        password=USERS["alice@lab.test"],
        submission=True,
    )
    # a login alone is medium; the mail sent in the same session makes it critical
    comp = daemon.wait_alert(
        lambda a: a["indicator"] == "compromised-account" and a["severity"] == "critical"
    )
    assert comp["subject"] == {"kind": "sasl_user", "value": "alice@lab.test"}
    assert comp["finding"]["details"]["login_ip"] == attacker
    text = daemon.metrics()
    assert (metric(text, "relayguard_sasl_auth_failures_total") or 0) >= 12


def test_a_non_mta_process_talking_smtp_is_egress_smtp(mail_lab: MailLab, daemon: Daemon) -> None:
    # three connections to the sink held open by a process of user nobody
    code = (
        "import socket, sys, time\n"
        f"s = [socket.create_connection(('127.0.0.1', {mail_lab.sink_port})) for _ in range(3)]\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    child = subprocess.Popen(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", PYTHON, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        alert = daemon.wait_alert(lambda a: a["indicator"] == "egress-smtp")
        details = alert["finding"]["details"]
        assert alert["subject"] == {"kind": "process", "value": "nobody/python3"}
        assert details["user"] == "nobody"
        assert details["connections"] == 3
        assert child.pid in details["pids"]
        assert details["destinations"] == [
            {"value": f"127.0.0.1:{mail_lab.sink_port}", "count": 3}
        ]
        assert details["cmdline"].startswith(f"{PYTHON} -c import socket")
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_restart_keeps_an_ongoing_brute_force(mail_lab: MailLab, tmp_path: Path) -> None:
    """Five failures, a restart, five more: the detector counts ten."""
    attacker = "127.0.0.92"
    first = Daemon(mail_lab, tmp_path, "")
    try:
        # stopped at once: what it has not read yet, the next run reads from where it stopped
        scenarios.bruteforce(mail_lab, attacker, 5)
    finally:
        assert first.stop() == 0
    second = Daemon(mail_lab, tmp_path, "")
    try:
        scenarios.bruteforce(mail_lab, attacker, 5)
        alert = second.wait_alert(
            lambda a: a["indicator"] == "auth-bruteforce" and a["subject"]["value"] == attacker
        )
        assert alert["finding"]["count"] == 10
    finally:
        second.stop()

