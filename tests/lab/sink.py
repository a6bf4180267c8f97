"""An SMTP sink on loopback: the "Internet" the lab's Postfix relays everything to.

A small asyncio server run in a daemon thread of the test process, so it can never outlive the
tests. It accepts every message, except recipients whose local part starts with ``reject``
(550 5.1.1, a remote hard bounce) or ``tempfail`` (450 4.2.0, a remote deferral).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

# Must differ from the lab's myhostname, or Postfix's smtp client reports a mail loop.
HOSTNAME = "sink.internet.test"
_MAX_LINE = 64 * 1024
_MAX_MESSAGE = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SinkMessage:
    peer: str
    helo: str
    mail_from: str
    rcpts: tuple[str, ...]
    data: bytes = field(repr=False)

    @property
    def subject(self) -> str:
        for line in self.data.splitlines():
            if not line:
                break
            if line[:8].lower() == b"subject:":
                return line[8:].decode("utf-8", "replace").strip()
        return ""


def _address(arg: str) -> str:
    """``FROM:<a@b> SIZE=1`` -> ``a@b``."""
    value = arg.partition(":")[2].strip()
    if value.startswith("<"):
        return value[1 : value.find(">")] if ">" in value else value[1:]
    return value.split(" ", 1)[0]


class _Session:
    def __init__(
        self, sink: SmtpSink, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.sink, self.reader, self.writer = sink, reader, writer
        peer = writer.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else ""
        self.helo = ""
        self.mail_from: str | None = None
        self.rcpts: list[str] = []

    async def reply(self, *lines: str) -> None:
        self.writer.write("".join(line + "\r\n" for line in lines).encode())
        await self.writer.drain()

    async def run(self) -> None:
        await self.reply(f"220 {HOSTNAME} ESMTP lab sink")
        while raw := await self.reader.readline():
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            if not await self.command(verb.upper(), arg):
                return

    async def command(self, verb: str, arg: str) -> bool:
        if verb == "EHLO":
            self.helo = arg
            await self.reply(f"250-{HOSTNAME}", "250-PIPELINING", "250-8BITMIME", "250 SIZE 0")
        elif verb == "HELO":
            self.helo = arg
            await self.reply(f"250 {HOSTNAME}")
        elif verb == "MAIL":
            self.mail_from, self.rcpts = _address(arg), []
            await self.reply("250 2.1.0 Ok")
        elif verb == "RCPT":
            await self.recipient(_address(arg))
        elif verb == "DATA":
            await self.data()
        elif verb in ("RSET", "NOOP"):
            if verb == "RSET":
                self.mail_from, self.rcpts = None, []
            await self.reply("250 2.0.0 Ok")
        elif verb == "QUIT":
            await self.reply("221 2.0.0 Bye")
            return False
        else:
            await self.reply("502 5.5.2 Error: command not recognized")
        return True

    async def recipient(self, rcpt: str) -> None:
        local = rcpt.partition("@")[0].lower()
        if self.mail_from is None:
            await self.reply("503 5.5.1 Error: need MAIL command")
        elif local.startswith("reject"):
            await self.reply(f"550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown")
        elif local.startswith("tempfail"):
            await self.reply(f"450 4.2.0 <{rcpt}>: Mailbox temporarily unavailable")
        else:
            self.rcpts.append(rcpt)
            await self.reply("250 2.1.5 Ok")

    async def data(self) -> None:
        if self.mail_from is None or not self.rcpts:
            await self.reply("554 5.5.1 Error: no valid recipients")
            return
        await self.reply("354 End data with <CR><LF>.<CR><LF>")
        chunks: list[bytes] = []
        size = 0
        while (raw := await self.reader.readline()) not in (b".\r\n", b".\n", b""):
            size += len(raw)
            if size <= _MAX_MESSAGE:
                chunks.append(raw[1:] if raw.startswith(b"..") else raw)
        message = SinkMessage(
            self.peer, self.helo, self.mail_from, tuple(self.rcpts), b"".join(chunks)
        )
        number = self.sink.store(message)
        self.mail_from, self.rcpts = None, []
        await self.reply(f"250 2.0.0 Ok: queued as SINK{number:06d}")


class SmtpSink:
    """``start()`` binds 127.0.0.1:port and serves in a thread; ``stop()`` ends it."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self._messages: list[SinkMessage] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    def store(self, message: SinkMessage) -> int:
        with self._lock:
            self._messages.append(message)
            return len(self._messages)

    def messages(self) -> list[SinkMessage]:
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _Session(self, reader, writer).run()
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass  # a client that goes away or sends an overlong line just ends its session
        finally:
            writer.close()

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        self._server = loop.run_until_complete(
            asyncio.start_server(self._handle, self.host, self.port, limit=_MAX_LINE)
        )
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="lab-sink", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        loop, server, thread = self._loop, self._server, self._thread
        if loop is None or server is None or thread is None:
            return
        self._loop = self._server = self._thread = None

        async def shutdown() -> None:
            server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
