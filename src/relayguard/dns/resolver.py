"""The resolver the checks use: one named server, a TTL cache, a rate limit, bounded concurrency.

The server is never guessed silently: it is ``--resolver``, else ``$RELAYGUARD_RESOLVER``, else
the first ``nameserver`` of /etc/resolv.conf, and the report always says which one and where it
came from. Block lists refuse public resolvers (DNSBL.md s.0 rule 4), so a public one is flagged.

The decision cores run through :func:`drive_all` (generator cores: each yields
a batch of queries and is sent their answers) or :func:`drive_incremental` (a core with
``next_queries()`` and ``receive()``, fed as each answer arrives, for the thousands of queries of
a fleet check), all on the resolver's :class:`~relayguard.dns.loop.Loop`.
"""

from __future__ import annotations

import collections
import functools
import ipaddress
import os
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from relayguard.dns import wire
from relayguard.dns._errors import ResolverConfigError
from relayguard.dns._events import Answer, Query, Status
from relayguard.dns.loop import Loop
from relayguard.dns.transport import (
    MAX_CNAME_HOPS,
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
    if address.is_unspecified or address.is_multicast:
        raise ResolverConfigError(f"{what} {text[:60]!r}: not an address a resolver can have")
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
    """Resolve :class:`Query` objects against one server (or a per-bucket route), on its own
    :class:`~relayguard.dns.loop.Loop`, which the drivers below run."""

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
        self.loop = Loop()
        self._limiter = _Limiter(rate, burst, clock)
        self._free_slots = max(1, max_in_flight)
        self._slot_queue: collections.deque[Callable[[], None]] = collections.deque()
        self._pools: dict[Server, UdpPool] = {}
        self._cache: dict[tuple[str, str], tuple[float, Answer]] = {}
        # The callers waiting for a question already on its way.
        self._inflight: dict[tuple[str, str], list[tuple[Query, Callable[[Answer], None]]]] = {}

    def resolve(self, query: Query, done: Callable[[Answer], None]) -> None:
        """Answer ``query``: ``done(answer)`` is called once, never before this returns."""
        key = (query.name, query.rdtype)
        hit = self._cache.get(key)
        if hit is not None and hit[0] > self.clock():
            self.stats.cached += 1
            answer = hit[1] if hit[1].query == query else _requeried(hit[1], query)
            self.loop.call_soon(lambda: done(answer))
            return
        waiting = self._inflight.get(key)
        if waiting is not None:  # the same question is on its way: share its answer
            self.stats.cached += 1
            waiting.append((query, done))
            return
        self._inflight[key] = []
        _Lookup(self, query, done).ask()

    def _answered(self, lookup: _Lookup, answer: Answer) -> None:
        key = (lookup.query.name, lookup.query.rdtype)
        for query, done in self._inflight.pop(key, []):
            done(_requeried(answer, query))
        self._remember(key, answer)
        lookup.done(answer)

    def _remember(self, key: tuple[str, str], answer: Answer) -> None:
        if answer.status.failed:
            return  # a failure is not cached: the next query tries again
        ttl = answer.ttl if answer.ttl > 0 or answer.ok else NEGATIVE_CACHE_FALLBACK
        if ttl > 0:
            self._cache[key] = (self.clock() + min(ttl, MAX_CACHE_TTL), answer)

    def _pool(self, server: Server) -> UdpPool:
        pool = self._pools.get(server)
        if pool is None:
            pool = self._pools[server] = UdpPool(server, self.loop)
        return pool

    def _take_slot(self, then: Callable[[], None]) -> None:
        """``then()`` once fewer than ``max_in_flight`` queries are on their way."""
        if self._free_slots:
            self._free_slots -= 1
            then()
        else:
            self._slot_queue.append(then)

    def _give_slot(self) -> None:
        if self._slot_queue:
            self.loop.call_soon(self._slot_queue.popleft())  # the slot passes on
        else:
            self._free_slots += 1

    def run_until(self, done: Callable[[], bool]) -> None:
        self.loop.run_until(done)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        self.loop.close()


class _Lookup:
    """One question on its way: the rate limit, a slot, the attempts (over TCP when the answer
    is truncated), and the CNAMEs it leads through."""

    __slots__ = ("attempt", "chain", "current", "done", "hops", "query", "resolver", "server",
                 "started")  # fmt: skip

    def __init__(self, resolver: Resolver, query: Query, done: Callable[[Answer], None]) -> None:
        self.resolver = resolver
        self.query = query
        self.done = done
        self.current = query
        self.chain: tuple[str, ...] = ()
        self.hops = 0
        self.attempt = 0
        self.started = resolver.clock()
        self.server = resolver.routes.get(query.bucket, resolver.server)

    def ask(self) -> None:
        """Ask for :attr:`current` (the query, or where its CNAMEs led)."""
        resolver = self.resolver
        self.attempt = 0
        wait = resolver._limiter.delay(self.query.bucket)
        if wait:
            resolver.loop.call_at(resolver.loop.time() + wait, self._queue)
        else:
            self._queue()

    def _queue(self) -> None:
        self.resolver._take_slot(self._send)

    def _send(self) -> None:
        resolver = self.resolver
        resolver.stats.sent += 1
        resolver.stats.retried += self.attempt > 0
        pool = resolver._pool(self.server)
        pool.exchange(prepare(self.current), resolver.timeout, self._reply)

    def _reply(self, reply: wire.Reply | None, exc: BaseException | None) -> None:
        resolver, server = self.resolver, self.server
        try:
            if exc is not None:
                raise exc
            assert reply is not None
            if reply.flags & FLAG_TC:  # the whole answer only comes over TCP
                resolver.stats.tcp += 1
                reply = exchange_tcp(self.current, server, resolver.timeout)
                if reply.flags & FLAG_TC:  # TCP has no size limit to excuse it
                    cut = Answer(self.query, Status.ERROR, cname_chain=self.chain,
                                 detail=f"{server} sent a truncated answer over TCP")  # fmt: skip
                    return self._finish(cut)
        except ConnectionRefusedError as refused:
            return self._finish(failure(self.query, refused, server))
        except (TimeoutError, OSError, EOFError) as lost:
            self.attempt += 1
            if self.attempt < resolver.tries:
                return self._send()  # the next attempt keeps the slot
            return self._finish(failure(self.query, lost, server))
        except Exception as broken:  # dnspython's FormError and friends: a broken answer
            return self._finish(failure(self.query, broken, server))
        result = read_reply(self.query, reply, self.chain, resolver.clock() - self.started)
        if isinstance(result, Answer):
            return self._finish(result)
        resolver._give_slot()
        self.chain = result.chain
        self.hops += 1
        looped = result.target in self.chain[:-1] or result.target == self.query.name
        if looped or self.hops >= MAX_CNAME_HOPS:
            detail = "CNAME loop or chain too long"
            resolver._answered(self, Answer(self.query, Status.ERROR, cname_chain=self.chain,
                                            detail=detail))  # fmt: skip
            return None
        self.current = Query(_absolute(result.target), self.query.rdtype, self.query.bucket)
        self.ask()
        return None

    def _finish(self, answer: Answer) -> None:
        resolver = self.resolver
        resolver._give_slot()
        resolver._answered(self, _timed(answer, resolver.clock() - self.started))


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


def drive_all(resolver: Resolver, cores: Sequence[Steps[Any]]) -> list[Any]:
    """Run several generator cores side by side (each batch of each core concurrently, a core
    going on as soon as its own batch is answered); their return values in order."""
    results: list[Any] = [None] * len(cores)
    running = len(cores)

    def step(index: int, answers: list[Answer] | None) -> None:
        nonlocal running
        core = cores[index]
        try:
            queries = next(core) if answers is None else core.send(answers)
        except StopIteration as stop:
            results[index] = stop.value
            running -= 1
            return
        if not queries:
            resolver.loop.call_soon(lambda: step(index, []))
            return
        batch: list[Answer | None] = [None] * len(queries)
        left = [len(queries)]  # answers still to come (a list: the closures below change it)
        for position, query in enumerate(queries):

            def got(answer: Answer, position: int = position) -> None:
                batch[position] = answer
                left[0] -= 1
                if not left[0]:
                    step(index, cast(list[Answer], batch))

            resolver.resolve(query, got)

    for index in range(len(cores)):
        step(index, None)
    resolver.run_until(lambda: running == 0)
    return results


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


def drive_incremental(resolver: Resolver, core: Incremental, workers: int = 64) -> None:
    """Feed ``core`` every answer as it arrives, asking what it needs next each time; at most
    ``workers`` queries on their way at once."""
    todo = FairQueue(core.next_queries())
    busy = 0
    limit = max(1, workers)

    def start_more() -> None:
        nonlocal busy
        while todo and busy < limit:
            query = todo.popleft()
            busy += 1
            resolver.resolve(query, functools.partial(answered, query))

    def answered(query: Query, answer: Answer) -> None:
        nonlocal busy
        busy -= 1
        core.receive(query, answer)
        todo.extend(core.next_queries())
        start_more()

    start_more()
    resolver.run_until(lambda: busy == 0 and not todo)
