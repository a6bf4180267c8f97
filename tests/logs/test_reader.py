"""LogReader: events in input order, complete statistics, failures that do not lose data."""

from __future__ import annotations

import gzip
import io
import os
from collections import Counter
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from relayguard.analysis.result import InputStats
from relayguard.errors import InputError
from relayguard.logs import dispatch
from relayguard.logs.events import Event
from relayguard.logs.reader import LogReader, ReaderStats

LAB = Path(__file__).resolve().parents[1] / "data" / "lab"


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def fake_parse_message(ev: Event, message: str) -> None:
    """Stand-in for the MTA parsers: Postfix lines are understood unless they say "junk"."""
    if ev.program.startswith("postfix"):
        ev.mta = "postfix"
        if "junk" not in message:
            ev.type = "info"


@pytest.fixture
def fake_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "parse_message", fake_parse_message)


def write(path: Path, text: str, *, gz: bool = False, mtime: float | None = None) -> str:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return str(path)


def line(stamp: str, message: str, program: str = "postfix/smtpd[1]") -> str:
    return f"{stamp} mail {program}: {message}\n"


@pytest.mark.usefixtures("fake_dispatch")
def test_lab_logs_envelopes_are_exact() -> None:
    paths = sorted(str(p) for p in LAB.glob("*.log"))
    reader = LogReader(paths, year=2026, tz=UTC)
    events = list(reader.events())
    st = reader.stats
    assert (st.lines_read, st.lines_parsed, st.lines_unparsed, st.lines_empty) == (3062, 3062, 0, 0)
    assert (st.lines_bad_timestamp, st.lines_truncated, st.failed_sources) == (0, 0, [])
    assert st.by_mta == {"postfix": 3062}
    assert st.bytes_read == sum(os.path.getsize(p) for p in paths) == reader.total_bytes
    assert (st.first_time, st.last_time) == (utc("2026-12-03 16:17:20"), utc("2026-12-03 16:18:57"))
    assert st.sources == paths

    first, last = events[0], events[-1]
    assert (first.time, first.host, first.program, first.pid, first.raw) == (
        utc("2026-12-03 16:17:20"),
        "mail",
        "postfix/postfix-script",
        27760,
        "Dec 03 16:17:20 mail postfix/postfix-script[27760]: the Postfix mail system is not "
        "running",
    )
    assert (last.time, last.host, last.program, last.pid, last.raw) == (
        utc("2026-12-03 16:18:57"),
        "mail",
        "postfix/qmgr",
        28766,
        "Dec 03 16:18:57 mail postfix/qmgr[28766]: 10A33212203: removed",
    )
    sasl = [e for e in events if "sasl_username=alice@lab.test" in e.raw and "client=" in e.raw]
    assert (sasl[0].time, sasl[0].program, sasl[0].pid) == (
        utc("2026-12-03 16:18:19"),
        "postfix/smtpd",
        28003,
    )
    assert Counter(e.program for e in events) == {
        "postfix/anvil": 9,
        "postfix/bounce": 6,
        "postfix/cleanup": 356,
        "postfix/local": 7,
        "postfix/master": 9,
        "postfix/pickup": 1,
        "postfix/postfix-script": 10,
        "postfix/qmgr": 812,
        "postfix/scache": 4,
        "postfix/smtp": 1020,
        "postfix/smtpd": 828,
    }
    assert {e.host for e in events} == {"mail"}


def test_lab_logs_with_the_real_dispatcher_account_for_every_line() -> None:
    paths = sorted(str(p) for p in LAB.glob("*.log"))
    reader = LogReader(paths, year=2026, tz=UTC)
    n = sum(1 for _ in reader.events())
    st = reader.stats
    assert st.lines_read == 3062
    assert st.lines_parsed == n
    assert st.lines_parsed + st.lines_unparsed == 3062
    assert st.by_mta == {"postfix": 3062}


@pytest.mark.usefixtures("fake_dispatch")
def test_counts_empty_unparsed_bad_timestamp_and_samples(tmp_path: Path) -> None:
    text = (
        line("Dec 03 16:17:20", "a")
        + "\n"
        + "   \n"
        + "garbage without envelope\n"
        + line("Dec 03 16:17:21", "junk the MTA parser rejects")
        + line("Dez 03 16:17:22", "localised month")
        + line("Dec 03 16:17:23", "b", program="sshd[4]")
        + "second garbage\n"
        + line("Dec 03 16:17:24", "c")
    )
    reader = LogReader([write(tmp_path / "m.log", text)], year=2026, tz=UTC, keep_unparsed=2)
    events = list(reader.events())
    st = reader.stats
    assert [(e.raw.split(": ")[-1], e.time) for e in events] == [
        ("a", utc("2026-12-03 16:17:20")),
        ("localised month", utc("2026-12-03 16:17:21")),  # the previous line's time
        ("c", utc("2026-12-03 16:17:24")),
    ]
    assert (st.lines_read, st.lines_parsed, st.lines_unparsed, st.lines_empty) == (9, 3, 4, 2)
    assert st.lines_bad_timestamp == 1
    assert st.unparsed_samples == [
        "garbage without envelope",
        "Dec 03 16:17:21 mail postfix/smtpd[1]: junk the MTA parser rejects",
    ]
    assert st.by_mta == {"postfix": 4}
    assert (st.first_time, st.last_time) == (utc("2026-12-03 16:17:20"), utc("2026-12-03 16:17:24"))


@pytest.mark.usefixtures("fake_dispatch")
def test_rotated_set_in_any_order_is_read_oldest_first(tmp_path: Path) -> None:
    files = {
        "mail.log.2.gz": (line("Dec 01 10:00:00", "two"), True),
        "mail.log.1": (line("Dec 02 10:00:00", "one"), False),
        "mail.log": (line("Dec 03 10:00:00", "live"), False),
        "mail.log.3.gz": (line("Nov 30 10:00:00", "three"), True),
    }
    paths = [
        write(tmp_path / n, t, gz=gz, mtime=utc("2026-12-04 00:00:00"))
        for n, (t, gz) in files.items()
    ]
    reader = LogReader(paths, tz=UTC)  # year from the files' mtime
    got = [(e.raw.split(": ")[-1], e.time) for e in reader.events()]
    assert got == [
        ("three", utc("2026-11-30 10:00:00")),
        ("two", utc("2026-12-01 10:00:00")),
        ("one", utc("2026-12-02 10:00:00")),
        ("live", utc("2026-12-03 10:00:00")),
    ]
    assert reader.stats.sources == [
        str(tmp_path / n) for n in ["mail.log.3.gz", "mail.log.2.gz", "mail.log.1", "mail.log"]
    ]


@pytest.mark.usefixtures("fake_dispatch")
def test_year_rollover_across_rotated_files_from_mtimes(tmp_path: Path) -> None:
    old = write(
        tmp_path / "mail.log.1", line("Dec 31 23:59:59", "old"), mtime=utc("2026-01-01 00:00:05")
    )
    new = write(
        tmp_path / "mail.log", line("Jan 01 00:00:01", "new"), mtime=utc("2026-01-01 00:00:05")
    )
    got = [e.time for e in LogReader([new, old], tz=UTC).events()]
    assert got == [utc("2025-12-31 23:59:59"), utc("2026-01-01 00:00:01")]


@pytest.mark.usefixtures("fake_dispatch")
def test_missing_and_corrupt_sources_are_recorded_and_the_rest_is_read(tmp_path: Path) -> None:
    good1 = write(tmp_path / "a.log", line("Dec 03 10:00:00", "first"))
    missing = str(tmp_path / "missing.log")
    body = "".join(line("Dec 03 11:00:00", f"m{i}") for i in range(20000)).encode()
    broken = tmp_path / "b.log.gz"
    compressed = gzip.compress(body)
    broken.write_bytes(compressed[: len(compressed) // 2])
    good2 = write(tmp_path / "c.log", line("Dec 03 12:00:00", "last"))
    reader = LogReader([good1, missing, str(broken), good2, str(tmp_path)], year=2026, tz=UTC)
    assert [str(e) for e in reader.preflight()] == [
        f"cannot read {missing}: no such file",
        f"cannot read {tmp_path}: is a directory",
    ]
    events = list(reader.events())
    st = reader.stats
    assert events[0].raw.endswith("first") and events[-1].raw.endswith("last")
    from_broken = len(events) - 2
    assert 0 < from_broken < 20000  # what was read before the break is kept
    assert st.lines_read == from_broken + 2
    assert st.failed_sources == [
        (missing, f"cannot read {missing}: no such file"),
        (str(broken), f"cannot read {broken}: compressed data ends early (truncated file?)"),
        (str(tmp_path), f"cannot read {tmp_path}: is a directory"),
    ]
    with pytest.raises(InputError) as info:
        reader.raise_for_failures()
    assert str(info.value) == (
        f"cannot read {missing}: no such file (also failed: {broken}, {tmp_path})"
    )


def test_raise_for_failures_is_silent_without_failures(tmp_path: Path) -> None:
    reader = LogReader([write(tmp_path / "a.log", "x\n")], year=2026)
    list(reader.events())
    reader.raise_for_failures()
    assert reader.stats.failed_sources == []


@pytest.mark.usefixtures("fake_dispatch")
def test_stdin_compressed_uses_now_for_the_year() -> None:
    data = gzip.compress(line("Dec 31 23:00:00", "x").encode())
    reader = LogReader(["-"], tz=UTC, stdin=io.BytesIO(data), now=utc("2027-01-01 01:00:00"))
    events = list(reader.events())
    assert [e.time for e in events] == [utc("2026-12-31 23:00:00")]
    assert reader.stats.sources == ["standard input"]
    assert reader.stats.bytes_read == len(data)
    assert reader.total_bytes is None


@pytest.mark.usefixtures("fake_dispatch")
def test_long_lines_are_truncated_and_counted(tmp_path: Path) -> None:
    long_line = line("Dec 03 10:00:00", "y" * 70_000)
    exact = "Dec 03 10:00:01 mail postfix/smtpd[1]: " + "z" * (65536 - 39) + "\n"
    assert len(exact) == 65537
    path = write(tmp_path / "m.log", long_line + exact + line("Dec 03 10:00:02", "after"))
    reader = LogReader([path], year=2026, tz=UTC)
    events = list(reader.events())
    assert [len(e.raw) for e in events] == [65536, 65536, 44]
    assert events[2].raw.endswith("after")
    assert (reader.stats.lines_truncated, reader.stats.lines_read) == (1, 3)


@pytest.mark.usefixtures("fake_dispatch")
def test_progress_is_reported_every_65536_lines_and_at_the_end(tmp_path: Path) -> None:
    text = line("Dec 03 10:00:00", "x") * 140_000
    path = write(tmp_path / "m.log.gz", text, gz=True)
    calls: list[tuple[int, int | None]] = []
    reader = LogReader([path], year=2026, on_progress=lambda d, t: calls.append((d, t)))
    n = sum(1 for _ in reader.events())
    size = os.path.getsize(path)
    assert n == 140_000
    assert len(calls) == 3  # after 65536 and 131072 lines, then at the end of the file
    assert all(t == size for _, t in calls)
    assert calls[0][0] <= calls[1][0] <= calls[2][0] == size == reader.stats.bytes_read


@pytest.mark.usefixtures("fake_dispatch")
def test_stopping_early_still_leaves_consistent_stats(tmp_path: Path) -> None:
    path = write(tmp_path / "m.log.gz", line("Dec 03 10:00:00", "x") * 1000, gz=True)
    reader = LogReader([path], year=2026)
    it = cast(Generator[Event, None, None], reader.events())
    for _ in range(10):
        next(it)
    it.close()
    st = reader.stats
    assert (st.lines_read, st.lines_parsed) == (10, 10)


@pytest.mark.usefixtures("fake_dispatch")
def test_to_input_stats_copies_every_field(tmp_path: Path) -> None:
    reader = LogReader(
        [write(tmp_path / "m.log", line("Dec 03 10:00:00", "x") + "bad\n")],
        year=2026,
        tz=UTC,
        keep_unparsed=5,
    )
    list(reader.events())
    got = reader.stats.to_input_stats()
    assert got == InputStats(
        sources=[str(tmp_path / "m.log")],
        bytes_read=45,
        lines_read=2,
        lines_parsed=1,
        lines_unparsed=1,
        lines_bad_timestamp=0,
        lines_truncated=0,
        unparsed_samples=["bad"],
        by_mta={"postfix": 1},
        first_time=utc("2026-12-03 10:00:00"),
        last_time=utc("2026-12-03 10:00:00"),
    )
    shared = set(InputStats.__dataclass_fields__)
    assert shared <= set(ReaderStats.__dataclass_fields__)


@pytest.mark.usefixtures("fake_dispatch")
def test_forced_format_leaves_other_shapes_unparsed(tmp_path: Path) -> None:
    text = line("Dec 03 10:00:00", "bsd") + "2026-12-03T10:00:01Z mail postfix/smtpd[1]: iso\n"
    reader = LogReader([write(tmp_path / "m.log", text)], fmt="rfc3339", year=2026)
    assert [e.raw[-3:] for e in reader.events()] == ["iso"]
    assert reader.stats.lines_unparsed == 1


def test_unknown_format_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown log format"):
        LogReader(["x"], fmt="nope")
