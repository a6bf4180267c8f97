"""A sans-I/O SMTP client dialogue: bytes in, replies out; commands in, bytes out.

Theory of operation
-------------------
The runner owns the socket. It hands every chunk it reads to :meth:`Dialogue.receive_data`
(``b""`` for end of stream) and asks :meth:`Dialogue.next_event` for what that completed: a
:class:`Reply`, :class:`Closed`, or :data:`NEED_DATA` (read more). It turns commands into bytes
with :meth:`Dialogue.send` and writes them itself. Nothing here reads a clock or a socket.

Replies are assembled line by line from whatever the reads deliver: a reply split mid-line,
mid-CRLF or across many reads is the same reply. A multi-line reply (``250-`` ... ``250 ``)
must keep one code. Everything the server controls is bounded (:class:`Limits`); crossing a
bound or breaking the reply syntax raises :class:`RemoteProtocolError`, and the dialogue stays
failed after that.

Safety lives here, below any caller: one command at a time (the probe never pipelines, so a
reply always belongs to the command before it; nmap's desync on split replies cannot happen),
no AUTH or BDAT ever, and DATA only when the dialogue was built with ``allow_data=True`` (the
``--prove-to`` connection), once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from relayguard.probe._errors import LocalProtocolError, RemoteProtocolError
from relayguard.report.sanitize import clean

# RFC 5321 4.5.3.1.5 caps a reply line at 512 octets with CRLF; real servers (long Exchange and
# Gmail texts) stay well under 2048, which also stops a 10 MB one-line "banner" after 2 KB.
MAX_LINE: Final = 2048
# RFC 5321 sets no limit; large EHLO lists and policy texts run to ~25 lines.
MAX_REPLY_LINES: Final = 100
MAX_REPLY_BYTES: Final = 64 * 1024
# A full probe reads well under 100 KiB per connection; 1 MiB bounds a server that streams.
MAX_SESSION_BYTES: Final = 1024 * 1024
# RFC 5321 4.5.3.1.4: a command line is at most 512 octets including CRLF.
MAX_COMMAND: Final = 512

# The verbs the probe may ever send. No AUTH (no credentials are ever sent), no BDAT.
VERBS: Final = frozenset(
    {"EHLO", "HELO", "MAIL", "RCPT", "RSET", "NOOP", "QUIT", "STARTTLS", "VRFY", "EXPN", "HELP"}
)


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


@dataclass(frozen=True, slots=True)
class Closed:
    """The server closed the connection; ``incomplete`` when part of a reply was pending."""

    incomplete: bool


class NeedData:
    """Sentinel: more bytes must be read before anything completes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()

Event = Reply | Closed | NeedData


class Dialogue:
    """The client side of one SMTP connection. The first reply awaited is the banner."""

    def __init__(self, limits: Limits | None = None, *, allow_data: bool = False) -> None:
        self.limits = limits or Limits()
        self.allow_data = allow_data
        # The verb whose reply is awaited; "CONNECT" stands for the banner.
        self.awaiting: str | None = "CONNECT"
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf known to hold no LF
        self._lines: list[str] = []
        self._code = 0
        self._reply_bytes = 0
        self._received = 0
        self._eof = False
        self._error: RemoteProtocolError | None = None
        self._tls_pending = False
        self._message_ready = False  # 354 seen: the message may follow
        self._data_used = False

    @property
    def bytes_received(self) -> int:
        return self._received

    @property
    def can_send(self) -> bool:
        """A command may follow: no error, no reply awaited, no TLS handshake due."""
        return self._error is None and self.awaiting is None and not self._tls_pending

    @property
    def tls_pending(self) -> bool:
        return self._tls_pending

    @property
    def has_unread(self) -> bool:
        """Bytes arrived that belong to no completed reply yet."""
        return bool(self._buf or self._lines)

    # -- receiving ------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the server; ``b""`` means the server closed the connection."""
        if self._error is not None:
            raise self._error
        if self._eof:
            raise LocalProtocolError("data received after end of stream")
        if not data:
            self._eof = True
            return
        self._received += len(data)
        if self._received > self.limits.session_bytes:
            self._fail(f"the server sent more than {self.limits.session_bytes} bytes")
        self._buf += data

    def next_event(self) -> Event:
        """The next complete reply, :class:`Closed`, or :data:`NEED_DATA`."""
        if self._error is not None:
            raise self._error
        while True:
            end = self._buf.find(b"\n", self._scanned)
            if end < 0:
                if len(self._buf) > self.limits.line:
                    self._fail(f"reply line longer than {self.limits.line} bytes")
                self._scanned = len(self._buf)
                if self._eof:
                    return Closed(incomplete=self.has_unread)
                return NEED_DATA
            raw = bytes(self._buf[: end + 1])
            del self._buf[: end + 1]
            self._scanned = 0
            if len(raw) > self.limits.line:
                self._fail(f"reply line longer than {self.limits.line} bytes")
            reply = self._take_line(raw)
            if reply is not None:
                return reply

    def _take_line(self, raw: bytes) -> Reply | None:
        line = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        if b"\0" in line:
            self._fail("NUL byte in a reply")
        head, sep = line[:3], line[3:4]
        if not (head.isdigit() and head[:1] in b"2345" and sep in (b"", b" ", b"-")):
            shown = clean(line[:40].decode("utf-8", "backslashreplace"), 40)
            self._fail(f"not an SMTP reply line: {shown}")
        code = int(head)
        if self._lines and code != self._code:
            self._fail(f"reply code changed from {self._code} to {code} inside one reply")
        self._code = code
        self._reply_bytes += len(raw)
        if self._reply_bytes > self.limits.reply_bytes:
            self._fail(f"reply longer than {self.limits.reply_bytes} bytes")
        self._lines.append(line[4:].decode("utf-8", "backslashreplace"))
        if len(self._lines) > self.limits.lines:
            self._fail(f"reply longer than {self.limits.lines} lines")
        if sep == b"-":
            return None
        reply = Reply(code, tuple(self._lines))
        self._lines = []
        self._reply_bytes = 0
        if self.awaiting == "DATA" and code == 354:
            self._message_ready = True
        elif self.awaiting == "STARTTLS" and code == 220:
            self._tls_pending = True
        self.awaiting = None
        return reply

    def _fail(self, why: str) -> None:
        self._error = RemoteProtocolError(why)
        raise self._error

    # -- sending --------------------------------------------------------------------------
    def send(self, verb: str, argument: str = "") -> bytes:
        """The bytes of one command; the reply must be read before the next one."""
        if self._error is not None:
            raise self._error
        verb = verb.upper()
        if verb == "DATA":
            if not self.allow_data:
                raise LocalProtocolError("DATA is never sent without --prove-to")
            if self._data_used:
                raise LocalProtocolError("only one message is ever sent")
        elif verb not in VERBS:
            raise LocalProtocolError(f"{verb} is never sent by the probe")
        self._ready_to_send()
        if not all(" " <= ch <= "~" for ch in argument):
            raise LocalProtocolError("command arguments must be printable ASCII")
        line = (f"{verb} {argument}" if argument else verb).encode("ascii") + b"\r\n"
        if len(line) > MAX_COMMAND:
            raise LocalProtocolError(f"command longer than {MAX_COMMAND} bytes")
        self.awaiting = verb
        if verb == "DATA":
            self._data_used = True
        return line

    def send_message(self, message: bytes) -> bytes:
        """The message after a 354, dot-stuffed and ended with ``CRLF.CRLF``."""
        if not self._message_ready:
            raise LocalProtocolError("a message may follow only a 354 reply to DATA")
        self._message_ready = False
        self._ready_to_send()
        lines = message.replace(b"\r\n", b"\n").split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        body = b"".join((b"." + x if x.startswith(b".") else x) + b"\r\n" for x in lines)
        self.awaiting = "."
        return body + b".\r\n"

    def start_tls(self) -> None:
        """Call after the 220 reply to STARTTLS, before the handshake.

        RFC 3207: anything that came in plaintext after that reply must not be trusted.
        """
        if not self._tls_pending:
            raise LocalProtocolError("STARTTLS was not accepted")
        if self.has_unread:
            self._fail("the server sent data after its STARTTLS reply (plaintext injection)")
        self._tls_pending = False

    def _ready_to_send(self) -> None:
        if self.awaiting is not None:
            raise LocalProtocolError(f"the reply to {self.awaiting} has not been read")
        if self._tls_pending:
            raise LocalProtocolError("the TLS handshake must come first")
        if self.has_unread:
            self._fail("the server sent data nobody asked for")
