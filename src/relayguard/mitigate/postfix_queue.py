"""The Postfix queue commands containment runs: postqueue -j, postcat -e, postsuper -h/-H.

Every command gets ``-c DIR`` when a configuration directory is named (a multi-instance
Postfix, or the test lab): without it they act on the default instance. Queue ids go to
postsuper on stdin (``-``), never through a shell.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence

from relayguard.errors import RelayguardError
from relayguard.mitigate.containment import QueuedMessage, queued_messages, sasl_logins
from relayguard.monitor.queue import SEARCH_PATH
from relayguard.report.sanitize import clean

POSTCAT_BATCH = 200
TIMEOUT = 120


class QueueCommandError(RelayguardError):
    """A Postfix queue command failed."""


def _run(name: str, config_dir: str | None, args: Sequence[str], stdin: str = "") -> str:
    path = shutil.which(name, path=SEARCH_PATH)
    if path is None:
        raise QueueCommandError(f"{name} not found: is Postfix installed?")
    argv = [path, *(["-c", config_dir] if config_dir else []), *args]
    try:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise QueueCommandError(f"{name} did not finish within {TIMEOUT} s") from None
    except OSError as exc:
        raise QueueCommandError(f"cannot run {name}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        why = clean(" ".join(done.stderr.split()), 300) or "no message"
        raise QueueCommandError(f"{name} exited {done.returncode}: {why}")
    return done.stdout


def list_queue(config_dir: str | None) -> list[QueuedMessage]:
    out = _run("postqueue", config_dir, ["-j"])
    records = []
    for line in out.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return queued_messages(records)


def logins_of(config_dir: str | None, ids: Sequence[str]) -> dict[str, str]:
    """queue id -> SASL login, read from the queue files (postcat -e -q)."""
    found: dict[str, str] = {}
    for i in range(0, len(ids), POSTCAT_BATCH):
        batch = list(ids[i : i + POSTCAT_BATCH])
        try:
            found.update(sasl_logins(_run("postcat", config_dir, ["-e", "-q", *batch])))
        except QueueCommandError:
            # a message delivered meanwhile makes postcat fail: ask one by one
            for qid in batch:
                try:
                    found.update(sasl_logins(_run("postcat", config_dir, ["-e", "-q", qid])))
                except QueueCommandError:
                    continue
    return found


def postsuper(config_dir: str | None, flag: str, ids: Sequence[str]) -> str:
    """``postsuper -h -`` (hold) or ``-H -`` (release) for ``ids``; its summary line."""
    if flag not in ("-h", "-H"):
        raise ValueError(flag)
    if not ids:
        return ""
    out = _run("postsuper", config_dir, [flag, "-"], stdin="".join(f"{q}\n" for q in ids))
    return out.strip()
