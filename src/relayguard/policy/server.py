"""The asyncio shell around the policy codec: sockets, timeouts, the store thread, shutdown.

Every connection gets its own :class:`PolicyConnection` and answers its requests in order, one
at a time (Postfix never sends the next before the reply). Store calls run in one worker
thread, each bounded by ``store_timeout``; a slow or failing store gets the configured fail
action (:mod:`relayguard.policy.decide`). A client that breaks the protocol, stays idle for
``idle_timeout`` or arrives above ``max_connections`` is disconnected without a reply, which
Postfix turns into a retry and then its ``default_action``.

:meth:`PolicyServer.close` stops accepting, disconnects idle clients, lets the requests being
answered finish, then closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from relayguard.errors import ConfigError
from relayguard.policy._errors import RemoteProtocolError
from relayguard.policy.codec import NEED_DATA, ConnectionClosed, PolicyConnection, PolicyRequest
from relayguard.policy.decide import (
    Outcome,
    StoreAnswer,
    StoreFailure,
    containment_key,
    decide,
    store_key,
)
from relayguard.policy.limiter import Decision
from relayguard.policy.rules import Charge, RuleSet, parse_rules
from relayguard.policy.stores import Store

DEFAULT_LISTEN: Final = "127.0.0.1:10040"
DEFAULT_STORE: Final = "sqlite:/var/lib/relayguard/policy.sqlite"
READ_SIZE: Final = 64 * 1024
_SETTINGS: Final = frozenset(
    (
        "listen",
        "store",
        "store_timeout",
        "fail_mode",
        "local_domains",
        "rules",
        "idle_timeout",
        "max_connections",
    )
)

Emit = Callable[[dict[str, object]], None]


def emit_json(event: dict[str, object]) -> None:
    """One JSON line on stderr, the structured log of the daemon."""
    line = json.dumps({"ts": round(time.time(), 3), **event}, separators=(",", ":"))
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    rules: RuleSet
    listen: str = DEFAULT_LISTEN
    store: str = DEFAULT_STORE
    store_timeout: float = 0.2
    fail_closed: bool = False
    idle_timeout: float = 60.0
    max_connections: int = 1000
    raw: Mapping[str, object] = field(default_factory=dict, repr=False)


def _number(table: Mapping[str, object], name: str, default: float, low: float) -> float:
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > low:
        raise ConfigError(f"policy.{name} must be a number above {low}")
    return float(value)


def parse_config(document: Mapping[str, object]) -> PolicyConfig:
    """The ``[policy]`` table of a loaded TOML document."""
    table = document.get("policy")
    if not isinstance(table, dict):
        raise ConfigError("the config has no [policy] table")
    unknown = sorted(str(k) for k in table if k not in _SETTINGS)
    if unknown:
        raise ConfigError(f"policy: unknown setting {unknown[0]!r}")
    rules = parse_rules({k: table[k] for k in ("rules", "local_domains") if k in table})
    strings = {}
    for name, default in (("listen", DEFAULT_LISTEN), ("store", DEFAULT_STORE)):
        value = table.get(name, default)
        if not isinstance(value, str):
            raise ConfigError(f"policy.{name} must be a string")
        strings[name] = value
    fail_mode = table.get("fail_mode", "open")
    if fail_mode not in ("open", "closed"):
        raise ConfigError("policy.fail_mode must be 'open' or 'closed'")
    return PolicyConfig(
        rules=rules,
        listen=strings["listen"],
        store=strings["store"],
        store_timeout=_number(table, "store_timeout", 0.2, 0),
        fail_closed=fail_mode == "closed",
        idle_timeout=_number(table, "idle_timeout", 60.0, 0),
        max_connections=int(_number(table, "max_connections", 1000, 0)),
        raw=table,
    )


def load_config(path: str | os.PathLike[str]) -> PolicyConfig:
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {os.fspath(path)!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{os.fspath(path)!r}: {exc}") from None
    return parse_config(document)


def parse_listen(listen: str) -> tuple[str, int] | str:
    """``HOST:PORT`` (``[v6]:PORT``) as (host, port), or ``unix:/path`` as the path."""
    if listen.startswith("unix:"):
        path = listen[5:]
        if not path:
            raise ConfigError("listen unix: needs a path")
        return path
    host, sep, port = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ConfigError(f"bad listen address {listen!r}: expected HOST:PORT or unix:/path")
    return host, int(port)


def _ask_store(
    store: Store, key: str, charges: Sequence[tuple[str, Charge]], now: float
) -> StoreAnswer:
    """Runs in the store thread: containment first, then all charges in one call."""
    if key and store.is_contained(key):
        return StoreAnswer(True)
    if not charges:
        return StoreAnswer(False)
    calls = [(skey, c.windows, now, float(c.cost)) for skey, c in charges]
    decisions: list[Decision] = store.allow_many(calls)
    return StoreAnswer(False, tuple(decisions))


class PolicyServer:
    def __init__(
        self,
        config: PolicyConfig,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        emit: Emit = emit_json,
    ) -> None:
        self.config = config
        self.rules = config.rules
        self.store = store
        self._clock = clock
        self._emit = emit
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relayguard-store")
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.requests = 0

    async def start(self, listen: str | None = None) -> None:
        where = parse_listen(listen or self.config.listen)
        if isinstance(where, str):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(where)
            self._server = await asyncio.start_unix_server(self._handle, where, limit=READ_SIZE)
        else:
            host, port = where
            self._server = await asyncio.start_server(self._handle, host, port, limit=READ_SIZE)

    @property
    def address(self) -> tuple[str, int] | str:
        """Where the server listens (the real port when started on port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the server is not listening")
        name = self._server.sockets[0].getsockname()
        return name if isinstance(name, str) else (str(name[0]), int(name[1]))

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting, drop idle clients, finish requests being answered, close the store."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for task in self._tasks - self._busy:
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(loop.run_in_executor(self._executor, self.store.close), grace)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def answer(self, request: PolicyRequest) -> Outcome:
        """Decide ``request`` and carry out the outcome (refund, record, log)."""
        self.requests += 1
        now = self._clock()
        charges = self.rules.charges(request, now)
        key = containment_key(request)
        config = self.config
        answer: StoreAnswer | StoreFailure
        if not key and not charges:
            answer = StoreAnswer(False)
        else:
            keyed = [(store_key(c), c) for c in charges]
            loop = asyncio.get_running_loop()
            job = loop.run_in_executor(self._executor, _ask_store, self.store, key, keyed, now)
            try:
                answer = await asyncio.wait_for(job, config.store_timeout)
            except TimeoutError:
                answer = StoreFailure(f"no answer within {config.store_timeout}s")
            except Exception as exc:  # any store failure, not only StoreError, gets the fail mode
                answer = StoreFailure(f"{type(exc).__name__}: {exc}")
        outcome = decide(request, charges, answer, fail_closed=config.fail_closed)
        if outcome.refund:
            await self._refund(outcome.refund, now)
        if outcome.record:
            self.rules.record(request, outcome.record, now)
        if outcome.event is not None:
            self._emit(outcome.event)
        return outcome

    async def _refund(self, charges: Sequence[Charge], now: float) -> None:
        def give_back() -> None:
            for c in charges:
                self.store.refund(store_key(c), c.windows, now, float(c.cost))

        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.run_in_executor(self._executor, give_back), self.config.store_timeout
            )
        except Exception as exc:  # a lost refund only errs on the strict side
            self._emit({"event": "refund_failed", "error": f"{type(exc).__name__}: {exc}"})

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._stopping or len(self._tasks) >= self.config.max_connections:
            writer.close()
            return
        self._tasks.add(task)
        try:
            await self._serve(reader, writer, task)
        except RemoteProtocolError as exc:
            self._emit({"event": "client_error", "error": str(exc)})
        except (TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            self._busy.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, task: asyncio.Task[None]
    ) -> None:
        conn = PolicyConnection()
        idle = self.config.idle_timeout
        while not self._stopping:
            event = conn.next_event()
            if event is NEED_DATA:
                conn.receive_data(await asyncio.wait_for(reader.read(READ_SIZE), idle))
                continue
            if isinstance(event, ConnectionClosed):
                return
            assert isinstance(event, PolicyRequest)
            self._busy.add(task)
            outcome = await self.answer(event)
            writer.write(conn.send(outcome.reply))
            await asyncio.wait_for(writer.drain(), idle)
            self._busy.discard(task)
