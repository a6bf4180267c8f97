"""Scripted SMTP servers on loopback for the runner tests: closed, open, accept-all, greylisting,
postscreen-like, tarpit, split replies, huge banner, 421 mid-session, connection reset, TLS.

Each server is a subclass of :class:`Server` overriding a hook. Every command received is
recorded per session, so tests can assert what the probe sent (never DATA, RSET after each
transaction, QUIT at the end). The server only ever listens on 127.0.0.1 or ::1.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from types import TracebackType

HOST = "mx.relay.test"
DOMAIN = "relay.test"


@dataclass
class Session:
    peer: str
    commands: list[str] = field(default_factory=list)
    message: bytes = b""
    tls: bool = False


class Server:
    """Default behaviour: a correctly closed server for relay.test."""

    banner = f"220 {HOST} ESMTP"
    extensions: tuple[str, ...] = ("PIPELINING", "SIZE 10240000", "8BITMIME")
    tls_context: ssl.SSLContext | None = None
    implicit_tls = False

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.sessions: list[Session] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Server:
        ctx = self.tls_context if self.implicit_tls else None
        self._server = await asyncio.start_server(self._client, self.host, 0, ssl=ctx)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = writer.get_extra_info("peername")
        session = Session(peer=str(peer[0]), tls=self.implicit_tls)
        self.sessions.append(session)
        try:
            await self.serve(session, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except asyncio.CancelledError:
            pass  # the test is over; ending quietly keeps asyncio from logging the cancel
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._tasks.discard(task)

    async def serve(
        self, session: Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self.greet(session, writer)
        while True:
            line = await reader.readline()
            if not line:
                return
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            session.commands.append(command)
            verb, _, arg = command.partition(" ")
            verb = verb.upper()
            if verb == "QUIT":
                await self.send(writer, "221 2.0.0 Bye")
                return
            if verb == "DATA":
                await self.send(writer, "354 End data with <CR><LF>.<CR><LF>")
                session.message = await self.read_message(reader)
                await self.send(writer, "250 2.0.0 Ok: queued as ABC123")
                continue
            if verb == "STARTTLS" and self.tls_context is not None and not session.tls:
                await self.send(writer, "220 2.0.0 Ready to start TLS")
                await writer.start_tls(self.tls_context)
                session.tls = True
                continue
            if await self.respond(session, verb, arg, writer) is False:
                return

    async def read_message(self, reader: asyncio.StreamReader) -> bytes:
        data = b""
        while True:
            line = await reader.readline()
            if not line or line == b".\r\n":
                return data
            data += line

    async def greet(self, session: Session, writer: asyncio.StreamWriter) -> None:
        await self.send(writer, self.banner)

    async def respond(
        self, session: Session, verb: str, arg: str, writer: asyncio.StreamWriter
    ) -> bool | None:
        """Answer one command; return False to hang up."""
        if verb == "EHLO":
            ext = list(self.extensions)
            if self.tls_context is not None and not session.tls:
                ext.append("STARTTLS")
            lines = [f"250-{HOST}"] + [f"250-{e}" for e in ext[:-1]] + [f"250 {ext[-1]}"]
            await self.send(writer, *lines)
        elif verb == "HELO":
            await self.send(writer, f"250 {HOST}")
        elif verb == "MAIL":
            await self.send(writer, self.mail(session, _address(arg)))
        elif verb == "RCPT":
            await self.send(writer, self.rcpt(session, _address(arg)))
        elif verb in ("RSET", "NOOP"):
            await self.send(writer, "250 2.0.0 Ok")
        elif verb == "VRFY":
            await self.send(writer, "502 5.5.1 VRFY command is disabled")
        else:
            await self.send(writer, "502 5.5.2 Error: command not recognized")
        return None

    def mail(self, session: Session, address: str) -> str:
        return "250 2.1.0 Ok"

    def rcpt(self, session: Session, address: str) -> str:
        return closed_rcpt(address)

    async def send(self, writer: asyncio.StreamWriter, *lines: str) -> None:
        writer.write("".join(line + "\r\n" for line in lines).encode())
        await writer.drain()

    # -- what the tests assert ------------------------------------------------------------
    def all_commands(self) -> list[str]:
        return [c for s in self.sessions for c in s.commands]

    def verbs(self) -> list[str]:
        return [c.split(" ", 1)[0].upper() for c in self.all_commands()]


def _address(arg: str) -> str:
    value = arg.partition(":")[2].strip()
    if value.startswith("<") and ">" in value:
        return value[1 : value.rfind(">")]
    return value


def closed_rcpt(address: str) -> str:
    """Local domain: postmaster only; anything else: relay denied."""
    local, _, domain = address.rpartition("@")
    if domain.lower() in (DOMAIN, HOST):
        if local.lower() == "postmaster":
            return "250 2.1.5 Ok"
        return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
    return f"554 5.7.1 <{address}>: Relay access denied"


def open_rcpt(address: str) -> str:
    """Relays anything not addressed to the local domain; still validates local users."""
    domain = address.rpartition("@")[2].lower()
    if domain in (DOMAIN, HOST) or not domain:
        return closed_rcpt(address)
    return "250 2.1.5 Ok"


class OpenServer(Server):
    def rcpt(self, session: Session, address: str) -> str:
        return open_rcpt(address)


class TrustingServer(Server):
    """Relays only for clients from 127.0.0.77 (its "mynetworks")."""

    def rcpt(self, session: Session, address: str) -> str:
        return open_rcpt(address) if session.peer == "127.0.0.77" else closed_rcpt(address)


class PercentHackForAll(TrustingServer):
    """Relays everything for 127.0.0.77, and the percent hack at its own name (R02:
    ``relaytest%example.net@mx.relay.test``) for every other client too."""

    def rcpt(self, session: Session, address: str) -> str:
        local, _, domain = address.rpartition("@")
        if "%" in local and domain.lower() == HOST:
            return "250 2.1.5 Ok"
        return super().rcpt(session, address)


class GreylistsStrangers(TrustingServer):
    """Relays everything for 127.0.0.77; any other client gets 450 for the first RCPT of each
    HELO name, sender and recipient, then the closed server's answers (greylisting)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.seen: set[tuple[str, ...]] = set()

    def rcpt(self, session: Session, address: str) -> str:
        helo = next(c for c in reversed(session.commands) if c.upper().startswith(("EHLO", "HELO")))
        mail = next(c for c in reversed(session.commands) if c.upper().startswith("MAIL"))
        triplet = (session.peer, helo, mail, address)
        if session.peer != "127.0.0.77" and triplet not in self.seen:
            self.seen.add(triplet)
            return f"450 4.2.0 <{address}>: Recipient address rejected: Greylisted"
        return super().rcpt(session, address)


class Catcher(Server):
    """A development mail catcher / honeypot: 250 to everything."""

    def rcpt(self, session: Session, address: str) -> str:
        return "250 2.1.5 Ok"


class Greylister(Server):
    def rcpt(self, session: Session, address: str) -> str:
        return f"450 4.2.0 <{address}>: Recipient address rejected: Greylisted, see greylist.test"


class Postscreen(Server):
    """postscreen's deep-protocol tests: every RCPT of a client's first session gets
    ``450 4.3.2 Service currently unavailable``; later sessions reach the real (closed) smtpd."""

    always = False

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.passed: set[str] = set()

    async def greet(self, session: Session, writer: asyncio.StreamWriter) -> None:
        # the multi-line teaser postscreen sends while it waits for pregreeting clients
        await self.send(writer, f"220-{HOST} ESMTP", f"220 {HOST} ESMTP")

    def rcpt(self, session: Session, address: str) -> str:
        first = session is next(s for s in self.sessions if s.peer == session.peer)
        if self.always or first:
            return "450 4.3.2 Service currently unavailable"
        return closed_rcpt(address)


class AlwaysPostscreen(Postscreen):
    always = True


class Tarpit(Server):
    delay = 1.0

    async def greet(self, session: Session, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(self.delay)
        await super().greet(session, writer)


class SlowServer(Server):
    """Closed, but every reply to RCPT takes ``delay`` seconds."""

    delay = 0.05

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host)

    async def respond(
        self, session: Session, verb: str, arg: str, writer: asyncio.StreamWriter
    ) -> bool | None:
        if verb == "RCPT":
            await asyncio.sleep(self.delay)
        return await super().respond(session, verb, arg, writer)


class SplitServer(Server):
    """Closed, but every reply arrives in pieces: mid-line, between CR and LF, byte by byte."""

    async def send(self, writer: asyncio.StreamWriter, *lines: str) -> None:
        data = "".join(line + "\r\n" for line in lines).encode()
        cuts = sorted({1, 3, 4, len(data) // 2, len(data) - 1} - {0, len(data)})
        start = 0
        for cut in [*cuts, len(data)]:
            writer.write(data[start:cut])
            await writer.drain()
            await asyncio.sleep(0.002)
            start = cut


class HugeBanner(Server):
    """A 10 MB banner without a line end."""

    async def greet(self, session: Session, writer: asyncio.StreamWriter) -> None:
        chunk = b"x" * 65536
        writer.write(b"220 " + chunk)
        for _ in range(10 * 1024 * 1024 // len(chunk)):
            writer.write(chunk)
            await writer.drain()


class Closing421(Server):
    """Answers the ``after``-th RCPT of a session with 421 and hangs up; only in the first
    ``sessions`` sessions (all of them when None)."""

    after = 3
    sessions_421: int | None = 1

    async def respond(
        self, session: Session, verb: str, arg: str, writer: asyncio.StreamWriter
    ) -> bool | None:
        index = self.sessions.index(session)
        limit = self.sessions_421
        rcpts = sum(1 for c in session.commands if c.upper().startswith("RCPT"))
        if verb == "RCPT" and rcpts == self.after and (limit is None or index < limit):
            await self.send(writer, f"421 4.7.0 {HOST} Error: too many errors")
            return False
        return await super().respond(session, verb, arg, writer)


class Always421(Closing421):
    sessions_421 = None


class Resetter(Server):
    """Resets the connection (TCP RST) at the first RCPT of every session."""

    async def respond(
        self, session: Session, verb: str, arg: str, writer: asyncio.StreamWriter
    ) -> bool | None:
        if verb == "RCPT":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        return await super().respond(session, verb, arg, writer)


class Chatty(Server):
    """Sends one reply too many to MAIL: a client that matched replies by reads would desync."""

    async def respond(
        self, session: Session, verb: str, arg: str, writer: asyncio.StreamWriter
    ) -> bool | None:
        if verb == "MAIL":
            await self.send(writer, "250 2.1.0 Ok", "250 2.1.0 Ok again")
            return None
        return await super().respond(session, verb, arg, writer)


class Weak(Server):
    """Every EHLO weakness at once, a version banner, and VRFY/EXPN that answer."""

    banner = f"220 {HOST} ESMTP Exim 4.96 Mon, 07 Dec 2026 10:00:00 +0000"
    extensions = ("PIPELINING", "AUTH PLAIN LOGIN ANONYMOUS", "XCLIENT NAME ADDR", "XFORWARD NAME")

    async def respond(
        self, session: Session, verb: str, arg: str, writer: asyncio.StreamWriter
    ) -> bool | None:
        if verb == "VRFY":
            known = arg.strip().lower() == "postmaster"
            await self.send(
                writer,
                "250 2.1.5 <postmaster@relay.test>" if known else "550 5.1.1 User unknown",
            )
            return None
        if verb == "EXPN":
            await self.send(writer, "250-<alice@relay.test>", "250 <bob@relay.test>")
            return None
        return await super().respond(session, verb, arg, writer)


class TlsOnlyServer(Server):
    """Demands STARTTLS before MAIL; after TLS it is closed (``relay_after_tls`` opens it)."""

    relay_after_tls = False

    def mail(self, session: Session, address: str) -> str:
        if not session.tls:
            return "530 5.7.0 Must issue a STARTTLS command first"
        return "250 2.1.0 Ok"

    def rcpt(self, session: Session, address: str) -> str:
        return open_rcpt(address) if self.relay_after_tls else closed_rcpt(address)


class Threaded:
    """Runs a server in a thread with its own event loop, for code that calls asyncio.run."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with self.server:
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Server:
        self._thread.start()
        assert self._ready.wait(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


class WeirdBanner(Server):
    """Breaks the reply syntax in its banner, then still reads commands (and QUIT)."""

    banner = "999-weird"


class NulReply(Server):
    """A NUL byte in the reply to MAIL; still reads commands afterwards."""

    def mail(self, session: Session, address: str) -> str:
        return "250 2.1.0 O\0k"


class LongLine(Server):
    """An EHLO reply line of 3000 bytes (over the line bound); still reads commands."""

    async def respond(
        self, session: Session, verb: str, arg: str, writer: asyncio.StreamWriter
    ) -> bool | None:
        if verb == "EHLO":
            await self.send(writer, f"250-{HOST}", "250 " + "X" * 3000)
            return None
        return await super().respond(session, verb, arg, writer)


class Crashing(Server):
    """Like an smtpd that dies at start: the first connection is closed without a banner,
    later ones are accepted and never answered (Postfix's master throttling the service)."""

    async def serve(
        self, session: Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if len(self.sessions) > 1:
            await reader.read()  # silent until the client leaves


class ClosesAtOnce(Server):
    """Every connection is accepted and closed at once, without a banner."""

    async def serve(
        self, session: Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        return
