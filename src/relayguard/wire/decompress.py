"""gzip, bzip2 and xz captures decompressed as they are read, forward only.

The standard library's file classes (``gzip.GzipFile`` ...) raise ``EOFError`` at a stream
cut short and lose what the last read had decompressed, so a truncated ``smtp.pcap.gz`` would
be an error while a truncated ``smtp.pcap`` is read up to the cut. :class:`Decompressed`
drives the decompressor objects itself: a stream that ends inside a member gives everything up
to there and sets :attr:`Decompressed.cut_short`. Concatenated members (``cat a.gz b.gz``)
are read one after the other; bytes after the last member that do not start another are
ignored (gzip's zero padding).
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from typing import Final, Protocol

COMPRESSIONS: Final = {  # file signature -> name
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
}
IN_CHUNK: Final = 1 << 18
DECOMPRESS_ERRORS: Final = (zlib.error, lzma.LZMAError, EOFError)


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int = -1, /) -> bytes: ...


def compression_of(head: bytes) -> str | None:
    """The compression whose signature ``head`` starts with, or None."""
    for magic, name in COMPRESSIONS.items():
        if head.startswith(magic):
            return name
    return None


def _new(kind: str) -> _Decompressor:
    if kind == "gzip":
        return zlib.decompressobj(wbits=31)
    if kind == "bzip2":
        return bz2.BZ2Decompressor()
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)


class Decompressed:
    """The decompressed bytes of ``raw``, compressed with ``kind`` (see COMPRESSIONS)."""

    def __init__(self, raw: Readable, kind: str) -> None:
        self._raw = raw
        self._kind = kind
        self._magic = next(m for m, k in COMPRESSIONS.items() if k == kind)
        self._d = _new(kind)
        self._input = b""  # compressed bytes not yet handed to the decompressor
        self._ended = False
        self.cut_short = False  # the input ended inside a compressed member

    def read(self, n: int = -1, /) -> bytes:
        if n < 0:
            parts = []
            while chunk := self._some(IN_CHUNK * 4):
                parts.append(chunk)
            return b"".join(parts)
        return self._some(n) if n else b""

    def _some(self, want: int) -> bytes:
        """Up to ``want`` bytes, fewer at the end; b"" only at the end."""
        while not self._ended:
            d = self._d
            if d.eof:
                self._next_member()
                continue
            if not self._input and self._needs_input():
                self._input = self._raw.read(IN_CHUNK)
                if not self._input:
                    self.cut_short = True
                    self._ended = True
                    break
            try:
                out = d.decompress(self._input, want)
            except (OSError, *DECOMPRESS_ERRORS) as exc:
                raise OSError(f"{self._kind} data is damaged ({exc})") from None
            self._input = getattr(d, "unconsumed_tail", b"")
            if out:
                return out
        return b""

    def _needs_input(self) -> bool:
        # zlib keeps the input it did not use in unconsumed_tail, the others inside
        return bool(getattr(self._d, "needs_input", True))

    def _next_member(self) -> None:
        rest = self._d.unused_data or self._raw.read(IN_CHUNK)
        if not rest:
            self._ended = True
            return
        if not rest.startswith(self._magic[: len(rest)]):
            self._ended = True  # trailing padding or garbage after the last member
            while self._raw.read(IN_CHUNK):
                pass
            return
        self._d = _new(self._kind)
        self._input = rest
