"""SMTP replies from bytes: line assembly, multi-line replies, bounds. No I/O, no clock.

:class:`ReplyReader` takes whatever the reads deliver (a reply split mid-line, mid-CRLF or
across many reads is the same reply) and hands out complete :class:`Reply` objects. A
multi-line reply (``250-`` ... ``250 ``) must keep one code. Everything the server controls is
bounded (:class:`Limits`); crossing a bound or breaking the reply syntax raises the error
class the caller chose (the probe's ``RemoteProtocolError``, the wire reader's own), and the
reader stays failed after that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from relayguard.errors import RelayguardError
from relayguard.report.sanitize import clean

# RFC 5321 4.5.3.1.5 caps a reply line at 512 octets with CRLF; real servers (long Exchange and
# Gmail texts) stay well under 2048, which also stops a 10 MB one-line "banner" after 2 KB.
MAX_LINE: Final = 2048
# RFC 5321 sets no limit; large EHLO lists and policy texts run to ~25 lines.
MAX_REPLY_LINES: Final = 100
MAX_REPLY_BYTES: Final = 64 * 1024
# A full probe reads well under 100 KiB per connection; 1 MiB bounds a server that streams.
MAX_SESSION_BYTES: Final = 1024 * 1024


class ReplySyntaxError(RelayguardError):
    """The server broke the SMTP reply syntax or exceeded a bound."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what the server may send (bytes, except ``lines``)."""

    line: int = MAX_LINE
    lines: int = MAX_REPLY_LINES
    reply_bytes: int = MAX_REPLY_BYTES
    session_bytes: int = MAX_SESSION_BYTES


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete reply: its code and the text of each line (without code and separator)."""

    code: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def enhanced(self) -> str | None:
        """The RFC 3463 enhanced status code (``5.7.1``), or None.

        Read at the start of the first line, or qmail's trailing ``(#5.7.1)``.
        """
        first = self.lines[0] if self.lines else ""
        found = _status_code(first.split(" ", 1)[0], self.code)
        if found is None and first.endswith(")"):
            start = first.rfind("(#")
            if start >= 0:
                found = _status_code(first[start + 2 : -1], self.code)
        return found

    def wire(self) -> list[str]:
        """The reply as it came over the wire, one string per line."""
        last = len(self.lines) - 1
        return [
            f"{self.code}{'-' if i < last else ' '}{line}".rstrip()
            for i, line in enumerate(self.lines)
        ]


def _status_code(token: str, code: int) -> str | None:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != str(code // 100):
        return None
    if all(p.isdigit() and len(p) <= 3 for p in parts):
        return token
    return None


class ReplyReader:
    """Assembles replies from a byte stream; see the module docstring."""

    def __init__(
        self, limits: Limits | None = None, error: type[Exception] = ReplySyntaxError
    ) -> None:
        self.limits = limits or Limits()
        self._error_class = error
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf known to hold no LF
        self._lines: list[str] = []
        self._code = 0
        self._reply_bytes = 0
        self.error: Exception | None = None

    @property
    def has_unread(self) -> bool:
        """Bytes arrived that belong to no completed reply yet."""
        return bool(self._buf or self._lines)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_reply(self) -> Reply | None:
        """The next complete reply, or None until more bytes arrive."""
        if self.error is not None:
            raise self.error
        while True:
            end = self._buf.find(b"\n", self._scanned)
            if end < 0:
                if len(self._buf) > self.limits.line:
                    self.fail(f"reply line longer than {self.limits.line} bytes")
                self._scanned = len(self._buf)
                return None
            raw = bytes(self._buf[: end + 1])
            del self._buf[: end + 1]
            self._scanned = 0
            if len(raw) > self.limits.line:
                self.fail(f"reply line longer than {self.limits.line} bytes")
            reply = self._take_line(raw)
            if reply is not None:
                return reply

    def _take_line(self, raw: bytes) -> Reply | None:
        line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        if b"\0" in line:
            self.fail("NUL byte in a reply")
        head, sep = line[:3], line[3:4]
        if not (head.isdigit() and head[:1] in b"2345" and sep in (b"", b" ", b"-")):
            shown = clean(line[:40].decode("utf-8", "backslashreplace"), 40)
            self.fail(f"not an SMTP reply line: {shown}")
        code = int(head)
        if self._lines and code != self._code:
            self.fail(f"reply code changed from {self._code} to {code} inside one reply")
        self._code = code
        self._reply_bytes += len(raw)
        if self._reply_bytes > self.limits.reply_bytes:
            self.fail(f"reply longer than {self.limits.reply_bytes} bytes")
        self._lines.append(line[4:].decode("utf-8", "backslashreplace"))
        if len(self._lines) > self.limits.lines:
            self.fail(f"reply longer than {self.limits.lines} lines")
        if sep == b"-":
            return None
        reply = Reply(code, tuple(self._lines))
        self._lines = []
        self._reply_bytes = 0
        return reply

    def fail(self, why: str) -> None:
        """Fail the reader for good with ``why``; raises."""
        self.error = self._error_class(why)
        raise self.error
