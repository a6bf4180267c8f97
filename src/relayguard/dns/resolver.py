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
from typing import Protocol, TypeVar

from relayguard.dns._errors import ResolverConfigError
from relayguard.dns._events import Answer, Query, Status
from relayguard.dns.transport import (
    MAX_CNAME_HOPS,
    Partial,
    Server,
    UdpPool,
    exchange_tcp,
    failure,
    make_request,
    read_reply,
)

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


@dataclass(slots=True)
class Stats:
    sent: int = 0
    cached: int = 0
    retried: int = 0
    tcp: int = 0


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
        self._inflight: dict[tuple[str, str], asyncio.Future[Answer]] = {}

    async def resolve(self, query: Query) -> Answer:
        key = (query.name, query.rdtype)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > self.clock():
            self.stats.cached += 1
            return hit[1] if hit[1].query == query else _requeried(hit[1], query)
        shared = self._inflight.get(key)
        if shared is not None:
            self.stats.cached += 1
            return _requeried(await asyncio.shield(shared), query)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            answer = await self._resolve(query)
            future.set_result(answer)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._inflight[key]
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
            result = await self._ask(current, query, chain)
            if isinstance(result, Answer):
                return _timed(result, self.clock() - started)
            chain = result.chain
            if result.target in chain[:-1] or result.target == query.name:
                break
            current = Query(_absolute(result.target), query.rdtype, query.bucket)
        return Answer(query, Status.ERROR, cname_chain=chain, detail="CNAME loop or chain too long")

    async def _ask(
        self, current: Query, original: Query, chain: tuple[str, ...]
    ) -> Answer | Partial:
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
                request = make_request(current)
                self.stats.sent += 1
                self.stats.retried += attempt > 0
                try:
                    reply = await pool.exchange(request, self.timeout)
                    if reply.flags & 0x0200:  # TC: the whole answer only comes over TCP
                        self.stats.tcp += 1
                        reply = await exchange_tcp(make_request(current), server, self.timeout)
                except ConnectionRefusedError as exc:
                    return failure(original, exc, server)
                except (TimeoutError, OSError, EOFError) as exc:
                    last = exc
                    continue
                except Exception as exc:  # dnspython's FormError and friends: a broken answer
                    return failure(original, exc, server)
                return read_reply(original, reply, chain)
        return failure(original, last, server)

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
    wake = asyncio.Event()
    busy = 0

    async def worker() -> None:
        nonlocal busy
        while True:
            if not todo:
                if busy == 0:
                    wake.set()
                    return
                wake.clear()
                await wake.wait()
                continue
            query = todo.popleft()
            busy += 1
            try:
                answer = await resolver.resolve(query)
            finally:
                busy -= 1
            core.receive(query, answer)
            todo.extend(core.next_queries())
            wake.set()

    await asyncio.gather(*(worker() for _ in range(max(1, workers))))
