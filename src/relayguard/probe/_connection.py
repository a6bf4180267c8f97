"""One SMTP connection: asyncio streams, timeouts and TLS around a :class:`Dialogue`.

Every wait is bounded twice: by its own timeout (connect, per command) and by what is left of
the whole probe's budget (:class:`Budget`). Every line sent and received is kept, sanitised,
in ``transcript``; the caller slices it per test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import time
from collections.abc import Callable
from typing import Final

from relayguard.probe._errors import (
    ConnectionLost,
    ProbeTimeout,
    RemoteProtocolError,
    TargetError,
)
from relayguard.probe.dialogue import Closed, Dialogue, Limits, Reply
from relayguard.probe.result import SLOW_REPLY, peer_text, reply_lines

READ_SIZE: Final = 16 * 1024
# QUIT is a courtesy: its reply is not worth more than a few seconds.
QUIT_TIMEOUT: Final = 5.0
# QUIT after a protocol error or a timeout: written raw, the reply not read, only waited for.
QUIT_GRACE: Final = 1.0
QUIT_DRAIN_BYTES: Final = 4 * READ_SIZE
CLOSE_TIMEOUT: Final = 2.0


def _why(exc: OSError) -> str:
    """``Connection refused``, not asyncio's ``Connect call failed ('127.0.0.1', 25)``."""
    return os.strerror(exc.errno) if exc.errno else str(exc)


class OutOfTime(ProbeTimeout):
    """The probe's total time budget ran out."""


class Budget:
    """The total time left, shared by every connection of one probe."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.deadline = clock() + seconds

    def timeout(self, wanted: float) -> float:
        left = self.deadline - self.clock()
        if left <= 0:
            raise OutOfTime("the probe's total time budget ran out")
        return min(wanted, left)


def client_tls_context() -> ssl.SSLContext:
    """Opportunistic, like MTAs between each other: no certificate check, old versions allowed
    so that a server capable only of TLS 1.0 is seen (and reported) rather than failed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(ValueError, ssl.SSLError):
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with contextlib.suppress(ssl.SSLError):
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


class Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        dialogue: Dialogue,
        budget: Budget,
        command_timeout: float,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.dialogue = dialogue
        self.budget = budget
        self.command_timeout = command_timeout
        self.transcript: list[str] = []
        self.helo: str | None = None
        self.rejects = 0  # tests refused on this connection
        self.transactions = 0
        self.last_seconds = 0.0  # seconds the last reply took
        self.slowest = 0.0
        self.slow = 0  # replies slower than SLOW_REPLY
        self.closed = False
        self._closing = False

    @classmethod
    async def open(
        cls,
        address: str,
        port: int,
        *,
        source: str | None,
        budget: Budget,
        connect_timeout: float,
        command_timeout: float,
        tls: ssl.SSLContext | None = None,
        allow_data: bool = False,
        limits: Limits | None = None,
    ) -> Connection:
        timeout = budget.timeout(connect_timeout)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    address,
                    port,
                    local_addr=(source, 0) if source else None,
                    ssl=tls,
                    ssl_handshake_timeout=timeout if tls else None,
                    limit=READ_SIZE * 4,
                ),
                timeout,
            )
        except TimeoutError:
            raise ProbeTimeout(f"connect to {address} port {port} timed out") from None
        except ssl.SSLError as exc:
            raise ConnectionLost(f"TLS handshake failed: {exc.reason or exc}") from None
        except OSError as exc:
            raise TargetError(f"cannot connect to {address} port {port}: {_why(exc)}") from None
        return cls(reader, writer, Dialogue(limits, allow_data=allow_data), budget, command_timeout)

    @property
    def local_address(self) -> str | None:
        name = self.writer.get_extra_info("sockname")
        return str(name[0]) if name else None

    def tls_version(self) -> tuple[str | None, str | None]:
        obj = self.writer.get_extra_info("ssl_object")
        if obj is None:
            return None, None
        cipher = obj.cipher()
        return obj.version(), cipher[0] if cipher else None

    # -- replies and commands ---------------------------------------------------------------
    async def read_reply(self) -> Reply:
        started = self.budget.clock()
        while True:
            event = self.dialogue.next_event()
            if isinstance(event, Reply):
                seconds = self.budget.clock() - started
                self.last_seconds = seconds
                self.slowest = max(self.slowest, seconds)
                self.slow += seconds >= SLOW_REPLY
                self.transcript.extend(reply_lines(event))
                return event
            if isinstance(event, Closed):
                self.closed = True
                raise ConnectionLost("the server closed the connection")
            self.dialogue.receive_data(await self._read())

    async def _read(self) -> bytes:
        timeout = self.budget.timeout(self.command_timeout)
        try:
            return await asyncio.wait_for(self.reader.read(READ_SIZE), timeout)
        except TimeoutError:
            raise ProbeTimeout(f"no reply within {timeout:.1f} s (timed out)") from None
        except OSError as exc:
            self.closed = True
            raise ConnectionLost(f"connection lost: {_why(exc)}") from None

    async def command(self, verb: str, argument: str = "") -> Reply:
        if self.dialogue.has_unread:
            # Something came unasked: a 421 before closing is the one legitimate case.
            event = self.dialogue.next_event()
            if isinstance(event, Reply) and event.code == 421:
                self.transcript.extend(reply_lines(event))
                return event
            raise RemoteProtocolError("the server sent data nobody asked for")
        data = self.dialogue.send(verb, argument)
        self.transcript.append(f"C: {peer_text(data.decode('ascii').rstrip())}")
        await self._write(data)
        return await self.read_reply()

    async def message(self, data: bytes, summary: str) -> Reply:
        """Send the message after a 354 (``--prove-to`` only)."""
        wire = self.dialogue.send_message(data)
        self.transcript.append(f"C: {summary}")
        await self._write(wire)
        return await self.read_reply()

    async def _write(self, data: bytes) -> None:
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.budget.timeout(self.command_timeout))
        except TimeoutError:
            raise ProbeTimeout("the server stopped reading (timed out)") from None
        except OSError as exc:
            self.closed = True
            raise ConnectionLost(f"connection lost: {_why(exc)}") from None

    async def starttls(self, ctx: ssl.SSLContext, server_hostname: str | None) -> None:
        self.dialogue.start_tls()
        try:
            await asyncio.wait_for(
                self.writer.start_tls(ctx, server_hostname=server_hostname),
                self.budget.timeout(self.command_timeout),
            )
        except TimeoutError:
            raise ProbeTimeout("TLS handshake timed out") from None
        except ssl.SSLError as exc:
            self.closed = True
            raise ConnectionLost(f"TLS handshake failed: {exc.reason or exc}") from None
        except OSError as exc:
            self.closed = True
            raise ConnectionLost(f"TLS handshake failed: {_why(exc)}") from None

    async def quit(self) -> None:
        """QUIT politely (short timeout), then close; never raises.

        After a protocol error or a timeout the dialogue sends nothing more, so QUIT goes out
        as raw bytes; closing waits briefly for the server to hang up, because closing with
        unread data resets the connection and may drop the QUIT.
        """
        if not self.closed and not self.dialogue.tls_pending:
            with contextlib.suppress(Exception):
                if self.dialogue.can_send:
                    self.command_timeout = min(self.command_timeout, QUIT_TIMEOUT)
                    await self.command("QUIT")
                else:
                    await self._raw_quit()
        await self.close()

    async def _raw_quit(self) -> None:
        grace = min(QUIT_GRACE, self.budget.deadline - self.budget.clock())
        if grace <= 0:
            return
        self.transcript.append("C: QUIT")
        self.writer.write(b"QUIT\r\n")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        await asyncio.wait_for(self.writer.drain(), grace)
        dropped = 0
        while dropped < QUIT_DRAIN_BYTES:
            chunk = await asyncio.wait_for(self.reader.read(READ_SIZE), deadline - loop.time())
            if not chunk:
                break
            dropped += len(chunk)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.closed = True
        with contextlib.suppress(Exception):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), CLOSE_TIMEOUT)
