"""The MTA's processes: CPU, I/O and outbound connections, against their own baseline.

:class:`ResourceSampler` (the psutil shell) sums, per sample, the CPU seconds and the bytes
read and written (``read_chars``/``write_chars``: every read and write, sockets included: the
closest per-process figure to network traffic Linux offers) of the processes run by the MTA
users, as deltas since the previous sample. Processes that started since count whole; those
that ended since are missed, which only ever understates.

:class:`Baseline` (pure) keeps the last values of one series and calls a value a spike when
it exceeds both ``factor`` times the median and the median plus 8 scaled MADs, and a floor
that keeps an idle server's noise quiet. It judges nothing before ``min_samples`` values.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import psutil

from relayguard.findings import Finding, Severity, Subject
from relayguard.monitor.egress import MTA_ROOT_PROGRAMS
from relayguard.monitor.settings import SPIKE_HISTORY

HISTORY = SPIKE_HISTORY  # samples kept per series: an hour at the default 10 s interval
MAD_SCALE = 1.4826
MADS = 8.0
# below these, nothing is a spike: a few percent of a core, a few hundred kB/s, a few sessions
FLOORS = {"cpu_ratio": 0.2, "io_bytes_per_second": 2_000_000.0, "connections": 20.0}


class Baseline:
    __slots__ = ("values",)

    def __init__(self, values: list[float] | None = None) -> None:
        self.values: deque[float] = deque(values or (), maxlen=HISTORY)

    def limit(self, factor: float, floor: float) -> float:
        med = median(self.values)
        mad = median(abs(x - med) for x in self.values)
        return max(floor, med * factor, med + MADS * MAD_SCALE * mad)

    def judge(self, value: float, factor: float, floor: float, min_samples: int) -> float | None:
        """The limit ``value`` exceeds, or None; then ``value`` joins the history.

        A spike does not join it: a long attack must not become the new normal.
        """
        spike = None
        if len(self.values) >= min_samples:
            limit = self.limit(factor, floor)
            if value > limit:
                spike = limit
        if spike is None:
            self.values.append(value)
        return spike


@dataclass(slots=True)
class ResourceSample:
    processes: int = 0
    cpu_ratio: float = 0.0  # CPU seconds per second (1.0 = one core busy)
    io_bytes_per_second: float = 0.0
    connections: int = 0  # the MTA's outbound SMTP connections (from the egress sample)
    spikes: dict[str, tuple[float, float]] = field(default_factory=dict)  # series: value, limit
    error: str | None = None

    def values(self) -> dict[str, float]:
        return {
            "cpu_ratio": self.cpu_ratio,
            "io_bytes_per_second": self.io_bytes_per_second,
            "connections": float(self.connections),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "processes": self.processes,
            "cpu_ratio": round(self.cpu_ratio, 4),
            "io_bytes_per_second": round(self.io_bytes_per_second),
            "outbound_connections": self.connections,
            "spikes": {
                k: {"value": v, "limit": round(lim, 4)} for k, (v, lim) in self.spikes.items()
            },
            "error": self.error,
        }


class ResourceSampler:
    """Per-sample CPU and I/O of the MTA processes (deltas since the previous sample)."""

    def __init__(self, mta_users: frozenset[str]) -> None:
        self.mta_users = mta_users
        # pid -> (create time, cpu seconds, io chars) at the previous sample
        self._last: dict[int, tuple[float, float, int]] = {}
        self._last_time: float | None = None

    def _is_mta(self, user: str | None, name: str | None) -> bool:
        return user in self.mta_users or (user == "root" and name in MTA_ROOT_PROGRAMS)

    def sample(self, now: float) -> ResourceSample:
        seen: dict[int, tuple[float, float, int]] = {}
        cpu = 0.0
        io = 0
        for p in psutil.process_iter(["username", "name", "create_time"]):
            info = p.info
            if not self._is_mta(info.get("username"), info.get("name")):
                continue
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    try:
                        counters = p.io_counters()
                        chars = int(counters.read_chars + counters.write_chars)
                    except (psutil.AccessDenied, AttributeError):
                        chars = 0
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            created = float(info.get("create_time") or 0.0)
            total = float(t.user + t.system)
            seen[p.pid] = (created, total, chars)
            before = self._last.get(p.pid)
            if before is not None and before[0] == created:
                cpu += max(0.0, total - before[1])
                io += max(0, chars - before[2])
            elif self._last_time is not None:
                cpu += total  # started since the previous sample: all of it is new
                io += chars
        sample = ResourceSample(processes=len(seen))
        if self._last_time is not None and now > self._last_time:
            span = now - self._last_time
            sample.cpu_ratio = cpu / span
            sample.io_bytes_per_second = io / span
        self._last = seen
        self._last_time = now
        return sample


def judge(
    sample: ResourceSample,
    baselines: dict[str, Baseline],
    factor: float,
    min_samples: int,
    first: bool,
) -> None:
    """Set ``sample.spikes`` against the baselines (the first sample has no deltas yet)."""
    if first:
        return
    for series, value in sample.values().items():
        base = baselines.setdefault(series, Baseline())
        limit = base.judge(value, factor, FLOORS[series], min_samples)
        if limit is not None:
            sample.spikes[series] = (round(value, 4), limit)


_LABELS = {
    "cpu_ratio": "CPU {value:.0%} of a core (usual at most {limit:.0%})",
    "io_bytes_per_second": "I/O {value:,.0f} bytes/s (usual at most {limit:,.0f})",
    "connections": "{value:.0f} outbound SMTP connections (usual at most {limit:.0f})",
}


def resource_findings(sample: ResourceSample, mta: str, now: float) -> list[Finding]:
    if not sample.spikes:
        return []
    parts = [_LABELS[k].format(value=v, limit=lim) for k, (v, lim) in sorted(sample.spikes.items())]
    return [
        Finding(
            indicator="mta-resource-spike",
            severity=Severity.MEDIUM,
            subject=Subject("service", mta),
            title=f"{mta} is working far harder than usual: " + "; ".join(parts),
            first_seen=now,
            last_seen=now,
            count=len(parts),
            mitigations=["inspect-deferred-queue", "rate-limit-outbound", "hold-queued-mail"],
            details={"source": "resources", **sample.to_json()},
        )
    ]
