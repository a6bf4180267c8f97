"""The event loop of the DNS checks: readable sockets and timers on one thread, with callbacks.

Why not asyncio: checking one address against 20 lists is ~60 datagrams and ~10 ms of work,
and importing asyncio took ~40 ms of such a run, more than anything else (a monitoring system
runs that check for every server every few minutes). The checks need little of an event loop:
a few connected UDP sockets to one resolver, a deadline per attempt, a delay per rate-limited
query, and a callback when an answer comes. That is all this does.

A callback that raises stops :meth:`Loop.run_until` with that exception: the checks have no
error to hide, and a bug must not look like a slow resolver.
"""

from __future__ import annotations

import contextlib
import heapq
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable

Callback = Callable[[], None]


class Loop:
    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, Callback]] = []
        self._ready: deque[Callback] = deque()
        self._added = 0

    @staticmethod
    def time() -> float:
        return time.monotonic()

    def call_soon(self, callback: Callback) -> None:
        """Run ``callback`` once what is running now has returned (never inside it)."""
        self._ready.append(callback)

    def call_at(self, when: float, callback: Callback) -> None:
        """Run ``callback`` at ``when`` (:meth:`time`); a timer is never cancelled, so a
        callback whose reason has gone checks that itself."""
        self._added += 1
        heapq.heappush(self._timers, (when, self._added, callback))

    def add_reader(self, sock: socket.socket, callback: Callback) -> None:
        self._selector.register(sock, selectors.EVENT_READ, callback)

    def remove_reader(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):  # not registered, or closed
            self._selector.unregister(sock)

    def run_until(self, done: Callable[[], bool]) -> None:
        """Run callbacks, readable sockets and due timers until ``done()``."""
        ready, timers = self._ready, self._timers
        while True:
            while ready:
                ready.popleft()()
            if done():
                return
            timeout = max(0.0, timers[0][0] - self.time()) if timers else None
            if timeout is None and not self._selector.get_map():
                raise RuntimeError("the DNS loop has nothing left to wait for")
            # Replies already waiting are read before the timers that would end their attempts
            # fire: a slow turn of the loop must not turn an answer into a timeout.
            for key, _ in self._selector.select(timeout):
                key.data()
            now = self.time()
            while timers and timers[0][0] <= now:
                heapq.heappop(timers)[2]()

    def close(self) -> None:
        self._selector.close()
        self._timers.clear()
        self._ready.clear()
