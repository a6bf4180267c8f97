"""The asyncio shell around the policy codec: sockets, batching, the store, shutdown.

Theory of operation
-------------------
Each client connection is a :class:`_Client` protocol: bytes go into its
:class:`~relayguard.policy.codec.PolicyConnection`, and every complete request is handed to
:meth:`PolicyServer.submit`. A request that no rule charges and that needs no containment
lookup is answered at once; the others wait in a queue that is drained once per turn of the
event loop: every request that arrived during that turn goes to the store in one
:meth:`~relayguard.policy.stores.Store.check_many` call (one SQLite transaction, one Redis
script call), then each is decided (:func:`~relayguard.policy.decide.decide`) and answered in
arrival order. Under load, batches grow by themselves (the group commit of databases); with one
client, a batch is one request.

The store is called inline, on the event loop thread: each store bounds its own calls by
``store_timeout`` (SQLite's busy timeout, Redis socket timeouts), which is what keeps answers
bounded without a thread hand-off per request. A failed or timed-out call answers the whole batch
with the fail action, and for ``store_retry`` seconds after it every request gets the fail action
without touching the store, so a dead store costs one timeout per ``store_retry``; then the
store is tried again and, when it answers, counting resumes. Only the transitions are logged
(``store_down``/``store_up``), plus each fail-closed refusal.

A client that breaks the protocol, stays idle for ``idle_timeout`` or arrives above
``max_connections`` is disconnected without a reply, which Postfix turns into a retry and then
its ``default_action``. A client that pipelines more than :data:`MAX_PIPELINED` requests without
reading the replies is not read until it catches up.

:meth:`PolicyServer.close` stops accepting, answers what is queued, disconnects every client,
then closes the store.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
import stat
import sys
import time
from collections.abc import Callable, Sequence
from typing import Final, cast

from relayguard.errors import InputError
from relayguard.policy._errors import RemoteProtocolError
from relayguard.policy.codec import (
    DUNNO,
    NEED_DATA,
    ConnectionClosed,
    PolicyConnection,
    PolicyReply,
    PolicyRequest,
)
from relayguard.policy.config import PolicyConfig, parse_listen
from relayguard.policy.decide import (
    Outcome,
    StoreAnswer,
    StoreFailure,
    containment_keys,
    decide,
    store_key,
)
from relayguard.policy.metrics import PolicyMetrics
from relayguard.policy.rules import Charge
from relayguard.policy.stores import Store
from relayguard.policy.stores.base import Check, Verdict

READ_SIZE: Final = 64 * 1024
MAX_BATCH: Final = 1024
"""Requests per store call: bounds how long one batch holds SQLite's write lock (~5 ms)."""
MAX_PIPELINED: Final = 64
"""Unanswered requests per connection before it is no longer read (Postfix sends one at a time)."""
BACKLOG: Final = 1024
"""Postfix opens policy connections in bursts (one per smtpd process); a short listen backlog
makes their connects fail (POLICY.md: policyd-rate-limit's listen(5))."""

Emit = Callable[[dict[str, object]], None]


def emit_json(event: dict[str, object]) -> None:
    """One JSON line on stderr, the structured log of the daemon, in one write: workers share
    the stream, and ``print`` writes the line and its newline separately when unbuffered."""
    line = json.dumps({"ts": round(time.time(), 3), **event}, separators=(",", ":"))
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class _Job:
    __slots__ = ("charges", "client", "keys", "now", "request", "started")

    def __init__(
        self,
        client: _Client,
        request: PolicyRequest,
        charges: list[Charge],
        keys: tuple[str, ...],
        now: float,
        started: float,
    ) -> None:
        self.client = client
        self.request = request
        self.charges = charges
        self.keys = keys
        self.now = now
        self.started = started


class _Client(asyncio.Protocol):
    """One policy client connection."""

    def __init__(self, server: PolicyServer) -> None:
        self.server = server
        self.codec = PolicyConnection()
        self.transport: asyncio.Transport | None = None
        self.unanswered = 0
        self.paused = False
        self.eof = False
        self.last_active = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.last_active = self.server.loop.time()
        if not self.server.admit(self):
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.forget(self)

    def data_received(self, data: bytes) -> None:
        server = self.server
        self.last_active = server.loop.time()
        codec = self.codec
        try:
            codec.receive_data(data)
            while True:
                event = codec.next_event()
                if event is NEED_DATA:
                    return
                if isinstance(event, ConnectionClosed):
                    self.close()
                    return
                assert isinstance(event, PolicyRequest)
                self.unanswered += 1
                server.submit(self, event)
                if self.unanswered > MAX_PIPELINED and not self.paused and self.transport:
                    self.paused = True
                    self.transport.pause_reading()
        except RemoteProtocolError as exc:
            server.protocol_error(self, exc)

    def eof_received(self) -> bool | None:
        # Every complete request was taken in data_received; what is left is incomplete.
        self.eof = True
        if not self.unanswered:
            self.close()
        return True  # keep the transport open until the queued replies are written

    def reply(self, reply: PolicyReply) -> None:
        self.unanswered -= 1
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(self.codec.send(reply))
        if self.paused and self.unanswered <= MAX_PIPELINED // 2:
            self.paused = False
            self.transport.resume_reading()
        if self.eof and not self.unanswered:
            self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _SharedAcceptor:
    """Accepts from a listening socket the other workers accept from too, one connection per
    readiness event.

    ``create_server`` accepts until the backlog is empty, so in a burst of connections (the
    smtpd processes reconnecting after a restart, a load test) the first worker to wake took
    them all and the others stayed idle for as long as those connections lived. Taking one and
    going back to the event loop lets every worker woken by the same event take its share.
    """

    # An accept failing for want of descriptors or memory is retried after this long, as
    # asyncio's own server does, instead of at once in a busy loop.
    PAUSE_AFTER_ERROR: Final = 1.0

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        factory: Callable[[], _Client],
        emit: Emit,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.factory = factory
        self.emit = emit
        self.closed = False
        self._resume: asyncio.TimerHandle | None = None
        loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it, or the client gave up
        except OSError as exc:
            self.emit({"event": "accept_failed", "error": _os_reason(exc)})
            self.loop.remove_reader(self.sock.fileno())
            self._resume = self.loop.call_later(self.PAUSE_AFTER_ERROR, self._listen_again)
            return
        conn.setblocking(False)
        self.loop.create_task(self._connect(conn))

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self.factory, conn)
        except OSError:
            conn.close()  # reset before it could be wrapped: nothing to answer

    def _listen_again(self) -> None:
        self._resume = None
        if not self.closed:
            self.loop.add_reader(self.sock.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting; the socket stays open (it is the supervisor's)."""
        if self.closed:
            return
        self.closed = True
        if self._resume is not None:
            self._resume.cancel()
        else:
            self.loop.remove_reader(self.sock.fileno())


class PolicyServer:
    def __init__(
        self,
        config: PolicyConfig,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        emit: Emit = emit_json,
        metrics: PolicyMetrics | None = None,
    ) -> None:
        self.config = config
        self.rules = config.rules
        self.store = store
        self.metrics = metrics or PolicyMetrics()
        self._clock = clock
        self._emit = emit
        self._server: asyncio.Server | None = None
        self._clients: set[_Client] = set()
        self._queue: list[_Job] = []
        self._flush_scheduled = False
        self._down_until = 0.0
        self._down_reason = ""
        self._stopping = False
        self._sweeper: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: Listener | None = None  # made by this server, not handed to it
        self._acceptor: _SharedAcceptor | None = None
        """(path, device, inode) of the unix socket this server made: removed on close."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    @property
    def requests(self) -> int:
        return self.metrics.requests

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self, listen: str | None = None, listener: Listener | None = None) -> None:
        """Listen on ``listener`` (made by the supervisor of several workers), else on a new one
        for ``listen`` or the config's; :class:`InputError` (one line) when it cannot be used."""
        self._loop = loop = asyncio.get_running_loop()
        if listener is None:
            listener = self._listener = open_listener(self.config, listen)
        try:
            if listener.shared:
                self._acceptor = _SharedAcceptor(
                    loop, listener.sock, lambda: _Client(self), self._emit
                )
            elif listener.unix:
                self._server = await loop.create_unix_server(
                    lambda: _Client(self), sock=listener.sock, backlog=BACKLOG
                )
            else:
                self._server = await loop.create_server(
                    lambda: _Client(self), sock=listener.sock, backlog=BACKLOG
                )
        except OSError as exc:
            await self.close_listener()
            raise InputError(f"cannot listen on {listener.text}: {_os_reason(exc)}") from None
        self._schedule_sweep()

    async def close_listener(self) -> None:
        """Stop listening; remove the unix socket this server made (if it is still ours)."""
        if self._server is not None:
            self._server.close()
        if self._acceptor is not None:
            self._acceptor.close()
        if self._listener is not None:
            self._listener.remove_socket_file()

    @property
    def address(self) -> tuple[str, int] | str:
        """Where the server listens (the real port when started on port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the server is not listening")
        name = self._server.sockets[0].getsockname()
        return name if isinstance(name, str) else (str(name[0]), int(name[1]))

    @property
    def address_text(self) -> str:
        """:attr:`address` as written in the config: ``HOST:PORT``, ``[v6]:PORT``, ``unix:PATH``."""
        where = self.address
        if isinstance(where, str):
            return f"unix:{where}"
        host, port = where
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start_with_store_down(self, reason: str) -> None:
        """The store did not answer at start: serve in the fail mode and try it again after
        ``store_retry``, as after any store failure (``store_down`` is logged now)."""
        self._store_down(reason)

    def reload(self, config: PolicyConfig) -> None:
        """New rules and bounds (SIGHUP); the store and the listening socket stay."""
        config.rules.adopt_memory(self.rules)
        self.config = config
        self.rules = config.rules
        self.metrics.reloads += 1

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting, answer what is queued, disconnect every client, close the store."""
        self._stopping = True
        await self.close_listener()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._flush()
        deadline = time.monotonic() + grace
        for client in list(self._clients):
            client.close()
        while self._clients and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for client in list(self._clients):
            if client.transport is not None:
                client.transport.abort()
        self.store.close()

    # --- connections --------------------------------------------------------------------------

    def admit(self, client: _Client) -> bool:
        if self._stopping or len(self._clients) >= self.config.max_connections:
            return False
        self._clients.add(client)
        self.metrics.connections = len(self._clients)
        return True

    def forget(self, client: _Client) -> None:
        self._clients.discard(client)
        self.metrics.connections = len(self._clients)

    def protocol_error(self, client: _Client, exc: RemoteProtocolError) -> None:
        self.metrics.protocol_errors += 1
        self._emit({"event": "client_error", "error": str(exc)})
        if client.transport is not None:
            client.transport.abort()

    def _schedule_sweep(self) -> None:
        every = max(0.05, min(self.config.idle_timeout / 4, 30.0))
        self._sweeper = self.loop.call_later(every, self._sweep)

    def _sweep(self) -> None:
        """Disconnect clients idle for longer than ``idle_timeout`` (slowloris included)."""
        horizon = self.loop.time() - self.config.idle_timeout
        for client in list(self._clients):
            if client.last_active < horizon and not client.unanswered:
                client.close()
        if not self._stopping:
            self._schedule_sweep()

    # --- requests -----------------------------------------------------------------------------

    def submit(self, client: _Client, request: PolicyRequest) -> None:
        self.metrics.requests += 1
        now = self._clock()
        charges = self.rules.charges(request, now)
        keys = containment_keys(request)
        started = self.loop.time()
        if not charges and not keys and not self._queue:
            self.metrics.decisions["DUNNO", "ok"] += 1
            self._finish(client, request, DUNNO, started)
            return
        self._queue.append(_Job(client, request, charges, keys, now, started))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        while self._queue:
            jobs = self._queue[:MAX_BATCH]
            del self._queue[:MAX_BATCH]
            self._answer(jobs)

    def _answer(self, jobs: Sequence[_Job]) -> None:
        answers = self._ask(jobs)
        fail_closed = self.config.fail_closed
        refunds: list[tuple[str, Sequence[object], float, float]] = []
        for job, answer in zip(jobs, answers, strict=True):
            outcome = decide(job.request, job.charges, answer, fail_closed=fail_closed)
            self._carry_out(job, outcome)
            given_back = list(outcome.refund)
            if outcome.refused_message:
                given_back += self.rules.refundable(job.request)
            refunds.extend((store_key(c), c.windows, job.now, float(c.cost)) for c in given_back)
        if refunds:
            try:
                self.store.refund_many(refunds)  # type: ignore[arg-type]
            except Exception as exc:  # a lost refund only errs on the strict side
                self._emit({"event": "refund_failed", "error": _describe(exc)})

    def _ask(self, jobs: Sequence[_Job]) -> list[StoreAnswer | StoreFailure]:
        """The store's answer to each job, or the fail answer for all of them."""
        if self._clock() < self._down_until:
            failure = StoreFailure(self._down_reason)
            return [failure] * len(jobs)
        checks = [
            Check(
                job.keys,
                [(store_key(c), c.windows, job.now, float(c.cost)) for c in job.charges],
            )
            for job in jobs
        ]
        started = time.monotonic()
        try:
            verdicts: list[Verdict] = self.store.check_many(checks)
            if len(verdicts) != len(checks):
                raise RuntimeError(f"{len(verdicts)} answers to {len(checks)} checks")
        except Exception as exc:  # any store failure, not only StoreError, gets the fail mode
            reason = _describe(exc)
            waited = time.monotonic() - started
            if waited > self.config.store_timeout:
                reason = f"{reason} (after {waited:.2f}s)"
            self._store_down(reason)
            failure = StoreFailure(reason)
            return [failure] * len(jobs)
        if self._down_reason:
            self._store_up()
        return [
            StoreAnswer(v) if isinstance(v, str) else StoreAnswer("", tuple(v)) for v in verdicts
        ]

    def _store_down(self, reason: str) -> None:
        metrics = self.metrics
        metrics.store_errors += 1
        metrics.store_up = 0
        self._down_until = self._clock() + self.config.store_retry
        if not self._down_reason:
            mode = "closed" if self.config.fail_closed else "open"
            self._emit({"event": "store_down", "error": reason, "fail_mode": mode})
        self._down_reason = reason

    def _store_up(self) -> None:
        self._emit({"event": "store_up", "after_error": self._down_reason})
        self._down_reason = ""
        self.metrics.store_up = 1

    def _carry_out(self, job: _Job, outcome: Outcome) -> None:
        request = job.request
        if outcome.contain is not None:
            self._contain(request, *outcome.contain, job.now)
        if outcome.record:
            self.rules.record(request, outcome.record, job.now)
        event = outcome.event
        if event is not None and event.get("decision") != "fail-open":
            self._emit(event)
        decision = event["decision"] if event is not None else "ok"
        self.metrics.decisions[outcome.reply.action.value, str(decision)] += 1
        self._finish(job.client, request, outcome.reply, job.started)

    def _contain(self, request: PolicyRequest, key: str, reason: str, now: float) -> None:
        try:
            new = self.store.contain(key, reason, now)
        except Exception as exc:
            self._emit({"event": "contain_failed", "key": key, "error": _describe(exc)})
            return
        if new:
            self.metrics.containments += 1
            alert: dict[str, object] = {
                "event": "alert",
                "indicator": "compromised-account",
                "severity": "critical",
                "key": key,
                "reason": reason,
                "action": f"contained: further mail is held; release with "
                f"'relayguard policy release {key}'",
            }
            for name in ("client_address", "sasl_username", "sender", "queue_id"):
                value = request.attributes.get(name, "")
                if value:
                    alert[name] = value
            self._emit(alert)

    def _finish(
        self, client: _Client, request: PolicyRequest, reply: PolicyReply, started: float
    ) -> None:
        client.reply(reply)
        self.metrics.observe(self.loop.time() - started)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror})"
    if exc.errno == errno.EADDRINUSE:
        return "the address is already in use (another server is listening there?)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "the address is not one of this host's"
    return exc.strerror or str(exc)


class Listener:
    """A bound, listening, non-blocking socket, and the unix socket file it made (if any)."""

    __slots__ = ("shared", "sock", "socket_file", "text", "unix")

    def __init__(
        self,
        sock: socket.socket,
        text: str,
        socket_file: tuple[str, int, int] | None,
        shared: bool = False,
    ) -> None:
        self.sock = sock
        self.text = text
        self.unix = sock.family == socket.AF_UNIX
        self.socket_file = socket_file
        self.shared = shared
        """Several workers accept from this one socket."""

    def remove_socket_file(self) -> None:
        """Remove the unix socket file this listener made, if it is still that file."""
        made, self.socket_file = self.socket_file, None
        if made is not None:
            path, device, inode = made
            try:
                info = os.lstat(path)
                if (info.st_dev, info.st_ino) == (device, inode):
                    os.unlink(path)
            except OSError:
                pass  # gone already, or not ours to remove


def open_listener(config: PolicyConfig, listen: str | None = None) -> Listener:
    """The listening socket for ``listen`` (else the config's): a unix socket with the config's
    mode and group, or TCP; :class:`InputError` (one line) when it cannot be had."""
    text = listen or config.listen
    where = parse_listen(text)
    sock: socket.socket | None = None
    made: tuple[str, int, int] | None = None
    try:
        if isinstance(where, str):
            remove_stale_socket(where)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(where)
            info = os.stat(where)
            made = (where, info.st_dev, info.st_ino)
            _set_socket_access(config, where)
        else:
            sock = _tcp_socket(*where)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except (OSError, InputError) as exc:
        if sock is not None:
            sock.close()
            Listener(sock, text, made).remove_socket_file()
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot listen on {text}: {_os_reason(exc)}") from None
    return Listener(sock, text, made)


def open_worker_listeners(
    config: PolicyConfig, workers: int, listen: str | None = None
) -> list[Listener]:
    """The listening sockets of ``workers`` workers: on TCP one each, bound to the same address
    with SO_REUSEPORT (the kernel spreads the connections over them evenly), on a unix socket
    one they all accept from (see :class:`_SharedAcceptor`)."""
    text = listen or config.listen
    where = parse_listen(text)
    if isinstance(where, str) or workers == 1:
        first = open_listener(config, listen)
        first.shared = workers > 1
        return [first]
    host, port = where
    listeners: list[Listener] = []
    try:
        # SO_REUSEPORT lets any process of the same user bind the port too: first make sure
        # nobody has it (a socket bound without the option fails if anyone does), so a second
        # server started by mistake stops with an error instead of taking half the connections.
        probe = _tcp_socket(host, port)
        port = probe.getsockname()[1]
        probe.close()
        text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # port 0: the real one
        for _ in range(workers):
            sock = _tcp_socket(host, port, reuse_port=True)
            listeners.append(Listener(sock, text, None))
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError as exc:
        for listener in listeners:
            listener.sock.close()
        raise InputError(f"cannot listen on {text}: {_os_reason(exc)}") from None
    return listeners


def _tcp_socket(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _set_socket_access(config: PolicyConfig, path: str) -> None:
    """The socket's mode and group from the config (Postfix's smtpd must connect)."""
    group = config.listen_group
    try:
        if group:
            import grp

            try:
                gid = grp.getgrnam(group).gr_gid
            except KeyError:
                raise InputError(f"policy.listen_group: no group {group!r}") from None
            os.chown(path, -1, gid)
        os.chmod(path, config.listen_mode)
    except OSError as exc:
        what = f"group {group!r} and mode" if group else "mode"
        raise InputError(f"cannot set the {what} of {path}: {exc.strerror}") from None


def remove_stale_socket(path: str) -> None:
    """Make room for a unix socket at ``path``: remove a socket nobody listens on any more.

    Anything else there (a regular file, a directory, a socket a live server answers on) is an
    :class:`InputError`: it is never removed.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(f"cannot use {path}: {exc.strerror}") from None
    if not stat.S_ISSOCK(info.st_mode):
        raise InputError(f"{path} exists and is not a socket: not removed, choose another path")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        pass  # stale: its server is gone
    except OSError as exc:
        raise InputError(f"cannot use the socket {path}: {exc.strerror or exc}") from None
    else:
        raise InputError(f"a server is already listening on {path}")
    finally:
        probe.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise InputError(f"cannot remove the stale socket {path}: {exc.strerror}") from None
