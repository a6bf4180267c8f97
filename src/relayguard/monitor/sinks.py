"""Where alerts go: stdout JSON lines, syslog, a webhook, a local mail via sendmail.

Every sink runs in its own :class:`Worker` thread behind a bounded queue, so a slow or dead
receiver never blocks the watcher: :meth:`Worker.submit` never waits (when the queue is full
the oldest alert is dropped and counted). The webhook retries a failed POST with exponential
backoff; a retry waits on an event, so closing the worker cuts the wait short. Every failed
attempt, and the final give-up, is one JSON line on stderr with the reason
(:func:`emit_event`, the daemon's structured log).

Nothing from the log reaches a shell: sendmail gets its recipients as arguments from the
config only, and the message on stdin, built by :mod:`email` from cleaned text.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from typing import IO, Any

from relayguard import __version__
from relayguard.monitor.alerts import Alert
from relayguard.report.sanitize import clean

QUEUE_SIZE = 1000
MAX_BACKOFF = 30.0
MAX_REASON = 300
_SYSLOG_LEVEL = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
_LOG_MAIL = 2 << 3


_emit_lock = threading.Lock()


def emit_event(event: dict[str, object], stream: IO[str] | None = None) -> None:
    """One JSON line (``ts`` first) on ``stream`` (stderr): the daemon's structured log.

    Callers bound and clean the text they put in; ``json.dumps`` escapes the rest (ASCII only,
    so nothing in a line can reach the terminal as a control character).
    """
    line = json.dumps({"ts": round(time.time(), 3), **event}, separators=(",", ":"))
    with _emit_lock:  # one line per write, whatever the threads
        out = stream or sys.stderr
        out.write(line + "\n")
        out.flush()


class SinkError(Exception):
    """One delivery failed (the worker counts it and, for the webhook, retries)."""


class Sink:
    name = "sink"

    def send(self, alert: Alert) -> None:
        raise NotImplementedError


class StdoutSink(Sink):
    name = "stdout"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def send(self, alert: Alert) -> None:
        stream = self.stream or sys.stdout
        stream.write(json.dumps(alert.to_json(), separators=(",", ":")) + "\n")
        stream.flush()


class SyslogSink(Sink):
    """RFC 3164 datagrams to the local syslog socket, facility mail."""

    name = "syslog"

    def __init__(self, path: str = "/dev/log") -> None:
        self.path = path

    def send(self, alert: Alert) -> None:
        pri = _LOG_MAIL | _SYSLOG_LEVEL.get(alert.finding.severity.label, 4)
        stamp = time.strftime("%b %e %H:%M:%S", time.localtime(alert.time))
        line = f"<{pri}>{stamp} relayguard[{os.getpid()}]: {alert.summary(900)}"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.settimeout(2.0)
                s.sendto(line.encode("utf-8", "replace"), self.path)
        except OSError as exc:
            raise SinkError(f"syslog {self.path}: {exc.strerror or exc}") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a POST must not turn into a GET somewhere else


def split_userinfo(url: str) -> tuple[str, str | None]:
    """``url`` without its ``user:password@`` part, and the HTTP Basic ``Authorization``
    value for it (None when there is none)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    bare = urllib.parse.urlunsplit(parts._replace(netloc=host))
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return bare, f"Basic {token}"


class WebhookSink(Sink):
    """POSTs the alert; credentials in the URL (``https://user:password@host/...``) are sent
    as HTTP Basic authentication, never as part of the host name."""

    name = "webhook"

    def __init__(self, url: str, timeout: float = 5.0, retries: int = 3) -> None:
        self.url, self._authorization = split_userinfo(url)
        self.timeout = timeout
        self.retries = retries
        self._opener = urllib.request.build_opener(_NoRedirect)

    def send(self, alert: Alert) -> None:
        body = json.dumps(alert.to_json(), separators=(",", ":")).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": f"relayguard/{__version__}"},
        )
        if self._authorization is not None:
            request.add_unredirected_header("Authorization", self._authorization)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(65536)
                status = response.status
        except urllib.error.HTTPError as exc:
            raise SinkError(f"webhook answered HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise SinkError(f"webhook: {clean(str(reason), 200)}") from None
        if not 200 <= status < 300:
            raise SinkError(f"webhook answered HTTP {status}")


class SendmailSink(Sink):
    name = "sendmail"

    def __init__(self, program: str, recipients: list[str], config_dir: str | None = None) -> None:
        self.program = program
        self.recipients = list(recipients)
        self.config_dir = config_dir

    def message(self, alert: Alert) -> bytes:
        f = alert.finding
        msg = EmailMessage()
        subject = clean(
            f"[relayguard] {f.severity.label} {f.indicator} on {alert.host}: "
            f"{f.subject.kind}:{f.subject.value}",
            200,
        )
        msg["Subject"] = subject
        msg["To"] = ", ".join(self.recipients)
        msg["Auto-Submitted"] = "auto-generated"
        lines = [clean(f.title, 1000), ""]
        lines += [f"evidence: {clean(e, 1000)}" for e in f.evidence[:12]]
        lines += ["", "mitigations: " + ", ".join(f.mitigations), ""]
        lines.append(json.dumps(alert.to_json(), indent=1, ensure_ascii=True))
        msg.set_content("\n".join(lines) + "\n")
        return msg.as_bytes()

    def send(self, alert: Alert) -> None:
        argv = [self.program]
        if self.config_dir:
            argv += ["-C", self.config_dir]
        argv += ["-i", "--", *self.recipients]
        try:
            done = subprocess.run(
                argv, input=self.message(alert), capture_output=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SinkError(f"sendmail: {clean(str(exc), 200)}") from None
        if done.returncode != 0:
            err = clean(" ".join(done.stderr.decode("utf-8", "replace").split()), 200)
            raise SinkError(f"sendmail exited {done.returncode}: {err}")


class Worker:
    """One sink behind a bounded queue, in a daemon thread."""

    def __init__(
        self,
        sink: Sink,
        retries: int = 0,
        maxsize: int = QUEUE_SIZE,
        *,
        events: IO[str] | None = None,
    ) -> None:
        self.sink = sink
        self.retries = retries
        self.events = events  # where failures are logged; None: stderr
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._current: Alert | None = None  # being delivered
        self._unsent: list[Alert] = []  # taken from the queue after close began
        self._thread = threading.Thread(
            target=self._run, name=f"relayguard-{sink.name}", daemon=True
        )
        self._thread.start()

    def submit(self, alert: Alert) -> None:
        """Queue ``alert``; never waits."""
        self._put(alert)

    def _put(self, item: Alert | None) -> None:
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            with self._lock:
                if alert is None:
                    return
                if self._stop.is_set():
                    self._unsent.append(alert)
                    continue
                self._current = alert
            self._deliver(alert)
            with self._lock:
                self._current = None

    def _deliver(self, alert: Alert) -> None:
        delay = 1.0
        attempts = self.retries + 1
        about = self._about(alert)
        for attempt in range(1, attempts + 1):
            try:
                self.sink.send(alert)
                self.sent += 1
                return
            except SinkError as exc:
                self.last_error = clean(str(exc), MAX_REASON)
            except Exception as exc:  # a sink bug must not kill the thread
                self.last_error = clean(f"{type(exc).__name__}: {exc}", MAX_REASON)
            if attempt == attempts:
                break
            self._emit(
                {
                    "event": "alert_delivery_failed",
                    **about,
                    "attempt": attempt,
                    "attempts": attempts,
                    "retry_in": delay,
                    "error": self.last_error,
                }
            )
            if self._stop.wait(delay):
                return  # closing: close() reports it as undelivered
            delay = min(MAX_BACKOFF, delay * 2)
        self.failed += 1
        self._emit(
            {
                "event": "alert_undelivered",
                **about,
                "attempts": attempt,
                "error": self.last_error,
            }
        )

    def _about(self, alert: Alert) -> dict[str, object]:
        f = alert.finding
        return {
            "sink": self.sink.name,
            "indicator": f.indicator,
            "subject": clean(f"{f.subject.kind}:{f.subject.value}", 200),
        }

    def _emit(self, event: dict[str, object]) -> None:
        with contextlib.suppress(OSError, ValueError):  # a broken stderr must not stop deliveries
            emit_event(event, self.events)

    def close(self, timeout: float = 2.0) -> list[Alert]:
        """Deliver what is queued for up to ``timeout`` seconds, then give up on the rest:
        each alert not delivered is logged (``alert_undelivered``) and returned."""
        self._put(None)
        self._thread.join(timeout)
        with self._lock:
            self._stop.set()  # ends a retry wait; the daemon thread dies with the process
            unsent = ([self._current] if self._current is not None else []) + self._unsent
            self._unsent, self._current = [], None
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    unsent.append(item)
        for alert in unsent:
            self._emit(
                {
                    "event": "alert_undelivered",
                    **self._about(alert),
                    "error": "relayguard watch stopped before it was delivered: "
                    "it is raised again at the next start",
                }
            )
        return unsent


class AlertRouter:
    """Every configured sink; :meth:`publish` hands an alert to each without waiting."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self.published = 0

    def publish(self, alert: Alert) -> None:
        self.published += 1
        for w in self.workers:
            w.submit(alert)

    def close(self, timeout: float = 2.0) -> list[Alert]:
        """Close every worker within ``timeout`` seconds in all; the alerts not delivered by
        at least one sink, in the order they were raised."""
        deadline = time.monotonic() + timeout
        unsent: dict[int, Alert] = {}
        for w in self.workers:
            for alert in w.close(max(0.0, deadline - time.monotonic())):
                unsent.setdefault(id(alert), alert)
        return sorted(unsent.values(), key=lambda a: a.time)
