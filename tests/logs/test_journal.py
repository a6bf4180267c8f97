"""JournalFollower against a stand-in ``journalctl`` on PATH: every entry read, following or
not, and a restart resumes after the saved cursor.

The stand-in reads its journal from a JSON-lines file and answers the options the follower
uses as journalctl does: ``--unit=`` filters, ``--after-cursor=`` starts after that entry,
``--lines=all|N`` without a cursor, ``--follow`` keeps printing what is appended. Like the
real one it takes a moment before printing anything.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from relayguard.logs.journal import JournalFollower, journal_argv

WAIT = 60.0  # generous: nothing here asserts a duration

FAKE_JOURNALCTL = """\
import json, os, sys, time

args = sys.argv[1:]
follow = "--follow" in args
units = [a.split("=", 1)[1] for a in args if a.startswith("--unit=")]
cursor = next((a.split("=", 1)[1] for a in args if a.startswith("--after-cursor=")), None)
lines = next((a.split("=", 1)[1] for a in args if a.startswith("--lines=")), "all")
with open(os.environ["FAKE_JOURNAL"] + ".calls", "a") as calls:
    calls.write(json.dumps(args) + "\\n")


def entries():
    with open(os.environ["FAKE_JOURNAL"]) as f:
        found = [json.loads(line) for line in f if line.strip()]
    return [e for e in found if not units or e.get("_SYSTEMD_UNIT") in units]


time.sleep(0.3)  # journalctl's own start-up: nothing is printed at once
now = entries()
if cursor is not None:
    seen = [e["__CURSOR"] for e in now]
    if cursor not in seen:
        print("Failed to seek to cursor", file=sys.stderr)
        sys.exit(1)
    start = seen.index(cursor) + 1
elif lines == "all":
    start = 0
else:
    start = max(0, len(now) - int(lines))
done = start
while True:
    now = entries()
    for e in now[done:]:
        sys.stdout.write(json.dumps(e) + "\\n")
    sys.stdout.flush()
    done = max(done, len(now))
    if not follow:
        break
    time.sleep(0.05)
"""


class FakeJournal:
    """A journal file, and a ``journalctl`` on PATH that serves it."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        script = bin_dir / "journalctl"
        script.write_text(f"#!{sys.executable}\n{FAKE_JOURNALCTL}")
        script.chmod(0o755)
        self.path = tmp / "journal.jsonl"
        self.path.write_text("")
        self.count = 0
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        monkeypatch.setenv("FAKE_JOURNAL", str(self.path))

    def add(self, message: str, unit: str = "postfix.service") -> str:
        """Append one entry (from ``postfix/smtpd``); returns its JSON line as journalctl
        prints it."""
        self.count += 1
        entry = {
            "__CURSOR": f"s=fake;i={self.count}",
            "__REALTIME_TIMESTAMP": str(1_796_400_000_000_000 + self.count * 1_000_000),
            "_HOSTNAME": "mx",
            "_SYSTEMD_UNIT": unit,
            "SYSLOG_IDENTIFIER": "postfix/smtpd",
            "SYSLOG_PID": "4242",
            "MESSAGE": message,
        }
        line = json.dumps(entry)
        with self.path.open("a") as f:
            f.write(line + "\n")
        return line + "\n"

    def calls(self) -> list[list[str]]:
        calls = Path(f"{self.path}.calls")
        if not calls.exists():
            return []
        return [json.loads(line) for line in calls.read_text().splitlines()]


def failure(i: int) -> str:
    return (
        f"warning: unknown[127.0.0.66]: SASL LOGIN authentication failed: "
        f"authentication failure, sasl_username=user{i}@lab.test"
    )


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeJournal:
    return FakeJournal(tmp_path, monkeypatch)


def read_until(follower: JournalFollower, count: int) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + WAIT
    while len(got) < count and time.monotonic() < deadline:
        got += follower.poll()
        time.sleep(0.05)
    return got


def test_argv_follows_only_in_daemon_mode() -> None:
    assert journal_argv("journalctl", ["postfix.service"], None, False) == [
        "journalctl", "--follow", "--output=json", "--no-pager", "--quiet",
        "--unit=postfix.service", "--lines=all",
    ]  # fmt: skip
    assert journal_argv("journalctl", ["a.service"], "s=1", False, follow=False) == [
        "journalctl", "--output=json", "--no-pager", "--quiet", "--unit=a.service",
        "--after-cursor=s=1",
    ]  # fmt: skip
    assert journal_argv("journalctl", [], None, True)[-1] == "--lines=0"
    assert journal_argv("journalctl", [], None, True, follow=False)[-1] == "--lines=1"


def test_following_reads_every_entry_then_what_is_appended(journal: FakeJournal) -> None:
    first = [journal.add(failure(i)) for i in range(3)]
    journal.add("ignored: another unit", unit="cron.service")
    follower = JournalFollower(["postfix.service"])
    try:
        assert read_until(follower, 3) == first
        more = [journal.add(failure(i)) for i in range(3, 5)]
        assert read_until(follower, 2) == more
        assert follower.position() == {"cursor": "s=fake;i=6"}
    finally:
        follower.close()
    # a restart goes on after the saved cursor
    later = journal.add(failure(5))
    again = JournalFollower(["postfix.service"], "s=fake;i=6")
    try:
        assert read_until(again, 1) == [later]
    finally:
        again.close()
    assert journal.calls()[-1][-1] == "--after-cursor=s=fake;i=6"
    assert "--follow" in journal.calls()[-1]


def test_not_following_reads_everything_at_the_first_poll_then_ends(
    journal: FakeJournal,
) -> None:
    entries = [journal.add(failure(i)) for i in range(4)]
    follower = JournalFollower(["postfix.service"], follow=False)
    try:
        # journalctl prints nothing for 0.3 s: the poll waits for it instead of returning []
        assert follower.poll() == entries
        assert follower.poll() == []
        assert follower.position() == {"cursor": "s=fake;i=4"}
        assert follower.stats.notes == []
    finally:
        follower.close()
    assert "--follow" not in journal.calls()[-1]
    later = [journal.add(failure(i)) for i in range(4, 6)]
    resumed = JournalFollower(["postfix.service"], "s=fake;i=4", follow=False)
    try:
        assert resumed.poll() == later
        assert resumed.poll() == []
        assert resumed.position() == {"cursor": "s=fake;i=6"}
    finally:
        resumed.close()
    nothing_new = JournalFollower(["postfix.service"], "s=fake;i=6", follow=False)
    try:
        assert nothing_new.poll() == []
        assert nothing_new.position() == {"cursor": "s=fake;i=6"}
    finally:
        nothing_new.close()


def test_not_following_from_the_end_keeps_the_cursor_for_the_next_run(
    journal: FakeJournal,
) -> None:
    for i in range(3):
        journal.add(failure(i))
    follower = JournalFollower(["postfix.service"], follow=False, start_at_end=True)
    try:
        assert follower.poll() == []  # the last entry is read for its cursor only
        assert follower.position() == {"cursor": "s=fake;i=3"}
    finally:
        follower.close()
    new = journal.add(failure(3))
    resumed = JournalFollower(["postfix.service"], "s=fake;i=3", follow=False)
    try:
        assert resumed.poll() == [new]
    finally:
        resumed.close()


def test_a_cursor_journalctl_cannot_find_is_noted(journal: FakeJournal) -> None:
    journal.add(failure(0))
    follower = JournalFollower(["postfix.service"], "s=gone;i=9", follow=False)
    try:
        assert follower.poll() == []
        assert follower.stats.notes == ["journalctl exited 1"]
        assert follower.position() == {"cursor": "s=gone;i=9"}
    finally:
        follower.close()


def test_not_following_an_empty_poll_only_ever_means_the_end(journal: FakeJournal) -> None:
    entries = [journal.add(failure(i)) for i in range(3)]
    follower = JournalFollower(["postfix.service"], follow=False)
    got: list[str] = []
    try:
        # reads of 64 bytes end in the middle of an entry: poll reads on to a whole line
        while batch := follower.poll(max_bytes=64):
            got += batch
    finally:
        follower.close()
    assert got == entries
