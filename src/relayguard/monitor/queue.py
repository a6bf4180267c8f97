"""The mail queue: sizes per queue, the oldest message, the top senders.

Pure parsers of ``postqueue -j`` (Postfix, one JSON object per message) and ``exim -bp``
(Exim's queue listing) that take lines and return a :class:`QueueSample`, and a thin shell
that runs the command (:func:`sample_queue`). A queue of a million messages is read as a
stream: counts are exact, the sender table is bounded, and the command is killed after
``timeout`` seconds (the sample then says so).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from relayguard.analysis.detectors.base import ranked
from relayguard.findings import Finding, Severity, Subject

POSTFIX_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")
MAX_SENDERS = 10_000  # distinct senders counted; past that, new ones go to "other"
TOP_SENDERS = 10
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
_MAX_SENDER_LEN = 320
T = TypeVar("T")


@dataclass(slots=True)
class QueueSample:
    mta: str
    by_queue: dict[str, int] = field(default_factory=dict)
    oldest_arrival: float | None = None
    senders: dict[str, int] = field(default_factory=dict)
    bad_lines: int = 0
    error: str | None = None

    @property
    def total(self) -> int:
        return sum(self.by_queue.values())

    @property
    def waiting(self) -> int:
        """Messages waiting for delivery: everything but mail on hold (held on purpose)."""
        return self.total - self.by_queue.get("hold", 0)

    def oldest_age(self, now: float) -> float | None:
        return None if self.oldest_arrival is None else max(0.0, now - self.oldest_arrival)

    def top_senders(self) -> list[tuple[str, int]]:
        return ranked(self.senders)[:TOP_SENDERS]

    def add(self, queue: str, arrival: float | None, sender: str) -> None:
        self.by_queue[queue] = self.by_queue.get(queue, 0) + 1
        if arrival is not None and (self.oldest_arrival is None or arrival < self.oldest_arrival):
            self.oldest_arrival = arrival
        sender = sender[:_MAX_SENDER_LEN] if sender else "<>"
        if sender in self.senders or len(self.senders) < MAX_SENDERS:
            self.senders[sender] = self.senders.get(sender, 0) + 1
        else:
            self.senders["other"] = self.senders.get("other", 0) + 1

    def to_json(self, now: float) -> dict[str, Any]:
        age = self.oldest_age(now)
        return {
            "mta": self.mta,
            "total": self.total,
            "by_queue": dict(sorted(self.by_queue.items())),
            "oldest_age_seconds": None if age is None else round(age),
            "top_senders": [{"value": s, "count": c} for s, c in self.top_senders()],
            "bad_lines": self.bad_lines,
            "error": self.error,
        }


def parse_postqueue_json(lines: Iterable[str | bytes]) -> QueueSample:
    """``postqueue -j`` output as a sample; lines that are not a queue entry are counted."""
    sample = QueueSample("postfix", {q: 0 for q in POSTFIX_QUEUES})
    for line in lines:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            sample.bad_lines += 1
            continue
        if not isinstance(entry, dict):
            sample.bad_lines += 1
            continue
        queue = entry.get("queue_name")
        arrival = entry.get("arrival_time")
        sender = entry.get("sender", "")
        if not isinstance(queue, str) or not queue.isidentifier() or len(queue) > 32:
            sample.bad_lines += 1
            continue
        if isinstance(arrival, bool) or not isinstance(arrival, int | float):
            arrival = None
        sample.add(queue, arrival, sender if isinstance(sender, str) else "")
    return sample


# " 25m  2.9K 1i7QW1-0003Vg-8B <alice@example.com> *** frozen ***"
_EXIM_ENTRY = re.compile(
    r"\s*(\d+)([mhd])\s+\S+\s+([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4})\s+<([^>]*)>"
    r"(\s+\*\*\* frozen \*\*\*)?"
)
_UNIT = {"m": 60, "h": 3600, "d": 86400}


def parse_exim_bp(lines: Iterable[str | bytes], now: float) -> QueueSample:
    """``exim -bp`` output as a sample: queues ``queued`` and ``frozen``; ages are whole
    minutes, hours or days as Exim prints them."""
    sample = QueueSample("exim", {"queued": 0, "frozen": 0})
    for raw in lines:
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        m = _EXIM_ENTRY.match(line)
        if m is None:
            continue  # recipient lines, blank lines
        age = int(m[1]) * _UNIT[m[2]]
        sample.add("frozen" if m[5] else "queued", now - age, m[4])
    return sample


def queue_command(mta: str, postfix_config: str | None) -> list[str]:
    if mta == "exim":
        exim = shutil.which("exim4", path=SEARCH_PATH) or shutil.which("exim", path=SEARCH_PATH)
        return [exim or "exim", "-bp"]
    postqueue = shutil.which("postqueue", path=SEARCH_PATH) or "postqueue"
    config = ["-c", postfix_config] if postfix_config else []
    return [postqueue, *config, "-j"]


def run_streaming(
    argv: Sequence[str], timeout: float, parse: Callable[[Iterable[bytes]], T]
) -> tuple[T | None, str | None]:
    """``parse`` applied to a command's output as it is written, and an error (or None).

    The command is killed after ``timeout`` seconds; its stderr goes to a temporary file so
    a chatty command cannot fill a pipe and stall.
    """
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
            )
        except OSError as exc:
            return None, f"cannot run {argv[0]}: {exc.strerror or exc}"
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        assert proc.stdout is not None
        try:
            result = parse(proc.stdout)
        finally:
            proc.stdout.close()
            proc.wait()
            timer.cancel()
        if proc.returncode == 0:
            return result, None
        if proc.returncode < 0:
            return result, f"{os.path.basename(argv[0])} did not finish within {timeout:g} s"
        errors.seek(0)
        why = " ".join(errors.read(2000).decode("utf-8", "replace").split())[:300]
        return result, f"{os.path.basename(argv[0])} exited {proc.returncode}: {why or '?'}"


def sample_queue(mta: str, postfix_config: str | None, now: float, timeout: float) -> QueueSample:
    argv = queue_command(mta, postfix_config)
    if mta == "exim":
        sample, error = run_streaming(argv, timeout, lambda lines: parse_exim_bp(lines, now))
    else:
        sample, error = run_streaming(argv, timeout, parse_postqueue_json)
    if sample is None:
        sample = QueueSample(mta)
    sample.error = error
    return sample


def queue_findings(
    sample: QueueSample, threshold: int, high: int, host: str, now: float
) -> list[Finding]:
    """A ``queue-buildup`` finding when more than ``threshold`` messages wait."""
    waiting = sample.waiting
    if sample.error is not None or waiting <= threshold:
        return []
    parts = ", ".join(f"{q} {n}" for q, n in sorted(sample.by_queue.items()) if n)
    exact_age = sample.oldest_age(now)
    age = None if exact_age is None else round(exact_age)  # one figure for title and details
    top = sample.top_senders()
    title = f"mail queue: {waiting} messages waiting ({parts})"
    if age is not None:
        title += f"; oldest {_duration(age)} old"
    if top:
        title += f"; top sender {top[0][0]} ({top[0][1]})"
    return [
        Finding(
            indicator="queue-buildup",
            severity=Severity.HIGH if waiting >= high else Severity.MEDIUM,
            subject=Subject("host", host),
            title=title,
            first_seen=sample.oldest_arrival,
            last_seen=now,
            count=waiting,
            mitigations=["inspect-deferred-queue", "hold-queued-mail", "purge-spam-queue"],
            details={
                "source": "queue",
                "threshold": threshold,
                "by_queue": dict(sorted(sample.by_queue.items())),
                "oldest_age_seconds": age,
                "top_senders": [{"value": s, "count": c} for s, c in top],
            },
        )
    ]


def _duration(seconds: int) -> str:
    s = seconds
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"
