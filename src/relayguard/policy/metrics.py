"""What the policy server counts, and its Prometheus exposition.

The hot path only bumps plain integers (a request costs a few dict and list operations, no
locks); :class:`PolicyCollector` turns them into metric families when Prometheus scrapes.

Metric names follow the Prometheus conventions: a ``relayguard_policy_`` prefix, ``_total`` on
counters, seconds as the unit of the latency histogram.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator
from typing import Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

# Upper bounds in seconds: a policy answer should take well under a millisecond; Postfix's own
# per-service timeout (POLICY.md recommends 5 s) is the far end.
LATENCY_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class PolicyMetrics:
    """Counters of one server process."""

    def __init__(self) -> None:
        self.requests = 0
        self.decisions: Counter[tuple[str, str]] = Counter()
        """(action, decision) -> count; decision is ok, limited, warn, contained, contain,
        fail-open or fail-closed."""
        self.store_errors = 0
        self.protocol_errors = 0
        self.connections = 0
        self.containments = 0
        self.reloads = 0
        self.store_up = 1
        self._buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self._latency_sum = 0.0

    def observe(self, seconds: float) -> None:
        self._buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._latency_sum += seconds

    def histogram(self) -> tuple[list[tuple[str, float]], float]:
        """Cumulative buckets (as Prometheus wants them, with +Inf) and the sum."""
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self._buckets, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(total)))
        return out, self._latency_sum


class PolicyCollector(Collector):
    def __init__(self, metrics: PolicyMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        yield CounterMetricFamily(
            "relayguard_policy_requests", "Policy requests answered.", value=m.requests
        )
        decisions = CounterMetricFamily(
            "relayguard_policy_decisions",
            "Policy decisions by reply action and reason.",
            labels=["action", "decision"],
        )
        for (action, decision), count in sorted(m.decisions.items()):
            decisions.add_metric([action, decision], count)
        yield decisions
        yield CounterMetricFamily(
            "relayguard_policy_store_errors",
            "Store calls that failed or timed out (each answered with the fail action).",
            value=m.store_errors,
        )
        yield GaugeMetricFamily(
            "relayguard_policy_store_up",
            "1 while the store answers, 0 while requests get the fail action.",
            value=m.store_up,
        )
        yield CounterMetricFamily(
            "relayguard_policy_protocol_errors",
            "Connections closed for breaking the policy protocol or its bounds.",
            value=m.protocol_errors,
        )
        yield GaugeMetricFamily(
            "relayguard_policy_connections", "Open client connections.", value=m.connections
        )
        yield CounterMetricFamily(
            "relayguard_policy_containments",
            "Keys contained automatically by a CONTAIN rule.",
            value=m.containments,
        )
        yield CounterMetricFamily(
            "relayguard_policy_reloads", "Successful rule reloads (SIGHUP).", value=m.reloads
        )
        buckets, total = m.histogram()
        yield HistogramMetricFamily(
            "relayguard_policy_request_duration_seconds",
            "Time from a complete request to its reply being written.",
            buckets=buckets,
            sum_value=total,
        )
