"""The sans-I/O dialogue: tables of bytes in -> events out, and commands -> bytes. No sockets."""

from __future__ import annotations

import contextlib

import pytest

from relayguard.probe._errors import LocalProtocolError, RemoteProtocolError
from relayguard.probe.dialogue import NEED_DATA, Closed, Dialogue, Event, Limits, Reply


def feed(dialogue: Dialogue, *chunks: bytes) -> list[Event]:
    """Feed chunks one by one; collect every event up to NEED_DATA after each."""
    events: list[Event] = []
    for chunk in chunks:
        dialogue.receive_data(chunk)
        while True:
            event = dialogue.next_event()
            events.append(event)
            if event is NEED_DATA or isinstance(event, Closed):
                break
    return events


def replies(events: list[Event]) -> list[Reply]:
    return [e for e in events if isinstance(e, Reply)]


BANNER = Reply(220, ("mail.lab.test ESMTP lab",))
EHLO = Reply(250, ("mail.lab.test", "PIPELINING", "AUTH PLAIN LOGIN", "8BITMIME"))

# (chunks as the reads deliver them, the replies they make)
CASES = [
    ([b"220 mail.lab.test ESMTP lab\r\n"], [BANNER]),
    # split mid-line, between CR and LF, and byte by byte
    ([b"220 mail.lab", b".test ESMTP lab\r", b"\n"], [BANNER]),
    ([bytes([b]) for b in b"220 mail.lab.test ESMTP lab\r\n"], [BANNER]),
    # multi-line, split across reads at every kind of place
    (
        [b"250-mail.lab.test\r\n250-PIPE", b"LINING\r\n250-AUTH PLAIN LOGIN\r",
         b"\n250 8BITMIME\r\n"],
        [EHLO],
    ),
    # bare LF line ends are tolerated
    ([b"220 mail.lab.test ESMTP lab\n"], [BANNER]),
    # a code with no text, and a code with a trailing space only
    ([b"250\r\n"], [Reply(250, ("",))]),
    ([b"250 \r\n"], [Reply(250, ("",))]),
    # postscreen's multi-line teaser banner
    ([b"220-mx.example.net ESMTP\r\n220 mx.example.net ESMTP\r\n"],
     [Reply(220, ("mx.example.net ESMTP", "mx.example.net ESMTP"))]),
    # invalid UTF-8 is kept visible, escaped
    ([b"220 caf\xe9\r\n"], [Reply(220, ("caf\\xe9",))]),
]  # fmt: skip


@pytest.mark.parametrize(("chunks", "expected"), CASES)
def test_replies_from_chunks(chunks: list[bytes], expected: list[Reply]) -> None:
    dialogue = Dialogue()
    events = feed(dialogue, *chunks)
    assert replies(events) == expected
    assert events[-1] is NEED_DATA
    assert dialogue.awaiting is None
    assert dialogue.bytes_received == sum(len(c) for c in chunks)


def test_two_replies_in_one_read_are_two_events() -> None:
    dialogue = Dialogue()
    dialogue.receive_data(b"220 hi\r\n250 ok\r\n")
    assert dialogue.next_event() == Reply(220, ("hi",))
    assert dialogue.has_unread
    assert dialogue.next_event() == Reply(250, ("ok",))
    assert dialogue.next_event() is NEED_DATA


@pytest.mark.parametrize(
    ("reply", "enhanced"),
    [
        (Reply(554, ("5.7.1 <x@example.net>: Relay access denied",)), "5.7.1"),
        (Reply(250, ("2.1.5 Ok",)), "2.1.5"),
        (Reply(454, ("4.7.1 <x@example.net>: Relay access denied",)), "4.7.1"),
        (Reply(550, ("5.1.10 RESOLVER.ADR.RecipientNotFound",)), "5.1.10"),
        # qmail writes it at the end
        (Reply(553, ("sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",)),
         "5.7.1"),
        # class digit must match the reply code
        (Reply(550, ("4.7.1 confused",)), None),
        (Reply(250, ("Ok",)), None),
        (Reply(250, ("1.2 version",)), None),
        (Reply(250, ()), None),
    ],
)  # fmt: skip
def test_enhanced_status_code(reply: Reply, enhanced: str | None) -> None:
    assert reply.enhanced == enhanced


def test_wire_form() -> None:
    assert EHLO.wire() == [
        "250-mail.lab.test",
        "250-PIPELINING",
        "250-AUTH PLAIN LOGIN",
        "250 8BITMIME",
    ]
    assert Reply(250, ("",)).wire() == ["250"]


# (chunks, the RemoteProtocolError message)
BAD = [
    ([b"hello\r\n"], "not an SMTP reply line: hello"),
    ([b"120 early\r\n"], "not an SMTP reply line: 120 early"),
    ([b"2500 x\r\n"], "not an SMTP reply line: 2500 x"),
    # the server's words as sanitised text, never a Python bytes repr
    ([b"999-weird\r\n"], "not an SMTP reply line: 999-weird"),
    ([b"\x1b[2Jx\xff\ty\r\n"], "not an SMTP reply line: \\x1b[2Jx\\xff\\x09y"),
    ([b"250-a\r\n251 b\r\n"], "reply code changed from 250 to 251 inside one reply"),
    ([b"220 a\x00b\r\n"], "NUL byte in a reply"),
    ([b"220 " + b"x" * 3000], "reply line longer than 2048 bytes"),
    ([b"220 " + b"x" * 1000, b"x" * 1100], "reply line longer than 2048 bytes"),
    ([b"220 " + b"x" * 2100 + b"\r\n"], "reply line longer than 2048 bytes"),
    ([b"250-x\r\n" * 101], "reply longer than 100 lines"),
]  # fmt: skip


@pytest.mark.parametrize(("chunks", "message"), BAD)
def test_protocol_errors(chunks: list[bytes], message: str) -> None:
    dialogue = Dialogue()
    with pytest.raises(RemoteProtocolError) as caught:
        feed(dialogue, *chunks)
    assert str(caught.value) == message
    # a failed dialogue stays failed
    with pytest.raises(RemoteProtocolError):
        dialogue.next_event()
    with pytest.raises(RemoteProtocolError):
        dialogue.send("QUIT")


def test_reply_and_session_byte_bounds() -> None:
    small = Dialogue(Limits(reply_bytes=100, session_bytes=10_000))
    with pytest.raises(RemoteProtocolError, match="reply longer than 100 bytes"):
        feed(small, b"250-" + b"x" * 60 + b"\r\n" + b"250-" + b"y" * 60 + b"\r\n")
    session = Dialogue(Limits(session_bytes=50))
    feed(session, b"220 " + b"x" * 30 + b"\r\n")
    with pytest.raises(RemoteProtocolError, match="the server sent more than 50 bytes"):
        session.receive_data(b"x" * 20)


def test_huge_banner_fails_after_the_first_chunk() -> None:
    dialogue = Dialogue()
    with pytest.raises(RemoteProtocolError, match="longer than 2048"):
        feed(dialogue, b"220 " + b"x" * 16_384)
    assert dialogue.bytes_received == 16_388


@pytest.mark.parametrize(
    ("chunks", "incomplete"),
    [
        ([b"220 hi\r\n", b""], False),
        ([b"220 hi\r\n250-partial\r\n", b""], True),
        ([b"220 hi\r\n250 no line end", b""], True),
        ([b""], False),
    ],
)
def test_end_of_stream(chunks: list[bytes], incomplete: bool) -> None:
    dialogue = Dialogue()
    events = feed(dialogue, *chunks)
    assert events[-1] == Closed(incomplete=incomplete)
    assert dialogue.next_event() == Closed(incomplete=incomplete)
    with pytest.raises(LocalProtocolError):
        dialogue.receive_data(b"more")


# -- sending ----------------------------------------------------------------------------------
def ready() -> Dialogue:
    dialogue = Dialogue()
    feed(dialogue, b"220 hi\r\n")
    return dialogue


@pytest.mark.parametrize(
    ("verb", "argument", "wire"),
    [
        ("EHLO", "probe.example.com", b"EHLO probe.example.com\r\n"),
        ("mail", "FROM:<>", b"MAIL FROM:<>\r\n"),
        ("RCPT", 'TO:<"relaytest@example.net"@[127.0.0.1]>',
         b'RCPT TO:<"relaytest@example.net"@[127.0.0.1]>\r\n'),
        ("RSET", "", b"RSET\r\n"),
        ("QUIT", "", b"QUIT\r\n"),
    ],
)  # fmt: skip
def test_send(verb: str, argument: str, wire: bytes) -> None:
    dialogue = ready()
    assert dialogue.send(verb, argument) == wire
    assert dialogue.awaiting == verb.upper()


def test_one_command_at_a_time() -> None:
    dialogue = ready()
    dialogue.send("MAIL", "FROM:<>")
    with pytest.raises(LocalProtocolError, match="the reply to MAIL has not been read"):
        dialogue.send("RCPT", "TO:<a@example.net>")
    feed(dialogue, b"250 ok\r\n")
    assert dialogue.send("RCPT", "TO:<a@example.net>") == b"RCPT TO:<a@example.net>\r\n"


def test_banner_must_come_first() -> None:
    with pytest.raises(LocalProtocolError, match="the reply to CONNECT has not been read"):
        Dialogue().send("EHLO", "x.example")


def test_unasked_data_before_a_command_is_refused() -> None:
    dialogue = Dialogue()
    dialogue.receive_data(b"220 hi\r\n250 unasked\r\n")
    assert dialogue.next_event() == Reply(220, ("hi",))
    with pytest.raises(RemoteProtocolError, match="the server sent data nobody asked for"):
        dialogue.send("EHLO", "x.example")


@pytest.mark.parametrize(
    ("verb", "argument", "message"),
    [
        ("AUTH", "PLAIN AGFsaWNlAHNlY3JldA==", "AUTH is never sent by the probe"),
        ("BDAT", "10 LAST", "BDAT is never sent by the probe"),
        ("DATA", "", "DATA is never sent without --prove-to"),
        ("RCPT", "TO:<a@example.net>\r\nDATA", "command arguments must be printable ASCII"),
        ("RCPT", "TO:<é@example.net>", "command arguments must be printable ASCII"),
        ("RCPT", "TO:<" + "a" * 600 + "@example.net>", "command longer than 512 bytes"),
    ],
)
def test_refused_commands(verb: str, argument: str, message: str) -> None:
    dialogue = ready()
    with pytest.raises(LocalProtocolError) as caught:
        dialogue.send(verb, argument)
    assert str(caught.value) == message
    assert dialogue.awaiting is None


def test_one_message_when_allowed() -> None:
    dialogue = Dialogue(allow_data=True)
    feed(dialogue, b"220 hi\r\n")
    with pytest.raises(LocalProtocolError, match="only a 354"):
        dialogue.send_message(b"x")
    assert dialogue.send("DATA") == b"DATA\r\n"
    feed(dialogue, b"354 go ahead\r\n")
    wire = dialogue.send_message(b"Subject: t\n\n.hidden\nline\r\n..two\n")
    assert wire == b"Subject: t\r\n\r\n..hidden\r\nline\r\n...two\r\n.\r\n"
    assert dialogue.awaiting == "."
    feed(dialogue, b"250 2.0.0 Ok: queued as ABC\r\n")
    with pytest.raises(LocalProtocolError, match="only one message is ever sent"):
        dialogue.send("DATA")


def test_data_refused_by_the_server_allows_no_message() -> None:
    dialogue = Dialogue(allow_data=True)
    feed(dialogue, b"220 hi\r\n")
    dialogue.send("DATA")
    feed(dialogue, b"554 5.5.1 Error: no valid recipients\r\n")
    with pytest.raises(LocalProtocolError, match="only a 354"):
        dialogue.send_message(b"x")


def test_starttls() -> None:
    dialogue = ready()
    with pytest.raises(LocalProtocolError, match="STARTTLS was not accepted"):
        dialogue.start_tls()
    dialogue.send("STARTTLS")
    feed(dialogue, b"220 2.0.0 Ready to start TLS\r\n")
    with pytest.raises(LocalProtocolError, match="the TLS handshake must come first"):
        dialogue.send("EHLO", "x.example")
    dialogue.start_tls()
    assert dialogue.send("EHLO", "x.example") == b"EHLO x.example\r\n"


def test_starttls_plaintext_injection() -> None:
    dialogue = ready()
    dialogue.send("STARTTLS")
    dialogue.receive_data(b"220 2.0.0 Ready to start TLS\r\n250 injected\r\n")
    assert dialogue.next_event() == Reply(220, ("2.0.0 Ready to start TLS",))
    with pytest.raises(RemoteProtocolError, match="plaintext injection"):
        dialogue.start_tls()


def test_fuzz_never_raises_anything_else() -> None:
    """Random bytes, whole and byte by byte: replies, NEED_DATA, Closed or our error only."""
    import random

    rng = random.Random(1234)
    alphabet = b"0123456789 -\r\n250-220 abc\x00\xff"
    for _ in range(300):
        blob = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 200)))
        for chunks in ([blob, b""], [bytes([b]) for b in blob] + [b""]):
            dialogue = Dialogue(Limits(line=64, lines=5))
            with contextlib.suppress(RemoteProtocolError):
                feed(dialogue, *chunks)
