"""``relayguard watch`` from the command line, without a mail server: ``--once --journal``
reads every new journal entry, a check that could not sample is UNKNOWN, and the daemon's
start-up line names what it reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relayguard.cli.watch import watching_event
from relayguard.config import WatchSettings
from relayguard.monitor import queue
from tests.logs.test_journal import FakeJournal, failure


def test_once_journal_reads_every_new_entry_and_resumes_at_the_cursor(
    relayguard: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = FakeJournal(tmp_path, monkeypatch)
    for i in range(5):
        journal.add(failure(i))
    journal.add("not ours", unit="cron.service")
    check = ("watch", "--once", "--json", "--journal", "--no-sample",
             "--state-dir", str(tmp_path / "state"))  # fmt: skip

    first = relayguard(*check)
    assert first.code == 0, first.err
    log = first.json["log"]
    assert (log["source"], log["path"], log["lines_read"], log["lines_parsed"]) == (
        "journal",
        None,
        5,
        5,
    )
    assert "--follow" not in journal.calls()[-1]
    saved = json.loads((tmp_path / "state" / "watch.json").read_text())
    assert saved["log"]["position"] == {"cursor": "s=fake;i=5"}

    journal.add(failure(5))
    journal.add(failure(6))
    second = relayguard(*check)
    assert second.code == 0, second.err
    assert second.json["log"]["lines_read"] == 2
    assert journal.calls()[-1][-1] == "--after-cursor=s=fake;i=5"

    third = relayguard(*check)
    assert third.json["log"]["lines_read"] == 0
    saved = json.loads((tmp_path / "state" / "watch.json").read_text())
    assert saved["log"]["position"] == {"cursor": "s=fake;i=8"}


def fake_postqueue(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp / "sbin"
    bin_dir.mkdir()
    script = bin_dir / "postqueue"
    script.write_text("#!/bin/sh\necho 'postqueue: fatal: boom' >&2\nexit 69\n")
    script.chmod(0o755)
    monkeypatch.setattr(queue, "SEARCH_PATH", str(bin_dir))


def test_once_is_unknown_when_the_queue_could_not_be_read(
    relayguard: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_postqueue(tmp_path, monkeypatch)
    log = tmp_path / "mail.log"
    log.write_text("")
    args = ("watch", "--once", "--log", str(log), "--state-dir", str(tmp_path / "state"))

    run = relayguard(*args, "--json")
    assert run.code == 3, run.err
    doc = run.json
    assert (doc["verdict"], doc["exit_code"]) == ("unknown", 3)
    assert doc["sampler_errors"] == {"queue": "postqueue exited 69: postqueue: fatal: boom"}
    assert doc["queue"]["error"] == "postqueue exited 69: postqueue: fatal: boom"
    assert doc["findings"] == []

    text = relayguard(*args)
    assert text.code == 3
    assert text.out.splitlines()[:3] == [
        "relayguard watch: UNKNOWN (exit 3)",
        "log     0 new lines, 0 not understood",
        "queue   error: postqueue exited 69: postqueue: fatal: boom",
    ]

    # without samples nothing failed: a clean log is OK
    quiet = relayguard(*args, "--no-sample", "--json")
    assert quiet.code == 0
    assert quiet.json["sampler_errors"] == {}


def test_the_start_up_line_names_the_journal_or_the_file() -> None:
    journal = WatchSettings(source="journal", journal_units=["postfix.service"])
    assert watching_event(journal) == {
        "event": "watching", "log": "journal", "source": "journal",
        "units": ["postfix.service"],
    }  # fmt: skip
    assert watching_event(WatchSettings(log="/var/log/maillog")) == {
        "event": "watching", "log": "/var/log/maillog", "source": "file",
    }  # fmt: skip
