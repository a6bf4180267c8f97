"""The wire reader's errors."""

from __future__ import annotations

from relayguard.errors import InputError


class CaptureError(InputError):
    """The capture file cannot be read at all (not a pcap/pcapng file, unreadable)."""
