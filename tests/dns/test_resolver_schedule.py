"""The order in which ``drive_incremental`` sends queries: each rate-limited list in turn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from relayguard.dns._events import Answer, Query, Status
from relayguard.dns.loop import Loop
from relayguard.dns.resolver import FairQueue, Resolver, drive_incremental


def q(bucket: str, n: int) -> Query:
    return Query(f"{n}.{bucket}.", "A", bucket)


class ListMajorCore:
    """Asks one list's queries, then the next list's, as DnsblCheck does after health checks."""

    def __init__(self, buckets: list[str], per_bucket: int) -> None:
        self.pending = [q(b, n) for b in buckets for n in range(per_bucket)]
        self.answered: list[str] = []

    def next_queries(self) -> list[Query]:
        out, self.pending = self.pending, []
        return out

    def receive(self, query: Query, answer: Answer) -> None:
        self.answered.append(query.name)


class RecordingResolver:
    """Answers every query NXDOMAIN, each on a later turn of its loop, as the real one does."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.loop = Loop()

    def resolve(self, query: Query, done: Callable[[Answer], None]) -> None:
        self.sent.append(query.name)
        self.loop.call_soon(lambda: done(Answer(query, Status.NXDOMAIN)))

    def run_until(self, finished: Callable[[], bool]) -> None:
        self.loop.run_until(finished)


def test_each_list_gets_its_turn_not_one_list_after_the_other() -> None:
    # with a FIFO, 1,000 queries of bench01 ahead of bench02 kept every worker waiting on
    # bench01's rate limit: 20 lists at 50/s each got 50/s in all
    core = ListMajorCore(["a.test", "b.test", "c.test"], 3)
    resolver = RecordingResolver()
    drive_incremental(cast(Resolver, resolver), core, workers=1)
    assert resolver.sent == [
        "0.a.test.", "0.b.test.", "0.c.test.", "1.a.test.", "1.b.test.", "1.c.test.",
        "2.a.test.", "2.b.test.", "2.c.test.",
    ]  # fmt: skip
    assert sorted(core.answered) == sorted(resolver.sent)


def test_fair_queue_keeps_the_order_within_a_list_and_takes_late_arrivals() -> None:
    queue = FairQueue([q("a.test", 0), q("a.test", 1), q("b.test", 0)])
    taken: list[Any] = [queue.popleft().name]
    queue.extend([q("c.test", 0), q("a.test", 2)])
    while queue:
        taken.append(queue.popleft().name)
    assert taken == ["0.a.test.", "0.b.test.", "1.a.test.", "0.c.test.", "2.a.test."]
    assert not queue


class ChainCore:
    """Asks one query, and the next only once the previous one is answered."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.next = 0
        self.answered: list[str] = []

    def next_queries(self) -> list[Query]:
        if self.next > len(self.answered) or self.next >= self.length:
            return []
        self.next += 1
        return [q("chain.test", self.next - 1)]

    def receive(self, query: Query, answer: Answer) -> None:
        self.answered.append(query.name)


def test_a_chain_of_queries_ends_with_every_idle_worker() -> None:
    # one query on its way at a time, although 64 may be: the run ends when the chain does
    core = ChainCore(5)
    resolver = RecordingResolver()
    drive_incremental(cast(Resolver, resolver), core, workers=64)
    assert resolver.sent == [f"{n}.chain.test." for n in range(5)]
    assert core.answered == resolver.sent
