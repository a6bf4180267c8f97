"""Captures read only in part, or not at all: what relayguard pcap says and its exit code."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
from pathlib import Path
from typing import Any

import dpkt
import pytest

from tests.wire.craft import Conn, Frame, relay_session, write_pcap, write_pcapng

OURS = ["--mail-server", "192.0.2.25", "--local-domain", "example.org"]
CUT_NOTE = "the capture ends inside a packet record (cut short): read up to there"


def inbound() -> Conn:
    """A legitimate message to example.org: nothing to find."""
    return relay_session(Conn(), "friend@other.example", ["bob@example.org"])


def epb_offsets(data: bytes) -> list[int]:
    """Where each enhanced packet block of a little-endian pcapng starts."""
    out, pos = [], 0
    while pos < len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        if btype == 6:
            out.append(pos)
        pos += blen
    return out


def bad_length_at(path: Path, index: int) -> tuple[int, int]:
    """Give the ``index``-th packet block an impossible length; (its offset, file size)."""
    data = bytearray(path.read_bytes())
    at = epb_offsets(bytes(data))[index]
    struct.pack_into("<I", data, at + 4, 0x7FFFFFF0)
    path.write_bytes(bytes(data))
    return at, len(data)


def test_reading_stopped_early_on_a_clean_capture_is_unknown(
    tmp_path: Path, relayguard: Any
) -> None:
    path = write_pcapng(tmp_path / "c.pcapng", inbound().frames)
    at, size = bad_length_at(path, 3)
    assert (at, size) == (312, 2040)
    run = relayguard("pcap", str(path), "--json", *OURS)
    doc = run.json
    assert run.code == 3 and doc["exit_code"] == 3
    assert doc["capture"]["packets"] == 3
    assert doc["capture"]["stopped_at"] == 312
    assert doc["capture"]["bytes_not_read"] == 2040 - 312 - 8
    assert doc["errors"] == [
        "reading stopped at byte 312 of 2,040 (1,720 bytes not read): a pcapng block with an "
        "impossible length; too much is unread to call the capture clean"
    ]


def test_reading_stopped_early_after_a_relay_keeps_the_verdict(
    tmp_path: Path, relayguard: Any
) -> None:
    relay = relay_session(Conn(), "spam@deals.example", ["v1@target.example"])
    path = write_pcapng(tmp_path / "r.pcapng", relay.frames)
    at, size = bad_length_at(path, len(relay.frames) - 1)  # the client's last ACK
    run = relayguard("pcap", str(path), "--json", *OURS)
    doc = run.json
    assert run.code == 2 and doc["verdict"] == "abused" and doc["errors"] == []
    assert f"reading stopped at byte {at:,} of {size:,} (80 bytes not read): a pcapng block " \
        "with an impossible length" in doc["notes"]  # fmt: skip


def test_a_few_bytes_not_read_of_a_clean_capture_are_a_note(
    tmp_path: Path, relayguard: Any
) -> None:
    conns = []
    for i in range(30):  # 30 clean sessions, then the last block is damaged
        conns.append(relay_session(Conn(cport=40000 + i, time=1_796_313_600.0 + i),
                                   "friend@other.example", ["bob@example.org"]))  # fmt: skip
    frames = [f for c in conns for f in c.frames]
    path = write_pcapng(tmp_path / "n.pcapng", frames)
    bad_length_at(path, len(frames) - 1)
    run = relayguard("pcap", str(path), "--json", *OURS)
    assert run.code == 0 and run.json["errors"] == []
    assert run.json["notes"][0] == (
        "reading stopped at byte 59,720 of 59,808 (80 bytes not read): a pcapng block with an "
        "impossible length"
    )


def raw_ip(frames: list[Frame]) -> list[Frame]:
    return [Frame(f.time, f.data[14:], f.from_client, f.payload) for f in frames]


def sll(frames: list[Frame]) -> list[Frame]:
    """Linux cooked v1: packet type, ARPHRD, address length, 8 address bytes, protocol."""
    head = struct.pack("!HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01\0\0", 0x0800)
    return [Frame(f.time, head + f.data[14:], f.from_client, f.payload) for f in frames]


def sll2(frames: list[Frame]) -> list[Frame]:
    """Linux cooked v2: protocol, reserved, ifindex, ARPHRD, packet type, address length, addr."""
    head = struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, b"\x02\0\0\0\0\x01\0\0")
    return [Frame(f.time, head + f.data[14:], f.from_client, f.payload) for f in frames]


@pytest.mark.parametrize(("link", "convert"), [(101, raw_ip), (113, sll), (276, sll2)])
def test_raw_ip_and_linux_cooked_captures_are_read(
    tmp_path: Path, relayguard: Any, link: int, convert: Any
) -> None:
    relay = relay_session(Conn(), "spam@deals.example", ["v1@target.example"])
    path = write_pcap(tmp_path / "l.pcap", convert(relay.frames), linktype=link)
    run = relayguard("pcap", str(path), "--json", *OURS)
    assert run.code == 2
    assert run.json["capture"]["link_types"] == {str(link): len(relay.frames)}
    assert [f["indicator"] for f in run.json["findings"]] == ["open-relay-use"]


def test_an_unsupported_link_type_is_one_error(tmp_path: Path, relayguard: Any) -> None:
    path = write_pcap(tmp_path / "u.pcap", inbound().frames, linktype=147)
    run = relayguard("pcap", str(path), *OURS)
    assert run.code == 3
    assert run.err == (
        "relayguard: error: link type 147 is not supported: none of the 19 packet(s) could "
        "be decoded\n"
    )


def test_a_wrong_link_type_is_one_error(tmp_path: Path, relayguard: Any) -> None:
    path = write_pcap(tmp_path / "w.pcap", inbound().frames, linktype=101)  # Ethernet frames
    run = relayguard("pcap", str(path), "--json", *OURS)
    assert run.code == 3
    assert run.json["errors"] == [
        "none of the 19 packet(s) is an IP packet (the file says raw IP): was the capture "
        "written with the wrong link type?"
    ]
    assert run.json["notes"] == []


def test_all_packets_malformed_is_one_error(tmp_path: Path, relayguard: Any) -> None:
    frames = [Frame(f.time, b"", f.from_client) for f in inbound().frames[:5]]
    run = relayguard("pcap", str(write_pcap(tmp_path / "z.pcap", frames)), *OURS)
    assert (run.code, run.err) == (
        3, "relayguard: error: all 5 packet(s) are malformed: none could be decoded\n"
    )  # fmt: skip


def test_some_packets_on_an_unsupported_link_are_a_note(tmp_path: Path, relayguard: Any) -> None:
    relay = relay_session(Conn(), "spam@deals.example", ["v1@target.example"])
    path = tmp_path / "m.pcapng"
    with path.open("wb") as out:
        writer = dpkt.pcapng.Writer(out)
        for frame in relay.frames:
            writer.writepkt(frame.data, ts=frame.time)
    data = path.read_bytes()
    # a second interface of link type 147 and one packet on it
    idb = struct.pack("<IIHHI", 1, 20, 147, 0, 65535) + struct.pack("<I", 20)
    body = b"\0" * 8
    epb = struct.pack("<IIIIIII", 6, 32 + 8, 1, 0, 0, 8, 8) + body + struct.pack("<I", 40)
    path.write_bytes(data + idb + epb)
    run = relayguard("pcap", str(path), "--json", *OURS)
    assert run.code == 2
    assert "1 packet(s) on link type 147 skipped: not supported" in run.json["notes"]


@pytest.mark.parametrize(
    ("name", "compress"), [("gzip", gzip.compress), ("bzip2", bz2.compress), ("xz", lzma.compress)]
)
def test_compressed_captures_are_read(
    tmp_path: Path, relayguard: Any, name: str, compress: Any
) -> None:
    relay = relay_session(Conn(), "spam@deals.example", ["v1@target.example"])
    raw = write_pcap(tmp_path / "r.pcap", relay.frames).read_bytes()
    path = tmp_path / "r.pcap.z"
    path.write_bytes(compress(raw) + compress(raw))  # two members, as cat a.gz b.gz writes
    run = relayguard("pcap", str(path), "--json", *OURS)
    assert run.code == 2
    assert run.json["capture"]["format"] == f"pcap, {name}"
    # the second member's file header is read as a (corrupt) record: skipped, and the
    # packets after it counted
    assert run.json["capture"]["packets"] == 2 * len(relay.frames)


def truncated_gzip(tmp_path: Path) -> tuple[Path, int]:
    relay = relay_session(Conn(), "spam@deals.example", ["v1@target.example"])
    raw = write_pcap(tmp_path / "r.pcap", relay.frames).read_bytes()
    packed = gzip.compress(raw)
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(packed[: len(packed) - 30])  # the last bytes of the deflate stream
    return path, len(relay.frames)


def test_a_truncated_gzip_capture_is_read_up_to_the_cut(tmp_path: Path, relayguard: Any) -> None:
    path, frames = truncated_gzip(tmp_path)
    run = relayguard("pcap", str(path), "--json", *OURS)
    doc = run.json
    assert run.code == 2 and doc["errors"] == []
    assert doc["capture"]["truncated_end"] is True
    assert 0 < doc["capture"]["packets"] < frames
    assert CUT_NOTE in doc["notes"]


def test_a_truncated_gzip_capture_on_standard_input(
    tmp_path: Path, relayguard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = truncated_gzip(tmp_path)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    run = relayguard("pcap", "-", "--json", *OURS)
    assert run.code == 2
    assert run.json["capture"]["path"] == "standard input"
    assert CUT_NOTE in run.json["notes"]


def test_plain_pcap_times_keep_their_fraction(tmp_path: Path, relayguard: Any) -> None:
    conn = inbound()  # frames 10 ms apart from T0
    doc = relayguard("pcap", str(write_pcap(tmp_path / "t.pcap", conn.frames)), "--json").json
    assert doc["capture"]["first_time"] == "2026-12-03T16:00:00.010Z"
    assert doc["capture"]["last_time"] == "2026-12-03T16:00:00.190Z"


def test_pcapng_without_an_interface_description_says_so(tmp_path: Path, relayguard: Any) -> None:
    data = write_pcapng(tmp_path / "n.pcapng", inbound().frames).read_bytes()
    shb_len = struct.unpack_from("<I", data, 4)[0]
    idb_len = struct.unpack_from("<I", data, shb_len + 4)[0]
    path = tmp_path / "noidb.pcapng"
    path.write_bytes(data[:shb_len] + data[shb_len + idb_len :])
    run = relayguard("pcap", str(path))
    assert (run.code, run.err) == (
        3,
        f"relayguard: error: no packet could be read from {path}: its 19 packet block(s) refer "
        "to an interface that has no interface description block\n",
    )
