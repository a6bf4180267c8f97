"""The DNS checks' own event loop: order of callbacks, timers and replies; no silent hang."""

from __future__ import annotations

import socket
import threading
import time

import dns.message
import pytest

from relayguard.dns._events import Query
from relayguard.dns.loop import Loop
from relayguard.dns.transport import Server, UdpPool, prepare
from relayguard.dns.wire import Reply

NAME = "2.0.0.127.zen.dnsbl.test."


def test_callbacks_then_timers_in_time_order() -> None:
    loop = Loop()
    seen: list[str] = []
    now = loop.time()
    loop.call_at(now + 0.03, lambda: seen.append("t30"))
    loop.call_at(now + 0.01, lambda: seen.append("t10"))
    loop.call_soon(lambda: (seen.append("soon"), loop.call_soon(lambda: seen.append("later"))))
    loop.run_until(lambda: len(seen) == 4)
    loop.close()
    assert seen == ["soon", "later", "t10", "t30"]


def test_nothing_left_to_wait_for_is_an_error_not_a_hang() -> None:
    loop = Loop()
    with pytest.raises(RuntimeError, match="nothing left to wait for"):
        loop.run_until(lambda: False)
    loop.close()


def test_a_callback_that_raises_stops_the_loop_with_its_error() -> None:
    loop = Loop()

    def broken() -> None:
        raise ValueError("a bug in a core")

    loop.call_soon(broken)
    with pytest.raises(ValueError, match="a bug in a core"):
        loop.run_until(lambda: False)
    loop.close()


def test_a_reply_that_came_while_the_loop_was_busy_beats_its_expired_deadline() -> None:
    """The loop was held up past an attempt's deadline while its reply arrived: the reply is
    read first, the attempt is answered, not timed out."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(10)

    def answer_once() -> None:
        data, peer = server.recvfrom(4096)
        reply = dns.message.make_response(dns.message.from_wire(data))
        server.sendto(reply.to_wire(), peer)

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    loop = Loop()
    pool = UdpPool(Server("127.0.0.1", server.getsockname()[1]), loop)
    got: list[tuple[Reply | None, BaseException | None]] = []
    try:
        pool.exchange(prepare(Query(NAME, "A")), 0.01, lambda r, e: got.append((r, e)))
        # after the query is sent (its flush was queued first), hold the loop until the reply
        # is in the socket and the deadline long past
        loop.call_soon(lambda: (thread.join(10), time.sleep(0.05)))
        loop.run_until(lambda: bool(got))
    finally:
        pool.close()
        loop.close()
        server.close()
    ((reply, error),) = got
    assert error is None and reply is not None and reply.rcode == 0
