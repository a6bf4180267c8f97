"""Follow the systemd journal (``journalctl -f -o json``) instead of a log file.

The same interface as :class:`~relayguard.logs.follow.FileFollower`: :meth:`poll` returns
complete lines (``journalctl -o json`` objects, which the envelope parser understands), and
:meth:`position` the journal cursor of the last line returned, so a restart goes on with
``--after-cursor``. journalctl runs as a child with a non-blocking pipe; if it dies it is
started again (from the cursor) at most every :data:`RESTART_EVERY` seconds.

With ``follow=False`` (``watch --once``) journalctl runs without ``--follow``: it prints what
is new since the cursor and exits, and :meth:`poll` waits for its output, so an empty poll
means "read to the end", never "journalctl has not printed anything yet".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from relayguard.errors import InputError
from relayguard.logs.follow import FollowStats
from relayguard.logs.sources import MAX_LINE

RESTART_EVERY = 5.0
_MAX_CURSOR = 1024


def valid_cursor(value: object) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= _MAX_CURSOR and value.isprintable():
        return value
    return None


def journal_argv(
    journalctl: str,
    units: Sequence[str],
    cursor: str | None,
    start_at_end: bool,
    directory: str | None = None,
    follow: bool = True,
) -> list[str]:
    argv = [journalctl, *(["--follow"] if follow else []), "--output=json", "--no-pager", "--quiet"]
    if directory:
        argv.append(f"--directory={directory}")
    for unit in units:
        argv.append(f"--unit={unit}")
    if cursor:
        argv.append(f"--after-cursor={cursor}")
    elif not start_at_end:
        argv.append("--lines=all")
    else:
        # following: only what comes next. Not following, "--lines=0" would print nothing and
        # leave no cursor, so every run would start at the end again: read the last entry for
        # its cursor instead (the follower does not return it).
        argv.append("--lines=0" if follow else "--lines=1")
    return argv


def cursor_of(line: str) -> str | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return valid_cursor(entry.get("__CURSOR")) if isinstance(entry, dict) else None


class JournalFollower:
    def __init__(
        self,
        units: Sequence[str],
        cursor: str | None = None,
        *,
        start_at_end: bool = False,
        directory: str | None = None,
        follow: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        journalctl = shutil.which("journalctl")
        if journalctl is None:
            raise InputError("cannot follow the journal: journalctl is not installed")
        self.units = list(units)
        self.cursor = cursor
        self.directory = directory
        self.stats = FollowStats()
        self._journalctl = journalctl
        self._start_at_end = start_at_end
        self._follow = follow
        # not following and starting at the end: the one entry read only gives the cursor
        self._skip_first_batch = not follow and start_at_end and not cursor
        self._ended = False
        self._clock = clock
        self._partial = b""
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._start()

    def _start(self) -> None:
        argv = journal_argv(
            self._journalctl,
            self.units,
            self.cursor,
            self._start_at_end,
            self.directory,
            follow=self._follow,
        )
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert self._proc.stdout is not None
        if self._follow:
            os.set_blocking(self._proc.stdout.fileno(), False)
        self._started = self._clock()

    def poll(self, max_bytes: int = 8 << 20) -> list[str]:
        proc = self._proc
        if proc is None or self._ended:
            return []
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        data, at_eof = _read(fd, max_bytes)
        if not self._follow:
            # an empty answer must mean the end: read on until a whole line or the end
            lines = self._lines(data, at_eof)
            while not lines and not self._ended:
                data, at_eof = _read(fd, max_bytes)
                lines = self._lines(data, at_eof)
            return lines
        if not data and proc.poll() is not None:
            self._restart()
            return []
        return self._lines(data, False)

    def _lines(self, data: bytes, at_eof: bool) -> list[str]:
        data = self._partial + data
        if at_eof:
            self._finish()
            if data and not data.endswith(b"\n"):
                data += b"\n"
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data[-MAX_LINE:]
            return []
        self._partial = data[cut + 1 :][-MAX_LINE:]
        text = data[: cut + 1].decode("utf-8", "replace")
        lines = [line + "\n" for line in text.split("\n")[:-1]]
        for line in reversed(lines):
            c = cursor_of(line)
            if c is not None:
                self.cursor = c
                break
        if self._skip_first_batch:
            lines = []  # the entry read for its cursor only (see journal_argv)
            if at_eof:
                self._skip_first_batch = False
        return lines

    def _finish(self) -> None:
        """journalctl (not following) printed everything: note a failure, read no more."""
        self._ended = True
        assert self._proc is not None
        code = self._proc.wait()
        if code != 0:
            self.stats.note(f"journalctl exited {code}")

    def _restart(self) -> None:
        if self._clock() - self._started < RESTART_EVERY:
            return
        self.stats.note("journalctl ended; started it again")
        self._start()

    def position(self) -> dict[str, Any] | None:
        return {"cursor": self.cursor} if self.cursor else None

    def lag_bytes(self) -> int:
        return 0

    def close(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None


def _read(fd: int, max_bytes: int) -> tuple[bytes, bool]:
    """Up to ``max_bytes`` from ``fd`` (what is there now, when it does not block), and
    whether the writer closed it."""
    data = b""
    while len(data) < max_bytes:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            break
        if not chunk:
            return data, True
        data += chunk
    return data, False
