"""Several policy server processes on one listening socket: the supervisor.

One Python process answers on one core; ``workers = N`` forks N servers that accept on the
listening sockets made before the fork (so a unix socket keeps its mode and a port cannot be
taken by someone else in between: on TCP one socket per worker with SO_REUSEPORT, on a unix
socket one for all) and share the store, which is what keeps their counts one
count: SQLite serialises them on its write lock, Redis on its scripts. A client connection stays
with the worker that accepted it, and Postfix's smtpd keeps its connection for the whole SMTP
session, so every stage of a message reaches the same worker (the per-message memory that
prevents double counting is per worker).

The supervisor forwards SIGHUP (every worker reloads its rules) and SIGTERM/SIGINT, starts a
worker again when one dies (at most :data:`MAX_RESTARTS` times a minute, then it stops them all),
and serves ``/metrics`` as the sum of the snapshots the workers write every second.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Final

from relayguard.errors import RelayguardError
from relayguard.policy.metrics import PolicyMetrics, read_snapshots, retire_snapshot
from relayguard.policy.server import Listener, emit_json

MAX_RESTARTS: Final = 5
"""Worker restarts allowed within a minute before the supervisor gives up (exit 1)."""
START_GRACE: Final = 2.0
"""A worker that exits 3 this soon after it was started failed to start: stop, exit 3."""
STOP_WAIT: Final = 15.0
"""Seconds the workers get to finish after SIGTERM before they are killed."""
SNAPSHOT_EVERY: Final = 1.0

Worker = Callable[[Listener, int, Path], None]
"""Runs one worker until SIGTERM: (its listener, the worker's number, its snapshot file)."""


def snapshot_name(number: int, spawn: int) -> str:
    """A new file for each start of a worker: its counters start from zero."""
    return f"worker-{number}-{spawn}.json"


class Supervisor:
    def __init__(self, listeners: list[Listener], workers: int, run_worker: Worker) -> None:
        """Worker ``i`` accepts on ``listeners[i % len(listeners)]``; the supervisor keeps them
        all open, so a worker started again takes over its predecessor's socket and backlog."""
        self.listeners = listeners
        self.workers = workers
        self.run_worker = run_worker
        self.snapshots = Path(tempfile.mkdtemp(prefix="relayguard-policy-"))
        self._children: dict[int, tuple[int, float, str]] = {}  # pid -> (number, started, file)
        self._spawned = 0
        self._restarts: list[float] = []
        self._stop = False
        self._hup = False
        self.final = PolicyMetrics()
        """The workers' counters added up, once they have stopped."""

    def run(self, started: Callable[[], None] = lambda: None) -> int:
        """Start the workers, call ``started``, supervise them until SIGTERM/SIGINT; the exit
        code."""
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }
        code = 0
        try:
            for number in range(self.workers):
                self._spawn(number)
            started()  # threads (the metrics server) only now: a fork copies just one thread
            code = self._supervise()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for listener in self.listeners:
                listener.sock.close()
                listener.remove_socket_file()
            self.final = PolicyMetrics.merged(read_snapshots(self.snapshots))
            shutil.rmtree(self.snapshots, ignore_errors=True)
        return code

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        if sig == signal.SIGHUP:
            self._hup = True
        else:
            self._stop = True

    def _spawn(self, number: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self._spawned += 1
        snapshot = snapshot_name(number, self._spawned)
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_DFL)
                listener = self.listeners[number % len(self.listeners)]
                self.run_worker(listener, number, self.snapshots / snapshot)
            except RelayguardError as exc:
                print(f"relayguard: error: {exc}", file=sys.stderr, flush=True)
                code = 3
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        self._children[pid] = (number, time.monotonic(), snapshot)

    def _supervise(self) -> int:
        while self._children:
            if self._stop:
                return 0
            if self._hup:
                self._hup = False
                self._signal_all(signal.SIGHUP)
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.1)
                continue
            number, started, snapshot = self._children.pop(pid)
            retire_snapshot(self.snapshots, snapshot)
            code = os.waitstatus_to_exitcode(status)
            now = time.monotonic()
            emit_json({"event": "worker_exited", "worker": number, "exit_code": code})
            if code == 3 and now - started < START_GRACE:
                return 3  # it could not start (its one-line error is out): neither will the next
            self._restarts = [t for t in self._restarts if now - t < 60] + [now]
            if len(self._restarts) > MAX_RESTARTS:
                emit_json({"event": "giving_up", "restarts_in_a_minute": len(self._restarts)})
                return 1
            self._spawn(number)
        return 0

    def _signal_all(self, sig: int) -> None:
        for pid in self._children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _stop_all(self) -> None:
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT
        while self._children:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                self._children.pop(pid, None)
            elif time.monotonic() > deadline:
                self._signal_all(signal.SIGKILL)
                deadline = float("inf")
            else:
                time.sleep(0.05)
