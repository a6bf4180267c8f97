"""The watcher's loop and alert delivery, without a mail server: metrics refreshed on a timer,
failed deliveries logged with their reason, the --once check's exit code, the queue title."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from relayguard.config import Config, WatchSettings
from relayguard.findings import ExitCode, Verdict
from relayguard.logs.follow import FollowStats
from relayguard.monitor import queue
from relayguard.monitor.alerts import Alert
from relayguard.monitor.metrics import WatchCollector
from relayguard.monitor.report import check_result
from relayguard.monitor.sinks import AlertRouter, Sink, SinkError, Worker
from relayguard.monitor.state import StateDir
from relayguard.monitor.watcher import METRICS_EVERY, Watcher
from tests.monitor.test_cores import alert

NOW = 1_800_000_000.0


class QuietLog:
    """A log source with nothing to read."""

    def __init__(self) -> None:
        self.stats = FollowStats()

    def poll(self, max_bytes: int = 0) -> list[str]:
        return []

    def position(self) -> Any:
        return None

    def lag_bytes(self) -> int:
        return 0

    def close(self) -> None:
        pass


class DownWebhook(Sink):
    name = "webhook"

    def __init__(self, reason: str = "webhook: [Errno 111] Connection refused") -> None:
        self.reason = reason

    def send(self, alert: Alert) -> None:
        raise SinkError(self.reason)


def failed(collector: WatchCollector) -> int:
    return collector.state.deliveries_by_sink.get(("webhook", "failed"), -1)


def test_metrics_are_refreshed_with_a_quiet_log_and_no_sampling(tmp_path: Path) -> None:
    mono = [500.0]
    worker = Worker(DownWebhook(), events=io.StringIO())
    collector = WatchCollector()
    state = StateDir(tmp_path / "state")
    state.open()
    try:
        w = Watcher(
            Config(),
            QuietLog(),
            state,
            router=AlertRouter([worker]),
            collector=collector,
            sample=False,
            clock=lambda: NOW,
            monotonic=lambda: mono[0],
            host="mx",
        )
        assert w.tick() == 0
        assert failed(collector) == 0  # published at start, before anything happened
        worker.submit(alert(1))
        worker.close(30)  # delivered (and failed) before close returns
        assert worker.failed == 1
        mono[0] += METRICS_EVERY - 1
        w.tick()
        assert failed(collector) == 0  # not due yet
        mono[0] += 1
        w.tick()
        assert failed(collector) == 1  # no line, no sample: the timer alone refreshed it
    finally:
        state.close()


def events(log: io.StringIO) -> list[dict[str, Any]]:
    out = []
    for line in log.getvalue().splitlines():
        event = json.loads(line)
        assert isinstance(event.pop("ts"), float)
        out.append(event)
    return out


def test_each_failed_attempt_and_the_give_up_are_logged_with_the_reason() -> None:
    log = io.StringIO()
    w = Worker(DownWebhook(), retries=1, events=log)
    w.submit(alert(3))
    w.close(30)
    assert (w.sent, w.failed) == (0, 1)
    about = {"sink": "webhook", "indicator": "auth-bruteforce", "subject": "ip:192.0.2.1"}
    reason = "webhook: [Errno 111] Connection refused"
    assert events(log) == [
        {"event": "alert_delivery_failed", **about, "attempt": 1, "attempts": 2,
         "retry_in": 1.0, "error": reason},
        {"event": "alert_undelivered", **about, "attempts": 2, "error": reason},
    ]  # fmt: skip


def test_a_hostile_failure_reason_is_logged_escaped_and_bounded() -> None:
    log = io.StringIO()
    w = Worker(DownWebhook("sendmail exited 75: \x1b[2J\nINJECTED " + "x" * 5000), events=log)
    w.submit(alert(4))
    w.close(30)
    assert log.getvalue().count("\n") == 1
    assert "\x1b" not in log.getvalue()
    (event,) = events(log)
    assert event["event"] == "alert_undelivered"
    assert event["attempts"] == 1
    error = event["error"]
    assert error.startswith("sendmail exited 75: \\x1b[2J\\x0aINJECTED xxx")
    assert len(error) == 300 and error.endswith("…")


@pytest.mark.parametrize(
    ("verdict", "errors", "expected"),
    [
        (Verdict.CLEAN, {}, ("clean", ExitCode.OK)),
        (Verdict.CLEAN, {"queue": "postqueue exited 69: x"}, ("unknown", ExitCode.UNKNOWN)),
        (Verdict.SUSPICIOUS, {"queue": "x"}, ("suspicious", ExitCode.WARNING)),
        (Verdict.ABUSED, {"egress": "x"}, ("abused", ExitCode.CRITICAL)),
    ],
)
def test_a_check_that_could_not_sample_is_unknown_unless_it_found_worse(
    verdict: Verdict, errors: dict[str, str], expected: tuple[str, ExitCode]
) -> None:
    assert check_result(verdict, errors) == expected


def test_queue_title_and_details_give_the_same_age() -> None:
    sample = queue.QueueSample("postfix", {"deferred": 6}, oldest_arrival=NOW - 17.6)
    (f,) = queue.queue_findings(sample, 5, 5000, "vm", NOW)
    assert f.title == "mail queue: 6 messages waiting (deferred 6); oldest 18s old"
    assert f.details["oldest_age_seconds"] == 18
    assert sample.to_json(NOW)["oldest_age_seconds"] == 18


def test_the_default_state_dir_is_not_the_policy_servers() -> None:
    assert WatchSettings().state_dir == "/var/lib/relayguard-watch"
