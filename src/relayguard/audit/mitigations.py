"""The audit uses the shared mitigation catalogue (its own entries were merged into it)."""

from __future__ import annotations

from relayguard.mitigations import CATALOGUE, Mitigation, get

__all__ = ["CATALOGUE", "Mitigation", "get"]
