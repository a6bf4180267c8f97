"""A sans-I/O codec for the Postfix SMTPD policy delegation protocol (server side).

Theory of operation
-------------------
The daemon owns the socket. It hands every chunk it reads to :meth:`PolicyConnection.receive_data`
(``b""`` at end of stream) and asks :meth:`PolicyConnection.next_event` for what that completed:
a :class:`PolicyRequest`, :class:`ConnectionClosed`, or :data:`NEED_DATA` (read more). It turns
each decision into bytes with :meth:`PolicyConnection.send` and writes them itself. Nothing here
reads a clock or a socket.

Wire format (SMTPD_POLICY_README): ``name=value`` lines ended by LF, a request ended by an empty
line; the reply is ``action=...`` and an empty line. The connection is persistent, so one read
may hold several requests and one request may be split anywhere, even inside a UTF-8 sequence:
a request is cut out of the buffer only once its empty line has arrived, and decoded whole.

Decisions taken where the protocol leaves room:

* Duplicate names: the README lets a server keep the first or the last value; the last wins.
* Bytes are decoded as UTF-8 with U+FFFD for invalid sequences. Postfix passes SMTPUTF8 or
  8-bit sender and HELO bytes through, and xtext (``+XX``) in ``ccert_*``, which is left encoded.
  Replacement rather than ``surrogateescape`` (which POLICY.md suggests): values become rate-limit
  keys written to SQLite, Redis and logs, and a lone surrogate would make every one of those
  encoders raise. Two invalid byte strings may collapse to one key; they then share a limit,
  which errs on the strict side.
* Names are ASCII and lower-cased (Postfix only sends lower-case names); a non-ASCII name, a line
  without ``=`` or with an empty name, or a NUL byte is a :class:`RemoteProtocolError`.
  None of these can come from Postfix, which builds requests from C strings it controls.
* Line ends are LF only, as Postfix writes them. A CR inside a value is kept (Postfix may relay
  one from an SMTP client; refusing it would let that client turn our error into Postfix's
  ``default_action``). A CR LF client is refused at its first empty line (a line holding only
  CR) instead of waiting for an LF LF that never comes.
* An empty request (an empty line where a request starts) is refused: Postfix always sends at
  least ``request=smtpd_access_policy``.

Unknown attributes are kept in :attr:`PolicyRequest.attributes` and never interpreted.
Everything the client controls is bounded (:class:`Limits`); crossing a bound raises
:class:`RemoteProtocolError`, after which the connection stays failed and must be closed
without a reply.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, NoReturn

from relayguard.policy._errors import LocalProtocolError, RemoteProtocolError
from relayguard.policy.keys import domain_of

# Postfix's smtpd reads SMTP command lines of at most line_limit (2048) bytes, and the policy
# client caps a string at 4 x line_limit (8 KiB). xtext-encoded certificate names can be long;
# 16 KiB is twice Postfix's own cap and still stops a 1 MB "attribute" early.
MAX_LINE_BYTES: Final = 16 * 1024
# Postfix 3.12 sends 35 attribute names; 128 leaves room for future versions and extra context.
MAX_ATTRIBUTES: Final = 128
# A real request is 500-1000 bytes; 64 KiB fits several maximal certificate attributes.
MAX_REQUEST_BYTES: Final = 64 * 1024
# Postfix waits for each reply, so at most one request is in flight; four maximal requests
# cover a test client that pipelines, plus the read that delivered them.
MAX_BUFFERED_BYTES: Final = 4 * MAX_REQUEST_BYTES
# An SMTP reply line is at most 512 octets (RFC 5321 4.5.3.1.5) and Postfix prefixes our text
# with the code, the enhanced status and often "<address>: Recipient address rejected: ".
MAX_REPLY_TEXT: Final = 200

# The names Postfix sends (POLICY.md, up to 3.12): they skip name validation on the hot path.
# fmt: off
KNOWN_ATTRIBUTES: Final = frozenset((
    # 2.1
    "request", "protocol_state", "protocol_name", "helo_name", "queue_id", "sender",
    "recipient", "recipient_count", "client_address", "client_name", "reverse_client_name",
    "instance",
    # 2.2, 2.3, 2.5, 2.9
    "sasl_method", "sasl_username", "sasl_sender", "size", "ccert_subject", "ccert_issuer",
    "ccert_fingerprint", "encryption_protocol", "encryption_cipher", "encryption_keysize",
    "etrn_domain", "stress", "ccert_pubkey_fingerprint",
    # 3.0, 3.1, 3.2, 3.8, 3.12
    "client_port", "policy_context", "server_address", "server_port", "compatibility_level",
    "mail_version", "tls_sni",
))
# fmt: on

# At most 20 digits: int() of a longer digit string is slow (and limited) and no count is that big.
_MAX_DIGITS: Final = 20


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what the client may send, in bytes except ``attributes``."""

    line: int = MAX_LINE_BYTES
    attributes: int = MAX_ATTRIBUTES
    request: int = MAX_REQUEST_BYTES
    buffered: int = MAX_BUFFERED_BYTES


def _number(value: str) -> int:
    """A decimal count, 0 when absent, empty or not a plain ASCII number (Postfix's "no value")."""
    if value.isdigit() and value.isascii() and len(value) <= _MAX_DIGITS:
        return int(value)
    return 0


def _domain(address: str) -> str:
    return domain_of(address)


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """One request: every attribute as received (decoded), with typed views of the common ones.

    A missing attribute reads as ``""`` (or 0 for numbers), as Postfix itself sends an empty
    value for "not known". ``attributes`` must not be mutated.
    """

    attributes: Mapping[str, str]

    def get(self, name: str, default: str = "") -> str:
        return self.attributes.get(name, default)

    @property
    def request(self) -> str:
        return self.attributes.get("request", "")

    @property
    def protocol_state(self) -> str:
        """CONNECT, EHLO, HELO, MAIL, RCPT, DATA (also BDAT), END-OF-MESSAGE, VRFY or ETRN."""
        return self.attributes.get("protocol_state", "")

    @property
    def protocol_name(self) -> str:
        return self.attributes.get("protocol_name", "")

    @property
    def instance(self) -> str:
        """The same for every request about one message on one connection."""
        return self.attributes.get("instance", "")

    @property
    def queue_id(self) -> str:
        return self.attributes.get("queue_id", "")

    @property
    def helo_name(self) -> str:
        return self.attributes.get("helo_name", "")

    @property
    def sasl_method(self) -> str:
        return self.attributes.get("sasl_method", "")

    @property
    def sasl_username(self) -> str:
        """Empty for an unauthenticated client."""
        return self.attributes.get("sasl_username", "")

    @property
    def sasl_sender(self) -> str:
        return self.attributes.get("sasl_sender", "")

    @property
    def sender(self) -> str:
        """The envelope sender; empty for the null sender ``<>``."""
        return self.attributes.get("sender", "")

    @property
    def sender_domain(self) -> str:
        return _domain(self.attributes.get("sender", ""))

    @property
    def recipient(self) -> str:
        """Set at RCPT, and at DATA/END-OF-MESSAGE only when exactly one recipient was accepted."""
        return self.attributes.get("recipient", "")

    @property
    def recipient_domain(self) -> str:
        return _domain(self.attributes.get("recipient", ""))

    @property
    def recipient_count(self) -> int:
        """Accepted recipients; non-zero only at DATA and END-OF-MESSAGE."""
        return _number(self.attributes.get("recipient_count", ""))

    @property
    def size(self) -> int:
        """MAIL FROM's SIZE= (0 if none); the actual size at END-OF-MESSAGE."""
        return _number(self.attributes.get("size", ""))

    @property
    def client_address(self) -> str:
        return self.attributes.get("client_address", "")

    @property
    def client_name(self) -> str:
        """The verified client name, or ``unknown``."""
        return self.attributes.get("client_name", "")

    @property
    def reverse_client_name(self) -> str:
        return self.attributes.get("reverse_client_name", "")

    @property
    def client_port(self) -> int:
        return _number(self.attributes.get("client_port", ""))

    @property
    def server_address(self) -> str:
        return self.attributes.get("server_address", "")

    @property
    def server_port(self) -> int:
        return _number(self.attributes.get("server_port", ""))

    @property
    def policy_context(self) -> str:
        """The per-service ``policy_context=`` (Postfix 3.1+): tells the hook points apart."""
        return self.attributes.get("policy_context", "")

    @property
    def encryption_protocol(self) -> str:
        return self.attributes.get("encryption_protocol", "")

    @property
    def stress(self) -> bool:
        return self.attributes.get("stress", "") == "yes"


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The client closed its side; ``incomplete`` when part of a request was discarded."""

    incomplete: bool = False


class NeedData:
    """Sentinel: more bytes must be read before anything completes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()

Event = PolicyRequest | ConnectionClosed | NeedData


class Action(enum.Enum):
    """What a policy reply may tell Postfix to do.

    There is deliberately no ``OK``: in an access(5) restriction list ``OK`` *permits* the
    request and skips every later restriction of that list, so a rate limiter answering ``OK``
    where it means "no objection" would let mail past ``reject_unauth_destination`` or other
    checks placed after it (policyd-rate-guard does this). "No objection" is ``DUNNO``.
    """

    DUNNO = "DUNNO"
    DEFER_IF_PERMIT = "DEFER_IF_PERMIT"
    DEFER = "DEFER"
    REJECT = "REJECT"
    HOLD = "HOLD"
    WARN = "WARN"


def sanitize_text(text: str, limit: int = MAX_REPLY_TEXT) -> str:
    """``text`` as printable ASCII on one line, at most ``limit`` characters.

    Control characters (CR and LF above all: a newline would end the reply and inject the next
    one) become spaces and other non-ASCII characters ``?``, so the SMTP reply built from the text
    is valid without SMTPUTF8, and Postfix never counts it as invalid UTF-8.
    """
    if not (text.isascii() and text.isprintable()):
        text = "".join(
            ch if " " <= ch <= "~" else (" " if ch.isspace() or not ch.isprintable() else "?")
            for ch in text
        )
    return " ".join(text.split())[:limit].rstrip()


def _enhanced_status(status: str, code: int) -> bool:
    parts = status.split(".")
    return (
        len(parts) == 3
        and parts[0] == str(code // 100)
        and all(p.isascii() and p.isdigit() and len(p) <= 3 for p in parts)
    )


@dataclass(frozen=True, slots=True)
class PolicyReply:
    """One reply, validated and encoded once when built (``text`` is stored sanitised).

    ``code`` (and optionally ``status``, the RFC 3463 enhanced code) turns DEFER or REJECT into an
    explicit SMTP reply: ``PolicyReply(Action.DEFER, "slow down", code=450, status="4.7.1")``
    is sent as ``action=450 4.7.1 slow down``. ``DUNNO`` carries no text.
    """

    action: Action
    text: str = ""
    code: int | None = None
    status: str | None = None
    wire: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        text = sanitize_text(self.text)
        object.__setattr__(self, "text", text)
        if self.action is Action.DUNNO and (text or self.code is not None):
            raise LocalProtocolError("DUNNO takes no text and no code")
        if self.code is not None:
            low = {Action.DEFER: 400, Action.REJECT: 500}.get(self.action)
            if low is None or not low <= self.code < low + 100:
                raise LocalProtocolError(f"code {self.code} does not fit {self.action.value}")
            if not text:
                raise LocalProtocolError("an explicit SMTP code needs a text")
            verb = str(self.code)
            if self.status is not None:
                if not _enhanced_status(self.status, self.code):
                    raise LocalProtocolError(f"bad enhanced status {self.status!r}")
                verb = f"{verb} {self.status}"
        elif self.status is not None:
            raise LocalProtocolError("an enhanced status needs a code")
        else:
            verb = self.action.value
        line = f"action={verb} {text}" if text else f"action={verb}"
        object.__setattr__(self, "wire", f"{line}\n\n".encode("ascii"))


DUNNO: Final = PolicyReply(Action.DUNNO)


class PolicyConnection:
    """The server side of one policy connection: bytes in, requests out; replies in, bytes out.

    Replies must be sent in request order, one per request; :meth:`send` refuses a reply with
    no request waiting for it, since an extra reply would answer every later request wrongly.
    """

    __slots__ = ("_buf", "_counted", "_eof", "_error", "_limits", "_lines", "_scan", "_unanswered")

    def __init__(self, limits: Limits | None = None) -> None:
        self._limits = limits or Limits()
        self._buf = bytearray()
        self._scan = 0  # where to resume looking for the end of the pending request
        self._lines = 0  # lines of the pending request counted so far, up to ``_counted``
        self._counted = 0
        self._eof = False
        self._error: str | None = None
        self._unanswered = 0

    @property
    def unanswered(self) -> int:
        """Requests returned by :meth:`next_event` and not yet answered."""
        return self._unanswered

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the socket; ``b""`` means the client closed its side."""
        if self._eof:
            raise LocalProtocolError("data received after the end of the stream")
        if not data:
            self._eof = True
            return
        if len(self._buf) + len(data) > self._limits.buffered:
            self._fail(f"more than {self._limits.buffered} bytes buffered")
        self._buf += data

    def next_event(self) -> Event:
        """The next complete event, or :data:`NEED_DATA`.

        Raises :class:`RemoteProtocolError` when the client broke the protocol, then again on
        every later call.
        """
        if self._error is not None:
            raise RemoteProtocolError(self._error)
        buf = self._buf
        if buf:
            first = buf[0]
            if first == 10 or (first == 13 and buf[1:2] == b"\n"):  # LF or CR LF
                self._fail("empty request" if first == 10 else "CR LF line ends")
            end = buf.find(b"\n\n", self._scan)
            if end >= 0:
                return self._request(end)
            self._check_pending()
        if self._eof:
            pending = bool(buf)
            buf.clear()
            return ConnectionClosed(incomplete=pending)
        return NEED_DATA

    def send(self, reply: PolicyReply) -> bytes:
        """The bytes answering the oldest unanswered request."""
        if self._unanswered == 0:
            raise LocalProtocolError("no request is waiting for a reply")
        self._unanswered -= 1
        return reply.wire

    def _fail(self, why: str) -> NoReturn:
        self._error = why
        self._buf.clear()
        raise RemoteProtocolError(why)

    def _check_pending(self) -> None:
        buf, limits = self._buf, self._limits
        if len(buf) > limits.request:
            self._fail(f"request longer than {limits.request} bytes")
        if buf.find(b"\n\r\n", max(self._scan - 1, 0)) >= 0:
            self._fail("CR LF line ends")
        self._lines += buf.count(b"\n", self._counted)
        self._counted = len(buf)
        if self._lines > limits.attributes:
            self._fail(f"more than {limits.attributes} attributes")
        # The last byte may be the first LF of the terminator: search again from there.
        self._scan = len(buf) - 1

    def _request(self, end: int) -> PolicyRequest:
        buf, limits = self._buf, self._limits
        raw = bytes(buf[:end])
        del buf[: end + 2]
        self._scan = self._lines = self._counted = 0
        if end > limits.request:
            self._fail(f"request longer than {limits.request} bytes")
        if raw.endswith(b"\n\r") or b"\n\r\n" in raw:  # an empty CR LF line, as the pending
            self._fail("CR LF line ends")  # check of a request read piece by piece sees it
        if b"\0" in raw:
            self._fail("NUL byte in request")
        lines = raw.decode("utf-8", "replace").split("\n")
        if len(lines) > limits.attributes:
            self._fail(f"more than {limits.attributes} attributes")
        if end > limits.line and max(map(len, raw.split(b"\n"))) > limits.line:
            self._fail(f"attribute line longer than {limits.line} bytes")
        try:  # the common case, at C speed: every line a known name=value
            attributes: dict[str, str] = dict([line.split("=", 1) for line in lines])
            usual = KNOWN_ATTRIBUTES.issuperset(attributes)
        except ValueError:  # a line without "="
            usual = False
        if not usual:
            attributes = {}
            for line in lines:
                name, sep, value = line.partition("=")
                if not sep or name not in KNOWN_ATTRIBUTES:
                    name = self._check_name(line, name, sep)
                attributes[name] = value
        self._unanswered += 1
        return PolicyRequest(attributes)

    def _check_name(self, line: str, name: str, sep: str) -> str:
        """The canonical form of a name Postfix does not send, or a protocol error."""
        if not sep:
            self._fail("CR LF line ends" if line == "\r" else "attribute line without '='")
        if not name:
            self._fail("empty attribute name")
        if not (name.isascii() and name.isprintable()) or " " in name:
            self._fail("attribute name is not printable ASCII")
        return name.lower()
