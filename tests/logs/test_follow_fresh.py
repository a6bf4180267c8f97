"""The follower, as a fresh user met it: /proc files, a log that goes away and comes back, the
bytes lost when a rotated file is gone, a new file that starts like the old one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from relayguard.errors import InputError
from relayguard.logs.follow import ROTATE_GRACE, FileFollower


def test_a_proc_file_is_refused_not_read_forever() -> None:
    with pytest.raises(InputError) as exc:
        FileFollower("/proc/version")
    assert str(exc.value) == (
        "cannot follow /proc/version: not a regular file (it has data but a size of 0: "
        "a /proc or /sys file)"
    )


def test_an_empty_regular_file_is_followed(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    f = FileFollower(log)
    assert f.poll() == []
    f.close()


def test_a_log_that_goes_away_is_reported_after_the_grace_and_recovered(tmp_path: Path) -> None:
    now = [0.0]
    log = tmp_path / "mail.log"
    log.write_text("a\n")
    f = FileFollower(log, clock=lambda: now[0])
    assert f.poll() == ["a\n"]
    log.unlink()
    assert f.poll() == []
    assert f.stats.path_problem is None  # a rotation in progress looks the same at first
    now[0] += ROTATE_GRACE
    f.poll()
    assert f.stats.path_problem == f"{log} is missing (No such file or directory)"
    os.mkfifo(log)
    f.poll()
    assert f.stats.path_problem == f"{log} is not a regular file"
    log.unlink()
    log.write_text("b\n")
    assert f.poll() == ["b\n"]
    assert f.stats.path_problem is None
    f.close()


def test_a_renamed_log_that_is_gone_is_lost_not_replaced_by_a_lookalike(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    head = "".join(f"Dec  4 17:55:{i % 60:02d} vm postfix/smtpd[1]: line {i}\n" for i in range(100))
    log.write_text(head)
    f = FileFollower(log)
    assert len(f.poll()) == 100
    pos = f.position()
    f.close()
    with log.open("a") as out:
        out.write("written before the rotation\n")
    # rotated (renamed, then deleted); a file that starts like the old one is left next to it
    (tmp_path / "mail.log.1").write_text(head + "a lookalike's own line\n")
    log.rename(tmp_path / "old")
    log.write_text("new 1\n")  # made while the old inode is still in use: another inode
    (tmp_path / "old").unlink()
    f = FileFollower(log, pos)
    assert f.poll() == ["new 1\n"]
    assert (f.stats.rotations, f.stats.recovered_bytes, f.stats.lost_bytes) == (1, 0, None)
    f.close()
