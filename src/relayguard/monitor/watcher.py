"""The watcher: the thin loop that drives the follower, the analyzer, the samplers and alerts.

One thread does everything that touches detector state, in this order, forever: read a batch
of lines and feed them to the same :class:`~relayguard.analysis.engine.Analyzer` ``relayguard
analyze`` uses; every ``interval`` seconds start a sample of the queue, the outbound
connections and the MTA processes in the sampler thread (a slow ``postqueue`` must hold up
neither the log nor a stop; a sample due while the last one still runs is skipped and
counted), and apply the finished one; after new lines or a sample, ask the analyzer for its
findings so far (at most every :data:`EVALUATE_EVERY` seconds, and never more than a tenth of
the time: asking costs in proportion to what the detectors track), turn new findings into
alerts, publish metrics; publish the metrics at least every :data:`METRICS_EVERY` seconds
anyway (alert delivery counters move while the log is quiet, with or without sampling); every
:data:`SAVE_EVERY` seconds, and when stopping, save the state. Alert delivery and the metrics
server run in their own threads and never hold this one up; alerts a sink has not delivered
when it stops are not saved as sent."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from relayguard.analysis.engine import Analyzer
from relayguard.analysis.result import AnalysisResult
from relayguard.config import Config
from relayguard.findings import Finding, Severity
from relayguard.logs.envelope import EnvelopeParser
from relayguard.logs.events import Event
from relayguard.logs.follow import FollowStats
from relayguard.logs.reader import ReaderStats, parse_lines
from relayguard.monitor import egress, queue, resources
from relayguard.monitor.alerts import Alert, Deduper, finding_key, local_host
from relayguard.monitor.metrics import MetricsState, WatchCollector
from relayguard.monitor.sinks import AlertRouter, emit_event
from relayguard.monitor.state import StateDir
from relayguard.report.sanitize import clean

EVALUATE_EVERY = 1.0
METRICS_EVERY = 5.0
SAVE_EVERY = 60.0
IDLE_WAIT = 0.2
QUEUE_TIMEOUT = 60.0
YEAR_CHECK_EVERY = 60.0


class Source(Protocol):
    stats: FollowStats

    def poll(self, max_bytes: int = ...) -> list[str]: ...

    def position(self) -> Any: ...

    def lag_bytes(self) -> int: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class Samples:
    queue: queue.QueueSample | None = None
    egress: egress.EgressSample | None = None
    resources: resources.ResourceSample | None = None
    findings: list[Finding] = field(default_factory=list)
    taken: float | None = None
    seconds: float = 0.0


class Watcher:
    def __init__(
        self,
        config: Config,
        source: Source,
        state: StateDir,
        *,
        analyzer: Analyzer | None = None,
        saved: dict[str, Any] | None = None,
        router: AlertRouter | None = None,
        collector: WatchCollector | None = None,
        sample: bool = True,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        host: str | None = None,
    ) -> None:
        saved = saved or {}
        self.config = config
        self.w = config.watch
        self.source = source
        self.state = state
        self.analyzer = analyzer or Analyzer(config)
        self.router = router
        self.collector = collector
        self.sampling = sample
        self.clock = clock
        self.monotonic = monotonic
        self.host = host or local_host()
        self.stats = ReaderStats()
        now = clock()
        self.parser = EnvelopeParser("auto", reference_time=now)
        self._year_checked = now
        self._last_t: float | None = None
        a = self.w.alerts
        self.deduper = Deduper(a.suppress, Severity[a.min_severity.upper()], saved.get("alerts"))
        self.baselines = {
            k: resources.Baseline([float(x) for x in v if isinstance(x, int | float)])
            for k, v in (saved.get("baselines") or {}).items()
            if k in resources.FLOORS and isinstance(v, list)
        }
        self.ports = frozenset(self.w.smtp_ports)
        self.mta_users = frozenset(self.w.mta_users)
        self.resource_sampler = resources.ResourceSampler(self.mta_users)
        self.samples = Samples()
        self.metrics = MetricsState()
        counters = saved.get("counters") or {}
        self.metrics.mta_cpu_seconds = float(counters.get("mta_cpu_seconds", 0.0))
        self.metrics.mta_io_bytes = int(counters.get("mta_io_bytes", 0))
        self.alerts: list[Alert] = []  # raised by this process (the --once document lists them)
        self.result: AnalysisResult | None = None
        self.findings: list[Finding] = []
        self._dirty = False
        self._eval_cost = 0.0
        self._last_eval = 0.0
        self._last_save = now
        self._next_sample = float("-inf")
        self._sampler: threading.Thread | None = None
        self._sampled: Samples | None = None  # collected by the sampler thread, not applied yet
        self.samples_skipped = 0  # samples due while the previous one still ran
        self._path_problem: str | None = None  # the follower's, as last reported
        self._published = float("-inf")  # monotonic time of the last metrics publication

    # -- the steps ---------------------------------------------------------------------------
    def read_batch(self) -> int:
        """Feed the lines available now; returns how many were read."""
        lines = self.source.poll()
        if not lines:
            return 0
        now = self.clock()
        if now - self._year_checked > YEAR_CHECK_EVERY:
            self.parser.start_source(now)  # BSD stamps: the year goes on with the clock
            self._year_checked = now
        last: list[float | None] = [self._last_t]

        def events() -> Iterator[Event]:
            last[0] = yield from parse_lines(lines, self.parser, self.stats, 0, last[0])

        self.analyzer.feed_all(events())
        self._last_t = last[0]
        self._dirty = True
        return len(lines)

    def collect(self) -> Samples:
        """Take the raw samples (slow: a queue command, /proc, psutil); touches no state but
        the resource sampler's own, so it runs in the sampler thread."""
        now = self.clock()
        started = self.monotonic()
        s = Samples(taken=now)
        w = self.w
        s.queue = queue.sample_queue(w.mta, w.postfix_config or None, now, QUEUE_TIMEOUT)
        try:
            s.egress = egress.sample_egress(self.ports, self.mta_users)
        except OSError as exc:
            s.egress = egress.EgressSample(error=f"cannot read /proc: {exc.strerror or exc}")
        try:
            s.resources = self.resource_sampler.sample(now)
        except Exception as exc:  # psutil can fail in many ways on an odd /proc
            s.resources = resources.ResourceSample(error=f"{type(exc).__name__}: {exc}")
        s.seconds = self.monotonic() - started
        return s

    def apply(self, s: Samples) -> None:
        """Judge a collected sample against the baselines and make its findings current."""
        w = self.w
        now = s.taken if s.taken is not None else self.clock()
        first = self.samples.taken is None
        if s.resources is not None and s.resources.error is None:
            s.resources.connections = s.egress.mta_connections if s.egress else 0
            resources.judge(s.resources, self.baselines, w.spike_factor, w.spike_samples, first)
            span = now - (self.samples.taken or now)
            self.metrics.mta_cpu_seconds += s.resources.cpu_ratio * span
            self.metrics.mta_io_bytes += int(s.resources.io_bytes_per_second * span)
        if s.queue is not None:
            s.findings = queue.queue_findings(
                s.queue, w.queue_threshold, w.queue_high, self.host, now
            )
        if s.egress is not None and s.egress.error is None:
            s.findings += egress.egress_findings(s.egress, now)
        if s.resources is not None and s.resources.error is None:
            s.findings += resources.resource_findings(s.resources, w.mta, now)
        for name, part in (("queue", s.queue), ("egress", s.egress), ("resources", s.resources)):
            if part is not None and part.error is not None:
                errors = self.metrics.sample_errors
                errors[name] = errors.get(name, 0) + 1
        self.samples = s
        self._dirty = True

    def sample(self) -> None:
        """One sample, here and now (``--once``; the daemon samples in a thread of its own)."""
        self.apply(self.collect())

    def _start_sample(self) -> None:
        """Start a sample in the sampler thread, or skip it (and count) when one still runs."""
        if self._sampler is not None and self._sampler.is_alive():
            self.samples_skipped += 1
            return
        self._sampler = threading.Thread(
            target=self._sample_thread, name="relayguard-sampler", daemon=True
        )
        self._sampler.start()

    def _sample_thread(self) -> None:
        try:
            s = self.collect()
        except Exception as exc:  # a sampler bug must not end sampling for good
            s = Samples(taken=self.clock())
            s.resources = resources.ResourceSample(error=f"{type(exc).__name__}: {exc}")
        self._sampled = s  # one reference assignment; the loop picks it up

    def _take_sample(self) -> None:
        s, self._sampled = self._sampled, None
        if s is not None:
            self.apply(s)

    def evaluate(self, force: bool = False) -> list[Alert]:
        """Findings so far -> alerts and metrics; returns the alerts raised now."""
        started = self.monotonic()
        if not force:
            gap = max(EVALUATE_EVERY, 10 * self._eval_cost)
            if not self._dirty or started - self._last_eval < gap:
                return []
        now = self.clock()
        self.result = self.analyzer.finish(self.stats.to_input_stats())
        horizon = now - self.w.active_window
        active = [f for f in self.result.findings if f.last_seen is None or f.last_seen >= horizon]
        self.findings = active + self.samples.findings
        raised = []
        for f in self.findings:
            previous = self.deduper.entries.get(finding_key(f))
            reason = self.deduper.check(f, now)
            if reason is not None:
                alert = Alert(now, self.host, reason, f, previous)
                raised.append(alert)
                if self.router is not None:
                    self.router.publish(alert)
                key = (f.indicator, f.severity.label)
                self.metrics.alerts[key] = self.metrics.alerts.get(key, 0) + 1
        self.alerts += raised
        del self.alerts[:-1000]
        self._publish_metrics(now)
        self._dirty = False
        self._last_eval = self.monotonic()
        self._eval_cost = self._last_eval - started
        return raised

    def _publish_metrics(self, now: float) -> None:
        m = self.metrics
        tr = self.analyzer.traffic
        st = self.stats
        s = self.samples
        new = MetricsState(
            now=now,
            queue=s.queue,
            egress=s.egress,
            mta_processes=s.resources.processes if s.resources else 0,
            mta_cpu_seconds=m.mta_cpu_seconds,
            mta_io_bytes=m.mta_io_bytes,
            findings=list(self.findings),
            auth_failures=tr.auth_failures,
            auth_successes=tr.auth_successes,
            deliveries={"sent": tr.delivered, "deferred": tr.deferred, "bounced": tr.bounced},
            rejects=tr.rejected,
            lines={
                "parsed": st.lines_parsed,
                "unparsed": st.lines_unparsed,
                "empty": st.lines_empty,
            },
            lines_truncated=st.lines_truncated,
            rotations=self.source.stats.rotations + self.source.stats.truncations,
            lag_bytes=self.source.lag_bytes(),
            alerts=dict(m.alerts),
            alerts_suppressed=self.deduper.suppressed,
            sample_errors=dict(m.sample_errors),
            samples_skipped=self.samples_skipped,
            log_missing=self._path_problem is not None,
            last_sample=s.taken,
            sample_seconds=s.seconds,
        )
        if self.router is not None:
            for w in self.router.workers:
                name = w.sink.name
                new.deliveries_by_sink[(name, "sent")] = w.sent
                new.deliveries_by_sink[(name, "failed")] = w.failed
                new.deliveries_by_sink[(name, "dropped")] = w.dropped
        self.metrics = new
        self._published = self.monotonic()
        if self.collector is not None:
            self.collector.state = new  # one reference swap: the scrape thread sees all or none

    def save(self) -> None:
        pos = self.source.position()
        watch = {
            "saved": self.clock(),
            "log": {
                "source": self.w.source,
                "path": os.path.abspath(self.w.log),
                "position": _json(pos),
            },
            "alerts": self.deduper.entries,
            "baselines": {k: list(b.values) for k, b in self.baselines.items()},
            "counters": {
                "mta_cpu_seconds": self.metrics.mta_cpu_seconds,
                "mta_io_bytes": self.metrics.mta_io_bytes,
            },
        }
        self.state.save(self.analyzer, watch)
        self._last_save = self.clock()

    # -- the loops ---------------------------------------------------------------------------
    def catch_up(self, limit: float | None = None) -> int:
        """Read until the log has nothing more (or ``limit`` seconds passed)."""
        total = 0
        deadline = None if limit is None else self.monotonic() + limit
        while True:
            n = self.read_batch()
            total += n
            if n == 0 or (deadline is not None and self.monotonic() > deadline):
                return total

    def tick(self) -> int:
        """One turn of the daemon's loop; returns how many lines were read."""
        n = self.read_batch()
        self._report_path()
        mono = self.monotonic()
        if self.sampling and mono >= self._next_sample:
            self._start_sample()
            self._next_sample = mono + self.w.interval
        self._take_sample()
        self.evaluate()
        if self.monotonic() - self._published >= METRICS_EVERY:
            self._publish_metrics(self.clock())
        if self.clock() - self._last_save >= SAVE_EVERY:
            self.save()
        return n

    def shutdown(self, *, evaluate: bool = True) -> None:
        """Evaluate once more, give the sinks their last seconds, save.

        Alerts still waiting in a sink are put back in the alert table as if never raised,
        so the next run raises them again instead of counting them as sent.
        """
        if evaluate:
            self.evaluate(force=True)
        if self.router is not None:
            for alert in reversed(self.router.close()):
                self.deduper.revert(alert)
        self.save()

    def run(self, stop: threading.Event, hangup: threading.Event | None = None) -> None:
        try:
            while not stop.is_set():
                if hangup is not None and hangup.is_set():
                    hangup.clear()
                    self.on_hangup()
                if self.tick() == 0:
                    stop.wait(IDLE_WAIT)
        finally:
            self.shutdown()

    def _report_path(self) -> None:
        """Say once when the followed file goes missing (or is no regular file), once when it
        is back."""
        problem = getattr(self.source.stats, "path_problem", None)
        if problem == self._path_problem:
            return
        if problem is not None:
            emit_event({"event": "log_missing", "log": self.w.log, "error": clean(problem, 300)})
        else:
            emit_event({"event": "log_back", "log": self.w.log})
        self._path_problem = problem
        self._dirty = True  # the metric moves

    def on_hangup(self) -> None:
        """SIGHUP: nothing to reopen (the follower reopens a rotated log by itself); the
        configuration is read at start only. Save the state and say so, never die."""
        self.save()
        emit_event(
            {
                "event": "hangup",
                "action": "state saved; the log is reopened on rotation by itself; "
                "restart to read a changed configuration",
            }
        )


def _json(pos: Any) -> Any:
    to_json = getattr(pos, "to_json", None)
    return to_json() if callable(to_json) else pos
