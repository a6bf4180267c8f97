"""Run ``relayguard policy serve`` as a real process, and a blocking policy client for it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.ports import free_port

_CODE = "import sys; from relayguard.cli import main; sys.exit(main(sys.argv[1:]))"


def write_config(path: Path, store: str, rules: str, **settings: Any) -> Path:
    lines = ["[policy]", f"store = {json.dumps(store)}"]
    lines += [f"{name} = {json.dumps(value)}" for name, value in settings.items()]
    path.write_text("\n".join(lines) + "\n" + rules)
    return path


class Served:
    """A policy server process; its stderr (the JSON log) is collected in ``events``."""

    def __init__(self, config: Path, port: int | None = None, *extra: str) -> None:
        self.port = port or free_port()
        args = ["policy", "serve", "--config", str(config), "--listen", f"127.0.0.1:{self.port}"]
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CODE, *args, *extra],
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.events: list[dict[str, Any]] = []
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._listening.wait(30):
            self.stop()
            raise RuntimeError(f"the policy server did not start: {self.events}")

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            try:
                event = json.loads(raw)
            except ValueError:
                event = {"event": "unparsed", "line": raw.decode(errors="replace")}
            self.events.append(event)
            if event.get("event") == "listening":
                self._listening.set()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == kind]

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return self.process.returncode


@contextlib.contextmanager
def serving(config: Path, port: int | None = None) -> Iterator[Served]:
    served = Served(config, port)
    try:
        yield served
    finally:
        served.stop()


def request(state: str, user: str, instance: str, **attrs: str) -> bytes:
    fields = {
        "request": "smtpd_access_policy",
        "protocol_state": state,
        "protocol_name": "ESMTP",
        "instance": instance,
        "sasl_username": user,
        "sender": f"{user}@example.org",
        "recipient_count": "1",
        "client_address": "192.0.2.10",
        **attrs,
    }
    return ("".join(f"{k}={v}\n" for k, v in fields.items()) + "\n").encode()


class Client:
    """One persistent policy connection: ``ask(request) -> reply line`` (blocking)."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._buf = b""

    def ask(self, data: bytes) -> str:
        self.sock.sendall(data)
        while b"\n\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._buf += chunk
        reply, _, self._buf = self._buf.partition(b"\n\n")
        return reply.decode()

    def close(self) -> None:
        self.sock.close()


def timed(client: Client, data: bytes) -> tuple[str, float]:
    start = time.monotonic()
    reply = client.ask(data)
    return reply, time.monotonic() - start
