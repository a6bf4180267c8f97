"""Where rate-limit state and containment live: :class:`Store` and its implementations."""

from __future__ import annotations

from pathlib import Path

from relayguard.errors import ConfigError
from relayguard.policy.stores.base import Charge, Contained, Store, StoreError, window_id
from relayguard.policy.stores.memory import MemoryStore
from relayguard.policy.stores.sqlite import SqliteStore

__all__ = [
    "Charge",
    "Contained",
    "MemoryStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "check_store_spec",
    "open_store",
    "window_id",
]


def check_store_spec(spec: str) -> None:
    """ConfigError (one line) unless ``spec`` names a store :func:`open_store` can try to open."""
    kind, sep, where = spec.partition(":")
    if sep and kind == "sqlite" and where:
        return
    if kind in ("redis", "rediss") and where.startswith("//"):
        from relayguard.policy.stores.redis import redis_options

        redis_options(spec, 1.0)
        return
    if sep and kind == "memory" and not where:
        return
    raise ConfigError(
        f"bad store {spec!r}: expected sqlite:PATH, redis://HOST[:PORT][/DB] or memory:"
    )


def open_store(
    spec: str, *, timeout: float = 0.5, server: bool = False, create: bool = True
) -> Store:
    """The store a spec names: ``sqlite:PATH``, ``redis://...``, ``rediss://...`` or ``memory:``.

    ``timeout`` bounds each call (SQLite's wait for its write lock, Redis connects and replies).
    ``server``: the store serves a policy server (SQLite then checkpoints off the request path).
    ``create``: a missing SQLite file (and its directory) is created; without it, a missing
    file is a :class:`StoreError` (the read-only admin commands must not make empty stores).
    """
    check_store_spec(spec)
    kind, _sep, where = spec.partition(":")
    if kind == "sqlite":
        if not create:
            return SqliteStore(where, busy_timeout=timeout, create=False)
        try:
            Path(where).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of {where!r}: {exc.strerror}") from None
        return SqliteStore(where, busy_timeout=timeout, checkpoint_every=1.0 if server else None)
    if kind in ("redis", "rediss"):
        from relayguard.policy.stores.redis import RedisStore  # only Redis users need redis-py

        return RedisStore(spec, timeout=timeout)
    return MemoryStore()
