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


def open_store(spec: str) -> Store:
    """The store a spec names: ``sqlite:PATH`` or ``memory:``."""
    kind, sep, where = spec.partition(":")
    if sep and kind == "sqlite" and where:
        Path(where).parent.mkdir(parents=True, exist_ok=True)
        return SqliteStore(where)
    if sep and kind == "memory" and not where:
        return MemoryStore()
    raise ConfigError(f"bad store {spec!r}: expected sqlite:PATH or memory:")
