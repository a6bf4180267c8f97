"""What the policy server counts, and its Prometheus exposition.

The hot path only bumps plain integers (a request costs a few dict and list operations, no
locks); :class:`PolicyCollector` turns them into metric families when Prometheus scrapes.

Metric names follow the Prometheus conventions: a ``relayguard_policy_`` prefix, ``_total`` on
counters, seconds as the unit of the latency histogram.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

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

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON-able data, for the supervisor of several workers to add up."""
        return {
            "requests": self.requests,
            "decisions": [[a, d, n] for (a, d), n in self.decisions.items()],
            "store_errors": self.store_errors,
            "protocol_errors": self.protocol_errors,
            "connections": self.connections,
            "containments": self.containments,
            "reloads": self.reloads,
            "store_up": self.store_up,
            "buckets": list(self._buckets),
            "latency_sum": self._latency_sum,
        }

    @classmethod
    def merged(cls, snapshots: Iterable[Mapping[str, Any]]) -> PolicyMetrics:
        """The sum of several workers' snapshots (the store is up while every worker has it)."""
        total = cls()
        for snap in snapshots:
            for name in (
                "requests",
                "store_errors",
                "protocol_errors",
                "connections",
                "containments",
                "reloads",
            ):
                setattr(total, name, getattr(total, name) + int(snap[name]))
            total.store_up = min(total.store_up, int(snap["store_up"]))
            for action, decision, count in snap["decisions"]:
                total.decisions[str(action), str(decision)] += int(count)
            for i, count in enumerate(snap["buckets"][: len(total._buckets)]):
                total._buckets[i] += int(count)
            total._latency_sum += float(snap["latency_sum"])
        return total

    def write_snapshot(self, path: Path, **extra: object) -> None:
        """The snapshot (and ``extra`` fields) in ``path``, replaced atomically (a scrape never
        reads half a file)."""
        part = path.with_name(path.name + ".part")
        part.write_text(json.dumps({**self.snapshot(), **extra}), encoding="utf-8")
        os.replace(part, path)

    def histogram(self) -> tuple[list[tuple[str, float]], float]:
        """Cumulative buckets (as Prometheus wants them, with +Inf) and the sum."""
        out: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self._buckets, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(total)))
        return out, self._latency_sum


RETIRED = "retired.json"
"""The counters of the workers that have exited, added up, and the snapshot files they came from
(a worker started again counts from zero in a new file: without these, counters would go down)."""


def read_snapshots(directory: Path) -> list[dict[str, Any]]:
    """The snapshots in ``directory``: the retired workers' sum and each live worker's file (a
    file being replaced right now is skipped, as is one already in the retired sum)."""
    out = []
    absorbed: set[str] = set()
    retired = _read_json(directory / RETIRED)
    if retired is not None:
        absorbed = set(retired.get("absorbed", ()))
        out.append(retired)
    for path in sorted(directory.glob("worker-*.json")):
        if path.name not in absorbed:
            snapshot = _read_json(path)
            if snapshot is not None:
                out.append(snapshot)
    return out


def retire_snapshot(directory: Path, name: str) -> None:
    """Add the snapshot file ``name`` of a worker that exited to the retired sum, then remove it.

    The sum names the files it holds and is replaced atomically before the file goes, so a scrape
    in between never counts a worker twice or not at all. Its gauges are dropped: an exited
    worker has no connections and no view of the store.
    """
    path = directory / name
    snapshot = _read_json(path)
    retired = _read_json(directory / RETIRED) or {}
    absorbed = [*retired.get("absorbed", ()), name]
    parts = [s for s in (retired, snapshot) if s and "requests" in s]
    total = PolicyMetrics.merged(parts)
    total.connections = 0
    total.store_up = 1
    total.write_snapshot(directory / RETIRED, absorbed=absorbed)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


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


class MergedCollector(PolicyCollector):
    """The counters of every worker process, added up from their snapshots at each scrape."""

    def __init__(self, directory: Path) -> None:
        super().__init__(PolicyMetrics())
        self._directory = directory

    def collect(self) -> Iterator[Metric]:
        self._m = PolicyMetrics.merged(read_snapshots(self._directory))
        yield from super().collect()
