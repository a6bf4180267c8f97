"""The shared SMTP command syntax: paths as servers read them, bodies and bounded lines."""

from __future__ import annotations

import pytest

from relayguard.smtp import (
    CommandReader,
    CommandSyntaxError,
    Path,
    ReplyReader,
    ReplySyntaxError,
    encode_command,
    parse_command,
    parse_path,
)

# (argument, keyword, the path a server reads)
PATHS = [
    ("TO:<user@lab.test>", "TO", Path("user@lab.test", "user", "lab.test")),
    # a space after the colon, lower case keyword, upper case domain, trailing dot
    ("to: <User@LAB.Test.>", "TO", Path("User@lab.test", "User", "lab.test")),
    # no angle brackets (Postfix accepts them unless strict_rfc821_envelopes)
    ("TO:victim@evil.example", "TO", Path("victim@evil.example", "victim", "evil.example",
                                          bracketed=False)),
    # ESMTP parameters after the path
    ("FROM:<a@b.example> SIZE=1000 BODY=8BITMIME", "FROM",
     Path("a@b.example", "a", "b.example", params="SIZE=1000 BODY=8BITMIME")),
    ("FROM:<>", "FROM", Path("", "", "")),
    # quoted local parts: spaces, an @ and a > inside the quotes
    ('TO:<"john doe"@lab.test>', "TO", Path('"john doe"@lab.test', '"john doe"', "lab.test")),
    ('TO:<"user@evil.example"@lab.test>', "TO",
     Path('"user@evil.example"@lab.test', '"user@evil.example"', "lab.test",
          hidden_domain="evil.example")),
    ('TO:<"a>b"@evil.example>', "TO", Path('"a>b"@evil.example', '"a>b"', "evil.example")),
    # percent hack and bang path to a local domain
    ("TO:<user%evil.example@lab.test>", "TO",
     Path("user%evil.example@lab.test", "user%evil.example", "lab.test",
          hidden_domain="evil.example")),
    ("TO:<evil.example!user@lab.test>", "TO",
     Path("evil.example!user@lab.test", "evil.example!user", "lab.test",
          hidden_domain="evil.example")),
    # a source route: the mailbox is the last part, the hops are kept
    ("TO:<@lab.test,@hop.example:user@evil.example>", "TO",
     Path("user@evil.example", "user", "evil.example", route=("lab.test", "hop.example"))),
    # address literals
    ("TO:<user@[192.0.2.1]>", "TO", Path("user@[192.0.2.1]", "user", "[192.0.2.1]")),
    ("TO:<user@[IPv6:2001:db8::1]>", "TO",
     Path("user@[ipv6:2001:db8::1]", "user", "[ipv6:2001:db8::1]")),
    # a bare local part (Postfix appends $myorigin)
    ("TO:<postmaster>", "TO", Path("postmaster", "postmaster", "")),
]  # fmt: skip


@pytest.mark.parametrize(("argument", "keyword", "expected"), PATHS)
def test_paths(argument: str, keyword: str, expected: Path) -> None:
    assert parse_path(argument, keyword) == expected


def test_wrong_keyword_is_no_path() -> None:
    assert parse_path("FROM:<a@b>", "TO") is None
    assert parse_path("<a@b>", "TO") is None


def test_commands_split_verb_and_argument() -> None:
    assert parse_command(b"rcpt TO:<a@b>").verb == "RCPT"
    assert parse_command(b"  MAIL   FROM:<a@b>  ").argument == "FROM:<a@b>"
    # undecodable bytes survive as surrogate escapes (shown as \xNN by clean())
    assert parse_command(b"EHLO caf\xe9").argument == "caf\udce9"


def test_encode_command_bounds() -> None:
    assert encode_command("RCPT", "TO:<a@b>") == b"RCPT TO:<a@b>\r\n"
    with pytest.raises(ValueError, match="printable ASCII"):
        encode_command("EHLO", "caf\xe9")
    with pytest.raises(ValueError, match="longer than 512"):
        encode_command("EHLO", "x" * 600)


def _body_sizes(chunks: list[bytes]) -> tuple[list[int], bytes | None]:
    reader = CommandReader()
    sizes = []
    for chunk in chunks:
        reader.feed(chunk)
        size = reader.skip_body() if not sizes else None  # after the body: command lines
        if size is not None:
            sizes.append(size)
    return sizes, reader.next_line()


BODY = b"Subject: x\r\n\r\nhello\r\n..stuffed\r\n.\r\nQUIT\r\n"


@pytest.mark.parametrize(
    "chunks",
    [
        [BODY],
        [bytes([b]) for b in BODY],  # byte by byte: the terminator straddles every read
        [BODY[:14], BODY[14:31], BODY[31:]],
    ],
)
def test_body_is_skipped_up_to_the_terminator(chunks: list[bytes]) -> None:
    sizes, after = _body_sizes(chunks)
    assert sizes == [len(b"Subject: x\r\n\r\nhello\r\n..stuffed\r\n")]
    assert after == b"QUIT"


def test_empty_body_and_line_bounds() -> None:
    assert _body_sizes([b".\r\nQUIT\r\n"]) == ([0], b"QUIT")
    reader = CommandReader(max_line=10)
    reader.feed(b"x" * 11)
    with pytest.raises(CommandSyntaxError, match="longer than 10"):
        reader.next_line()


def test_reply_reader_raises_its_own_error_by_default() -> None:
    reader = ReplyReader()
    reader.feed(b"hello\r\n")
    with pytest.raises(ReplySyntaxError, match="not an SMTP reply line"):
        reader.next_reply()
    with pytest.raises(ReplySyntaxError):  # stays failed
        reader.next_reply()
