"""A tcpdump capture on loopback, started and stopped by the test that needs it.

Outside CI a missing tcpdump (or not being root) skips; on CI it fails, as the mail lab does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

import pytest

from tests.lab.fixtures import gate, on_ci
from tests.ports import free_port

PCAP_HEADER = 24


class Tcpdump:
    """``with Tcpdump(path, "tcp port 25"):`` captures loopback traffic matching the filter."""

    def __init__(self, path: Path, bpf: str) -> None:
        binary = shutil.which("tcpdump")
        action, why = gate(os.geteuid() == 0, [] if binary else ["tcpdump"], on_ci())
        if action == "fail":
            pytest.fail(why, pytrace=False)
        if action == "skip":
            pytest.skip(why)
        assert binary is not None
        # "listening on" comes before the filter sees packets: knock on a closed port that is
        # in the filter until the knock is in the file (-U writes every packet at once)
        self.marker = free_port()
        self.path = path
        bpf = f"({bpf}) or tcp port {self.marker}"
        # a large kernel buffer: loopback delivers bursts faster than tcpdump writes them
        self.cmd = [binary, "-i", "lo", "--immediate-mode", "-B", "65536", "-U", "-s", "0",
                    "-n", "-w", str(path), bpf]  # fmt: skip
        self.dropped: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Tcpdump:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ready = threading.Event()

        def wait_ready() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            for line in self.proc.stderr:
                if b"listening on" in line:
                    ready.set()
                elif b"dropped by kernel" in line:
                    self.dropped = int(line.split()[0])

        threading.Thread(target=wait_ready, daemon=True).start()
        if not ready.wait(20):
            self.proc.kill()
            raise RuntimeError("tcpdump did not start listening within 20 s")
        self._knock_until_written(PCAP_HEADER)
        return self

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _knock_until_written(self, size: int) -> None:
        """Knock until the file grows past ``size``: everything captured before is written."""
        assert self.proc is not None
        deadline = time.monotonic() + 20
        while self._size() <= size:
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError("tcpdump wrote nothing within 20 s")
            # refused: the SYN and the RST are what is wanted
            with socket.socket() as knock, contextlib.suppress(OSError):
                knock.connect(("127.0.0.1", self.marker))
            time.sleep(0.05)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.proc is not None
        # tcpdump stops without reading what the kernel still buffers: first make sure a
        # knock sent after all the traffic is in the file
        self._knock_until_written(self._size())
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        deadline = time.monotonic() + 5
        while self.dropped is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the reader thread takes tcpdump's last words
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        if kind is None:
            assert self.dropped == 0, f"tcpdump lost {self.dropped} packets: the test is void"
