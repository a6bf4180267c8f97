"""SMTP commands: building them, reading them from a client's byte stream, and parsing paths.

:func:`encode_command` is what a client sends (the probe): printable ASCII, bounded. The rest
reads what a client sent (the wire reader, the server side of a dialogue): a
:class:`CommandReader` assembles bounded lines, the message body after ``DATA`` and ``BDAT``
chunks from whatever the reads deliver; :func:`parse_command` splits a line into verb and
argument; :func:`parse_path` reads a ``MAIL FROM``/``RCPT TO`` argument as real servers do
(Postfix accepts a space after the colon and a missing pair of angle brackets), keeping what a
relay trick hides: quoted local parts, source routes, ``%`` and ``!`` routing, address literals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from relayguard.errors import RelayguardError

# RFC 5321 4.5.3.1.4: a command line is at most 512 octets including CRLF.
MAX_COMMAND: Final = 512
# What a reader accepts: RFC 4954 4 lets an AUTH line (initial response) run to 12288 octets;
# longer is not SMTP, and a reader must not buffer a peer's endless line.
MAX_CLIENT_LINE: Final = 12288 + 64


class CommandSyntaxError(RelayguardError):
    """A client sent something that is not an SMTP command line, or exceeded a bound."""


def encode_command(verb: str, argument: str = "", error: type[Exception] = ValueError) -> bytes:
    """``VERB argument\\r\\n`` as bytes; ``error`` is raised for non-ASCII or an overlong line."""
    if not all(" " <= ch <= "~" for ch in argument):
        raise error("command arguments must be printable ASCII")
    line = (f"{verb} {argument}" if argument else verb).encode("ascii") + b"\r\n"
    if len(line) > MAX_COMMAND:
        raise error(f"command longer than {MAX_COMMAND} bytes")
    return line


@dataclass(frozen=True, slots=True)
class Command:
    """One command line: the verb upper-cased, the argument as sent (undecodable bytes kept
    as surrogate escapes, which :func:`relayguard.report.sanitize.clean` shows as ``\\xNN``)."""

    verb: str
    argument: str


def parse_command(line: bytes) -> Command:
    """``b"rcpt TO:<a@b>"`` -> ``Command("RCPT", "TO:<a@b>")``; the verb is what precedes the
    first space (``MAIL``, ``RCPT``, ``AUTH``...), anything else is the argument."""
    text = line.decode("utf-8", "surrogateescape")
    verb, _, argument = text.strip(" \t").partition(" ")
    return Command(verb.upper()[:32], argument.strip(" \t"))


class CommandReader:
    """A client's byte stream as command lines, a DATA body, or BDAT chunks.

    ``next_line`` returns one line without its line end (or None: more bytes needed);
    ``skip_body`` consumes a dot-terminated DATA body and returns its size when complete;
    ``skip_bytes`` consumes a BDAT chunk. Bodies are counted, never kept.
    """

    def __init__(self, max_line: int = MAX_CLIENT_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._body = 0  # bytes of the current DATA body seen so far
        self._carry = b"\r\n"  # the last bytes scanned, to find CRLF.CRLF across reads

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_line(self) -> bytes | None:
        end = self._buf.find(b"\n")
        if end < 0:
            if len(self._buf) > self.max_line:
                raise CommandSyntaxError(f"command line longer than {self.max_line} bytes")
            return None
        if end > self.max_line:
            raise CommandSyntaxError(f"command line longer than {self.max_line} bytes")
        raw = bytes(self._buf[:end])
        del self._buf[: end + 1]
        return raw[:-1] if raw.endswith(b"\r") else raw

    def skip_body(self) -> int | None:
        """The body size once ``CRLF.CRLF`` has been read (None until then).

        The CRLF that ended the ``DATA`` line counts as the start of a line, so an empty
        body is a lone ``.``. The last 4 bytes scanned are carried over: the terminator may
        straddle two reads.
        """
        buf = self._buf
        carry = self._carry
        combined = carry + bytes(buf)
        hit = combined.find(b"\r\n.\r\n")
        if hit < 0:
            self._body += len(buf)
            self._carry = combined[-4:]
            buf.clear()
            return None
        # bytes already counted may include the "." and CR of the terminator: subtract them
        size = self._body + hit + 2 - len(carry)
        del buf[: hit + 5 - len(carry)]
        self._body = 0
        self._carry = b"\r\n"
        return size

    def skip_bytes(self, count: int) -> int:
        """Consume up to ``count`` bytes (a BDAT chunk); returns how many were there."""
        n = min(count, len(self._buf))
        del self._buf[:n]
        return n

    def drop(self) -> None:
        """Forget everything buffered (the stream became opaque, e.g. after STARTTLS)."""
        self._buf.clear()


@dataclass(frozen=True, slots=True)
class Path:
    """A ``MAIL FROM``/``RCPT TO`` path as a server reads it.

    ``mailbox`` is ``local@domain`` without brackets or source route ("" for the null path
    ``<>``); ``domain`` is lower-cased without a trailing dot (an address literal keeps its
    brackets: ``[192.0.2.1]``, ``[ipv6:2001:db8::1]``). ``route`` holds the source-route hops
    (``<@hop1,@hop2:user@domain>``). ``hidden_domain`` is a destination the local part smuggles
    in (``user%evil.example``, ``evil.example!user``, ``"user@evil.example"``): the relay
    tricks a broken server forwards. ``bracketed`` is False for ``RCPT TO:user@domain``.
    """

    mailbox: str
    local: str
    domain: str
    route: tuple[str, ...] = ()
    hidden_domain: str = ""
    bracketed: bool = True
    params: str = ""


def _unquote(local: str) -> str:
    if len(local) >= 2 and local[0] == '"' and local[-1] == '"':
        inner = local[1:-1]
        out = []
        escaped = False
        for ch in inner:
            if escaped:
                out.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            else:
                out.append(ch)
        return "".join(out)
    return local


def _split_mailbox(text: str) -> tuple[str, str]:
    """``local@domain`` split at the last @ outside a quoted string."""
    in_quote = False
    escaped = False
    at = -1
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and in_quote:
            escaped = True
        elif ch == '"':
            in_quote = not in_quote
        elif ch == "@" and not in_quote:
            at = i
    if at < 0:
        return text, ""
    return text[:at], text[at + 1 :]


def _hidden_domain(local: str) -> str:
    """The destination a routed local part names, or ""."""
    plain = _unquote(local)
    for sep in ("@", "%"):
        if sep in plain:
            return plain.rpartition(sep)[2].strip().rstrip(".").lower()
    if "!" in plain:
        return plain.partition("!")[0].strip().rstrip(".").lower()
    return ""


def parse_path(argument: str, keyword: str) -> Path | None:
    """The path after ``keyword`` (``FROM`` or ``TO``) in a command argument, None when the
    argument does not start with ``keyword:``."""
    head, colon, rest = argument.partition(":")
    if not colon or head.strip(" \t").upper() != keyword:
        return None
    rest = rest.lstrip(" \t")
    bracketed = rest.startswith("<")
    if bracketed:
        body, params = _until_close(rest[1:])
    else:
        body, _, params = rest.partition(" ")
    body = body.strip(" \t")
    route: tuple[str, ...] = ()
    if body.startswith("@"):
        hops, colon, body = body.partition(":")
        route = tuple(h.strip().lstrip("@").rstrip(".").lower() for h in hops.split(","))
    local, domain = _split_mailbox(body)
    domain = domain.strip().rstrip(".").lower()
    mailbox = f"{local}@{domain}" if domain else local
    return Path(
        mailbox=mailbox,
        local=local,
        domain=domain,
        route=route,
        hidden_domain=_hidden_domain(local),
        bracketed=bracketed,
        params=params.strip(" \t"),
    )


def _until_close(text: str) -> tuple[str, str]:
    """Split ``a@b> PARAMS`` at the ``>`` that is not inside a quoted local part."""
    in_quote = False
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\" and in_quote:
            escaped = True
        elif ch == '"':
            in_quote = not in_quote
        elif ch == ">" and not in_quote:
            return text[:i], text[i + 1 :]
    return text, ""
