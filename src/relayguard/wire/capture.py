"""Reading pcap and pcapng files as a stream of TCP segments on the ports that matter.

Theory of operation
-------------------
:func:`open_capture` recognises the file by content (classic pcap in either byte order with
micro- or nanosecond times, pcapng, either of them gzip-, bzip2- or xz-compressed) and
returns a reader whose :meth:`scan` calls ``on_segment`` for every TCP segment with a source
or destination port in the ``hot`` table. Everything else is counted in :class:`CaptureStats`
and dropped.

The input is read strictly forward, never seeked, so a pipe works as well as a file (``-``
is standard input): the bytes taken to recognise the format are put back in front of the
stream by :class:`_Rejoined`, for the decompressor and for the scanner.

The hot loop is written for speed: the file is read in large chunks, record headers are
unpacked in place, and a packet costs a few integer reads until its ports are known to be
interesting; only then are addresses and payload copied out. Ethernet (with up to two VLAN
tags), Linux cooked capture v1/v2, BSD loopback and raw IP are decoded here; any other link
type, and IPv6 with extension headers, go to the slow path, which is dpkt's decoders.

Nothing a file says is trusted: a record longer than :data:`MAX_RECORD`, or one whose
captured length exceeds its wire length, is corrupt. Reading then resumes at the next offset
that looks like two consecutive good records (as pcapfix does), and the bytes skipped are
counted. A file that ends inside a record is a capture cut short: what came before counts.
pcapng framing (block lengths, sections with their own byte order, interfaces with their own
link type and time resolution) is checked the same way; dpkt parses the interface options.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, Final, Protocol

import dpkt

from relayguard.wire._errors import CaptureError
from relayguard.wire._stats import CaptureStats
from relayguard.wire.decompress import Decompressed, compression_of

# The largest record accepted: tcpdump's and dumpcap's maximum snap length (262144) and room
# for pcapng options. Jumbo frames and TSO super-packets fit; a 4 GB "packet" is corruption.
MAX_RECORD: Final = 262_144 + 4096
CHUNK: Final = 1 << 22  # bytes read at a time
MAX_BLOCK: Final = MAX_RECORD + 64  # the largest pcapng block accepted
# How far a corrupt spot is searched past for the next good record before giving up.
RESYNC_WINDOW: Final = 1 << 20

PCAP_MAGICS: Final = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_MAGIC: Final = b"\x0a\x0d\x0d\x0a"
SHB_TYPE: Final = 0x0A0D0D0A  # pcapng's section header block

# Link types (tcpdump.org/linktypes.html).
LINK_NULL, LINK_ETHERNET, LINK_RAW, LINK_LOOP = 0, 1, 101, 108
LINK_SLL, LINK_SLL2, LINK_IPV4, LINK_IPV6 = 113, 276, 228, 229
_RAW_LINKS = frozenset({LINK_RAW, 12, 14, LINK_IPV4, LINK_IPV6})
LINK_PPP = 9
SUPPORTED_LINKS: Final = frozenset(
    {LINK_NULL, LINK_ETHERNET, LINK_LOOP, LINK_SLL, LINK_SLL2, LINK_PPP} | _RAW_LINKS
)
LINK_NAMES: Final = {
    LINK_NULL: "BSD loopback",
    LINK_ETHERNET: "Ethernet",
    LINK_PPP: "PPP",
    LINK_RAW: "raw IP",
    12: "raw IP",
    14: "raw IP",
    LINK_LOOP: "OpenBSD loopback",
    LINK_SLL: "Linux cooked",
    LINK_SLL2: "Linux cooked v2",
    LINK_IPV4: "raw IPv4",
    LINK_IPV6: "raw IPv6",
}


def link_name(link: int) -> str:
    return LINK_NAMES.get(link, f"link type {link}")


# (timestamp, source address, source port, destination address, destination port, sequence
# number, TCP flags, payload, payload cut short by the snap length)
SegmentSink = Callable[[float, bytes, int, bytes, int, int, int, bytes, bool], None]


STDIN: Final = "-"
STDIN_NAME: Final = "standard input"


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class Capture:
    """One open capture; :meth:`scan` reads it once."""

    def __init__(self, stream: Readable, path: str, fmt: str, owned: ExitStack) -> None:
        self.stream = stream
        self.path = path
        self.stats = CaptureStats(path=path, format=fmt)
        self._owned = owned  # closes what open_capture opened: never standard input
        self.decompressed: Decompressed | None = None

    def close(self) -> None:
        self._owned.close()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def scan(self, hot: bytes, on_segment: SegmentSink) -> CaptureStats:
        """Call ``on_segment`` for each TCP segment whose ports ``hot[port]`` marks."""
        try:
            if self.stats.format.startswith("pcapng"):
                _PcapngScan(self, hot, on_segment).run()
            else:
                _PcapScan(self, hot, on_segment).run()
        except OSError as exc:
            # a damaged compressed stream or a read error: what was read so far still counts
            self.stats.truncated_end = True
            if self.stats.packets == 0:
                raise CaptureError(f"cannot read {self.path}: {_why(exc)}") from None
        if self.decompressed is not None and self.decompressed.cut_short:
            self.stats.truncated_end = True
        return self.stats

    def read(self, n: int) -> bytes:
        return self.stream.read(n)


class _Rejoined:
    """``head`` (bytes already taken from ``rest``) followed by the rest of ``rest``."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, n: int = -1, /) -> bytes:
        head = self._head
        if not head:
            return self._rest.read(n)
        if n < 0:
            self._head = b""
            return head + self._rest.read()
        self._head = head[n:]
        if len(head) >= n:
            return head[:n]
        return head + self._rest.read(n - len(head))


def _read_up_to(f: Readable, n: int) -> bytes:
    """``n`` bytes, fewer only at the end: a pipe may hand them over a few at a time."""
    data = f.read(n)
    while 0 < len(data) < n:
        more = f.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _drain(f: Capture) -> int:
    """How many bytes are left in ``f``, read and dropped."""
    n = 0
    while chunk := f.read(CHUNK):
        n += len(chunk)
    return n


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def open_capture(path: str, *, stdin: Readable | None = None) -> Capture:
    """The capture at ``path``, ``-`` for ``stdin`` (default: standard input).

    Raises :class:`CaptureError` when it cannot be opened or is not a capture.
    """
    owned = ExitStack()
    if path == STDIN:
        name = STDIN_NAME
        source: Readable = stdin if stdin is not None else sys.stdin.buffer
    else:
        name = path
        try:
            source = owned.enter_context(open(path, "rb"))  # noqa: SIM115 - Capture.close
        except OSError as exc:
            raise CaptureError(f"cannot read {path}: {_why(exc)}") from None
    try:
        head = _read_up_to(source, 6)
        stream: Readable = _Rejoined(head, source)
        suffix = ""
        kind = compression_of(head)
        if kind is not None:
            unpacked = Decompressed(stream, kind)
            head = _read_up_to(unpacked, 4)
            stream = _Rejoined(head, unpacked)
            suffix = ", " + kind
        if head[:4] in PCAP_MAGICS:
            fmt = "pcap"
        elif head[:4] == PCAPNG_MAGIC:
            fmt = "pcapng"
        elif not head and kind is not None and unpacked.cut_short:
            raise CaptureError(f"{name}: the {kind} data is cut short before its first packet")
        elif not head:
            after = f" (after {kind} decompression)" if kind else ""
            raise CaptureError(f"{name} is empty{after}")
        elif kind is not None and compression_of(head) is not None:
            inner = compression_of(head)
            raise CaptureError(
                f"{name} is compressed twice ({inner} inside {kind}): unpack it once"
            )
        else:
            raise CaptureError(f"{name} is not a pcap or pcapng capture (unknown file signature)")
    except OSError as exc:
        owned.close()
        raise CaptureError(f"cannot read {name}: {_why(exc)}") from None
    except CaptureError:
        owned.close()
        raise
    capture = Capture(stream, name, fmt + suffix, owned)
    capture.decompressed = unpacked if kind is not None else None
    return capture


class _Decoder:
    """Link, IP and TCP decoding shared by both file formats."""

    def __init__(self, capture: Capture, hot: bytes, on_segment: SegmentSink) -> None:
        self.capture = capture
        self.stats = capture.stats
        self.hot = hot
        self.on_segment = on_segment

    def count_link(self, link: int) -> None:
        types = self.stats.link_types
        types[link] = types.get(link, 0) + 1

    def ip_offset(self, link: int, buf: bytes, start: int, end: int) -> int:
        """Where the IP header starts, -1 for a non-IP frame, -2 for the slow path."""
        if link == LINK_ETHERNET:
            if end - start < 14:
                return -2
            et = buf[start + 12] << 8 | buf[start + 13]
            o = start + 14
            tags = 0
            while et in (0x8100, 0x88A8) and tags < 2 and o + 4 <= end:
                et = buf[o + 2] << 8 | buf[o + 3]
                o += 4
                tags += 1
            if et == 0x0800 or et == 0x86DD:
                return o
            return -2 if et in (0x8100, 0x88A8, 0x8864) else -1
        if link == LINK_SLL:
            if end - start < 16:
                return -2
            et = buf[start + 14] << 8 | buf[start + 15]
            return start + 16 if et in (0x0800, 0x86DD) else -1
        if link == LINK_SLL2:
            if end - start < 20:
                return -2
            et = buf[start] << 8 | buf[start + 1]
            return start + 20 if et in (0x0800, 0x86DD) else -1
        if link in (LINK_NULL, LINK_LOOP):
            return start + 4
        if link in _RAW_LINKS:
            return start
        return -2

    def packet(self, link: int, ts: float, buf: bytes, start: int, end: int) -> None:
        """Decode one packet (the bytes ``buf[start:end]``) and hand on an SMTP segment."""
        o = self.ip_offset(link, buf, start, end)
        if o == -1:
            self.stats.not_ip += 1
            return
        if o == -2:
            self.slow(link, ts, bytes(buf[start:end]))
            return
        try:
            self.ip(ts, buf, o, end)
        except IndexError:
            self.stats.malformed += 1

    def ip(self, ts: float, buf: bytes, o: int, end: int) -> None:
        first = buf[o]
        if first >> 4 == 4:
            ihl = (first & 15) * 4
            if ihl < 20:
                self.stats.malformed += 1
                return
            if buf[o + 9] != 6:
                self.stats.not_tcp += 1
                return
            if buf[o + 6] & 0x3F or buf[o + 7]:
                self.stats.ip_fragments += 1
                return
            ip_end = o + (buf[o + 2] << 8 | buf[o + 3])
            src = buf[o + 12 : o + 16]
            dst = buf[o + 16 : o + 20]
            t = o + ihl
        elif first >> 4 == 6:
            if buf[o + 6] != 6:
                if buf[o + 6] in (0, 43, 44, 60, 51, 135):  # extension headers: slow path
                    self.slow(LINK_RAW, ts, bytes(buf[o:end]))
                else:
                    self.stats.not_tcp += 1
                return
            ip_end = o + 40 + (buf[o + 4] << 8 | buf[o + 5])
            src = buf[o + 8 : o + 24]
            dst = buf[o + 24 : o + 40]
            t = o + 40
        else:
            self.stats.not_ip += 1
            return
        self.tcp(ts, buf, src, dst, t, ip_end, end)

    def tcp(
        self, ts: float, buf: bytes, src: bytes, dst: bytes, t: int, ip_end: int, end: int
    ) -> None:
        if t + 20 > end:
            self.stats.malformed += 1
            return
        sport = buf[t] << 8 | buf[t + 1]
        dport = buf[t + 2] << 8 | buf[t + 3]
        hot = self.hot
        if not (hot[sport] or hot[dport]):
            return
        doff = (buf[t + 12] >> 4) * 4
        if doff < 20 or t + doff > ip_end:
            self.stats.malformed += 1
            return
        seq = buf[t + 4] << 24 | buf[t + 5] << 16 | buf[t + 6] << 8 | buf[t + 7]
        snapped = ip_end > end
        payload = bytes(buf[t + doff : min(ip_end, end)])
        self.stats.smtp_segments += 1
        if snapped:
            self.stats.snapped += 1
        self.on_segment(ts, src, sport, dst, dport, seq, buf[t + 13], payload, snapped)

    def slow(self, link: int, ts: float, frame: bytes) -> None:
        """Frames the fast path does not know, decoded by dpkt."""
        try:
            packet = _dpkt_decode(link, frame)
        except (dpkt.UnpackError, IndexError, struct.error, ValueError):
            self.stats.malformed += 1
            return
        if packet is None:
            self.stats.unsupported_link += 1
            return
        while isinstance(packet, dpkt.Packet) and not isinstance(packet, dpkt.ip.IP | dpkt.ip6.IP6):
            packet = packet.data
        if isinstance(packet, dpkt.ip.IP):
            if packet.p != 6:
                self.stats.not_tcp += 1
            elif packet.off & 0x3FFF:
                self.stats.ip_fragments += 1
            else:
                self._dpkt_tcp(ts, bytes(packet.src), bytes(packet.dst), packet.data)
        elif isinstance(packet, dpkt.ip6.IP6):
            if isinstance(packet.data, dpkt.tcp.TCP):
                self._dpkt_tcp(ts, bytes(packet.src), bytes(packet.dst), packet.data)
            else:
                self.stats.not_tcp += 1
        else:
            self.stats.not_ip += 1

    def _dpkt_tcp(self, ts: float, src: bytes, dst: bytes, tcp: object) -> None:
        if not isinstance(tcp, dpkt.tcp.TCP):
            self.stats.malformed += 1
            return
        if not (self.hot[tcp.sport] or self.hot[tcp.dport]):
            return
        self.stats.smtp_segments += 1
        payload = bytes(tcp.data)
        self.on_segment(ts, src, tcp.sport, dst, tcp.dport, tcp.seq, tcp.flags, payload, False)


def _dpkt_decode(link: int, frame: bytes) -> Any:
    if link == LINK_ETHERNET:
        return dpkt.ethernet.Ethernet(frame)
    if link == LINK_SLL:
        return dpkt.sll.SLL(frame)
    if link == LINK_SLL2:
        return dpkt.sll2.SLL2(frame)
    if link in (LINK_NULL, LINK_LOOP):
        return dpkt.loopback.Loopback(frame)
    if link in _RAW_LINKS:
        return dpkt.ip6.IP6(frame) if frame[:1] and frame[0] >> 4 == 6 else dpkt.ip.IP(frame)
    if link == LINK_PPP:
        return dpkt.ppp.PPP(frame)
    return None


class _PcapScan(_Decoder):
    """Classic pcap: a 24-byte file header, then 16-byte record headers."""

    def run(self) -> None:
        cap = self.capture
        st = self.stats
        header = cap.read(24)
        if len(header) < 24:
            raise CaptureError(f"{cap.path} ends inside the pcap file header")
        order, unit = PCAP_MAGICS[header[:4]]
        snaplen, link = struct.unpack_from(order + "II", header, 16)
        link &= 0xFFFF  # the upper bits hold FCS information
        st.bytes_read = 24
        record = struct.Struct(order + "IIII").unpack_from
        limit = min(max(snaplen, 65535), MAX_RECORD) if snaplen else MAX_RECORD
        packet = self.packet
        buf = b""
        pos = 0
        eof = False
        first: float | None = None
        last: int | None = None  # seconds of the last good record, for the sanity check
        last_ts: float | None = None
        while True:
            if len(buf) - pos < 16 or (not eof and len(buf) - pos < 16 + limit):
                if not eof:
                    more = cap.read(CHUNK)
                    eof = not more
                    buf = buf[pos:] + more
                    pos = 0
                if len(buf) - pos < 16:
                    if len(buf) - pos:
                        st.truncated_end = True
                    st.bytes_read += len(buf) - pos
                    break
            sec, frac, caplen, wirelen = record(buf, pos)
            if (
                caplen > limit
                or (wirelen and caplen > wirelen)
                or (last is not None and abs(sec - last) > 86400 * 366)
            ):
                skip = self._resync(buf, pos, record, limit, last)
                if skip < 0:
                    if eof:
                        st.corrupt_records += 1
                        st.corrupt_bytes += len(buf) - pos
                        st.bytes_read += len(buf) - pos
                        break
                    # need more bytes to search: read on and retry
                    more = cap.read(CHUNK)
                    eof = not more
                    if len(buf) - pos > RESYNC_WINDOW or eof:
                        st.corrupt_records += 1
                        st.corrupt_bytes += len(buf) - pos
                        st.bytes_read += len(buf) - pos
                        buf, pos = more, 0
                        if eof:
                            break
                        continue
                    buf = buf[pos:] + more
                    pos = 0
                    continue
                st.corrupt_records += 1
                st.corrupt_bytes += skip
                st.bytes_read += skip
                pos += skip
                continue
            end = pos + 16 + caplen
            if end > len(buf):
                st.truncated_end = True
                st.bytes_read += len(buf) - pos
                break
            st.packets += 1
            st.packet_bytes += caplen
            st.bytes_read += 16 + caplen
            ts = sec + frac * unit
            if first is None:
                first = ts
            last = sec
            last_ts = ts
            packet(link, ts, buf, pos + 16, end)
            pos = end
        if st.packets:
            st.link_types[link] = st.packets
            st.first_time = first
            st.last_time = last_ts

    @staticmethod
    def _resync(
        buf: bytes,
        pos: int,
        record: Callable[[bytes, int], tuple[int, int, int, int]],
        limit: int,
        last: int | None,
    ) -> int:
        """Bytes to skip from ``pos`` to two consecutive plausible records, -1 if not found."""

        def plausible(at: int) -> int:
            if at + 16 > len(buf):
                return -1
            sec, frac, caplen, wirelen = record(buf, at)
            if caplen > limit or caplen > wirelen or frac >= 1_000_000_000:
                return -1
            if last is not None and abs(sec - last) > 86400:
                return -1
            return at + 16 + caplen

        for at in range(pos + 1, min(len(buf) - 16, pos + RESYNC_WINDOW)):
            nxt = plausible(at)
            if nxt < 0:
                continue
            if nxt == len(buf) or plausible(nxt) >= 0:
                return at - pos
        return -1


class _PcapngScan(_Decoder):
    """pcapng: blocks of (type, length, body, length); sections set the byte order."""

    def run(self) -> None:
        # Blocks are read from large chunks and decoded in place, as for classic pcap: one
        # read() and two copies per block would cost more than decoding the packet does.
        cap = self.capture
        st = self.stats
        order = "<"
        interfaces: list[tuple[int, float, int]] = []  # (link, seconds per tick, offset)
        first = None
        last = None
        buf = b""
        pos = 0
        eof = False
        room = MAX_BLOCK + 12  # a whole block, and the next section header's byte-order mark
        block_head = struct.Struct("<II").unpack_from
        epb = struct.Struct("<IIIII").unpack_from
        links = st.link_types
        packet = self.packet
        while True:
            if not eof and len(buf) - pos < room:
                more = cap.read(CHUNK)
                eof = not more
                buf = buf[pos:] + more
                pos = 0
            avail = len(buf) - pos
            if avail < 8:
                if avail:
                    st.truncated_end = True
                st.bytes_read += avail
                break
            head_len = 8
            btype, blen = block_head(buf, pos)
            if btype == SHB_TYPE:  # the same number in either byte order
                if avail < 12:
                    st.truncated_end = True
                    break
                mark = buf[pos + 8 : pos + 12]
                if mark not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
                    raise CaptureError(f"{cap.path}: pcapng section with an unknown byte order")
                order = "<" if mark == b"\x4d\x3c\x2b\x1a" else ">"
                block_head = struct.Struct(order + "II").unpack_from
                epb = struct.Struct(order + "IIIII").unpack_from
                btype, blen = block_head(buf, pos)
                interfaces = []
                head_len = 12
            if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                st.corrupt_records += 1
                st.stopped_at = st.bytes_read
                st.bytes_read += head_len
                # pcapng has no way to find the next block after a bad length: stop here,
                # and count what is left so the report can say how much was not read
                st.corrupt_bytes += head_len
                st.bytes_not_read = avail - head_len + _drain(cap)
                break
            if blen > avail:
                st.truncated_end = True
                st.bytes_read += avail
                break
            st.bytes_read += blen
            b = pos
            pos += blen
            if btype == 6:  # enhanced packet block
                iface, hi, lo, caplen, _wire = epb(buf, b + 8)
                if iface >= len(interfaces):
                    st.unknown_interface += 1
                    continue
                if 28 + caplen > blen - 4:
                    st.corrupt_records += 1
                    continue
                link, tick, offset = interfaces[iface]
                ts = offset + ((hi << 32) | lo) * tick
                st.packets += 1
                st.packet_bytes += caplen
                links[link] = links.get(link, 0) + 1
                if first is None:
                    first = ts
                last = ts
                packet(link, ts, buf, b + 28, b + 28 + caplen)
            elif btype == 3:  # simple packet block: interface 0, no time
                if not interfaces:
                    st.unknown_interface += 1
                    continue
                link = interfaces[0][0]
                (wire,) = struct.unpack_from(order + "I", buf, b + 8)
                caplen = min(wire, blen - 16)
                self._count(link, caplen)
                self.packet(link, last or 0.0, buf, b + 12, b + 12 + caplen)
            elif btype == 2:  # obsolete packet block
                iface, _drops, hi, lo, caplen = struct.unpack_from(order + "HHIII", buf, b + 8)
                if iface >= len(interfaces):
                    st.unknown_interface += 1
                    continue
                if 28 + caplen > blen - 4:
                    st.corrupt_records += 1
                    continue
                link, tick, offset = interfaces[iface]
                ts = offset + ((hi << 32) | lo) * tick
                self._count(link, caplen)
                first = ts if first is None else first
                last = ts
                self.packet(link, ts, buf, b + 28, b + 28 + caplen)
            elif btype == 1:  # interface description block
                interfaces.append(_interface(buf[b : b + blen], order))
            elif btype != SHB_TYPE:
                st.other_blocks += 1
        st.first_time = first
        st.last_time = last

    def _count(self, link: int, caplen: int) -> None:
        st = self.stats
        st.packets += 1
        st.packet_bytes += caplen
        self.count_link(link)


def _interface(block: bytes, order: str) -> tuple[int, float, int]:
    """(link type, seconds per timestamp unit, seconds offset) of an IDB, options by dpkt."""
    idb_class = (
        dpkt.pcapng.InterfaceDescriptionBlockLE
        if order == "<"
        else dpkt.pcapng.InterfaceDescriptionBlock
    )
    try:
        idb = idb_class(block)
    except (dpkt.UnpackError, struct.error, ValueError, IndexError):
        link = struct.unpack_from(order + "H", block, 8)[0]
        return link, 1e-6, 0
    tick = 1e-6
    offset = 0
    for opt in getattr(idb, "opts", []):
        if opt.code == 9 and opt.data:  # if_tsresol
            value = opt.data[0]
            tick = 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0 ** -(value & 0x7F)
        elif opt.code == 14 and len(opt.data) >= 8:  # if_tsoffset
            offset = struct.unpack_from(order + "q", opt.data)[0]
    return int(idb.linktype), tick, offset
