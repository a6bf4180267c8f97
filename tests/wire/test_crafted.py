"""relayguard pcap on crafted captures: reassembly edge cases, the dialogue, the findings.

Each capture is written by the test with dpkt (tests/wire/craft.py); the assertions are the
exact counts and findings the sessions in it must produce.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from tests.wire.craft import (
    BANNER,
    EHLO_REPLY,
    MESSAGE,
    T0,
    Conn,
    b64,
    frames_of,
    relay_session,
    write_pcap,
    write_pcapng,
)

OURS = ["--mail-server", "192.0.2.25", "--local-domain", "example.org"]


def pcap_json(relayguard: Any, path: Path, *args: str) -> dict[str, Any]:
    run = relayguard("pcap", str(path), "--json", *OURS, *args)
    assert run.err == ""
    doc: dict[str, Any] = run.json
    assert doc["exit_code"] == run.code
    return doc


def by_indicator(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in doc["findings"]:
        out.setdefault(f["indicator"], []).append(f)
    return out


def test_open_relay_use_from_one_session(tmp_path: Path, relayguard: Any) -> None:
    conn = relay_session(Conn(), "spam@deals.example", ["v1@target.example", "v2@other.example"])
    doc = pcap_json(relayguard, write_pcap(tmp_path / "r.pcap", conn.frames))
    assert doc["verdict"] == "abused" and doc["exit_code"] == 2
    (relay,) = by_indicator(doc)["open-relay-use"]
    assert relay["subject"] == {"kind": "ip", "value": "198.51.100.7"}
    assert relay["severity"] == "critical"
    assert relay["details"]["messages"] == 1
    assert relay["details"]["external_recipients"] == 2
    assert relay["details"]["messages_delivered"] == 1
    assert relay["mitigations"][0] == "close-open-relay"
    s = doc["sessions"]
    assert (s["sessions"], s["messages"], s["recipients_accepted"], s["midstream"]) == (1, 1, 2, 0)


def test_inbound_mail_for_our_domain_and_its_subdomains_is_not_relaying(
    tmp_path: Path, relayguard: Any
) -> None:
    conn = relay_session(
        Conn(),
        "friend@outside.example",
        ["bob@example.org", "alice@MAIL.Example.ORG.", '"john doe"@example.org'],
    )
    doc = pcap_json(relayguard, write_pcap(tmp_path / "in.pcap", conn.frames))
    assert doc["findings"] == [] and doc["verdict"] == "clean" and doc["exit_code"] == 0
    assert doc["sessions"]["recipients_accepted"] == 3
    assert doc["sessions"]["external_recipients"] == 0


def test_look_alike_domain_is_relaying(tmp_path: Path, relayguard: Any) -> None:
    conn = relay_session(Conn(), "a@b.example", ["x@example.org.evil.example", "y@myexample.org"])
    doc = pcap_json(relayguard, write_pcap(tmp_path / "look.pcap", conn.frames))
    (relay,) = by_indicator(doc)["open-relay-use"]
    assert relay["details"]["external_recipients"] == 2


def _reordered(frames: list[Any]) -> list[Any]:
    """Swap every data segment of the client with the next frame of the client."""
    out = list(frames)
    client_data = [i for i, f in enumerate(out) if f.from_client and f.payload]
    for a, b in zip(client_data[::2], client_data[1::2], strict=False):
        out[a], out[b] = out[b], out[a]
    return out


@pytest.mark.parametrize("shape", ["in order", "out of order", "retransmitted", "split"])
def test_reassembly_gives_the_same_dialogue(tmp_path: Path, relayguard: Any, shape: str) -> None:
    conn = Conn().open()
    conn.s(BANNER)
    conn.c("EHLO spambot.example\r\n")
    conn.s(EHLO_REPLY)
    # pipelined: MAIL and three RCPTs in one segment each, replies in one segment
    conn.c("MAIL FROM:<spam@deals.example>\r\n")
    conn.c("RCPT TO:<v1@target.example>\r\n")
    conn.c("RCPT TO:<v2@target.example>\r\n")
    conn.c("RCPT TO:<bob@example.org>\r\n")
    conn.s("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n")
    conn.c("DATA\r\n")
    conn.s("354 go ahead\r\n")
    conn.c(MESSAGE)
    conn.s("250 2.0.0 Ok: queued\r\n")
    conn.c("QUIT\r\n")
    conn.s("221 Bye\r\n")
    conn.close()
    frames = conn.frames
    if shape == "out of order":
        frames = _reordered(frames)
    elif shape == "retransmitted":
        frames = [f for frame in frames for f in ([frame, frame] if frame.payload else [frame])]
    elif shape == "split":
        split = Conn(time=T0).open()
        for frame in conn.frames[3:]:
            if not frame.payload:
                continue
            for i in range(0, len(frame.payload), 3):
                (split.c if frame.from_client else split.s)(frame.payload[i : i + 3])
        frames = split.close().frames
    doc = pcap_json(relayguard, write_pcap(tmp_path / "p.pcap", frames))
    (relay,) = by_indicator(doc)["open-relay-use"]
    assert relay["details"]["external_recipients"] == 2
    assert relay["details"]["messages_delivered"] == 1
    assert doc["sessions"]["recipients_accepted"] == 3
    assert doc["sessions"]["broken"] == 0
    if shape == "retransmitted":
        assert doc["reassembly"]["retransmissions"] == 14  # every data segment once more


def test_overlapping_retransmission_delivers_only_the_new_bytes(
    tmp_path: Path, relayguard: Any
) -> None:
    conn = Conn().open()
    conn.s(BANNER)
    first = conn.c("EHLO a.example\r\nMAIL FROM:<x@y.example>\r\n")
    conn.s("250 hi\r\n")
    # the same bytes again with the next command appended: a repacketised retransmission
    conn.cseq -= len(first.payload)
    conn.c(first.payload + b"RCPT TO:<v@target.example>\r\n")
    conn.s("250 ok\r\n250 ok\r\nx")  # the "x" is the start of a reply never finished
    conn.close()
    doc = pcap_json(relayguard, write_pcap(tmp_path / "o.pcap", conn.frames))
    (relay,) = by_indicator(doc)["open-relay-use"]
    assert relay["details"]["external_recipients"] == 1
    assert relay["details"]["messages_delivered"] == 0


def _bruteforce(n: int, client: str = "203.0.113.9") -> list[Conn]:
    conns = []
    for i in range(n):
        conn = Conn(client=client, cport=41000 + i, sport=587, time=T0 + i * 10).open()
        conn.dialogue(("", BANNER), ("EHLO ylmf-pc\r\n", EHLO_REPLY))
        if i % 2:
            conn.dialogue(
                (
                    f"AUTH PLAIN {b64(chr(0) + f'user{i % 3}@example.org' + chr(0) + 'pw')}\r\n",
                    "535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6\r\n",
                )
            )
        else:
            conn.dialogue(
                ("AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"),
                (b64(f"user{i % 3}@example.org") + "\r\n", "334 UGFzc3dvcmQ6\r\n"),
                (b64("secret-pass") + "\r\n", "535 5.7.8 Error: authentication failed\r\n"),
            )
        conns.append(conn.dialogue(("QUIT\r\n", "221 Bye\r\n")).close())
    return conns


def test_auth_bruteforce_uses_the_log_threshold(tmp_path: Path, relayguard: Any) -> None:
    below = pcap_json(relayguard, write_pcap(tmp_path / "b9.pcap", frames_of(*_bruteforce(9))))
    assert below["findings"] == [] and below["sessions"]["auth_failures"] == 9
    doc = pcap_json(relayguard, write_pcap(tmp_path / "b12.pcap", frames_of(*_bruteforce(12))))
    (brute,) = by_indicator(doc)["auth-bruteforce"]
    assert brute["subject"] == {"kind": "ip", "value": "203.0.113.9"}
    assert brute["count"] == 12 and brute["severity"] == "medium"
    users = {u["value"]: u["count"] for u in brute["details"]["usernames"]}
    assert users == {"user0@example.org": 4, "user1@example.org": 4, "user2@example.org": 4}
    assert doc["verdict"] == "suspicious" and doc["exit_code"] == 1
    # the passwords are never decoded, so never shown
    assert "secret-pass" not in str(doc) and "c2VjcmV0" not in str(doc)


def test_starttls_makes_the_rest_opaque(tmp_path: Path, relayguard: Any) -> None:
    conn = (
        Conn()
        .open()
        .dialogue(
            ("", BANNER),
            ("EHLO a.example\r\n", EHLO_REPLY),
            ("STARTTLS\r\n", "220 2.0.0 Ready to start TLS\r\n"),
        )
    )
    conn.c(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfcRCPT TO:<v@target.example>\r\n")
    conn.s(b"\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03")
    conn.close()
    doc = pcap_json(relayguard, write_pcap(tmp_path / "tls.pcap", conn.frames))
    assert doc["findings"] == []
    assert doc["sessions"]["tls"] == 1 and doc["sessions"]["broken"] == 0
    assert any("encrypted" in n for n in doc["notes"])


def test_bdat_and_ipv6(tmp_path: Path, relayguard: Any) -> None:
    conn = Conn(client="2001:db8::7", server="2001:db8::25").open()
    conn.dialogue(
        ("", BANNER),
        ("EHLO a.example\r\n", EHLO_REPLY),
        ("MAIL FROM:<a@b.example>\r\nRCPT TO:<v@target.example>\r\n", "250 ok\r\n250 ok\r\n"),
        ("BDAT 10\r\n0123456789", "250 2.0.0 10 octets\r\n"),
        ("BDAT 5 LAST\r\nQUIT\r", "250 2.0.0 Ok: queued\r\n"),
        ("\n", "221 Bye\r\n"),
    )
    conn.close()
    doc = pcap_json(
        relayguard, write_pcap(tmp_path / "v6.pcap", conn.frames), "--mail-server", "2001:db8::25"
    )
    (relay,) = by_indicator(doc)["open-relay-use"]
    assert relay["subject"]["value"] == "2001:db8::7"
    assert relay["details"]["messages_delivered"] == 1


def test_pcapng_and_gzip_read_the_same(tmp_path: Path, relayguard: Any) -> None:
    conn = relay_session(Conn(), "s@x.example", ["v@target.example"])
    ng = write_pcapng(tmp_path / "r.pcapng", conn.frames)
    plain = write_pcap(tmp_path / "r.pcap", conn.frames, nano=True)
    packed = tmp_path / "r.pcap.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    docs = [pcap_json(relayguard, p) for p in (ng, plain, packed)]
    assert [d["capture"]["format"] for d in docs] == ["pcapng", "pcap", "pcap, gzip"]
    assert {len(d["findings"]) for d in docs} == {1}
    assert {d["capture"]["packets"] for d in docs} == {len(conn.frames)}


def test_truncated_capture_reports_what_it_read(tmp_path: Path, relayguard: Any) -> None:
    good = relay_session(Conn(), "s@x.example", ["v@target.example"])
    later = relay_session(Conn(cport=40009, time=T0 + 60), "s@x.example", ["w@target.example"])
    path = write_pcap(tmp_path / "t.pcap", frames_of(good, later))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])  # cut inside the last record
    doc = pcap_json(relayguard, path)
    assert doc["capture"]["truncated_end"] is True
    assert doc["capture"]["packets"] == len(good.frames) + len(later.frames) - 1
    (relay,) = by_indicator(doc)["open-relay-use"]
    assert relay["details"]["messages"] == 2  # both transactions were complete before the cut
    assert doc["exit_code"] == 2


def test_corrupt_record_in_the_middle_is_skipped(tmp_path: Path, relayguard: Any) -> None:
    one = relay_session(Conn(), "s@x.example", ["v@target.example"])
    two = relay_session(Conn(cport=40009, time=T0 + 60), "s@x.example", ["w@target.example"])
    path = write_pcap(tmp_path / "c.pcap", frames_of(one))
    head = path.read_bytes()
    rest = write_pcap(tmp_path / "c2.pcap", two.frames).read_bytes()[24:]
    garbage = b"\xff\xff\xff\x7f" * 8  # a record header claiming a 2 GB packet, and more junk
    path.write_bytes(head + garbage + rest)
    doc = pcap_json(relayguard, path)
    assert doc["capture"]["corrupt_records"] == 1
    assert doc["capture"]["corrupt_bytes"] == len(garbage)
    assert doc["capture"]["packets"] == len(one.frames) + len(two.frames)
    (relay,) = by_indicator(doc)["open-relay-use"]
    assert relay["details"]["messages"] == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"hello, I am a text file\n", "is not a pcap or pcapng capture"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "ends inside the pcap file header"),
        (b"\x1f\x8b\x08\x00garbage", "the gzip data is cut short before its first packet"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xff\xff", "cannot read"),
    ],
)
def test_unreadable_input_is_one_line_and_exit_3(
    tmp_path: Path, relayguard: Any, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    run = relayguard("pcap", str(path))
    assert run.code == 3
    assert run.out == ""
    assert run.err.count("\n") == 1 and message in run.err and run.err.startswith("relayguard:")


def test_missing_file_and_bad_options(tmp_path: Path, relayguard: Any) -> None:
    run = relayguard("pcap", str(tmp_path / "nope.pcap"))
    assert run.code == 3 and "No such file" in run.err
    path = write_pcap(tmp_path / "x.pcap", Conn().open().frames)
    run = relayguard("pcap", str(path), "--mail-server", "not-an-ip")
    assert run.code == 3 and "--mail-server: not an address or network" in run.err
