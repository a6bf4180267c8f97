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
from relayguard.smtp.commands import MAX_COMMAND, encode_command
from relayguard.smtp.replies import (
    MAX_LINE,
    MAX_REPLY_BYTES,
    MAX_REPLY_LINES,
    MAX_SESSION_BYTES,
    Limits,
    Reply,
    ReplyReader,
)

__all__ = [
    "MAX_COMMAND",
    "MAX_LINE",
    "MAX_REPLY_BYTES",
    "MAX_REPLY_LINES",
    "MAX_SESSION_BYTES",
    "NEED_DATA",
    "VERBS",
    "Closed",
    "Dialogue",
    "Event",
    "Limits",
    "NeedData",
    "Reply",
]

# The verbs the probe may ever send. No AUTH (no credentials are ever sent), no BDAT.
VERBS: Final = frozenset(
    {"EHLO", "HELO", "MAIL", "RCPT", "RSET", "NOOP", "QUIT", "STARTTLS", "VRFY", "EXPN", "HELP"}
)


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
        self._replies = ReplyReader(self.limits, RemoteProtocolError)
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
        return self._replies.has_unread

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
        self._replies.feed(data)

    def next_event(self) -> Event:
        """The next complete reply, :class:`Closed`, or :data:`NEED_DATA`."""
        if self._error is not None:
            raise self._error
        try:
            reply = self._replies.next_reply()
        except RemoteProtocolError as exc:
            self._error = exc
            raise
        if reply is None:
            if self._eof:
                return Closed(incomplete=self.has_unread)
            return NEED_DATA
        if self.awaiting == "DATA" and reply.code == 354:
            self._message_ready = True
        elif self.awaiting == "STARTTLS" and reply.code == 220:
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
        line = encode_command(verb, argument, LocalProtocolError)
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
