"""A real policy server on 127.0.0.1:0 with a SQLite store, driven by a raw socket client."""

from __future__ import annotations

import asyncio
import grp
import os
import socket
import sqlite3
import stat
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from relayguard.errors import ConfigError, InputError
from relayguard.policy.config import PolicyConfig, parse_config, parse_listen
from relayguard.policy.server import PolicyServer, _SharedAcceptor, remove_stale_socket
from relayguard.policy.stores import MemoryStore, SqliteStore, Store
from relayguard.policy.stores.base import Check, Verdict

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
HELD = b"action=HOLD held for review: the sending account is contained by relayguard\n\n"


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
    """A store whose batch call always raises (a unit-test fake; see the SQLite tests)."""

    def check_many(self, checks: Sequence[Check]) -> list[Verdict]:
        raise OSError("disk on fire")


@pytest.mark.parametrize(
    ("fail_mode", "reply"),
    [
        ("open", DUNNO),
        ("closed", b"action=DEFER_IF_PERMIT 4.3.0 policy store unavailable\n\n"),
    ],
)
def test_store_error_gets_the_fail_action(fail_mode: str, reply: bytes) -> None:
    async def body(server: PolicyServer, address: tuple[str, int], events: Events) -> None:
        assert await _exchange(address, [_request("erin", "E1"), _request("erin", "E2")], 2) == [
            reply,
            reply,
        ]

    events = _run(BrokenStore(), body, _config(fail_mode, timeout=0.1))
    down = {"event": "store_down", "error": "OSError: disk on fire", "fail_mode": fail_mode}
    if fail_mode == "open":  # fail-open answers are DUNNO: only the transition is logged
        assert events == [down]
    else:
        assert events[0] == down
        assert [(e["decision"], e["action"], e["error"]) for e in events[1:]] == [
            ("fail-closed", "DEFER_IF_PERMIT", "OSError: disk on fire")
        ] * 2


def test_locked_sqlite_answers_in_bounded_time_then_recovers(tmp_path: Path) -> None:
    """Another process holds the SQLite write lock: answers come after about store_timeout, not
    after the lock is gone; while the store is down nothing waits; then counting resumes."""
    path = tmp_path / "p.db"
    policy = dict(RULES["policy"])  # type: ignore[call-overload]
    policy.update(store_timeout=0.1, store_retry=0.3)
    config = parse_config({"policy": policy})
    store = SqliteStore(path, busy_timeout=config.store_timeout)
    locker = sqlite3.connect(path, isolation_level=None)

    async def body(server: PolicyServer, address: tuple[str, int], events: Events) -> None:
        locker.execute("BEGIN EXCLUSIVE")
        start = time.monotonic()
        assert await _exchange(address, [_request("ivan", "I1")], 1) == [DUNNO]
        first = time.monotonic() - start
        # the lock is held for 30 s more: the answer did not wait for it
        assert 0.1 <= first < 5
        start = time.monotonic()
        assert await _exchange(address, [_request("ivan", "I2")], 1) == [DUNNO]
        assert time.monotonic() - start < first  # inside store_retry: the store is not tried
        locker.execute("ROLLBACK")
        await asyncio.sleep(0.35)  # store_retry has passed: the store is tried again
        replies = [_request("ivan", f"I{n}") for n in (3, 4, 5)]
        assert await _exchange(address, replies, 3) == [DUNNO, DUNNO, DEFERRED]

    events = _run(store, body, config)
    assert [e["event"] for e in events] == ["store_down", "store_up", "policy_decision"]
    assert "database is locked" in str(events[0]["error"])
    assert events[2]["decision"] == "limited"
    locker.close()


def test_close_answers_queued_requests_and_disconnects_clients(tmp_path: Path) -> None:
    async def body(server: PolicyServer, address: tuple[str, int], events: Events) -> None:
        reader, writer = await asyncio.open_connection(*address)
        idle_reader, idle_writer = await asyncio.open_connection(*address)
        writer.write(_request("frank", "F1"))
        await writer.drain()
        assert await asyncio.wait_for(reader.readuntil(b"\n\n"), 5) == DUNNO
        await server.close()
        assert await asyncio.wait_for(idle_reader.read(), 5) == b""
        assert await asyncio.wait_for(reader.read(), 5) == b""
        with pytest.raises(OSError):
            await asyncio.open_connection(*address)
        writer.close()
        idle_writer.close()

    _run(SqliteStore(tmp_path / "p.db"), body)


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
        (
            {"listen_mode": 438},
            'policy.listen_mode must be octal permissions in a string, such as "0660", not 438',
        ),
        (
            {"listen_mode": "0999"},
            "policy.listen_mode must be octal permissions in a string, "
            "such as \"0660\", not '0999'",
        ),
        (
            {"store": "mysql://x"},
            "bad store 'mysql://x': expected sqlite:PATH, redis://HOST[:PORT][/DB] or memory:",
        ),
        (
            {"store": "rediss://127.0.0.1/0?ca=/nonexistent/ca.pem"},
            "redis store URL: ca=/nonexistent/ca.pem: no such CA file",
        ),
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
    assert (config.idle_timeout, config.max_connections, config.rules.rules) == (600.0, 1000, ())
    assert (config.store_retry, config.metrics_listen) == (1.0, "")
    assert (config.listen_mode, config.listen_group) == (0o666, "")


def _unix_config(path: Path, **settings: object) -> PolicyConfig:
    policy = dict(RULES["policy"])  # type: ignore[call-overload]
    policy.update(listen=f"unix:{path}", **settings)
    return parse_config({"policy": policy})


async def _ask_unix(path: Path, data: bytes) -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(data)
    reply = await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)
    writer.close()
    await writer.wait_closed()
    return reply


def test_unix_socket_mode_group_stale_socket_and_removal(tmp_path: Path) -> None:
    path = tmp_path / "policy.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a socket file nobody listens on: a server that crashed
    group = grp.getgrgid(os.getgid()).gr_name

    async def main() -> None:
        old = os.umask(0o027)  # the unit's UMask
        try:
            server = PolicyServer(_unix_config(path), MemoryStore(), emit=lambda e: None)
            await server.start()
            assert stat.S_IMODE(path.stat().st_mode) == 0o666
            assert server.address_text == f"unix:{path}"
            assert await _ask_unix(path, _request("una", "U1")) == DUNNO
            await server.close()
            assert not path.exists()
            config = _unix_config(path, listen_mode="0660", listen_group=group)
            server = PolicyServer(config, MemoryStore(), emit=lambda e: None)
            await server.start()
            info = path.stat()
            assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o660, os.getgid())
            # a second server must not take the socket of a live one
            second = PolicyServer(_unix_config(path), MemoryStore(), emit=lambda e: None)
            with pytest.raises(InputError) as refused:
                await second.start()
            assert str(refused.value) == f"a server is already listening on {path}"
            assert await _ask_unix(path, _request("una", "U2")) == DUNNO
            await server.close()
            assert not path.exists()
        finally:
            os.umask(old)

    asyncio.run(main())


def test_unknown_socket_group_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.sock"

    async def main() -> None:
        config = _unix_config(path, listen_group="no-such-group-rg")
        server = PolicyServer(config, MemoryStore(), emit=lambda e: None)
        with pytest.raises(InputError) as info:
            await server.start()
        assert str(info.value) == "policy.listen_group: no group 'no-such-group-rg'"
        assert not path.exists()  # not left behind

    asyncio.run(main())


def test_a_file_at_the_socket_path_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("precious\n")
    with pytest.raises(InputError) as info:
        remove_stale_socket(str(path))
    assert str(info.value) == f"{path} exists and is not a socket: not removed, choose another path"
    assert path.read_text() == "precious\n"
    directory = tmp_path / "dir"
    directory.mkdir()
    with pytest.raises(InputError):
        remove_stale_socket(str(directory))
    assert directory.is_dir()


def test_ipv6_address_text() -> None:
    async def main() -> None:
        server = PolicyServer(_config(), MemoryStore(), emit=lambda e: None)
        await server.start("[::1]:0")
        port = server.address[1]  # type: ignore[index]
        assert server.address_text == f"[::1]:{port}"
        await server.close()
        server = PolicyServer(_config(), MemoryStore(), emit=lambda e: None)
        await server.start("127.0.0.1:0")
        assert server.address_text == f"127.0.0.1:{server.address[1]}"  # type: ignore[index]
        await server.close()

    asyncio.run(main())


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


T0 = 4_000_000_000.0
TWO_STAGES: dict[str, object] = {
    "listen": "127.0.0.1:0",
    "rules": [
        {"name": "rcpts", "key": "sasl_username", "count": "recipients", "windows": ["3/hour"],
         "action": "DEFER"},
        {"name": "msgs", "key": "sasl_username", "count": "messages", "windows": ["1/hour"],
         "action": "DEFER"},
    ],
}  # fmt: skip


def refunds_across_stages(store: Store) -> tuple[list[bytes], dict[tuple[str, str], float]]:
    """Four one-recipient messages from one login: RCPT, DATA, END-OF-MESSAGE each."""
    config = parse_config({"policy": TWO_STAGES})
    replies: list[bytes] = []

    async def main() -> None:
        server = PolicyServer(config, store, clock=lambda: T0, emit=lambda e: None)
        await server.start()
        address = server.address
        assert isinstance(address, tuple)
        reader, writer = await asyncio.open_connection(*address)
        for n in range(4):
            for state in ("RCPT", "DATA", "END-OF-MESSAGE"):
                writer.write(_request("U3@example.org", f"M{n}", state))
                replies.append(await asyncio.wait_for(reader.readuntil(b"\n\n"), 5))
                if replies[-1] != DUNNO:
                    break
        writer.close()
        await writer.wait_closed()
        server.store = MemoryStore()  # keep the real one open for the caller
        await server.close()

    asyncio.run(main())
    return replies, store.states()


DEFER_DEFAULT = b"action=450 4.7.1 Rate limit exceeded, try again later\n\n"
# message 1 passes; 2, 3 and 4 are deferred at END-OF-MESSAGE by "msgs", and each gives back
# the recipient its RCPT was charged: without that, message 4's RCPT would be deferred by rcpts
EXPECTED_REPLIES = [DUNNO] * 3 + [DUNNO, DUNNO, DEFER_DEFAULT] * 3
EXPECTED_STATES = {
    ("rcpts:u3@example.org", "3/3600.0/3"): T0 + 1200,
    ("msgs:u3@example.org", "1/3600.0/1"): T0 + 3600,
}


def test_refusing_a_message_gives_back_its_earlier_stages_memory() -> None:
    assert refunds_across_stages(MemoryStore()) == (EXPECTED_REPLIES, EXPECTED_STATES)


def test_refusing_a_message_gives_back_its_earlier_stages_sqlite(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "p.db")
    try:
        assert refunds_across_stages(store) == (EXPECTED_REPLIES, EXPECTED_STATES)
    finally:
        store.close()


def test_a_shared_acceptor_takes_one_connection_per_readiness_event() -> None:
    """Workers on one unix socket: each wake-up accepts one connection and goes back to the
    loop, so a burst is shared with the other workers woken by the same event."""
    made: list[asyncio.BaseTransport] = []

    class Recorder(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            made.append(transport)

    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            listener.setblocking(False)
            clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
            acceptor = _SharedAcceptor(loop, listener, cast(Any, Recorder), lambda event: None)
            acceptor.close()  # no reader: one readiness event, by hand
            acceptor._accept()
            for _ in range(50):
                if made:
                    break
                await asyncio.sleep(0.01)
            accepted = len(made)
            left = 0
            while True:  # what the other workers would find
                try:
                    listener.accept()[0].close()
                except BlockingIOError:
                    break
                left += 1
            for transport in made:
                transport.close()
            for client in clients:
                client.close()
            return accepted, left

    assert asyncio.run(main()) == (1, 2)
