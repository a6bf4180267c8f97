"""The live follower: every line exactly once, across rename and copytruncate rotations, across
restarts, with partial and over-long lines."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayguard.errors import InputError
from relayguard.logs.envelope import EnvelopeParser
from relayguard.logs.follow import FileFollower, Position
from relayguard.logs.reader import ReaderStats, parse_lines


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Log:
    """A log file and the writer that appends to it, rotated the ways logrotate does."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.n = 0
        self.written: list[str] = []
        path.touch()

    def write(self, count: int = 1, text: str = "line") -> None:
        with self.path.open("a") as f:
            for _ in range(count):
                self.n += 1
                line = f"{text} {self.n}\n"
                f.write(line)
                self.written.append(line)

    def _shift(self) -> None:
        for i in range(8, 0, -1):
            old = self.path.with_name(f"{self.path.name}.{i}")
            if old.exists():
                old.rename(self.path.with_name(f"{self.path.name}.{i + 1}"))

    def rename(self) -> None:
        self._shift()
        self.path.rename(self.path.with_name(self.path.name + ".1"))
        self.path.touch()

    def copytruncate(self) -> None:
        self._shift()
        shutil.copyfile(self.path, self.path.with_name(self.path.name + ".1"))
        with self.path.open("r+") as f:
            f.truncate(0)


def test_partial_lines_wait_for_their_newline(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_bytes(b"")
    f = FileFollower(path)
    with path.open("ab") as w:
        w.write(b"one\ntw")
        w.flush()
        assert f.poll() == ["one\n"]
        w.write(b"o\nthree")
        w.flush()
        assert f.poll() == ["two\n"]
        assert f.position() == Position(*f.position().to_json().values())  # type: ignore[union-attr]
        assert f.position().offset == 8  # type: ignore[union-attr]
        w.write(b"\n")
    assert f.poll() == ["three\n"]
    assert f.poll() == []


def test_start_at_end_skips_what_is_there(tmp_path: Path) -> None:
    log = Log(tmp_path / "mail.log")
    log.write(3)
    f = FileFollower(log.path, start_at_end=True)
    assert f.poll() == []
    log.write(1)
    assert f.poll() == ["line 4\n"]


def test_only_newline_ends_a_line(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_bytes(b"a\rb\x1cc\xc2\x85d\n\xff\xfe bad utf-8\n")
    assert FileFollower(path).poll() == ["a\rb\x1cc\x85d\n", "\ufffd\ufffd bad utf-8\n"]


def test_an_over_long_line_is_cut_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_bytes(b"x" * 5000 + b"\nshort\n")
    f = FileFollower(path, max_line=1000)
    lines = f.poll()
    assert lines == ["x" * 1000, "short\n"]
    stats = ReaderStats()
    list(parse_lines(lines, EnvelopeParser("auto", reference_time=0.0), stats, 0, limit=1000))
    assert (stats.lines_read, stats.lines_truncated) == (2, 1)


def test_an_over_long_line_written_in_pieces(tmp_path: Path) -> None:
    path = tmp_path / "mail.log"
    path.write_bytes(b"")
    f = FileFollower(path, max_line=100)
    with path.open("ab") as w:
        for _ in range(5):
            w.write(b"y" * 60)
            w.flush()
            f.poll()
        w.write(b"tail\nnext\n")
    assert f.poll() == ["next\n"]


def test_rename_rotation_reads_the_old_file_to_its_end_first(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "mail.log"
    path.write_text("1\n")
    f = FileFollower(path, clock=clock)
    assert f.poll() == ["1\n"]
    with path.open("a") as old_writer:
        old_writer.write("2\n")
        old_writer.flush()
        path.rename(tmp_path / "mail.log.1")
        path.write_text("new 1\n")
        assert f.poll() == ["2\n", "new 1\n"]
        # the daemon has not reopened yet: its lines still reach the old file
        old_writer.write("3\n")
    assert f.poll() == ["3\n"]
    clock.now = 10.0
    assert f.poll() == []
    assert f.stats.rotations == 1
    with (tmp_path / "mail.log.1").open("a") as late:
        late.write("too late\n")
    assert f.poll() == []  # the grace period is over: the old file is closed


def test_copytruncate_recovers_the_lines_only_the_copy_has(tmp_path: Path) -> None:
    log = Log(tmp_path / "mail.log")
    log.write(3)
    f = FileFollower(log.path)
    assert len(f.poll()) == 3
    log.write(2)  # written, not read yet, then copied away and truncated
    log.copytruncate()
    log.write(1)
    assert f.poll() == ["line 4\n", "line 5\n", "line 6\n"]
    assert f.stats.truncations == 1


def test_truncated_and_grown_past_the_old_offset(tmp_path: Path) -> None:
    log = Log(tmp_path / "mail.log")
    log.write(2)
    f = FileFollower(log.path)
    assert len(f.poll()) == 2
    log.copytruncate()
    log.write(5, text="a longer line than before")
    got = f.poll()
    assert got == log.written[2:]


def test_missing_and_unusable_logs_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read .*nope\.log: no such file"):
        FileFollower(tmp_path / "nope.log")
    with pytest.raises(InputError, match=r"is a directory|not a regular file"):
        FileFollower(tmp_path)


def test_the_log_vanishing_for_a_while_is_waited_for(tmp_path: Path) -> None:
    log = Log(tmp_path / "mail.log")
    log.write(1)
    f = FileFollower(log.path)
    f.poll()
    log.path.rename(tmp_path / "mail.log.1")
    assert f.poll() == []
    log.path.touch()
    log.write(1)
    assert f.poll() == ["line 2\n"]


def restart(f: FileFollower) -> FileFollower:
    pos = Position.from_json(f.position().to_json())  # type: ignore[union-attr]
    f.close()
    return FileFollower(f.path, pos)


def test_restart_resumes_at_the_saved_line(tmp_path: Path) -> None:
    log = Log(tmp_path / "mail.log")
    log.write(3)
    f = FileFollower(log.path)
    f.poll()
    log.write(2)
    f = restart(f)
    assert f.poll() == ["line 4\n", "line 5\n"]


@pytest.mark.parametrize("rotation", ["rename", "copytruncate"])
def test_rotated_while_stopped_reads_the_rest_of_the_old_file(
    tmp_path: Path, rotation: str
) -> None:
    log = Log(tmp_path / "mail.log")
    log.write(3)
    f = FileFollower(log.path)
    f.poll()
    pos = f.position()
    f.close()
    log.write(2)
    getattr(log, rotation)()
    log.write(1)
    f = FileFollower(log.path, pos)
    assert f.poll() == ["line 4\n", "line 5\n", "line 6\n"]
    assert f.stats.lost_bytes == 0
    assert f.stats.recovered_bytes == len("line 4\nline 5\n")


def test_rotated_and_compressed_while_stopped_is_reported_lost(tmp_path: Path) -> None:
    log = Log(tmp_path / "mail.log")
    log.write(3)
    f = FileFollower(log.path)
    f.poll()
    pos = f.position()
    f.close()
    log.write(2)
    log.rename()
    rotated = tmp_path / "mail.log.1"
    with gzip.open(tmp_path / "mail.log.1.gz", "wb") as gz:
        gz.write(rotated.read_bytes())
    rotated.unlink()
    log.write(1)
    f = FileFollower(log.path, pos)
    assert f.poll() == ["line 6\n"]
    assert f.stats.lost_bytes is None  # lost, and how much cannot be known
    assert "not found" in f.stats.notes[0]


@pytest.mark.parametrize(
    "data",
    [None, [], {"dev": 1}, {"dev": -1, "ino": 2, "offset": 3, "head_len": 0, "head_sha256": ""}],
)
def test_a_damaged_position_is_none(data: object) -> None:
    assert Position.from_json(data) is None


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(1, 30)),
        st.tuples(st.sampled_from(["poll", "rename", "copytruncate", "restart"]), st.just(0)),
        st.tuples(st.just("restart-after"), st.sampled_from(["rename", "copytruncate"])),
    ),
    max_size=30,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
def test_no_line_is_lost_or_repeated(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, object]]
) -> None:
    root = tmp_path_factory.mktemp("follow")
    log = Log(root / "mail.log")
    clock = Clock()
    f = FileFollower(log.path, clock=clock)
    got: list[str] = []
    for op, arg in ops:
        clock.now += 1.0
        if op == "write":
            log.write(arg)
        elif op == "poll":
            got += f.poll(max_bytes=64)
        elif op in ("rename", "copytruncate"):
            if f.position().head_len == 0:  # type: ignore[union-attr]
                got += f.poll()  # an empty file has no identity yet (see logs/follow.py)
            getattr(log, op)()
            got += f.poll()  # a rotation at most between two polls
        elif op == "restart":
            f = restart(f)
        else:  # rotated while stopped
            pos = f.position()
            f.close()
            if pos is not None and pos.head_len > 0:
                # a file that was empty when the position was saved has no identity yet:
                # nothing tells a copy of it apart (see logs/follow.py)
                getattr(log, arg)()
            f = FileFollower(log.path, pos, clock=clock)
            got += f.poll()
    clock.now += 100.0
    for _ in range(len(log.written) + 2):
        got += f.poll(max_bytes=64)
    f.close()
    assert got == log.written
    for leftover in root.iterdir():
        os.unlink(leftover)
