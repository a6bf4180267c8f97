"""One SMTP conversation read from both directions of a reassembled TCP connection.

Theory of operation
-------------------
The flow layer hands in the client's bytes and the server's bytes, each stream in order (but
the two streams not necessarily in the order they happened). The client stream is read with
the shared :class:`~relayguard.smtp.CommandReader` (command lines, DATA bodies, BDAT chunks,
SASL responses), the server stream with the shared :class:`~relayguard.smtp.ReplyReader`.
Every command goes into a FIFO of commands awaiting a reply, every reply into a FIFO of
replies awaiting a command; pairing the two heads gives each reply its command, which is
exactly how pipelining works (RFC 2920: replies come in command order).

Some commands change how the client's next bytes must be read, and only the server's reply
says how: after ``DATA`` comes a body only on 354, after ``AUTH`` a SASL response only on 334,
after ``STARTTLS`` opaque TLS only on 220. The client stream is not read past such a command
until its reply is paired. After a 220 to STARTTLS both streams are opaque: the session is
marked as such and nothing more is parsed.

What is learnt goes to an observer as it completes: each AUTH attempt with its outcome
(usernames are decoded from PLAIN/LOGIN/CRAM-MD5/XOAUTH2/SCRAM responses; passwords never
are), and each mail transaction with its sender, the recipients accepted and refused and the
outcome of DATA. A syntax error, a bound crossed or a hole in a stream ends the parsing of
the conversation (``broken`` says why); what was learnt before stays.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final, Protocol

from relayguard.errors import RelayguardError
from relayguard.smtp.commands import (
    CommandReader,
    CommandSyntaxError,
    Path,
    parse_command,
    parse_path,
)
from relayguard.smtp.replies import Limits, Reply, ReplyReader

MAX_PENDING: Final = 200  # commands awaiting a reply (pipelined groups are far smaller)
MAX_QUEUED_REPLIES: Final = 50  # replies that arrived before their command was read
MAX_RECIPIENTS: Final = 1000  # per transaction kept (RFC 5321 requires servers take 100)
# Past MAX_RECIPIENTS accepted recipients are counted per domain, addresses not kept, up to
# this many domains (the log analyzer's per-message bound); past that, only counted.
MAX_MORE_DOMAINS: Final = 10_000
MAX_NAME: Final = 256  # usernames, HELO names kept
MAX_REPLY_TEXT: Final = 200
REPLY_LIMITS: Final = Limits(session_bytes=1 << 62)  # a capture's session is not bounded

COMMAND, BODY, BDAT, SASL, OPAQUE = range(5)


class Broken(RelayguardError):
    """The conversation cannot be followed any further."""


@dataclass(slots=True)
class AuthAttempt:
    time: float
    mechanism: str
    username: str | None
    code: int
    text: str


@dataclass(slots=True)
class Refusal:
    time: float
    recipient: str
    domain: str
    code: int
    text: str


@dataclass(slots=True)
class Transaction:
    """One MAIL ... [DATA] transaction as the server answered it."""

    time: float  # when it started (the MAIL reply)
    sender: str  # "" for the null sender
    accepted: list[Path] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    more_accepted: dict[str, int] = field(default_factory=dict)  # past MAX_RECIPIENTS: domains
    more_uncounted: int = 0  # accepted past MAX_RECIPIENTS and MAX_MORE_DOMAINS: count only
    data_code: int | None = None  # the reply to the end of the message (or to DATA)
    data_time: float | None = None
    size: int | None = None

    @property
    def accepted_count(self) -> int:
        return len(self.accepted) + sum(self.more_accepted.values()) + self.more_uncounted

    @property
    def delivered(self) -> bool:
        """The server took the message (250 after the body)."""
        return self.data_code is not None and 200 <= self.data_code < 300 and self.size is not None


class Observer(Protocol):
    def on_auth(self, conv: Conversation, attempt: AuthAttempt) -> None: ...

    def on_transaction(self, conv: Conversation, txn: Transaction) -> None: ...


@dataclass(slots=True)
class _Pending:
    verb: str
    path: Path | None = None
    last: bool = False  # BDAT LAST
    size: int = 0  # bytes of a BDAT chunk or DATA body


class Conversation:
    """See the module docstring. ``greeted`` is False for a connection joined mid-stream."""

    def __init__(self, observer: Observer, *, greeted: bool = True) -> None:
        self.observer = observer
        self.owner: object = None  # what the caller ties the conversation to (its flow)
        self.commands = CommandReader()
        self.replies = ReplyReader(REPLY_LIMITS, Broken)
        self.pending: deque[_Pending] = deque()
        self.queued: deque[tuple[Reply, float]] = deque()
        self.mode = COMMAND
        self.blocked = False  # the client stream waits for the reply to the last command
        self.bdat_left = 0
        self.expect_banner = greeted
        self.banner: Reply | None = None
        self.helo: str | None = None
        self.user: str | None = None  # the SASL username of a successful AUTH
        self.authenticated = False
        self.tls_time: float | None = None
        self.broken: str | None = None
        self.txn: Transaction | None = None
        self._auth: _Pending | None = None
        self._auth_mech = ""
        self._auth_user: str | None = None
        self._auth_step = 0
        self._prompt = ""
        self.commands_seen = 0
        self.replies_seen = 0
        self.transactions = 0
        self.messages = 0
        self._time = 0.0

    @property
    def opaque(self) -> bool:
        return self.mode == OPAQUE

    # -- input -----------------------------------------------------------------------------
    def client_data(self, data: bytes, time: float) -> None:
        if self.broken is not None or self.mode == OPAQUE:
            return
        self._time = time
        self.commands.feed(data)
        self._run(self._advance)

    def server_data(self, data: bytes, time: float) -> None:
        if self.broken is not None or self.mode == OPAQUE:
            return
        self._time = time
        self.replies.feed(data)
        self._run(self._read_server)

    def gap(self, side: str) -> None:
        """Bytes of one stream are missing: nothing after them can be paired reliably."""
        if self.broken is None and self.mode != OPAQUE:
            self._break(f"bytes missing from the {side} stream")

    def close(self) -> None:
        """The connection ended: a transaction still open ends with it."""
        if self.broken is None and self.mode != OPAQUE:
            self._end_transaction()

    def _run(self, step: Callable[[], None]) -> None:
        try:
            step()
        except (Broken, CommandSyntaxError) as exc:
            self._break(str(exc))

    def _break(self, why: str) -> None:
        self.broken = why
        self._end_transaction()
        self.commands.drop()
        self.pending.clear()
        self.queued.clear()

    def _advance(self) -> None:
        """Read the client and pair replies until neither makes progress (a loop, not
        recursion: a long pipelined capture must not exhaust the stack)."""
        while self._read_client() | self._pair():
            pass

    # -- the client ------------------------------------------------------------------------
    def _read_client(self) -> bool:
        reader = self.commands
        progressed = False
        while not self.blocked and self.mode != OPAQUE:
            if self.mode == BODY:
                size = reader.skip_body()
                if size is None:
                    return progressed
                progressed = True
                self._expect(_Pending(".", size=size))
                self.mode = COMMAND
                continue
            if self.mode == BDAT:
                self.bdat_left -= reader.skip_bytes(self.bdat_left)
                if self.bdat_left:
                    return progressed
                self.mode = COMMAND
                continue
            line = reader.next_line()
            if line is None:
                return progressed
            progressed = True
            if self.mode == SASL:
                self._sasl_response(line)
            else:
                self._command(line)
        return progressed

    def _expect(self, item: _Pending) -> None:
        if len(self.pending) >= MAX_PENDING:
            raise Broken(f"more than {MAX_PENDING} commands without a reply")
        self.pending.append(item)

    def _command(self, line: bytes) -> None:
        self.commands_seen += 1
        cmd = parse_command(line)
        verb = cmd.verb
        if verb == "MAIL":
            self._expect(_Pending(verb, _path(cmd.argument, "FROM")))
        elif verb == "RCPT":
            self._expect(_Pending(verb, _path(cmd.argument, "TO")))
        elif verb == "BDAT":
            parts = cmd.argument.split()
            if not parts or not parts[0].isdigit() or len(parts[0]) > 12:
                self._expect(_Pending("BDAT?"))
                return
            size = int(parts[0])
            self._expect(
                _Pending(verb, size=size, last=len(parts) > 1 and parts[1].upper() == "LAST")
            )
            self.bdat_left = size
            self.mode = BDAT
        elif verb == "AUTH":
            mech, _, initial = cmd.argument.partition(" ")
            item = _Pending(verb)
            self._auth = item
            self._auth_mech = mech.upper()[:20]
            self._auth_user = None
            self._auth_step = 0
            self._prompt = ""
            if initial and initial != "=":
                self._credential(initial)
            self._expect(item)
            self.blocked = True
        elif verb in ("DATA", "STARTTLS"):
            self._expect(_Pending(verb))
            self.blocked = True
        elif verb in ("EHLO", "HELO"):
            self.helo = cmd.argument[:MAX_NAME]
            self._expect(_Pending(verb))
        else:
            self._expect(_Pending(verb or "?"))

    def _sasl_response(self, line: bytes) -> None:
        if line.strip() == b"*":
            self._expect(_Pending("AUTH"))
        else:
            self._credential(line.decode("ascii", "replace").strip())
            self._expect(_Pending("AUTH"))
        self.mode = COMMAND
        self.blocked = True

    def _credential(self, text: str) -> None:
        """Learn the username from one SASL response; passwords are never decoded."""
        step = self._auth_step
        self._auth_step += 1
        mech = self._auth_mech
        if mech == "LOGIN":
            asks_password = self._prompt.lower().startswith("password") or (
                not self._prompt and step > 0
            )
            if asks_password:
                return
        try:
            raw = base64.b64decode(text, validate=True) if mech != "EXTERNAL" else b""
        except (binascii.Error, ValueError):
            return
        user = _username(mech, raw)
        if user is not None and self._auth_user is None:
            self._auth_user = user[:MAX_NAME]

    # -- the server ------------------------------------------------------------------------
    def _read_server(self) -> None:
        while True:
            reply = self.replies.next_reply()
            if reply is None:
                break
            self.replies_seen += 1
            if len(self.queued) >= MAX_QUEUED_REPLIES:
                raise Broken(f"more than {MAX_QUEUED_REPLIES} replies without a command")
            self.queued.append((reply, self._time))
        self._advance()

    def _pair(self) -> bool:
        progressed = False
        while self.queued and self.mode != OPAQUE:
            reply, time = self.queued[0]
            if self.expect_banner:
                self.queued.popleft()
                self.expect_banner = False
                self.banner = reply
                progressed = True
                continue
            if not self.pending:
                if reply.code == 421:  # the server is closing the connection
                    self.queued.popleft()
                    self._end_transaction()
                    continue
                break  # the command is still on its way (a delayed client segment)
            self.queued.popleft()
            item = self.pending.popleft()
            self._answer(item, reply, time)
            progressed = True
        return progressed

    def _answer(self, item: _Pending, reply: Reply, time: float) -> None:
        code = reply.code
        ok = 200 <= code < 300
        verb = item.verb
        if verb == "MAIL":
            self._end_transaction()
            if ok and item.path is not None:
                self.txn = Transaction(time=time, sender=item.path.mailbox)
        elif verb == "RCPT":
            txn = self.txn
            if txn is None or item.path is None:
                return
            if ok:
                if len(txn.accepted) < MAX_RECIPIENTS:
                    txn.accepted.append(item.path)
                else:
                    more = txn.more_accepted
                    domain = item.path.domain
                    if domain in more or len(more) < MAX_MORE_DOMAINS:
                        more[domain] = more.get(domain, 0) + 1
                    else:
                        txn.more_uncounted += 1
            elif len(txn.refused) < MAX_RECIPIENTS:
                txn.refused.append(
                    Refusal(time, item.path.mailbox, item.path.domain, code, _text(reply))
                )
        elif verb == "DATA":
            self.blocked = False
            if code == 354:
                self.mode = BODY
            else:
                self._finish_data(code, time, None)
        elif verb == ".":
            self._finish_data(code, time, item.size)
        elif verb == "BDAT":
            if self.txn is not None:
                self.txn.size = (self.txn.size or 0) + item.size
                if not ok or item.last:
                    self._finish_data(code, time, self.txn.size if ok else None)
        elif verb == "AUTH":
            self._auth_reply(reply, time)
        elif verb == "STARTTLS":
            self.blocked = False
            if code == 220:
                self._end_transaction()
                self.mode = OPAQUE
                self.tls_time = time
                self.commands.drop()
                self.pending.clear()
                self.queued.clear()
        elif verb in ("RSET", "EHLO", "HELO", "QUIT"):
            self._end_transaction()

    def _auth_reply(self, reply: Reply, time: float) -> None:
        if reply.code == 334:
            self.mode = SASL
            self.blocked = False
            self._prompt = _decoded_prompt(reply)
            return
        self.blocked = False
        self.mode = COMMAND
        if reply.code == 235:
            self.authenticated = True
            self.user = self._auth_user
        self.observer.on_auth(
            self,
            AuthAttempt(time, self._auth_mech, self._auth_user, reply.code, _text(reply)),
        )
        self._auth = None

    def _finish_data(self, code: int, time: float, size: int | None) -> None:
        txn = self.txn
        if txn is None:
            return
        txn.data_code = code
        txn.data_time = time
        txn.size = size
        self._end_transaction()

    def _end_transaction(self) -> None:
        txn = self.txn
        self.txn = None
        if txn is None or not (txn.accepted or txn.refused):
            return
        self.transactions += 1
        if txn.delivered:
            self.messages += 1
        self.observer.on_transaction(self, txn)


def _path(argument: str, keyword: str) -> Path | None:
    """:func:`parse_path`, but a domain holding control characters keeps its case.

    Such a "domain" is no name to normalise but what an attacker typed (an escape sequence,
    say): lower-cased, ``\\x1b[2J`` would be shown as ``\\x1b[2j``, which is not what was sent.
    """
    path = parse_path(argument, keyword)
    if path is None or path.domain.isprintable():
        return path
    lowered = argument.lower()
    at = lowered.rfind(path.domain)
    if at < 0 or len(lowered) != len(argument):
        return path
    domain = argument[at : at + len(path.domain)]
    return replace(path, domain=domain, mailbox=f"{path.local}@{domain}")


def _text(reply: Reply) -> str:
    return " ".join(reply.wire())[:MAX_REPLY_TEXT]


def _decoded_prompt(reply: Reply) -> str:
    try:
        return base64.b64decode(reply.lines[0].strip(), validate=True).decode("ascii", "replace")
    except (binascii.Error, ValueError, IndexError):
        return ""


def _username(mech: str, raw: bytes) -> str | None:
    """The username a SASL response names (never the password)."""
    text = raw.decode("utf-8", "surrogateescape")
    if mech == "PLAIN":
        parts = text.split("\0")
        if len(parts) == 3:
            return parts[1] or parts[0]
        return None
    if mech == "LOGIN":
        return text
    if mech == "CRAM-MD5":
        return text.rpartition(" ")[0] or None
    if mech == "XOAUTH2":
        for part in text.split("\x01"):
            if part.startswith("user="):
                return part[5:]
        return None
    if mech.startswith("SCRAM-"):
        for part in text.split(","):
            if part.startswith("n="):
                return part[2:].replace("=2C", ",").replace("=3D", "=")
        return None
    return None
