"""Where rate-limit state and containment live: :class:`Store` and its implementations."""

from relayguard.policy.stores.base import Charge, Contained, Store, StoreError, window_id
from relayguard.policy.stores.memory import MemoryStore
from relayguard.policy.stores.sqlite import SqliteStore

__all__ = ["Charge", "Contained", "MemoryStore", "SqliteStore", "Store", "StoreError", "window_id"]
