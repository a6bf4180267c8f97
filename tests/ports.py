"""Ports to hand to a server the tests start.

A port found by binding port 0 comes from the kernel's ephemeral range, the same range outgoing
connections take their source port from: between the probe and the server's own bind, any
client on the machine may take it (``Address already in use``). Ports below that range are only
ever taken by an explicit bind, so the tests pick theirs there.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_FALLBACK = (32768, 60999)


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return _FALLBACK


def _candidates() -> range:
    low, high = _ephemeral_range()
    if low > 11_000:
        return range(10_000, low)
    return range(high + 1, 65_536)


def _bindable(port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, udp: bool = False) -> int:
    """A port on 127.0.0.1 that nothing is bound to now (TCP, and UDP too if ``udp``)."""
    candidates = _candidates()
    for _ in range(1000):
        port = random.choice(candidates)
        if _bindable(port, socket.SOCK_STREAM) and (not udp or _bindable(port, socket.SOCK_DGRAM)):
            return port
    raise RuntimeError("no free port below the ephemeral range on 127.0.0.1")
