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
    "open_store",
    "window_id",
]


def open_store(spec: str, *, timeout: float = 0.5, server: bool = False) -> Store:
    """The store a spec names: ``sqlite:PATH``, ``redis://...``, ``rediss://...`` or ``memory:``.

    ``timeout`` bounds each call (SQLite's wait for its write lock, Redis connects and replies).
    ``server``: the store serves a policy server (SQLite then checkpoints off the request path).
    """
    kind, sep, where = spec.partition(":")
    if sep and kind == "sqlite" and where:
        try:
            Path(where).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of {where!r}: {exc.strerror}") from None
        return SqliteStore(where, busy_timeout=timeout, checkpoint_every=1.0 if server else None)
    if kind in ("redis", "rediss") and where.startswith("//"):
        from relayguard.policy.stores.redis import RedisStore  # only Redis users need redis-py

        return RedisStore(spec, timeout=timeout)
    if sep and kind == "memory" and not where:
        return MemoryStore()
    raise ConfigError(
        f"bad store {spec!r}: expected sqlite:PATH, redis://HOST[:PORT][/DB] or memory:"
    )
