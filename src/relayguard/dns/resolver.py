"""The resolver the checks use: one named server, a TTL cache, a rate limit, bounded concurrency.

The server is never guessed silently: it is ``--resolver``, else ``$RELAYGUARD_RESOLVER``, else
the first ``nameserver`` of /etc/resolv.conf, and the report always says which one and where it
came from. Block lists refuse public resolvers (DNSBL.md s.0 rule 4), so a public one is flagged.

The decision cores run through :func:`drive` (a generator core: it yields a batch of queries and
is sent their answers) or :func:`drive_incremental` (a core with ``next_queries()`` and
``receive()``, fed as each answer arrives, for the thousands of queries of a fleet check).
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from relayguard.dns._errors import ResolverConfigError
from relayguard.dns._events import Answer, Query, Status
from relayguard.dns.transport import (
    MAX_CNAME_HOPS,
    Partial,
    Server,
    UdpPool,
    exchange_tcp,
    failure,
    prepare,
    read_reply,
)
from relayguard.dns.wire import FLAG_TC

ENV_RESOLVER = "RELAYGUARD_RESOLVER"
RESOLV_CONF = Path("/etc/resolv.conf")
MAX_CACHE_TTL = 3600  # a block list's answer is not trusted for longer than an hour
NEGATIVE_CACHE_FALLBACK = 60

# Resolvers Spamhaus, URIBL and others refuse or answer with error codes (DNSBL.md s.0).
PUBLIC_RESOLVERS = frozenset(
    {
        "8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112",
        "208.67.222.222", "208.67.220.220", "64.6.64.6", "64.6.65.6", "94.140.14.14",
        "94.140.15.15", "76.76.2.0", "76.76.10.0", "185.228.168.9", "185.228.169.9",
        "2001:4860:4860::8888", "2001:4860:4860::8844", "2606:4700:4700::1111",
        "2606:4700:4700::1001", "2620:fe::fe", "2620:fe::9", "2620:119:35::35",
        "2620:119:53::53",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ResolverChoice:
    server: Server
    source: str  # "--resolver", "$RELAYGUARD_RESOLVER", "/etc/resolv.conf"

    @property
    def public(self) -> bool:
        return self.server.host in PUBLIC_RESOLVERS


def parse_server(text: str, what: str = "--resolver") -> Server:
    """``127.0.0.1``, ``127.0.0.1:5300``, ``::1``, ``[::1]:5300`` -> a :class:`Server`."""
    raw = text.strip()
    host, port = raw, "53"
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ResolverConfigError(f"{what} {text[:60]!r}: want IP, IP:PORT or [IPv6]:PORT")
        port = rest[1:] or "53"
    elif raw.count(":") == 1:
        host, _, port = raw.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ResolverConfigError(
            f"{what} {text[:60]!r} is not an IP address (a resolver is named by its address)"
        ) from None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ResolverConfigError(f"{what} {text[:60]!r}: the port must be 1 to 65535")
    return Server(str(address), int(port))


def choose_resolver(option: str | None, env: dict[str, str] | None = None) -> ResolverChoice:
    """Where the queries go: the option, the environment, or /etc/resolv.conf (in that order)."""
    if option:
        return ResolverChoice(parse_server(option), "--resolver")
    environ = os.environ if env is None else env
    if environ.get(ENV_RESOLVER, "").strip():
        return ResolverChoice(parse_server(environ[ENV_RESOLVER], f"${ENV_RESOLVER}"),
                              f"${ENV_RESOLVER}")  # fmt: skip
    try:
        text = RESOLV_CONF.read_text(errors="replace")
    except OSError as exc:
        raise ResolverConfigError(
            f"no resolver: name one with --resolver IP[:PORT] ({RESOLV_CONF}: {exc.strerror})"
        ) from None
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            host = words[1].split("%")[0]  # fe80::1%eth0: the zone id is not usable here
            try:
                return ResolverChoice(Server(str(ipaddress.ip_address(host)), 53), str(RESOLV_CONF))
            except ValueError:
                continue
    raise ResolverConfigError(f"no resolver: {RESOLV_CONF} names none; use --resolver IP[:PORT]")


class _Limiter:
    """Queries per second per bucket (a block list), with a burst; GCRA-style spacing."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.burst = max(1, burst)
        self.clock = clock
        self.tat: dict[str, float] = {}

    def delay(self, bucket: str) -> float:
        if not self.interval:
            return 0.0
        now = self.clock()
        tat = max(self.tat.get(bucket, now), now)
        self.tat[bucket] = tat + self.interval
        return max(0.0, tat - now - (self.burst - 1) * self.interval)


class Stats:
    """Queries sent, answered from the cache (or shared), retried, and repeated over TCP."""

    __slots__ = ("cached", "retried", "sent", "tcp")

    def __init__(self) -> None:
        self.sent = self.cached = self.retried = self.tcp = 0


class Resolver:
    """Resolve :class:`Query` objects against one server (or a per-bucket route)."""

    def __init__(
        self,
        server: Server,
        *,
        timeout: float = 2.0,
        tries: int = 2,
        max_in_flight: int = 64,
        rate: float = 0.0,
        burst: int = 20,
        routes: dict[str, Server] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.server = server
        self.timeout = timeout
        self.tries = max(1, tries)
        self.routes = dict(routes or {})
        self.clock = clock
        self.stats = Stats()
        self._limiter = _Limiter(rate, burst, clock)
        self._slots: asyncio.Semaphore | None = None
        self._max_in_flight = max_in_flight
        self._pools: dict[Server, UdpPool] = {}
        self._cache: dict[tuple[str, str], tuple[float, Answer]] = {}
        # The callers waiting for a question already on its way (each its own future).
        self._inflight: dict[tuple[str, str], list[asyncio.Future[Answer]]] = {}

    async def resolve(self, query: Query) -> Answer:
        key = (query.name, query.rdtype)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > self.clock():
            self.stats.cached += 1
            return hit[1] if hit[1].query == query else _requeried(hit[1], query)
        waiting = self._inflight.get(key)
        if waiting is not None:  # the same question is on its way: share its answer
            self.stats.cached += 1
            mine: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
            waiting.append(mine)
            return _requeried(await mine, query)
        waiting = self._inflight[key] = []
        try:
            answer = await self._resolve(query)
        except BaseException as exc:
            for future in waiting:
                if not future.done():
                    future.set_exception(exc)
            raise
        finally:
            del self._inflight[key]
        for future in waiting:
            if not future.done():  # else that caller was cancelled
                future.set_result(answer)
        self._remember(key, answer)
        return answer

    def _remember(self, key: tuple[str, str], answer: Answer) -> None:
        if answer.status.failed:
            return  # a failure is not cached: the next query tries again
        ttl = answer.ttl if answer.ttl > 0 or answer.ok else NEGATIVE_CACHE_FALLBACK
        if ttl > 0:
            self._cache[key] = (self.clock() + min(ttl, MAX_CACHE_TTL), answer)

    async def _resolve(self, query: Query) -> Answer:
        started = self.clock()
        chain: tuple[str, ...] = ()
        current = query
        for _ in range(MAX_CNAME_HOPS):
            result = await self._ask(current, query, chain, started)
            if isinstance(result, Answer):
                return result
            chain = result.chain
            if result.target in chain[:-1] or result.target == query.name:
                break
            current = Query(_absolute(result.target), query.rdtype, query.bucket)
        return Answer(query, Status.ERROR, cname_chain=chain, detail="CNAME loop or chain too long")

    async def _ask(
        self, current: Query, original: Query, chain: tuple[str, ...], started: float
    ) -> Answer | Partial:
        """The answer (its ``elapsed`` counted from ``started``), or where a CNAME leads."""
        server = self.routes.get(original.bucket, self.server)
        pool = self._pools.get(server)
        if pool is None:
            pool = self._pools[server] = UdpPool(server)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_in_flight)
        wait = self._limiter.delay(original.bucket)
        if wait:
            await asyncio.sleep(wait)
        last: BaseException = TimeoutError()
        async with self._slots:
            for attempt in range(self.tries):
                outgoing = prepare(current)
                self.stats.sent += 1
                self.stats.retried += attempt > 0
                try:
                    reply = await pool.exchange(outgoing, self.timeout)
                    if reply.flags & FLAG_TC:  # the whole answer only comes over TCP
                        self.stats.tcp += 1
                        reply = await exchange_tcp(current, server, self.timeout)
                        if reply.flags & FLAG_TC:  # TCP has no size limit to excuse it
                            cut = Answer(original, Status.ERROR, cname_chain=chain,
                                         detail=f"{server} sent a truncated answer over TCP")
                            return _timed(cut, self.clock() - started)
                except ConnectionRefusedError as exc:
                    return _timed(failure(original, exc, server), self.clock() - started)
                except (TimeoutError, OSError, EOFError) as exc:
                    last = exc
                    continue
                except Exception as exc:  # dnspython's FormError and friends: a broken answer
                    return _timed(failure(original, exc, server), self.clock() - started)
                return read_reply(original, reply, chain, self.clock() - started)
        return _timed(failure(original, last, server), self.clock() - started)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


def _timed(answer: Answer, elapsed: float) -> Answer:
    return Answer(
        answer.query, answer.status, answer.records, answer.ttl, answer.cname_chain,
        answer.detail, answer.txt_strings, elapsed,
    )  # fmt: skip


def _requeried(answer: Answer, query: Query) -> Answer:
    """A cached answer handed to a query of another bucket: the same data, that query's id."""
    if answer.query == query:
        return answer
    return Answer(
        query, answer.status, answer.records, answer.ttl, answer.cname_chain, answer.detail,
        answer.txt_strings, 0.0,
    )  # fmt: skip


# --- drivers ----------------------------------------------------------------------------------

T = TypeVar("T")
Steps = Generator[list[Query], list[Answer], T]


async def drive(resolver: Resolver, core: Steps[T]) -> T:
    """Run a generator core: answer each batch it yields (concurrently) until it returns."""
    try:
        queries = next(core)
        while True:
            answers = await asyncio.gather(*(resolver.resolve(q) for q in queries))
            queries = core.send(list(answers))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


if TYPE_CHECKING:  # a Protocol class costs a millisecond to create at every start

    class Incremental(Protocol):
        def next_queries(self) -> list[Query]: ...

        def receive(self, query: Query, answer: Answer) -> None: ...


class FairQueue:
    """Queries taken in turn from each bucket (block list), first in first out within one.

    The rate limit is per bucket and a worker waits for its query's slot, so a plain FIFO
    holding one list's 1,000 queries ahead of the others would keep every worker waiting on
    that one list: 20 lists at 50 queries/s would get 50/s in all, not 50/s each.
    """

    def __init__(self, queries: list[Query] | None = None) -> None:
        self._queues: dict[str, collections.deque[Query]] = {}
        self._turns: collections.deque[str] = collections.deque()
        self.extend(queries or [])

    def extend(self, queries: list[Query]) -> None:
        for query in queries:
            queue = self._queues.get(query.bucket)
            if queue is None:
                queue = self._queues[query.bucket] = collections.deque()
                self._turns.append(query.bucket)
            queue.append(query)

    def popleft(self) -> Query:
        bucket = self._turns.popleft()
        queue = self._queues[bucket]
        query = queue.popleft()
        if queue:
            self._turns.append(bucket)
        else:
            del self._queues[bucket]
        return query

    def __bool__(self) -> bool:
        return bool(self._turns)


async def drive_incremental(resolver: Resolver, core: Incremental, workers: int = 64) -> None:
    """Feed ``core`` every answer as it arrives, asking what it needs next each time."""
    todo = FairQueue(core.next_queries())
    idle: collections.deque[asyncio.Future[None]] = collections.deque()
    busy = 0

    def wake(count: int) -> None:
        # As many idle workers as there is new work: waking all of them for every answer
        # (64 coroutines, most finding nothing to do) cost more than the answer itself.
        while count > 0 and idle:
            waiter = idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    async def worker() -> None:
        nonlocal busy
        while True:
            if not todo:
                if busy == 0:  # nothing queued and nothing on its way: all done
                    wake(len(idle))
                    return
                waiter = asyncio.get_running_loop().create_future()
                idle.append(waiter)
                await waiter
                continue
            query = todo.popleft()
            busy += 1
            try:
                answer = await resolver.resolve(query)
            finally:
                busy -= 1
            core.receive(query, answer)
            more = core.next_queries()
            todo.extend(more)
            wake(len(more))

    await asyncio.gather(*(worker() for _ in range(max(1, workers))))
