"""relayguard pcap says why a capture could not be read, not only that it could not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.wire.craft import Conn, Frame, relay_session, write_pcap


def test_a_short_snap_length_is_named_in_a_note(tmp_path: Path, relayguard: Any) -> None:
    conn = relay_session(Conn(), "spam@deals.example", ["v1@target.example"])
    # what tcpdump -s 96 writes: every frame cut to its first 96 bytes
    frames = [Frame(f.time, f.data[:96], f.from_client, f.payload) for f in conn.frames]
    path = write_pcap(tmp_path / "s96.pcap", frames, snaplen=96)
    run = relayguard(
        "pcap", str(path), "--json", "--mail-server", "192.0.2.25", "--local-domain", "example.org"
    )
    doc = run.json
    # 54 bytes of headers leave 42 of payload: only the EHLO reply is longer, and every
    # reply after it can no longer be paired with its command, so the relay goes unseen
    assert doc["capture"]["snapped"] == 1
    assert doc["findings"] == []
    assert doc["sessions"]["broken_reasons"] == {"bytes missing from the server stream": 1}
    assert doc["notes"] == [
        "1 TCP segment(s) cut short by the capture's snap length: their sessions could not "
        "be read past them (capture with tcpdump -s 0)"
    ]
