"""TCP reassembly: segments in capture order -> each direction's bytes in sequence order.

Theory of operation
-------------------
A connection is keyed by (client address, client port, server address, server port), the
server being the side on an SMTP port. Each direction is a :class:`Stream` that knows the next
sequence number it expects (from the SYN): a segment at that number is delivered, one before
it is a retransmission (only its new tail, if any, is delivered), one after it waits in a
bounded out-of-order store until the hole is filled. Sequence numbers are compared modulo 2**32.
A hole that is never filled (the store is full, or the connection ends) is skipped and
reported to the conversation as a gap.

Memory is bounded per direction (:data:`MAX_OUT_OF_ORDER`) and in total: at most
:data:`MAX_FLOWS` connections are tracked, connections idle for :data:`IDLE_TIMEOUT` seconds of
capture time are finished, and when the table is still full the least recently active half is.
A connection whose SYN was not captured (it began before the capture did) is counted but not
parsed: without its first bytes nobody knows where its lines start.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Final

from relayguard.wire.conversation import Conversation, Observer

MAX_OUT_OF_ORDER: Final = 64 * 1024  # bytes waiting for a hole per direction
MAX_FLOWS: Final = 20_000
IDLE_TIMEOUT: Final = 600.0  # Postfix smtpd_timeout is 300 s; twice that is surely gone
SWEEP_EVERY: Final = 1 << 15  # segments between idle sweeps
MAX_FINISHED: Final = 4096  # finished connections remembered, to drop their late segments

_MASK: Final = 0xFFFFFFFF
_HALF: Final = 0x80000000
SYN, FIN, RST, ACK = 0x02, 0x01, 0x04, 0x10


class Stream:
    """One direction of a connection; see the module docstring."""

    __slots__ = ("finished", "next", "ooo", "ooo_bytes")

    def __init__(self) -> None:
        self.next: int | None = None  # the sequence number expected next
        self.ooo: dict[int, bytes] = {}
        self.ooo_bytes = 0
        self.finished = False

    def add(self, seq: int, data: bytes) -> tuple[bytes, bool]:
        """(bytes now in order, whether a hole was skipped to get them)."""
        nxt = self.next
        if nxt is None:
            return b"", False
        ahead = (seq - nxt) & _MASK
        if ahead == 0:
            self.next = (nxt + len(data)) & _MASK
            if self.ooo:
                return self._drain(data), False
            return data, False
        if ahead < _HALF:  # a later segment: keep it until the hole is filled
            if self.ooo_bytes + len(data) > MAX_OUT_OF_ORDER:
                return self._skip_hole(seq, data)
            old = self.ooo.get(seq)
            if old is None or len(old) < len(data):
                self.ooo_bytes += len(data) - (len(old) if old else 0)
                self.ooo[seq] = data
            return b"", False
        behind = (nxt - seq) & _MASK  # a retransmission, maybe with new bytes at its end
        if behind >= len(data):
            return b"", False
        fresh = data[behind:]
        self.next = (nxt + len(fresh)) & _MASK
        if self.ooo:
            return self._drain(fresh), False
        return fresh, False

    def _drain(self, head: bytes) -> bytes:
        parts = [head]
        ooo = self.ooo
        while ooo:
            nxt = self.next
            assert nxt is not None
            found = None
            for seq in ooo:
                if (nxt - seq) & _MASK < _HALF:  # starts at or before what we expect
                    found = seq
                    break
            if found is None:
                break
            data = ooo.pop(found)
            self.ooo_bytes -= len(data)
            behind = (nxt - found) & _MASK
            if behind < len(data):
                fresh = data[behind:]
                parts.append(fresh)
                self.next = (nxt + len(fresh)) & _MASK
        return b"".join(parts)

    def _skip_hole(self, seq: int, data: bytes) -> tuple[bytes, bool]:
        """The store is full: give up on the hole, continue from the earliest stored byte."""
        nxt = self.next
        assert nxt is not None
        self.ooo[seq] = data
        self.ooo_bytes += len(data)
        earliest = min(self.ooo, key=lambda s: (s - nxt) & _MASK)
        self.next = earliest
        return self._drain(b""), True

    def flush_holes(self) -> bool:
        """At the end: whether bytes were still waiting behind a hole (they are dropped)."""
        had = bool(self.ooo)
        self.ooo.clear()
        self.ooo_bytes = 0
        return had


class Flow:
    """One TCP connection and the SMTP conversation on it."""

    __slots__ = (
        "bytes",
        "client",
        "client_port",
        "conv",
        "first",
        "from_client",
        "last",
        "packets",
        "server",
        "server_port",
        "to_client",
    )

    def __init__(
        self, client: str, client_port: int, server: str, server_port: int, time: float
    ) -> None:
        self.client = client
        self.client_port = client_port
        self.server = server
        self.server_port = server_port
        self.first = self.last = time
        self.packets = 0
        self.bytes = 0
        self.from_client = Stream()
        self.to_client = Stream()
        self.conv: Conversation | None = None


FlowKey = tuple[bytes, int, bytes, int]


def ip_text(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


class FlowTable:
    """Routes segments to connections; calls ``on_end(flow, why)`` when one is finished."""

    def __init__(
        self,
        hot: bytes,
        observer: Observer,
        on_start: Callable[[Flow], bool],
        on_end: Callable[[Flow, str], None],
    ) -> None:
        self.hot = hot
        self.observer = observer
        self.on_start = on_start  # False: count the connection, do not parse it
        self.on_end = on_end
        self.flows: dict[FlowKey, Flow] = {}
        # connections finished lately: a late retransmission or ACK of one opens no new flow
        self.finished: dict[FlowKey, None] = {}
        self.late = 0
        self.segments = 0
        self.evicted = 0
        self.midstream = 0
        self.gaps = 0
        self.retransmissions = 0

    def segment(
        self,
        ts: float,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        seq: int,
        flags: int,
        payload: bytes,
        snapped: bool,
    ) -> None:
        self.segments += 1
        if not self.segments & (SWEEP_EVERY - 1):
            self.sweep(ts)
        if self.hot[dport]:
            key: FlowKey = (src, sport, dst, dport)
            client_side = True
        else:
            key = (dst, dport, src, sport)
            client_side = False
        flow = self.flows.get(key)
        new_syn = client_side and flags & SYN and not flags & ACK
        if (
            flow is not None
            and new_syn
            and (flow.conv is None or flow.from_client.next != (seq + 1) & _MASK)
        ):
            self.finish(key, flow, "port reused")  # a new connection on the same ports
            flow = None
        if flow is None:
            if not (payload or flags & SYN) or flags & RST:
                return  # a late ACK or FIN of a finished connection, a refused attempt
            if not flags & SYN and key in self.finished:
                self.late += 1  # a retransmission after the connection was closed
                return
            flow = self._start(key, ts, greeted=bool(flags & SYN))
        flow.last = ts
        flow.packets += 1
        flow.bytes += len(payload)
        stream = flow.from_client if client_side else flow.to_client
        if flags & SYN:
            stream.next = (seq + 1) & _MASK
        if payload and flow.conv is not None:
            if snapped:
                flow.conv.gap("client" if client_side else "server")
            data, skipped = stream.add(seq + (1 if flags & SYN else 0), payload)
            if skipped:
                self.gaps += 1
                flow.conv.gap("client" if client_side else "server")
            if data:
                if client_side:
                    flow.conv.client_data(data, ts)
                else:
                    flow.conv.server_data(data, ts)
            elif stream.next is not None and not skipped and not stream.ooo:
                self.retransmissions += 1
        if flags & (FIN | RST):
            stream.finished = True
            if flags & RST or (flow.from_client.finished and flow.to_client.finished):
                self.finish(key, flow, "closed")

    def _start(self, key: FlowKey, ts: float, greeted: bool) -> Flow:
        if len(self.flows) >= MAX_FLOWS:
            self.sweep(ts)
            if len(self.flows) >= MAX_FLOWS:
                self._evict_half()
        flow = Flow(ip_text(key[0]), key[1], ip_text(key[2]), key[3], ts)
        self.flows[key] = flow
        if not greeted:
            self.midstream += 1
        elif self.on_start(flow):
            flow.conv = Conversation(self.observer)
            flow.conv.owner = flow
        return flow

    def finish(self, key: FlowKey, flow: Flow, why: str) -> None:
        del self.flows[key]
        finished = self.finished
        finished[key] = None
        if len(finished) > MAX_FINISHED:
            del finished[next(iter(finished))]
        conv = flow.conv
        if conv is not None:
            client_hole = flow.from_client.flush_holes()
            server_hole = flow.to_client.flush_holes()
            if client_hole or server_hole:
                self.gaps += 1
                conv.gap("client" if client_hole else "server")
            conv.close()
        self.on_end(flow, why)

    def sweep(self, now: float) -> None:
        idle = [(k, f) for k, f in self.flows.items() if now - f.last > IDLE_TIMEOUT]
        for key, flow in idle:
            self.finish(key, flow, "idle")

    def _evict_half(self) -> None:
        by_age = sorted(self.flows.items(), key=lambda kv: kv[1].last)
        for key, flow in by_age[: len(by_age) // 2]:
            self.evicted += 1
            self.finish(key, flow, "evicted")

    def finish_all(self) -> None:
        for key, flow in list(self.flows.items()):
            self.finish(key, flow, "capture ended")
