"""A real policy server on 127.0.0.1:0 with a SQLite store, driven by a raw socket client."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from relayguard.errors import ConfigError
from relayguard.policy.limiter import Decision, Limit
from relayguard.policy.server import (
    PolicyConfig,
    PolicyServer,
    parse_config,
    parse_listen,
)
from relayguard.policy.stores import MemoryStore, SqliteStore, Store

RULES: dict[str, object] = {
    "policy": {
        "listen": "127.0.0.1:0",
        "store_timeout": 0.2,
        "idle_timeout": 5,
        "rules": [
            {
                "name": "user-msgs",
                "key": "sasl_username",
                "count": "messages",
                "windows": ["2/hour"],
                "action": "DEFER",
                "text": "450 4.7.1 Too much mail from you, try later",
            }
        ],
    }
}
DUNNO = b"action=DUNNO\n\n"
DEFERRED = b"action=450 4.7.1 Too much mail from you, try later\n\n"
HELD = b"action=HOLD Account contained by relayguard, message held for review\n\n"


def _request(user: str, instance: str, state: str = "END-OF-MESSAGE") -> bytes:
    return (
        "request=smtpd_access_policy\n"
        f"protocol_state={state}\n"
        "protocol_name=ESMTP\n"
        f"instance={instance}\n"
        f"sasl_username={user}\n"
        f"sender={user}@example.org\n"
        "recipient=rcpt@example.net\n"
        "recipient_count=1\n"
        "client_address=192.0.2.10\n"
        "\n"
    ).encode()


def _config(fail_mode: str = "open", timeout: float = 0.2) -> PolicyConfig:
    policy = dict(RULES["policy"])  # type: ignore[call-overload]
    policy["fail_mode"] = fail_mode
    policy["store_timeout"] = timeout
    return parse_config({"policy": policy})


Events = list[dict[str, object]]


def _run(
    store: Store,
    body: Callable[[PolicyServer, tuple[str, int], Events], Awaitable[None]],
    config: PolicyConfig | None = None,
) -> Events:
    events: Events = []

    async def main() -> None:
        server = PolicyServer(config or _config(), store, emit=events.append)
        await server.start()
        address = server.address
        assert isinstance(address, tuple)
        try:
            await body(server, address, events)
        finally:
            await server.close()

    asyncio.run(main())
    return events


async def _exchange(address: tuple[str, int], chunks: Sequence[bytes], replies: int) -> list[bytes]:
    reader, writer = await asyncio.open_connection(*address)
    for chunk in chunks:
        writer.write(chunk)
        await writer.drain()
    out = [await asyncio.wait_for(reader.readuntil(b"\n\n"), 5) for _ in range(replies)]
    writer.close()
    await writer.wait_closed()
    return out


def test_pipelined_and_split_requests_get_replies_in_order(tmp_path: Path) -> None:
    async def body(server: PolicyServer, address: tuple[str, int], events: Events) -> None:
        three = _request("alice", "A1") + _request("alice", "A2") + _request("alice", "A3")
        assert await _exchange(address, [three], 3) == [DUNNO, DUNNO, DEFERRED]
        split = _request("bob", "B1")
        assert await _exchange(address, [split[i : i + 1] for i in range(len(split))], 1) == [DUNNO]

    events = _run(SqliteStore(tmp_path / "p.db"), body)
    assert [(e["decision"], e["rule"], e["sasl_username"]) for e in events] == [
        ("limited", "user-msgs", "alice")
    ]


def test_third_message_over_two_per_hour_is_deferred_and_retries_too(tmp_path: Path) -> None:
    async def body(server: PolicyServer, address: tuple[str, int], events: Events) -> None:
        reader, writer = await asyncio.open_connection(*address)
        got = []
        # RCPT is not counted by a messages rule; one message = RCPT + END-OF-MESSAGE.
        for n in range(4):
            for state in ("RCPT", "END-OF-MESSAGE"):
                writer.write(_request("carol", f"C{n}", state))
                got.append(await asyncio.wait_for(reader.readuntil(b"\n\n"), 5))
        writer.close()
        await writer.wait_closed()
        assert got == [DUNNO, DUNNO, DUNNO, DUNNO, DUNNO, DEFERRED, DUNNO, DEFERRED]
        assert server.requests == 8

    _run(SqliteStore(tmp_path / "p.db"), body)


def test_contained_user_is_held(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "p.db")
    store.contain("mallory", "sent to 400 domains", time.time())

    async def body(server: PolicyServer, address: tuple[str, int], events: Events) -> None:
        request = _request("mallory", "M1", "RCPT") + _request("alice", "A1", "RCPT")
        assert await _exchange(address, [request], 2) == [HELD, DUNNO]

    events = _run(store, body)
    assert [(e["decision"], e["key"], e["action"]) for e in events] == [
        ("contained", "mallory", "HOLD")
    ]


@pytest.mark.parametrize(
    "hostile",
    [
        b"this is not a policy request\n\n",
        b"request=smtpd_access_policy\nsasl_username=" + b"x" * (1024 * 1024) + b"\n\n",
        b"".join(b"a%d=1\n" % i for i in range(10_000)) + b"\n",
        b"\n",
    ],
    ids=["garbage", "1MB-attribute", "10k-attributes", "empty-request"],
)
def test_hostile_client_is_disconnected_and_others_served(tmp_path: Path, hostile: bytes) -> None:
    async def body(server: PolicyServer, address: tuple[str, int], events: Events) -> None:
        good_reader, good_writer = await asyncio.open_connection(*address)
        bad_reader, bad_writer = await asyncio.open_connection(*address)
        bad_writer.write(hostile)
        with pytest.raises(ConnectionError):  # a reset is fine too: the server stopped reading
            await bad_writer.drain()
            assert await asyncio.wait_for(bad_reader.read(), 5) == b""
            raise ConnectionResetError("closed")
        bad_writer.close()
        good_writer.write(_request("dave", "D1"))
        assert await asyncio.wait_for(good_reader.readuntil(b"\n\n"), 5) == DUNNO
        good_writer.close()
        await good_writer.wait_closed()

    events = _run(SqliteStore(tmp_path / "p.db"), body)
    assert [e["event"] for e in events] == ["client_error"]


def test_idle_client_is_disconnected(tmp_path: Path) -> None:
    policy = dict(RULES["policy"])  # type: ignore[call-overload]
    policy["idle_timeout"] = 0.1
    config = parse_config({"policy": policy})

    async def body(server: PolicyServer, address: tuple[str, int], events: Events) -> None:
        reader, writer = await asyncio.open_connection(*address)
        writer.write(b"request=smtpd_access_policy\n")  # slowloris: never finishes
        start = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert time.monotonic() - start < 2
        writer.close()

    _run(SqliteStore(tmp_path / "p.db"), body, config)


class BrokenStore(MemoryStore):
    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.release_hang = threading.Event()

    def allow_many(
        self, requests: Sequence[tuple[str, Sequence[Limit], float, float]]
    ) -> list[Decision]:
        if self.delay:
            self.release_hang.wait(self.delay)
            return super().allow_many(requests)
        raise OSError("disk on fire")


@pytest.mark.parametrize(
    ("fail_mode", "reply"),
    [
        ("open", DUNNO),
        ("closed", b"action=DEFER_IF_PERMIT 4.3.0 policy store unavailable\n\n"),
    ],
)
@pytest.mark.parametrize("delay", [0.0, 5.0], ids=["raises", "hangs"])
def test_store_failure_answers_in_bounded_time(fail_mode: str, reply: bytes, delay: float) -> None:
    store = BrokenStore(delay)

    async def body(server: PolicyServer, address: tuple[str, int], events: Events) -> None:
        start = time.monotonic()
        assert await _exchange(address, [_request("erin", "E1")], 1) == [reply]
        assert time.monotonic() - start < 0.15 + (0.1 if delay else 0)
        store.release_hang.set()

    events = _run(store, body, _config(fail_mode, timeout=0.1))
    assert [(e["decision"], e["action"]) for e in events] == [
        (f"fail-{fail_mode}", "DUNNO" if fail_mode == "open" else "DEFER_IF_PERMIT")
    ]
    error = "no answer within 0.1s" if delay else "OSError: disk on fire"
    assert events[0]["error"] == error


def test_close_finishes_in_flight_request_and_closes_store(tmp_path: Path) -> None:
    store = BrokenStore(0.3)

    async def body(server: PolicyServer, address: tuple[str, int], events: Events) -> None:
        reader, writer = await asyncio.open_connection(*address)
        idle_reader, idle_writer = await asyncio.open_connection(*address)
        writer.write(_request("frank", "F1"))
        await writer.drain()
        await asyncio.sleep(0.05)  # the request is now waiting for the store
        closing = asyncio.create_task(server.close())
        assert await asyncio.wait_for(reader.readuntil(b"\n\n"), 5) == DUNNO
        assert await asyncio.wait_for(idle_reader.read(), 5) == b""
        await closing
        with pytest.raises(OSError):
            await asyncio.open_connection(*address)
        writer.close()
        idle_writer.close()

    _run(store, body, _config("open", timeout=1.0))


@pytest.mark.parametrize(
    ("listen", "parsed"),
    [
        ("127.0.0.1:10040", ("127.0.0.1", 10040)),
        ("[::1]:10040", ("::1", 10040)),
        ("unix:/run/relayguard/policy.sock", "/run/relayguard/policy.sock"),
    ],
)
def test_parse_listen(listen: str, parsed: object) -> None:
    assert parse_listen(listen) == parsed


@pytest.mark.parametrize("listen", ["10040", "host:", "unix:", "h:99999"])
def test_parse_listen_refuses(listen: str) -> None:
    with pytest.raises(ConfigError):
        parse_listen(listen)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"fail_mode": "maybe"}, "policy.fail_mode must be 'open' or 'closed'"),
        ({"store_timeout": 0}, "policy.store_timeout must be a number above 0"),
        ({"colour": "red"}, "policy: unknown setting 'colour'"),
    ],
)
def test_parse_config_errors(policy: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"policy": policy})
    assert str(info.value) == message


def test_parse_config_defaults() -> None:
    config = parse_config({"policy": {}})
    assert (config.listen, config.store, config.store_timeout, config.fail_closed) == (
        "127.0.0.1:10040",
        "sqlite:/var/lib/relayguard/policy.sqlite",
        0.2,
        False,
    )
    assert (config.idle_timeout, config.max_connections, config.rules.rules) == (60.0, 1000, ())


def test_connections_above_the_bound_are_closed(tmp_path: Path) -> None:
    policy = dict(RULES["policy"])  # type: ignore[call-overload]
    policy["max_connections"] = 1
    config = parse_config({"policy": policy})

    async def body(server: PolicyServer, address: tuple[str, int], events: Events) -> None:
        reader, writer = await asyncio.open_connection(*address)
        writer.write(_request("gina", "G1"))
        assert await asyncio.wait_for(reader.readuntil(b"\n\n"), 5) == DUNNO
        extra_reader, extra_writer = await asyncio.open_connection(*address)
        assert await asyncio.wait_for(extra_reader.read(), 5) == b""
        writer.write(_request("gina", "G2"))
        assert await asyncio.wait_for(reader.readuntil(b"\n\n"), 5) == DUNNO
        writer.close()
        extra_writer.close()

    _run(SqliteStore(tmp_path / "p.db"), body, config)
