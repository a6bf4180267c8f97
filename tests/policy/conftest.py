"""Fixtures: a real Redis (plain and TLS, both with a password) for the whole session.

Outside CI the Redis tests skip when redis-server or openssl is missing; on CI (CI=true) they
fail instead (scripts/install-test-deps installs redis-server).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.lab.fixtures import on_ci
from tests.policy.redis_server import RedisServer, redis_missing


def _need_redis() -> None:
    missing = redis_missing()
    if missing:
        why = f"the Redis tests need {', '.join(missing)}: run scripts/install-test-deps"
        if on_ci():
            pytest.fail(f"Redis unavailable on CI: {why}", pytrace=False)
        pytest.skip(why)


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    _need_redis()
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_server(redis_session: RedisServer) -> Iterator[RedisServer]:
    """The session's Redis, empty, running (a test that killed it gets it back)."""
    if redis_session.process is None:
        redis_session.start()
    redis_session.flush()
    yield redis_session
    if redis_session.process is None:
        redis_session.start()
    else:
        redis_session.thaw()


@pytest.fixture(scope="session")
def redis_tls() -> Iterator[RedisServer]:
    _need_redis()
    server = RedisServer(tls=True)
    server.start()
    try:
        yield server
    finally:
        server.close()
