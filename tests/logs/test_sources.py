"""Log sources: compression by magic bytes, stdin, decoding, line bounds, rotated sets."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
from pathlib import Path

import pytest

from relayguard.errors import InputError
from relayguard.logs.sources import (
    READ_ERRORS,
    STDIN,
    detect_compression,
    input_error,
    open_source,
    order_sources,
    rotation_key,
    total_size,
)

TEXT = (
    "Dec 03 16:17:20 mail postfix/master[27832]: daemon started\n"
    "Dec 03 16:17:24 mail postfix/smtpd[27951]: connect from unknown[127.0.0.2]\n"
    "\n"
    "Dec 03 16:17:25 mail postfix/smtpd[27951]: disconnect from unknown[127.0.0.2]\n"
)
LINES = TEXT.splitlines(keepends=True)

COMPRESSORS = {
    "": lambda data: data,
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
}


def read_all(name: str, **kw: object) -> tuple[list[str], str, int]:
    with open_source(name, **kw) as src:  # type: ignore[arg-type]
        lines = list(src.lines)
        return lines, src.compression, src.bytes_done()


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"BZh91AY", "bzip2"),
        (b"\xfd7zXZ\x00\x00", "xz"),
        (b"\x28\xb5\x2f\xfd\x00", "zstd"),
        (b"Dec 03 ", ""),
        (b"\x1f", ""),
        (b"", ""),
    ],
)
def test_detect_compression(head: bytes, kind: str) -> None:
    assert detect_compression(head) == kind


@pytest.mark.parametrize("kind", ["", "gzip", "bzip2", "xz"])
@pytest.mark.parametrize("suffix", [".log", ".gz", ".xz"])
def test_compression_is_detected_by_content_not_name(
    tmp_path: Path, kind: str, suffix: str
) -> None:
    data = COMPRESSORS[kind](TEXT.encode())
    path = tmp_path / f"mail{suffix}"
    path.write_bytes(data)
    lines, compression, done = read_all(str(path))
    assert (lines, compression, done) == (LINES, kind, len(data))


@pytest.mark.parametrize("kind", ["", "gzip", "bzip2", "xz"])
def test_stdin_plain_and_compressed(kind: str) -> None:
    data = COMPRESSORS[kind](TEXT.encode())
    lines, compression, done = read_all(STDIN, stdin=io.BytesIO(data))
    assert (lines, compression, done) == (LINES, kind, len(data))


class _Trickle(io.RawIOBase):
    """A pipe that hands out one byte per read, as a slow producer might."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._data:
            return 0
        buffer[0] = self._data[0]
        self._data = self._data[1:]
        return 1


def test_magic_is_found_on_a_pipe_delivering_one_byte_at_a_time() -> None:
    data = gzip.compress(TEXT.encode())
    lines, compression, _ = read_all(STDIN, stdin=_Trickle(data))
    assert (lines, compression) == (LINES, "gzip")


def test_multi_member_gzip_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "mail.log.1.gz"
    path.write_bytes(gzip.compress(b"a\nb\n") + gzip.compress(b"c\n"))
    assert read_all(str(path))[0] == ["a\n", "b\n", "c\n"]


def test_bad_utf8_binary_and_crlf_never_raise(tmp_path: Path) -> None:
    path = tmp_path / "junk.log"
    path.write_bytes(b"caf\xe9 ok\r\n\x00\x01\xff\xfe\nlast\rmac\n\xf0\x9f\x93\xa7 mail")
    # lines end at \n only: the reader drops the \r of a CRLF; a lone \r is data (an
    # attacker-supplied \r must not split a log line in two)
    assert read_all(str(path))[0] == [
        "caf\ufffd ok\r\n",
        "\x00\x01\ufffd\ufffd\n",
        "last\rmac\n",
        "\U0001f4e7 mail",  # last line without a newline
    ]


def test_long_lines_are_cut_at_max_line_and_the_rest_skipped(tmp_path: Path) -> None:
    path = tmp_path / "long.log"
    path.write_text("short\n" + "x" * 50 + "\nnext\n" + "y" * 16 + "\n" + "z" * 40)
    with open_source(str(path), max_line=16) as src:
        got: list[str | bool] = []
        for piece in src.lines:
            got.append(piece)
            if not piece.endswith("\n") and len(piece) >= src.max_line:
                got.append(src.skip_rest_of_line())
    # a line of exactly max_line characters lost nothing: skip_rest_of_line says so
    assert got == ["short\n", "x" * 16, True, "next\n", "y" * 16, False, "z" * 16, True]


def test_a_file_without_any_newline_is_read_in_bounded_pieces(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(os.urandom(1) * 300_000)
    with open_source(str(path), max_line=1000) as src:
        first = next(src.lines)
        assert len(first) == 1000
        src.skip_rest_of_line()
        assert list(src.lines) == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "cannot read {p}: no such file"),
        (lambda p: p.mkdir(), "cannot read {p}: is a directory"),
        (
            lambda p: p.write_bytes(b"\x28\xb5\x2f\xfd rest"),
            "cannot read {p}: zstd is not supported; pipe it in with: zstd -dc FILE | "
            "relayguard ... -",
        ),
    ],
)
def test_unopenable_inputs_raise_input_error_naming_them(
    tmp_path: Path, make: object, message: str
) -> None:
    path = tmp_path / "mail.log"
    make(path)  # type: ignore[operator]
    with pytest.raises(InputError) as info:
        open_source(str(path))
    assert str(info.value) == message.format(p=path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "secret.log"
    path.write_text("x\n")
    path.chmod(0)
    with pytest.raises(InputError, match=r"secret\.log: permission denied$"):
        open_source(str(path))


def test_truncated_gzip_fails_while_reading_with_a_read_error(tmp_path: Path) -> None:
    data = gzip.compress(("".join(LINES * 2000)).encode())
    path = tmp_path / "mail.log.2.gz"
    path.write_bytes(data[: len(data) // 2])
    with open_source(str(path)) as src, pytest.raises(READ_ERRORS) as info:
        for _ in src.lines:
            pass
    assert str(input_error(str(path), info.value)) == (
        f"cannot read {path}: compressed data ends early (truncated file?)"
    )


def test_input_error_messages() -> None:
    assert str(input_error("-", FileNotFoundError(2, "x"))) == (
        "cannot read standard input: no such file"
    )
    assert str(input_error("a.gz", OSError("Not a gzipped file (b'xx')"))) == (
        "cannot read a.gz: Not a gzipped file (b'xx')"
    )


# --- rotated sets ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("mail.log", ("mail.log", 2, 0)),
        ("mail.log.1", ("mail.log", 0, -1)),
        ("/var/log/mail.log.12.gz", ("/var/log/mail.log", 0, -12)),
        ("mail.log-20261201", ("mail.log", 1, 20261201)),
        ("mail.log-20261201.gz", ("mail.log", 1, 20261201)),
        ("mail.log-2026120103.xz", ("mail.log", 1, 2026120103)),
        ("mail.log-2026-12-01.bz2", ("mail.log", 1, 20261201)),
        ("mail-20261201.log", ("mail.log", 1, 20261201)),
        ("01_startup.log", ("01_startup.log", 2, 0)),
        ("-", ("-", 2, 0)),
    ],
)
def test_rotation_key(name: str, key: tuple[str, int, int]) -> None:
    assert rotation_key(name) == key


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            ["mail.log", "mail.log.1", "mail.log.3.gz", "mail.log.2.gz"],
            ["mail.log.3.gz", "mail.log.2.gz", "mail.log.1", "mail.log"],
        ),
        (
            ["mail.log.1", "mail.log.10.gz", "mail.log.2.gz", "mail.log"],
            ["mail.log.10.gz", "mail.log.2.gz", "mail.log.1", "mail.log"],
        ),
        (
            ["mail.log", "mail.log-20261202.gz", "mail.log-20261130", "mail.log-20261201.gz"],
            ["mail.log-20261130", "mail.log-20261201.gz", "mail.log-20261202.gz", "mail.log"],
        ),
        # separate sets keep the order in which they were first named
        (
            ["mail.err", "mail.log.1", "mail.err.1", "mail.log"],
            ["mail.err.1", "mail.err", "mail.log.1", "mail.log"],
        ),
        (["b.log", "a.log", "-"], ["b.log", "a.log", "-"]),
    ],
)
def test_order_sources(given: list[str], expected: list[str]) -> None:
    assert order_sources(given, mtime=lambda name: 0.0) == expected


def test_order_sources_breaks_ties_by_mtime() -> None:
    mtimes = {"a/mail.log.1": 200.0, "a/mail.log.1.gz": 100.0}
    assert order_sources(["a/mail.log.1", "a/mail.log.1.gz"], mtime=mtimes.__getitem__) == [
        "a/mail.log.1.gz",
        "a/mail.log.1",
    ]


def test_total_size_sums_files_and_ignores_stdin_and_missing(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "b").write_bytes(b"x" * 5)
    names = [str(tmp_path / "a"), "-", str(tmp_path / "b"), str(tmp_path / "missing")]
    assert total_size(names) == 15
    assert total_size(["-"]) is None
