"""Crafted captures for the wire tests, written with dpkt (a packet library).

A :class:`Conn` is one TCP connection: it keeps both sides' sequence numbers and a clock, and
appends Ethernet/IPv4 (or IPv6) frames for the handshake, data segments and the close. Tests
reorder, duplicate or cut the frames to make the edge cases, then write them with
:func:`write_pcap` or :func:`write_pcapng`.
"""

from __future__ import annotations

import base64
import socket
from dataclasses import dataclass, field
from pathlib import Path

import dpkt

SYN, FIN, RST, PSH, ACK = (
    dpkt.tcp.TH_SYN,
    dpkt.tcp.TH_FIN,
    dpkt.tcp.TH_RST,
    dpkt.tcp.TH_PUSH,
    dpkt.tcp.TH_ACK,
)
T0 = 1_796_313_600.0  # 2026-12-03 16:00:00Z


@dataclass
class Frame:
    time: float
    data: bytes
    from_client: bool
    payload: bytes = b""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class Conn:
    client: str = "198.51.100.7"
    cport: int = 40001
    server: str = "192.0.2.25"
    sport: int = 25
    time: float = T0
    step: float = 0.01
    cseq: int = 1000
    sseq: int = 5000
    frames: list[Frame] = field(default_factory=list)

    def _frame(
        self, from_client: bool, flags: int, payload: bytes = b"", seq: int | None = None
    ) -> Frame:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        sp, dp = (self.cport, self.sport) if from_client else (self.sport, self.cport)
        own = self.cseq if from_client else self.sseq
        other = self.sseq if from_client else self.cseq
        tcp = dpkt.tcp.TCP(
            sport=sp,
            dport=dp,
            seq=own if seq is None else seq,
            ack=other,
            flags=flags,
            win=65535,
            data=payload,
        )
        if ":" in src:
            ip: dpkt.Packet = dpkt.ip6.IP6(
                src=socket.inet_pton(socket.AF_INET6, src),
                dst=socket.inet_pton(socket.AF_INET6, dst),
                nxt=dpkt.ip.IP_PROTO_TCP,
                hlim=64,
                data=tcp,
                plen=len(bytes(tcp)),
            )
            etype = dpkt.ethernet.ETH_TYPE_IP6
        else:
            ip = dpkt.ip.IP(
                src=socket.inet_aton(src),
                dst=socket.inet_aton(dst),
                p=dpkt.ip.IP_PROTO_TCP,
                ttl=64,
                data=tcp,
            )
            ip.len = len(bytes(ip))
            etype = dpkt.ethernet.ETH_TYPE_IP
        eth = dpkt.ethernet.Ethernet(
            src=b"\x02\x00\x00\x00\x00\x01", dst=b"\x02\x00\x00\x00\x00\x02", type=etype, data=ip
        )
        self.time += self.step
        frame = Frame(self.time, bytes(eth), from_client, payload)
        self.frames.append(frame)
        return frame

    def open(self) -> Conn:
        self._frame(True, SYN)
        self.cseq += 1
        self._frame(False, SYN | ACK)
        self.sseq += 1
        self._frame(True, ACK)
        return self

    def c(self, data: bytes | str) -> Frame:
        raw = data.encode() if isinstance(data, str) else data
        frame = self._frame(True, PSH | ACK, raw)
        self.cseq = (self.cseq + len(raw)) & 0xFFFFFFFF
        return frame

    def s(self, data: bytes | str) -> Frame:
        raw = data.encode() if isinstance(data, str) else data
        frame = self._frame(False, PSH | ACK, raw)
        self.sseq = (self.sseq + len(raw)) & 0xFFFFFFFF
        return frame

    def close(self) -> Conn:
        self._frame(True, FIN | ACK)
        self.cseq += 1
        self._frame(False, FIN | ACK)
        self.sseq += 1
        self._frame(True, ACK)
        return self

    def dialogue(self, *exchanges: tuple[str, str]) -> Conn:
        """(client line(s), server reply) pairs; "" skips a side."""
        for client, server in exchanges:
            if client:
                self.c(client)
            if server:
                self.s(server)
        return self


BANNER = "220 mx.example.org ESMTP Postfix\r\n"
EHLO_REPLY = "250-mx.example.org\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
MESSAGE = "Subject: hi\r\n\r\nhello\r\n.\r\n"


def relay_session(conn: Conn, sender: str, rcpts: list[str], accept: bool = True) -> Conn:
    """One unauthenticated message: EHLO, MAIL, each RCPT (accepted or relay-denied), DATA."""
    conn.open().dialogue(
        ("", BANNER),
        ("EHLO spambot.example\r\n", EHLO_REPLY),
        (f"MAIL FROM:<{sender}>\r\n", "250 2.1.0 Ok\r\n"),
    )
    for rcpt in rcpts:
        reply = "250 2.1.5 Ok\r\n" if accept else f"554 5.7.1 <{rcpt}>: Relay access denied\r\n"
        conn.dialogue((f"RCPT TO:<{rcpt}>\r\n", reply))
    if accept:
        conn.dialogue(
            ("DATA\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n"),
            (MESSAGE, "250 2.0.0 Ok: queued as 4ABC\r\n"),
        )
    conn.dialogue(("QUIT\r\n", "221 2.0.0 Bye\r\n"))
    return conn.close()


def write_pcap(
    path: Path, frames: list[Frame], *, nano: bool = False, linktype: int = 1, snaplen: int = 65535
) -> Path:
    with path.open("wb") as out:
        writer = dpkt.pcap.Writer(out, nano=nano, linktype=linktype, snaplen=snaplen)
        for frame in frames:
            writer.writepkt(frame.data, ts=frame.time)
    return path


def write_pcapng(path: Path, frames: list[Frame]) -> Path:
    with path.open("wb") as out:
        writer = dpkt.pcapng.Writer(out)
        for frame in frames:
            writer.writepkt(frame.data, ts=frame.time)
    return path


def frames_of(*conns: Conn) -> list[Frame]:
    """All frames of the connections in time order."""
    return sorted((f for c in conns for f in c.frames), key=lambda f: f.time)
