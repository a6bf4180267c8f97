"""Prometheus metrics of ``relayguard watch``: built from a snapshot the watcher publishes.

The watcher fills a :class:`MetricsState` after each batch and each sample and swaps it in
(one reference assignment); :class:`WatchCollector` renders whatever state is current when
Prometheus scrapes, from the HTTP server's thread, without touching the watcher's live data.
Names follow the Prometheus conventions: ``relayguard_`` prefix, base units (seconds, bytes),
``_total`` counters. Label values that come from outside (process names, user names) are
few and bounded (``egress.MAX_GROUPS``); the client library escapes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from relayguard.errors import RelayguardError
from relayguard.findings import Finding
from relayguard.monitor.alerts import source_of
from relayguard.monitor.egress import EgressSample
from relayguard.monitor.queue import QueueSample


@dataclass(slots=True)
class MetricsState:
    now: float = 0.0
    queue: QueueSample | None = None
    egress: EgressSample | None = None
    mta_processes: int = 0
    mta_cpu_seconds: float = 0.0  # accumulated over samples
    mta_io_bytes: int = 0
    findings: list[Finding] = field(default_factory=list)
    auth_failures: int = 0
    auth_successes: int = 0
    deliveries: dict[str, int] = field(default_factory=dict)  # status -> count
    rejects: int = 0
    lines: dict[str, int] = field(default_factory=dict)  # parsed | unparsed | empty
    lines_truncated: int = 0
    rotations: int = 0
    lag_bytes: int = 0
    alerts: dict[tuple[str, str], int] = field(default_factory=dict)  # (indicator, severity)
    alerts_suppressed: int = 0
    deliveries_by_sink: dict[tuple[str, str], int] = field(default_factory=dict)
    sample_errors: dict[str, int] = field(default_factory=dict)
    samples_skipped: int = 0
    log_missing: bool = False
    last_sample: float | None = None
    sample_seconds: float = 0.0


def families(st: MetricsState) -> Iterator[Metric]:
    """The metric families of one state (pure: tests read them without a server)."""
    if st.queue is not None and st.queue.error is None:
        g = GaugeMetricFamily(
            "relayguard_queue_messages", "Messages in the mail queue.", labels=["queue"]
        )
        for name, n in sorted(st.queue.by_queue.items()):
            g.add_metric([name], n)
        yield g
        age = st.queue.oldest_age(st.now)
        yield GaugeMetricFamily(
            "relayguard_queue_oldest_message_age_seconds",
            "Age of the oldest message in the queue (0 when empty).",
            value=age or 0.0,
        )
    if st.egress is not None:
        g = GaugeMetricFamily(
            "relayguard_outbound_smtp_connections",
            "Outbound connections to SMTP ports, by program and user.",
            labels=["process", "user", "mta"],
        )
        for grp in st.egress.groups:
            g.add_metric([grp.name, grp.user, "true" if grp.mta else "false"], grp.connections)
        yield g
    yield GaugeMetricFamily(
        "relayguard_mta_processes", "Processes of the MTA users.", value=st.mta_processes
    )
    yield CounterMetricFamily(
        "relayguard_mta_cpu_seconds",
        "CPU time used by the MTA processes, summed over samples.",
        value=st.mta_cpu_seconds,
    )
    yield CounterMetricFamily(
        "relayguard_mta_io_bytes",
        "Bytes read and written by the MTA processes (sockets included).",
        value=st.mta_io_bytes,
    )
    g = GaugeMetricFamily(
        "relayguard_findings",
        "Active findings, by indicator, severity and where they come from.",
        labels=["indicator", "severity", "source"],
    )
    counts: dict[tuple[str, str, str], int] = {}
    for f in st.findings:
        key = (f.indicator, f.severity.label, source_of(f))
        counts[key] = counts.get(key, 0) + 1
    for labels, n in sorted(counts.items()):
        g.add_metric(list(labels), n)
    yield g
    yield CounterMetricFamily(
        "relayguard_sasl_auth_failures", "Failed SASL logins in the log.", value=st.auth_failures
    )
    yield CounterMetricFamily(
        "relayguard_sasl_auth_successes",
        "Successful SASL logins in the log.",
        value=st.auth_successes,
    )
    c = CounterMetricFamily(
        "relayguard_deliveries",
        "Delivery attempts in the log, per recipient, by status.",
        labels=["status"],
    )
    for status, n in sorted(st.deliveries.items()):
        c.add_metric([status], n)
    yield c
    yield CounterMetricFamily(
        "relayguard_smtpd_rejects", "Commands the server refused (log).", value=st.rejects
    )
    c = CounterMetricFamily(
        "relayguard_log_lines", "Log lines read, by how they parsed.", labels=["result"]
    )
    for result, n in sorted(st.lines.items()):
        c.add_metric([result], n)
    yield c
    yield CounterMetricFamily(
        "relayguard_log_lines_truncated",
        "Over-long log lines cut to the line limit.",
        value=st.lines_truncated,
    )
    yield CounterMetricFamily(
        "relayguard_log_rotations", "Log rotations followed.", value=st.rotations
    )
    yield GaugeMetricFamily(
        "relayguard_log_lag_bytes", "Bytes of the log not read yet.", value=st.lag_bytes
    )
    c = CounterMetricFamily(
        "relayguard_alerts",
        "Alerts raised, by indicator and severity.",
        labels=["indicator", "severity"],
    )
    for pair, n in sorted(st.alerts.items()):
        c.add_metric(list(pair), n)
    yield c
    yield CounterMetricFamily(
        "relayguard_alerts_suppressed",
        "Repeated alerts suppressed as duplicates.",
        value=st.alerts_suppressed,
    )
    c = CounterMetricFamily(
        "relayguard_alert_deliveries",
        "Alert deliveries by sink and result (sent, failed, dropped).",
        labels=["sink", "result"],
    )
    for sink_result, n in sorted(st.deliveries_by_sink.items()):
        c.add_metric(list(sink_result), n)
    yield c
    c = CounterMetricFamily(
        "relayguard_sample_errors", "Samples that failed, by sampler.", labels=["sampler"]
    )
    for sampler, n in sorted(st.sample_errors.items()):
        c.add_metric([sampler], n)
    yield c
    yield CounterMetricFamily(
        "relayguard_samples_skipped",
        "Samples not taken because the previous one was still running.",
        value=st.samples_skipped,
    )
    yield GaugeMetricFamily(
        "relayguard_log_file_missing",
        "1 while the followed log file is missing or not a regular file.",
        value=1 if st.log_missing else 0,
    )
    if st.last_sample is not None:
        yield GaugeMetricFamily(
            "relayguard_last_sample_timestamp_seconds",
            "When the last sample was taken (Unix time).",
            value=st.last_sample,
        )
        yield GaugeMetricFamily(
            "relayguard_sample_duration_seconds",
            "Wall time the last sample took.",
            value=st.sample_seconds,
        )


class WatchCollector(Collector):
    def __init__(self) -> None:
        self.state = MetricsState()

    def collect(self) -> Iterator[Metric]:
        return families(self.state)


def serve(listen: tuple[str, int], collector: WatchCollector) -> CollectorRegistry:
    """Serve ``/metrics`` on ``listen`` from a daemon thread."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    host, port = listen
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise RelayguardError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
        ) from None
    return registry
