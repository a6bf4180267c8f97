"""Pure cores of the monitor: /proc/net/tcp, postqueue -j, exim -bp, dedupe, baselines,
metrics; and alert delivery that never blocks, to a webhook that is down or slow."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from relayguard.findings import Finding, Severity, Subject
from relayguard.monitor import egress, queue, resources
from relayguard.monitor.alerts import Alert, Deduper
from relayguard.monitor.metrics import MetricsState, WatchCollector
from relayguard.monitor.sinks import AlertRouter, Sink, WebhookSink, Worker

# two rows from a real /proc/net/tcp: a listener on 127.0.0.1:25, and 10.1.2.3:40000 -> 25
TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when ... uid timeout inode
   0: 0100007F:0019 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0
   1: 0302010A:9C40 08080808:0019 01 00000000:00000000 00:00000000 00000000    33        0 2222 1 0
   2: garbage
"""
TCP6 = (
    "  sl  local_address  remote_address  st ...\n"
    "   0: 0000000000000000FFFF00000100007F:A000 0000000000000000FFFF00000200007F:0019"
    " 02 0:0 0:0 0 65534 0 3333 1\n"
)


def test_proc_net_tcp_rows() -> None:
    rows = egress.parse_proc_net_tcp(TCP)
    assert rows == [
        egress.Socket("127.0.0.1", 25, "0.0.0.0", 0, "0A", 0, 1111),
        egress.Socket("10.1.2.3", 40000, "8.8.8.8", 25, "01", 33, 2222),
    ]
    [v6] = egress.parse_proc_net_tcp(TCP6)
    assert (v6.local_ip, v6.remote_ip, v6.remote_port, v6.state) == (
        "127.0.0.1",
        "127.0.0.2",
        25,
        "02",
    )


def test_summary_groups_by_program_and_skips_the_local_mta() -> None:
    rows = [
        *egress.parse_proc_net_tcp(TCP),
        egress.Socket("127.0.0.1", 5000, "127.0.0.1", 25, "01", 33, 4444),
    ]
    php = egress.Process(10, "php-fpm8.2", 33, "www-data", "php-fpm: pool www")
    master = egress.Process(1, "master", 0, "root", "/usr/lib/postfix/sbin/master")
    s = egress.summarize(
        rows, {2222: [php], 4444: [php], 1111: [master]}, frozenset({25}), frozenset({"postfix"})
    )
    assert s.to_local_mta == 1
    [g] = s.groups
    assert (g.user, g.name, g.mta, g.connections, g.pids) == (
        "www-data",
        "php-fpm8.2",
        False,
        1,
        {10},
    )
    [f] = egress.egress_findings(s, 100.0)
    assert f.subject == Subject("process", "www-data/php-fpm8.2")
    assert f.title.startswith("php-fpm8.2 (user www-data, pid 10) has 1 outbound SMTP")


def test_postqueue_json() -> None:
    lines = [
        b'{"queue_name":"deferred","queue_id":"A1B2C3D4E5","arrival_time":100,"sender":"a@x"}',
        b'{"queue_name":"hold","queue_id":"B1B2C3D4E5","arrival_time":50,"sender":""}',
        b'{"queue_name":"deferred","queue_id":"C1B2C3D4E5","arrival_time":200,"sender":"a@x"}',
        b"not json",
        b'{"queue_name":"../../etc","queue_id":"x"}',
    ]
    s = queue.parse_postqueue_json(lines)
    assert s.by_queue == {"maildrop": 0, "incoming": 0, "active": 0, "deferred": 2, "hold": 1}
    assert (s.total, s.waiting, s.oldest_arrival, s.bad_lines) == (3, 2, 50, 2)
    assert s.top_senders() == [("a@x", 2), ("<>", 1)]
    assert queue.queue_findings(s, 2, 10, "mx", 300.0) == []
    [f] = queue.queue_findings(s, 1, 10, "mx", 300.0)
    assert (f.indicator, f.severity, f.count) == ("queue-buildup", Severity.MEDIUM, 2)


def test_exim_bp() -> None:
    text = [
        " 25m  2.9K 1i7QW1-0003Vg-8B <alice@example.com>",
        "          bob@example.net",
        "",
        "  2h   12K 1i7QW2-0003Vh-9C <> *** frozen ***",
        "          carol@example.org",
    ]
    s = queue.parse_exim_bp(text, now=10_000.0)
    assert s.by_queue == {"queued": 1, "frozen": 1}
    assert s.oldest_arrival == 10_000.0 - 7200


def finding(count: int = 1, severity: Severity = Severity.HIGH, source: str = "log") -> Finding:
    return Finding(
        indicator="auth-bruteforce",
        severity=severity,
        subject=Subject("ip", "192.0.2.1"),
        title="t",
        count=count,
        last_seen=float(count),
        details={"source": source} if source != "log" else {},
    )


def test_dedupe_new_escalated_suppressed_reminder() -> None:
    d = Deduper(suppress=100, min_severity=Severity.MEDIUM)
    assert d.check(finding(severity=Severity.LOW), 0) is None
    assert d.check(finding(1), 0) == "new"
    assert d.check(finding(2), 10) is None
    assert d.suppressed == 1
    assert d.check(finding(2, Severity.CRITICAL), 20) == "escalated"
    assert d.check(finding(2, Severity.CRITICAL), 500) is None  # unchanged: no reminder
    assert d.check(finding(3, Severity.CRITICAL), 500) == "reminder"
    restored = Deduper(100, Severity.MEDIUM, d.entries)
    assert restored.check(finding(3, Severity.CRITICAL), 510) is None
    assert restored.check(finding(1, source="queue"), 0) == "new"  # another source: another key


def test_baseline_spikes_after_enough_history() -> None:
    b = resources.Baseline()
    for v in [1.0, 1.2, 0.9, 1.1] * 10:
        assert b.judge(v, 4.0, 0.5, 30) is None
    # 4 x the median 1.05 beats the median + 8 MADs (2.24) and the floor
    assert b.judge(10.0, 4.0, 0.5, 30) == pytest.approx(4.2)
    assert 10.0 not in b.values  # a spike does not become the new normal
    assert b.judge(2.0, 4.0, 0.5, 30) is None


def test_metrics_families() -> None:
    c = WatchCollector()
    reg = CollectorRegistry()
    reg.register(c)
    s = queue.parse_postqueue_json([b'{"queue_name":"deferred","arrival_time":10,"sender":"a"}'])
    c.state = MetricsState(now=70.0, queue=s, findings=[finding()], auth_failures=7)
    assert reg.get_sample_value("relayguard_queue_messages", {"queue": "deferred"}) == 1
    assert reg.get_sample_value("relayguard_queue_oldest_message_age_seconds") == 60
    assert reg.get_sample_value("relayguard_sasl_auth_failures_total") == 7
    assert (
        reg.get_sample_value(
            "relayguard_findings",
            {"indicator": "auth-bruteforce", "severity": "high", "source": "log"},
        )
        == 1
    )


class Recorder(Sink):
    name = "recorder"

    def __init__(self) -> None:
        self.got: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.got.append(alert)


def alert(i: int) -> Alert:
    return Alert(float(i), "mx", "new", finding(i))


def test_a_webhook_that_never_answers_blocks_nothing() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    accepted = threading.Event()

    def hold() -> None:
        conn, _ = server.accept()  # read nothing, answer nothing
        accepted.set()
        time.sleep(30)
        conn.close()

    threading.Thread(target=hold, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/"
    slow = Worker(WebhookSink(url, timeout=30), maxsize=10)
    recorder = Recorder()
    fast = Worker(recorder)
    router = AlertRouter([slow, fast])
    router.publish(alert(0))
    assert accepted.wait(30)  # the webhook is now stuck on its first request
    for i in range(1, 501):
        router.publish(alert(i))  # returns at once, the queue is bounded
    fast.close(30)
    assert len(recorder.got) == 501
    assert slow.dropped == 500 - 10  # the slow queue kept the newest 10
    slow.close(0)
    server.close()


def test_a_webhook_that_is_down_is_retried_then_counted_failed() -> None:
    port = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{port.getsockname()[1]}/"
    port.close()  # nothing listens there now
    w = Worker(WebhookSink(url, timeout=2), retries=1)
    w.submit(alert(1))
    deadline = time.monotonic() + 60
    while w.failed == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (w.sent, w.failed) == (0, 1)
    assert w.last_error is not None and "refused" in w.last_error.lower()
    w.close()


def test_webhook_posts_the_alert_document() -> None:
    from tests.monitor.test_watch_lab import Receiver

    r = Receiver()
    try:
        w = Worker(WebhookSink(r.url))
        w.submit(alert(7))
        body: dict[str, Any] = r.bodies.get(timeout=30)
        w.close()
    finally:
        r.close()
    assert body["schema"] == "relayguard.alert/1"
    assert body["finding"]["count"] == 7
