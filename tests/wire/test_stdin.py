"""relayguard pcap reads a capture from a pipe: ``-``, ``/dev/stdin``, plain or gzip-compressed.

A pipe cannot seek, so the format has to be told from bytes that are then handed on, not
re-read. The captures are larger than a pipe's buffer (64 KiB), so they arrive in pieces.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relayguard.wire.capture import open_capture
from tests.wire.craft import T0, Conn, Frame, frames_of, relay_session, write_pcap, write_pcapng

OURS = ["--mail-server", "192.0.2.25", "--local-domain", "example.org"]
SESSIONS = 40


def relay_frames() -> list[Frame]:
    conns = [
        relay_session(Conn(cport=40000 + i, time=T0 + i), "s@x.example", [f"v{i}@target.example"])
        for i in range(SESSIONS)
    ]
    return frames_of(*conns)


FRAMES = relay_frames()


def capture_bytes(tmp_path: Path, kind: str) -> bytes:
    """The crafted capture as ``kind``: pcap, pcapng, pcap.gz or pcapng.gz."""
    base = kind.removesuffix(".gz")
    path = tmp_path / f"c.{base}"
    (write_pcapng if base == "pcapng" else write_pcap)(path, FRAMES)
    data = path.read_bytes()
    assert len(data) > 65536  # more than a pipe holds: the reader gets it in pieces
    return gzip.compress(data) if kind.endswith(".gz") else data


@contextlib.contextmanager
def pipe_carrying(data: bytes) -> Iterator[int]:
    """The read end of a pipe that a thread fills with ``data`` and then closes."""
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with open(write_fd, "wb") as out, contextlib.suppress(BrokenPipeError):
            out.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        yield read_fd
    finally:
        os.close(read_fd)  # a reader that stopped early: the writer gets EPIPE and ends
        writer.join()


def summary(doc: dict[str, Any]) -> tuple[Any, ...]:
    (relay,) = [f for f in doc["findings"] if f["indicator"] == "open-relay-use"]
    c = doc["capture"]
    return (doc["exit_code"], c["path"], c["format"], c["packets"], relay["details"]["messages"])


FORMATS = {"pcap": "pcap", "pcapng": "pcapng", "pcap.gz": "pcap, gzip", "pcapng.gz": "pcapng, gzip"}


@pytest.mark.parametrize("kind", list(FORMATS))
def test_dash_reads_standard_input(
    tmp_path: Path, relayguard: Any, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    with pipe_carrying(capture_bytes(tmp_path, kind)) as fd, open(fd, "rb", closefd=False) as f:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(f))
        run = relayguard("pcap", "-", "--json", *OURS)
    assert run.err == ""
    expected = (2, "standard input", FORMATS[kind], len(FRAMES), SESSIONS)
    assert summary(run.json) == expected


@pytest.mark.parametrize("kind", list(FORMATS))
def test_a_pipe_named_by_path_is_read_without_seeking(
    tmp_path: Path, relayguard: Any, kind: str
) -> None:
    # /dev/fd/N is what /dev/stdin is: a name for an open descriptor, here a pipe
    with pipe_carrying(capture_bytes(tmp_path, kind)) as fd:
        name = f"/dev/fd/{fd}"
        run = relayguard("pcap", name, "--json", *OURS)
    assert run.err == ""
    assert summary(run.json) == (2, name, FORMATS[kind], len(FRAMES), SESSIONS)


def test_gzip_through_dev_stdin_as_a_user_types_it(tmp_path: Path) -> None:
    # gzip -c x.pcap | relayguard pcap /dev/stdin
    run = subprocess.run(
        [sys.executable, "-m", "relayguard", "pcap", "/dev/stdin", "--json", *OURS],
        input=capture_bytes(tmp_path, "pcap.gz"),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert run.stderr == b""
    doc = json.loads(run.stdout)
    assert run.returncode == 2
    assert summary(doc) == (2, "/dev/stdin", "pcap, gzip", len(FRAMES), SESSIONS)


class Trickle(io.RawIOBase):
    """A pipe whose writer hands over one byte at a time."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.at == len(self.data):
            return 0
        buffer[0] = self.data[self.at]
        self.at += 1
        return 1


@pytest.mark.parametrize("kind", ["pcap", "pcapng.gz"])
def test_magic_bytes_arriving_one_at_a_time(tmp_path: Path, kind: str) -> None:
    stdin = io.BufferedReader(Trickle(capture_bytes(tmp_path, kind)))
    assert len(stdin.peek(4)) == 1  # why the format is not told by peeking: it may be short
    hot = bytearray(65536)
    hot[25] = 1
    ports: list[int] = []
    with open_capture("-", stdin=stdin) as capture:
        stats = capture.scan(bytes(hot), lambda *seg: ports.append(seg[4]))
    assert stdin.closed is False  # standard input belongs to the caller
    assert (stats.path, stats.format, stats.packets) == ("standard input", FORMATS[kind], 760)
    assert (len(ports), set(ports)) == (len(FRAMES), {25, *range(40000, 40000 + SESSIONS)})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "relayguard: error: standard input is empty\n"),
        (
            b"hello, I am a text file\n",
            "relayguard: error: standard input is not a pcap or pcapng capture "
            "(unknown file signature)\n",
        ),
        (
            b"\x1f\x8b\x08\x00garbage",
            "relayguard: error: standard input: the gzip data is cut short before its first "
            "packet\n",
        ),
    ],
)
def test_unreadable_standard_input_is_one_line_and_exit_3(
    relayguard: Any, monkeypatch: pytest.MonkeyPatch, content: bytes, message: str
) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(content)))
    run = relayguard("pcap", "-")
    assert (run.code, run.out, run.err) == (3, "", message)
