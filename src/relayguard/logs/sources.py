"""Log inputs as streams of text lines: plain or compressed files, stdin, rotated sets.

Theory of operation
-------------------
:func:`open_source` opens one input and returns a :class:`LineSource`. Compression is
detected from the first bytes (gzip, bzip2, xz), never from the name alone, so ``-`` (stdin)
and misnamed files work too. Bytes are decoded as UTF-8 with replacement characters, so
binary junk never raises; lines end at ``\\n`` (the reader drops a ``\\r`` before it); a lone
``\\r`` inside a line is data, not a line break (log lines are written with ``\\n``).

:attr:`LineSource.lines` iterates at C speed (``TextIOWrapper.readline`` with a length limit
driven by ``iter(callable, sentinel)``). Each item keeps its ``\\n``; an item without one is
either the last line of the input or the first :data:`MAX_LINE` characters of a longer line.
The reader tells them apart by length and calls :meth:`LineSource.skip_rest_of_line` to drop
the remainder, so memory stays bounded even on a file without any newline.

Errors: opening a missing or unreadable input raises :class:`~relayguard.errors.InputError`
naming it. Reading can fail later (a truncated ``.gz``); such exceptions are in
:data:`READ_ERRORS` and :func:`input_error` turns one into an ``InputError``. The reader
catches both per source, records the failure and goes on with the next source, so lines
already read are kept (see ``reader.py``).

Rotated sets: :func:`order_sources` puts ``mail.log.3.gz mail.log.2.gz mail.log.1
mail.log`` and logrotate ``dateext`` names (``mail.log-20261201[.gz]``) oldest first,
whatever order they were given in; other names keep their given order.

Progress: :func:`total_size` sums the sizes of the files (compressed size for compressed
files) and :meth:`LineSource.bytes_done` counts the bytes taken from the file so far, which
for a compressed file are compressed bytes, so the two compare.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import stat
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from types import TracebackType
from typing import Any, BinaryIO

from relayguard.errors import InputError

STDIN = "-"
MAX_LINE = 64 * 1024  # characters; longer lines are truncated and counted
READ_BUFFER = 1 << 20

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_MAGIC_LEN = 6
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")

# Exceptions a source can raise while it is being read (corrupt or truncated compressed data).
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
)

_NUMBERED = re.compile(r"(.+)\.(\d{1,6})")
_DATEEXT = re.compile(r"(.+?)[-.](\d{8}|\d{10}|\d{4}-\d\d-\d\d)(\.[A-Za-z]\w*)?")


def detect_compression(head: bytes) -> str:
    """``gzip``, ``bzip2``, ``xz``, ``zstd`` or ``""`` (plain) from the first bytes."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return ""


def input_error(name: str, exc: BaseException) -> InputError:
    """A one-line :class:`InputError` naming the input."""
    if isinstance(exc, FileNotFoundError):
        why = "no such file"
    elif isinstance(exc, PermissionError):
        why = "permission denied"
    elif isinstance(exc, IsADirectoryError):
        why = "is a directory"
    elif isinstance(exc, EOFError):
        why = "compressed data ends early (truncated file?)"
    elif isinstance(exc, OSError) and exc.strerror:
        why = exc.strerror
    else:
        why = str(exc) or type(exc).__name__
    why = " ".join(why.split())
    return InputError(f"cannot read {display_name(name)}: {why}")


def display_name(name: str) -> str:
    return "standard input" if name == STDIN else name


class _CountingReader(io.RawIOBase):
    """Raw stream that first replays the sniffed bytes, then reads on, counting bytes."""

    def __init__(self, f: BinaryIO, head: bytes) -> None:
        super().__init__()
        self._head = head
        self.count = len(head)
        self._read = f.read
        self._readinto: Callable[[memoryview | bytearray], int | None] | None = getattr(
            f, "readinto", None
        )

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        head = self._head
        if head:
            n = min(len(head), len(buffer))
            buffer[:n] = head[:n]
            self._head = head[n:]
            return n
        if self._readinto is not None:
            n = self._readinto(buffer) or 0
        else:
            data = self._read(len(buffer))
            n = len(data)
            buffer[:n] = data
        self.count += n
        return n


class LineSource:
    """One open input. Iterate :attr:`lines`; close when done (or use ``with``)."""

    def __init__(
        self,
        name: str,
        f: BinaryIO,
        *,
        close_file: bool,
        size: int | None,
        mtime: float | None,
        max_line: int = MAX_LINE,
    ) -> None:
        self.name = name
        self.size = size
        self.mtime = mtime
        self.max_line = max_line
        self._f = f
        self._close_file = close_file
        head = _read_head(f)
        self.compression = detect_compression(head)
        self._counter = _CountingReader(f, head)
        buffered = io.BufferedReader(self._counter, READ_BUFFER)
        stream: io.BufferedReader[Any]
        # The decompressors' own buffers are small: a large one on top keeps the per-chunk
        # Python overhead of gzip/bz2/lzma negligible next to the decompression itself.
        if self.compression == "gzip":
            stream = io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"), READ_BUFFER)
        elif self.compression == "bzip2":
            stream = io.BufferedReader(bz2.BZ2File(buffered), READ_BUFFER)
        elif self.compression == "xz":
            stream = io.BufferedReader(lzma.LZMAFile(buffered), READ_BUFFER)  # noqa: SIM115
        elif self.compression == "zstd":
            self.close()
            raise InputError(
                f"cannot read {display_name(name)}: zstd is not supported; "
                "pipe it in with: zstd -dc FILE | relayguard ... -"
            )
        else:
            stream = buffered
        self._text = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="\n")
        self.lines: Iterator[str] = iter(partial(self._text.readline, max_line), "")

    def skip_rest_of_line(self) -> bool:
        """Drop what is left of a line cut at ``max_line``; False if only its newline was left."""
        readline, limit = self._text.readline, self.max_line
        dropped = False
        while True:
            piece = readline(limit)
            if not piece:
                return dropped
            if piece.endswith("\n"):
                return dropped or len(piece) > 1
            dropped = True

    def bytes_done(self) -> int:
        """Bytes taken from the file so far (compressed bytes for a compressed file)."""
        return self._counter.count

    def close(self) -> None:
        if self._close_file:
            self._f.close()

    def __enter__(self) -> LineSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _read_head(f: BinaryIO) -> bytes:
    head = b""
    while len(head) < _MAGIC_LEN:
        more = f.read(_MAGIC_LEN - len(head))
        if not more:
            break
        head += more
    return head


def open_source(
    name: str, *, stdin: BinaryIO | None = None, max_line: int = MAX_LINE
) -> LineSource:
    """Open a path, or ``-`` for ``stdin`` (default ``sys.stdin.buffer``).

    Raises :class:`InputError` naming the input when it cannot be opened.
    """
    if name == STDIN:
        f = stdin if stdin is not None else sys.stdin.buffer
        try:
            return LineSource(name, f, close_file=False, size=None, mtime=None, max_line=max_line)
        except READ_ERRORS as exc:
            raise input_error(name, exc) from exc
    try:
        raw = open(name, "rb", buffering=0)  # noqa: SIM115 - closed by LineSource.close
    except OSError as exc:
        raise input_error(name, exc) from exc
    try:
        st = os.fstat(raw.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(name)
        return LineSource(
            name,
            raw,
            close_file=True,
            size=st.st_size if stat.S_ISREG(st.st_mode) else None,  # a pipe has no size
            mtime=st.st_mtime,
            max_line=max_line,
        )
    except InputError:
        raw.close()
        raise
    except READ_ERRORS as exc:
        raw.close()
        raise input_error(name, exc) from exc


def _strip_compression(name: str) -> str:
    for suffix in COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def rotation_key(name: str) -> tuple[str, int, int]:
    """(base name, kind, age order) of a rotated log name; kind 0 numbered, 1 dated, 2 live.

    Sorting by (kind, age order) puts one base name's files oldest first.
    """
    if name == STDIN:
        return name, 2, 0
    stem = _strip_compression(name)
    m = _DATEEXT.fullmatch(stem)
    if m is not None:
        return m[1] + (m[3] or ""), 1, int(m[2].replace("-", ""))
    m = _NUMBERED.fullmatch(stem)
    if m is not None:
        return m[1], 0, -int(m[2])
    return stem, 2, 0


def _mtime_or_zero(name: str) -> float:
    try:
        return os.stat(name).st_mtime
    except OSError:
        return 0.0


def order_sources(
    names: Sequence[str], mtime: Callable[[str], float] = _mtime_or_zero
) -> list[str]:
    """Inputs in reading order: each rotated set oldest first, sets in the order first named.

    Ties (the same rank, e.g. two copies of ``mail.log.1``) are broken by modification time.
    """
    group_order: dict[str, int] = {}
    keyed = []
    for index, name in enumerate(names):
        base, kind, age = rotation_key(name)
        group = group_order.setdefault(base, len(group_order))
        tie = 0.0 if name == STDIN else mtime(name)
        keyed.append(((group, kind, age, tie, index), name))
    keyed.sort(key=lambda item: item[0])
    return [name for _, name in keyed]


def total_size(names: Sequence[str]) -> int | None:
    """Sum of the sizes of the named regular files; None if none has a known size."""
    total, known = 0, False
    for name in names:
        if name == STDIN:
            continue
        try:
            total += os.stat(name).st_size
            known = True
        except OSError:
            continue
    return total if known else None
