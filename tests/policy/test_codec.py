"""The sans-I/O policy codec: tables of bytes in -> events out, replies -> bytes. No sockets."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from relayguard.policy._errors import LocalProtocolError, RemoteProtocolError
from relayguard.policy.codec import (
    DUNNO,
    MAX_ATTRIBUTES,
    MAX_BUFFERED_BYTES,
    MAX_REPLY_TEXT,
    NEED_DATA,
    Action,
    ConnectionClosed,
    Event,
    Limits,
    PolicyConnection,
    PolicyReply,
    PolicyRequest,
)

# A request as Postfix 3.7 sends it at RCPT for an authenticated submission client
# (attribute order and empty values as in smtpd_check.c).
RCPT = (
    b"request=smtpd_access_policy\n"
    b"protocol_state=RCPT\n"
    b"protocol_name=ESMTP\n"
    b"client_address=192.0.2.44\n"
    b"client_name=mail.example.net\n"
    b"client_port=53412\n"
    b"reverse_client_name=mail.example.net\n"
    b"server_address=192.0.2.1\n"
    b"server_port=587\n"
    b"helo_name=[192.0.2.44]\n"
    b"sender=Alice@Example.ORG\n"
    b"recipient=bob@example.com\n"
    b"recipient_count=0\n"
    b"queue_id=\n"
    b"instance=1a2b.65f0c3e1.8d4f2.0\n"
    b"size=0\n"
    b"etrn_domain=\n"
    b"stress=\n"
    b"sasl_method=PLAIN\n"
    b"sasl_username=alice@example.org\n"
    b"sasl_sender=\n"
    b"ccert_subject=\n"
    b"encryption_protocol=TLSv1.3\n"
    b"encryption_cipher=TLS_AES_256_GCM_SHA384\n"
    b"encryption_keysize=256\n"
    b"policy_context=rcpt\n"
    b"compatibility_level=3.6\n"
    b"mail_version=3.7.11\n"
    b"\n"
)
EOM = (
    b"request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nprotocol_name=ESMTP\n"
    b"sender=alice@example.org\nrecipient=\nrecipient_count=3\nsize=48213\n"
    b"instance=1a2b.65f0c3e1.8d4f2.0\nsasl_username=alice@example.org\n\n"
)


def feed(conn: PolicyConnection, *chunks: bytes) -> list[Event]:
    """Feed chunks one by one; collect every event up to NEED_DATA or the close."""
    events: list[Event] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            event = conn.next_event()
            events.append(event)
            if event is NEED_DATA or isinstance(event, ConnectionClosed):
                break
    return events


def requests(events: list[Event]) -> list[dict[str, str]]:
    return [dict(e.attributes) for e in events if isinstance(e, PolicyRequest)]


def test_real_request_accessors() -> None:
    (req,) = [e for e in feed(PolicyConnection(), RCPT) if isinstance(e, PolicyRequest)]
    assert len(req.attributes) == 28
    assert (req.request, req.protocol_state, req.protocol_name) == (
        "smtpd_access_policy",
        "RCPT",
        "ESMTP",
    )
    assert (req.sasl_username, req.sasl_method, req.sasl_sender) == (
        "alice@example.org",
        "PLAIN",
        "",
    )
    assert (req.sender, req.sender_domain) == ("Alice@Example.ORG", "example.org")
    assert (req.recipient, req.recipient_domain, req.recipient_count) == (
        "bob@example.com",
        "example.com",
        0,
    )
    assert (req.client_address, req.client_name, req.reverse_client_name) == (
        "192.0.2.44",
        "mail.example.net",
        "mail.example.net",
    )
    assert (req.client_port, req.server_address, req.server_port) == (53412, "192.0.2.1", 587)
    assert (req.instance, req.queue_id, req.size, req.stress) == (
        "1a2b.65f0c3e1.8d4f2.0",
        "",
        0,
        False,
    )
    assert (req.helo_name, req.policy_context, req.encryption_protocol) == (
        "[192.0.2.44]",
        "rcpt",
        "TLSv1.3",
    )
    assert req.get("mail_version") == "3.7.11"
    assert req.get("absent", "-") == "-"


CASES: list[tuple[str, list[bytes], list[dict[str, str]]]] = [
    ("one", [b"request=x\nsender=a@b\n\n"], [{"request": "x", "sender": "a@b"}]),
    ("two in one read", [b"a=1\n\nb=2\n\n"], [{"a": "1"}, {"b": "2"}]),
    ("split mid-line", [b"sen", b"der=a@b\n", b"\n"], [{"sender": "a@b"}]),
    ("split between LFs", [b"a=1\n", b"\n"], [{"a": "1"}]),
    ("value with =", [b"ccert_subject=CN=x,O=y\n\n"], [{"ccert_subject": "CN=x,O=y"}]),
    ("empty values", [b"sender=\nsize=0\n\n"], [{"sender": "", "size": "0"}]),
    ("duplicate: last wins", [b"sender=a\nsender=b\n\n"], [{"sender": "b"}]),
    ("unknown kept", [b"x_new_attr=v\n\n"], [{"x_new_attr": "v"}]),
    ("name lower-cased", [b"Sender=a\nsender=b\nX=1\n\n"], [{"sender": "b", "x": "1"}]),
    ("CR inside value kept", [b"helo_name=a\rb\n\n"], [{"helo_name": "a\rb"}]),
    ("invalid UTF-8 replaced", [b"sender=j\xe9r@x\n\n"], [{"sender": "j\ufffdr@x"}]),
    ("UTF-8 split across reads", [b"sender=\xc3", b"\xa9@x\n\n"], [{"sender": "\xe9@x"}]),
    ("xtext left encoded", [b"ccert_subject=a+2Bb\n\n"], [{"ccert_subject": "a+2Bb"}]),
]


@pytest.mark.parametrize(("chunks", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_table(chunks: list[bytes], expected: list[dict[str, str]]) -> None:
    conn = PolicyConnection()
    events = feed(conn, *chunks)
    assert requests(events) == expected
    assert events[-1] is NEED_DATA
    assert conn.unanswered == len(expected)


def test_every_split_position_of_a_real_request() -> None:
    whole = requests(feed(PolicyConnection(), RCPT))
    for cut in range(1, len(RCPT)):
        conn = PolicyConnection()
        assert requests(feed(conn, RCPT[:cut], RCPT[cut:])) == whole, cut


def test_byte_by_byte_persistent_connection() -> None:
    stream = RCPT + EOM + RCPT
    conn = PolicyConnection()
    events = feed(conn, *(stream[i : i + 1] for i in range(len(stream))))
    got = requests(events)
    assert [r["protocol_state"] for r in got] == ["RCPT", "END-OF-MESSAGE", "RCPT"]
    assert got[1]["recipient_count"] == "3"
    assert len(events) == len(stream) + 3  # a NEED_DATA after every byte, plus 3 requests
    assert [conn.send(DUNNO) for _ in range(3)] == [b"action=DUNNO\n\n"] * 3


def test_close() -> None:
    conn = PolicyConnection()
    events = feed(conn, EOM, b"")
    assert len(events) == 3
    assert isinstance(events[0], PolicyRequest)
    assert (events[0].protocol_state, events[0].recipient_count, events[0].size) == (
        "END-OF-MESSAGE",
        3,
        48213,
    )
    assert events[1:] == [NEED_DATA, ConnectionClosed(incomplete=False)]
    conn = PolicyConnection()
    assert feed(conn, b"request=smtpd", b"") == [NEED_DATA, ConnectionClosed(incomplete=True)]
    assert conn.next_event() == ConnectionClosed(incomplete=False)
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"x")


def test_request_pending_at_close_is_still_returned() -> None:
    conn = PolicyConnection()
    conn.receive_data(b"a=1\n\n")
    conn.receive_data(b"")
    assert requests([conn.next_event()]) == [{"a": "1"}]
    assert conn.next_event() == ConnectionClosed(incomplete=False)


HOSTILE: list[tuple[str, list[bytes], str]] = [
    ("1 MB attribute", [b"sender=" + b"a" * 1024 * 1024], "more than"),
    ("1 MB attribute in 4 KiB reads", [b"sender="] + [b"a" * 4096] * 256, "longer than 65536"),
    ("long line, complete", [b"sender=" + b"a" * 20000 + b"\n\n"], "line longer than 16384"),
    ("10k attributes", [b"a=b\n" * 10000 + b"\n"], "more than"),
    ("10k attributes, small reads", [b"a=b\n"] * 10000, "more than 128 attributes"),
    ("129 attributes", [b"a=b\n" * (MAX_ATTRIBUTES + 1) + b"\n"], "more than 128 attributes"),
    ("no '='", [b"request smtpd_access_policy\n\n"], "without '='"),
    ("garbage", [b"GET / HTTP/1.1\nHost: x\n\n"], "without '='"),
    ("empty name", [b"=x\n\n"], "empty attribute name"),
    ("NUL in value", [b"sender=a\x00b\n\n"], "NUL byte"),
    ("NUL in name", [b"sen\x00der=a\n\n"], "NUL byte"),
    ("non-ASCII name", [b"s\xc3\xa9nder=a\n\n"], "not printable ASCII"),
    ("space in name", [b"send er=a\n\n"], "not printable ASCII"),
    ("empty request", [b"\n"], "empty request"),
    ("extra empty line", [b"a=1\n\n\n"], "empty request"),
    ("CR LF request", [b"request=x\r\nsender=a\r\n\r\n"], "CR LF"),
    ("CR LF split", [b"request=x\r\n", b"\r", b"\n"], "CR LF"),
    ("CR LF at start", [b"\r\n"], "CR LF"),
]


@pytest.mark.parametrize(("chunks", "why"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_input_raises_and_stays_failed(chunks: list[bytes], why: str) -> None:
    conn = PolicyConnection()
    with pytest.raises(RemoteProtocolError, match=why):
        feed(conn, *chunks)
    with pytest.raises(RemoteProtocolError, match=why):
        conn.next_event()
    assert len(conn._buf) == 0  # nothing kept once failed


def test_buffer_bound() -> None:
    conn = PolicyConnection()
    conn.receive_data(b"a=1\n\n" * (MAX_BUFFERED_BYTES // 5))
    with pytest.raises(RemoteProtocolError, match="bytes buffered"):
        conn.receive_data(b"a=1\n\n")


def test_requests_before_an_error_are_returned_first() -> None:
    events: list[Event] = []
    conn = PolicyConnection()
    conn.receive_data(b"a=1\n\nbroken\n\n")
    events.append(conn.next_event())
    assert requests(events) == [{"a": "1"}]
    with pytest.raises(RemoteProtocolError, match="without '='"):
        conn.next_event()


def test_custom_limits() -> None:
    conn = PolicyConnection(Limits(line=10, attributes=2, request=30, buffered=40))
    assert requests(feed(conn, b"a=123456\nb=1\n\n")) == [{"a": "123456", "b": "1"}]
    with pytest.raises(RemoteProtocolError, match="line longer than 10"):
        feed(conn, b"a=12345678901\n\n")


@pytest.mark.parametrize(
    ("value", "number"),
    [("", 0), ("0", 0), ("17", 17), ("-1", 0), ("1e3", 0), ("\u0661", 0), ("9" * 21, 0)],
)
def test_numbers(value: str, number: int) -> None:
    req = PolicyRequest({"size": value, "recipient_count": value})
    assert (req.size, req.recipient_count) == (number, number)


REPLIES: list[tuple[PolicyReply, bytes]] = [
    (DUNNO, b"action=DUNNO\n\n"),
    (PolicyReply(Action.DEFER_IF_PERMIT, "Rate limit"), b"action=DEFER_IF_PERMIT Rate limit\n\n"),
    (PolicyReply(Action.REJECT), b"action=REJECT\n\n"),
    (PolicyReply(Action.HOLD, "contained"), b"action=HOLD contained\n\n"),
    (PolicyReply(Action.WARN, "over 100/h"), b"action=WARN over 100/h\n\n"),
    (
        PolicyReply(Action.DEFER, "Too much mail", code=450, status="4.7.1"),
        b"action=450 4.7.1 Too much mail\n\n",
    ),
    (PolicyReply(Action.REJECT, "No", code=554), b"action=554 No\n\n"),
    (
        PolicyReply(Action.DEFER, "x\r\naction=OK\n\nrest"),
        b"action=DEFER x action=OK rest\n\n",
    ),
    (PolicyReply(Action.WARN, "caf\xe9 \x1b[31m\u202e"), b"action=WARN caf? [31m\n\n"),
]


@pytest.mark.parametrize(("reply", "wire"), REPLIES)
def test_reply_wire(reply: PolicyReply, wire: bytes) -> None:
    conn = PolicyConnection()
    feed(conn, b"a=1\n\n")
    assert conn.send(reply) == wire


def test_reply_text_bounded() -> None:
    reply = PolicyReply(Action.REJECT, "y" * 10_000)
    assert reply.text == "y" * MAX_REPLY_TEXT
    assert len(reply.wire) == len("action=REJECT ") + MAX_REPLY_TEXT + 2


def test_no_ok_action() -> None:
    assert "OK" not in Action.__members__
    with pytest.raises(ValueError):
        Action("OK")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"action": Action.DUNNO, "text": "why"},
        {"action": Action.DUNNO, "code": 450, "text": "x"},
        {"action": Action.DEFER, "code": 550, "text": "x"},
        {"action": Action.REJECT, "code": 450, "text": "x"},
        {"action": Action.HOLD, "code": 450, "text": "x"},
        {"action": Action.DEFER, "code": 450},
        {"action": Action.DEFER, "code": 450, "status": "5.7.1", "text": "x"},
        {"action": Action.DEFER, "code": 450, "status": "4.7", "text": "x"},
        {"action": Action.DEFER, "status": "4.7.1", "text": "x"},
    ],
)
def test_bad_replies(kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        PolicyReply(**kwargs)  # type: ignore[arg-type]


def test_send_needs_a_request() -> None:
    conn = PolicyConnection()
    with pytest.raises(LocalProtocolError):
        conn.send(DUNNO)
    feed(conn, b"a=1\n\n")
    conn.send(DUNNO)
    with pytest.raises(LocalProtocolError):
        conn.send(DUNNO)


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
_values = st.binary(max_size=40).filter(lambda b: b"\n" not in b and b"\0" not in b)


@settings(deadline=None)
@given(
    st.lists(st.dictionaries(_names, _values, min_size=1, max_size=8), max_size=5),
    st.lists(st.integers(min_value=1, max_value=600), max_size=10),
)
def test_any_split_gives_the_same_requests(reqs: list[dict[str, bytes]], cuts: list[int]) -> None:
    stream = b"".join(
        b"".join(n.encode() + b"=" + v + b"\n" for n, v in r.items()) + b"\n" for r in reqs
    )
    chunks, pos = [], 0
    for cut in sorted(set(cuts)):
        chunks.append(stream[pos:cut])
        pos = max(pos, cut)
    chunks.append(stream[pos:])
    got = requests(feed(PolicyConnection(), *(c for c in chunks if c)))
    assert got == [{n: v.decode("utf-8", "replace") for n, v in r.items()} for r in reqs]


@settings(deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_fuzz_parses_or_raises_remote_error(chunks: list[bytes]) -> None:
    conn = PolicyConnection()
    try:
        events = feed(conn, *(c for c in chunks if c), b"")
    except RemoteProtocolError:
        return
    assert isinstance(events[-1], ConnectionClosed)
    for req in requests(events):
        assert all(n.isascii() and n == n.lower() and n for n in req)


def _outcome(chunks: list[bytes]) -> tuple[list[dict[str, str]], str]:
    """The requests parsed and how the stream ended: ``closed``, ``open`` or the error text."""
    conn, events = PolicyConnection(), []
    try:
        for chunk in chunks:
            conn.receive_data(chunk)
            while (event := conn.next_event()) is not NEED_DATA:
                events.append(event)
                if isinstance(event, ConnectionClosed):
                    return requests(events), "closed"
    except RemoteProtocolError as exc:
        return requests(events), str(exc)
    return requests(events), "open"


_wire_bytes = st.lists(st.sampled_from([b"a=1", b"\n", b"\r", b"=", b"\0", b"\xc3", b"Z", b"x"]))


@settings(deadline=None)
@given(_wire_bytes)
@example([b"=", b"\n", b"\r", b"\n", b"\n"])  # an empty CR LF line right before the end
def test_whole_and_byte_by_byte_agree(pieces: list[bytes]) -> None:
    stream = b"".join(pieces)
    whole = _outcome([stream] if stream else [])
    assert _outcome([stream[i : i + 1] for i in range(len(stream))]) == whole


def test_an_empty_cr_lf_line_before_the_end_is_refused_whole_or_in_pieces() -> None:
    stream = b"=\n\r\n\n"
    assert _outcome([stream]) == ([], "CR LF line ends")
    assert _outcome([stream[i : i + 1] for i in range(len(stream))]) == ([], "CR LF line ends")
