"""Follow a growing log file like ``tail -F``, across rotation, without losing a line.

Theory of operation
-------------------
:class:`FileFollower` holds the log open and, on each :meth:`~FileFollower.poll`, returns the
complete lines appended since the last call (each with its ``\\n``, as ``readline`` gives it,
so :func:`relayguard.logs.reader.parse_lines` takes them as is). Only when the open file has
nothing more does it look at the path again:

* **rename + new file** (logrotate's default, rsyslog's reopen): the path names another file.
  The old one is read to its end first; it stays open for :data:`ROTATE_GRACE` seconds, so
  lines a writer adds before it reopens the new file are still read; then the new file is
  read from its start.
* **copytruncate**: the same file, now shorter than what was read. The lines written between
  the last poll and the truncation are in the copy logrotate made (``mail.log.1``, or a dated
  name): a sibling whose first bytes are those of the file is read from the old offset to its
  end, then the truncated file from its start.

A :class:`Position` (device, inode, offset of the next unread line, a digest of the file's
first bytes) is what the caller saves; a follower started from one resumes there. If the file
was rotated while nobody followed it, the rest of the old file is found by inode (renamed)
or by its first bytes (copied) and read before the new one. What cannot be found (a rotated
file already compressed or deleted) sets ``stats.lost_bytes`` to None (an unknown amount)
with a note, never guessed. A copy is only looked for after a copytruncate (the path still
names the inode that was read); after a rename, a file that merely starts like the old one is
not it. (A file that was still empty at the last poll has no first bytes to know it by: a
copytruncate before anything of it was read cannot be told apart.)

Bounds: a line longer than ``max_line`` bytes is cut there (the rest, up to its newline, is
dropped and the line counted as truncated by the parser); one poll reads at most
``max_bytes``, so a caller catching up on a large backlog keeps control.

The clock is injected (``clock``), so the grace period is testable without sleeping.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relayguard.errors import InputError
from relayguard.logs.sources import MAX_LINE, input_error

HEAD_BYTES = 4096  # the file's identity: its first bytes (a syslog line has a timestamp)
READ_CHUNK = 1 << 20
POLL_BUDGET = 8 << 20  # bytes per poll
ROTATE_GRACE = 5.0  # seconds the old file is still read after a rename


@dataclass(frozen=True, slots=True)
class Position:
    """Where to go on reading: the file (device, inode, first bytes) and the offset."""

    dev: int
    ino: int
    offset: int
    head_len: int
    head_sha256: str

    def to_json(self) -> dict[str, Any]:
        return {
            "dev": self.dev,
            "ino": self.ino,
            "offset": self.offset,
            "head_len": self.head_len,
            "head_sha256": self.head_sha256,
        }

    @classmethod
    def from_json(cls, data: object) -> Position | None:
        """The position in ``data``, or None when it is not one (a damaged state file)."""
        if not isinstance(data, dict):
            return None
        try:
            dev, ino, offset, head_len = (data[k] for k in ("dev", "ino", "offset", "head_len"))
            head = data["head_sha256"]
        except KeyError:
            return None
        numbers = (dev, ino, offset, head_len)
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
            return None
        if not isinstance(head, str) or len(head) != 64:
            return None
        return cls(dev, ino, offset, head_len, head)


@dataclass(slots=True)
class FollowStats:
    rotations: int = 0
    truncations: int = 0
    recovered_bytes: int = 0  # read from a rotated or copied file after the fact
    lost_bytes: int | None = 0  # None: some were lost, how many cannot be known
    notes: list[str] = field(default_factory=list)
    # why the path has no log to follow now (gone, or not a regular file), for longer than
    # ROTATE_GRACE; None while it is fine. The caller reports changes.
    path_problem: str | None = None

    def note(self, text: str) -> None:
        if len(self.notes) < 50:
            self.notes.append(text)


def _digest(fd: int, length: int) -> str:
    return hashlib.sha256(os.pread(fd, length, 0)).hexdigest()


class _Tail:
    """One open file read from an offset, splitting complete lines off a bounded buffer."""

    __slots__ = ("end", "fd", "head_len", "head_sha256", "max_line", "offset", "partial", "skip")

    def __init__(self, fd: int, offset: int, max_line: int, end: int | None = None) -> None:
        self.fd = fd
        self.offset = offset  # bytes taken from the file
        self.end = end  # stop here (the part of a copy that the live file no longer has)
        self.max_line = max_line
        self.partial = b""
        self.skip = False  # dropping the rest of an over-long line
        self.head_len = 0
        self.head_sha256 = ""
        self.refresh_head()

    @property
    def next_line(self) -> int:
        """Offset of the first byte not yet returned as part of a line."""
        return self.offset - len(self.partial)

    def refresh_head(self) -> None:
        """Digest the file's first bytes, as far as they were read (at most HEAD_BYTES)."""
        length = min(self.offset, HEAD_BYTES)
        if length > self.head_len or not self.head_sha256:
            try:
                self.head_sha256 = _digest(self.fd, length)
            except OSError:
                return
            self.head_len = length

    def read(self, budget: int, out: list[str]) -> int:
        """Append complete lines to ``out``; returns bytes read (0 at the end of the file)."""
        total = 0
        while total < budget:
            want = min(READ_CHUNK, budget - total)
            if self.end is not None:
                want = min(want, self.end - self.offset)
                if want <= 0:
                    break
            chunk = os.pread(self.fd, want, self.offset)
            if not chunk:
                break
            self.offset += len(chunk)
            total += len(chunk)
            self._split(chunk, out)
            if self.head_len < HEAD_BYTES:
                self.refresh_head()
        return total

    def _split(self, chunk: bytes, out: list[str]) -> None:
        data = self.partial + chunk if self.partial else chunk
        start = 0
        if self.skip:
            nl = data.find(b"\n")
            if nl < 0:
                self.partial = b""
                return
            self.skip = False
            start = nl + 1
        last = data.rfind(b"\n")
        if last >= start:
            block = data[start : last + 1].decode("utf-8", "replace")
            lines = block.splitlines(keepends=True)
            # splitlines also breaks at \r, \v, \x1c... : only \n ends a log line
            if len(lines) != block.count("\n"):
                lines = [piece + "\n" for piece in block.split("\n")[:-1]]
            limit = self.max_line
            if len(block) > limit:
                # cut, without the newline: the parser counts it as truncated
                lines = [x if len(x) <= limit else x[:limit] for x in lines]
            out.extend(lines)
            rest = data[last + 1 :]
        else:
            rest = data[start:]
        if len(rest) >= self.max_line:
            out.append(rest[: self.max_line].decode("utf-8", "replace"))
            self.partial = b""
            self.skip = True
        else:
            self.partial = rest

    def flush(self, out: list[str]) -> None:
        """The last line of a file that will not grow any more, even without its newline."""
        if self.partial and not self.skip:
            out.append(self.partial.decode("utf-8", "replace"))
        self.partial = b""

    def close(self) -> None:
        os.close(self.fd)


class FileFollower:
    """Lines appended to ``path``; see the module docstring."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        position: Position | None = None,
        *,
        start_at_end: bool = False,
        max_line: int = MAX_LINE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.max_line = max_line
        self.stats = FollowStats()
        self._clock = clock
        self._main: _Tail | None = None
        self._ident: tuple[int, int] | None = None
        self._draining: list[tuple[_Tail, float | None]] = []  # (tail, close-after time)
        self._problem_since: float | None = None
        fd = self._open_path()  # a missing or unreadable log is an error at the start
        self._resume(fd, position, start_at_end)

    # -- opening ---------------------------------------------------------------------------
    def _open_path(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise input_error(str(self.path), exc) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise InputError(f"cannot follow {self.path}: not a regular file")
        if st.st_size == 0 and _pseudo_file(fd):
            os.close(fd)
            raise InputError(
                f"cannot follow {self.path}: not a regular file (it has data but a size of 0: "
                "a /proc or /sys file)"
            )
        return fd

    def _adopt(self, fd: int, offset: int) -> None:
        st = os.fstat(fd)
        self._main = _Tail(fd, offset, self.max_line)
        self._ident = (st.st_dev, st.st_ino)

    def _resume(self, fd: int, pos: Position | None, start_at_end: bool) -> None:
        st = os.fstat(fd)
        if pos is None:
            self._adopt(fd, st.st_size if start_at_end else 0)
            return
        same_file = (st.st_dev, st.st_ino) == (pos.dev, pos.ino)
        if same_file and st.st_size >= pos.offset and self._head_matches(fd, pos):
            self._adopt(fd, pos.offset)
            return
        # rotated or truncated while nobody followed: the rest of the old file first
        # a copy (same first bytes, another inode) holds the rest only after a copytruncate,
        # when the path still names the old inode; after a rename only that inode does
        old = self._find_old(pos, copies_too=same_file)
        if old is not None:
            old_fd, where = old
            size = os.fstat(old_fd).st_size
            self.stats.recovered_bytes += size - pos.offset
            self.stats.note(f"read the rest of {where} (rotated while stopped)")
            self._draining.append((_Tail(old_fd, pos.offset, self.max_line), None))
        else:
            self.stats.lost_bytes = None  # how much the old file grew before it went is unknown
            self.stats.note(
                "the log was rotated while stopped and the rest of the old file was not found "
                "(compressed or deleted): lines written before the rotation may be missing"
            )
        if same_file:
            self.stats.truncations += 1
        else:
            self.stats.rotations += 1
        self._adopt(fd, 0)

    def _head_matches(self, fd: int, pos: Position) -> bool:
        if pos.head_len == 0:
            return True
        try:
            return _digest(fd, pos.head_len) == pos.head_sha256
        except OSError:
            return False

    def _siblings(self) -> list[Path]:
        name = self.path.name
        try:
            entries = list(self.path.parent.iterdir())
        except OSError:
            return []
        found = [
            p
            for p in entries
            if p.name != name and p.name.startswith(name) and p.name[len(name)] in ".-_"
        ]
        # the newest rotation first: that is where the lines just before it are
        return sorted(found, key=lambda p: _mtime(p), reverse=True)

    def _find_old(self, pos: Position, *, copies_too: bool = True) -> tuple[int, str] | None:
        """An fd on the rotated file holding the bytes after ``pos``, and its name: the file
        itself under a new name (same inode), else (``copies_too``) a copy (same first
        bytes)."""
        copies: list[tuple[int, str]] = []
        found: tuple[int, str] | None = None
        for candidate in self._siblings():
            try:
                fd = os.open(candidate, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError:
                continue
            st = os.fstat(fd)
            if (
                found is None
                and stat.S_ISREG(st.st_mode)
                and st.st_size >= pos.offset
                and self._head_matches(fd, pos)
            ):
                if (st.st_dev, st.st_ino) == (pos.dev, pos.ino):
                    found = (fd, str(candidate))
                    continue
                copies.append((fd, str(candidate)))
                continue
            os.close(fd)
        if found is None and copies and copies_too:
            found = copies.pop(0)
        for fd, _ in copies:
            os.close(fd)
        return found

    # -- reading ---------------------------------------------------------------------------
    def poll(self, max_bytes: int = POLL_BUDGET) -> list[str]:
        """The complete lines written since the last call (at most about ``max_bytes``)."""
        out: list[str] = []
        budget = max_bytes
        now = self._clock()
        for entry in list(self._draining):
            tail, close_after = entry
            budget -= tail.read(budget, out)
            at_end = budget > 0
            if at_end and (close_after is None or now >= close_after):
                tail.flush(out)
                tail.close()
                self._draining.remove(entry)
        if budget <= 0 or self._main is None:
            return out
        main = self._main
        if self._rewritten(main):
            self._truncated(main, out, budget)
            return out
        got = main.read(budget, out)
        if got >= budget:
            return out  # more to read: look at the path when the file is exhausted
        self._check_path(now, out, budget - got)
        return out

    def _check_path(self, now: float, out: list[str], budget: int) -> None:
        main = self._main
        assert main is not None
        try:
            st = os.stat(self.path)
        except OSError as exc:
            # between the rename and the new file: wait for it (and say so if it lasts)
            self._path_problem(now, f"{self.path} is missing ({exc.strerror or exc})")
            return
        if not stat.S_ISREG(st.st_mode):
            self._path_problem(now, f"{self.path} is not a regular file")
            return
        if (st.st_dev, st.st_ino) == self._ident:
            self._path_problem(now, None)
            return
        try:
            fd = self._open_path()
        except InputError as exc:
            self._path_problem(now, str(exc))
            return
        self._path_problem(now, None)
        self.stats.rotations += 1
        self._draining.append((main, now + ROTATE_GRACE))
        self._adopt(fd, 0)
        self._main_read(budget, out)

    def _path_problem(self, now: float, problem: str | None) -> None:
        if problem is None:
            self._problem_since = None
            self.stats.path_problem = None
            return
        if self._problem_since is None:
            self._problem_since = now
        if now - self._problem_since >= ROTATE_GRACE:
            self.stats.path_problem = problem

    def _rewritten(self, main: _Tail) -> bool:
        """Shorter than what was read, or rewritten from its start (truncated and grown
        again since the last poll): copytruncate."""
        try:
            size = os.fstat(main.fd).st_size
        except OSError:
            return False
        return size < main.offset or not self._head_matches(main.fd, self._pos_of(main))

    @staticmethod
    def _pos_of(tail: _Tail) -> Position:
        return Position(0, 0, tail.offset, tail.head_len, tail.head_sha256)

    def _main_read(self, budget: int, out: list[str]) -> None:
        if self._main is not None:
            self._main.read(budget, out)

    def _truncated(self, main: _Tail, out: list[str], budget: int) -> None:
        """copytruncate: the bytes after our offset are in the copy, the rest starts at 0."""
        self.stats.truncations += 1
        old = self._find_old(self._pos_of(main))
        if old is not None:
            fd, where = old
            copy = _Tail(fd, main.offset, self.max_line)
            copy.partial, copy.skip = main.partial, main.skip
            before = copy.offset
            copy.read(1 << 62, out)
            copy.flush(out)
            copy.close()
            if copy.offset > before:
                self.stats.recovered_bytes += copy.offset - before
                self.stats.note(f"read the end of {where} (copied before the truncation)")
        else:
            main.flush(out)
        main.partial, main.skip = b"", False
        main.offset = 0
        main.head_len, main.head_sha256 = 0, ""
        main.refresh_head()
        main.read(budget, out)

    # -- state -----------------------------------------------------------------------------
    def position(self) -> Position | None:
        main = self._main
        if main is None or self._ident is None:
            return None
        main.refresh_head()
        return Position(
            self._ident[0], self._ident[1], main.next_line, main.head_len, main.head_sha256
        )

    def lag_bytes(self) -> int:
        """Bytes in the file not read yet (0 when caught up)."""
        main = self._main
        if main is None:
            return 0
        try:
            return max(0, os.fstat(main.fd).st_size - main.offset)
        except OSError:
            return 0

    def close(self) -> None:
        for tail, _ in self._draining:
            tail.close()
        self._draining.clear()
        if self._main is not None:
            self._main.close()
            self._main = None


def _pseudo_file(fd: int) -> bool:
    """A file whose size says 0 but that has data (procfs, sysfs): reading it again from the
    start would never end."""
    try:
        if not os.pread(fd, 1, 0):
            return False
        return os.fstat(fd).st_size == 0  # not a file that grew just now
    except OSError:
        return False


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
