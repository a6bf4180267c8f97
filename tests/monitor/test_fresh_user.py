"""What a fresh user met in watch: settings that passed ``config check`` then failed, signals,
the state directory, samplers that held the loop up, alerts lost at shutdown."""

from __future__ import annotations

import io
import json
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from relayguard import config
from relayguard.config import Config
from relayguard.errors import ConfigError
from relayguard.findings import Severity, Subject
from relayguard.monitor.alerts import Alert, Deduper
from relayguard.monitor.metrics import WatchCollector
from relayguard.monitor.sinks import AlertRouter, Sink, WebhookSink, Worker
from relayguard.monitor.state import StateDir, StateError
from relayguard.monitor.watcher import Samples, Watcher
from tests.monitor.test_cores import alert, finding
from tests.monitor.test_watcher import QuietLog


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("spike_samples = 0", "watch.spike_samples must be from 1 to 360, not 0"),
        ("spike_samples = -1", "watch.spike_samples must be from 1 to 360, not -1"),
        ("spike_samples = 361", "watch.spike_samples must be from 1 to 360, not 361"),
        ("spike_factor = inf", "watch.spike_factor must be a number greater than 0, not inf"),
        ("spike_factor = nan", "watch.spike_factor must be a number greater than 0, not nan"),
        ("spike_factor = 0", "watch.spike_factor must be a number greater than 0, not 0.0"),
        ("interval = 0", "watch.interval must be from 1 to 86400, not 0"),
        ("interval = -5", "watch.interval must be from 1 to 86400, not -5"),
        ("interval = 86401", "watch.interval must be from 1 to 86400, not 86401"),
        (
            "queue_threshold = 100\nqueue_high = 50",
            "watch.queue_high (50) must not be below watch.queue_threshold (100)",
        ),
        ("active_window = 0", "watch.active_window must be at least 1, not 0"),
        ("smtp_ports = []", "watch.smtp_ports must name at least one port"),
        ("smtp_ports = [0]", "watch.smtp_ports: 0 is not a TCP port (1 to 65535)"),
        ("smtp_ports = [65536]", "watch.smtp_ports: 65536 is not a TCP port (1 to 65535)"),
        ("mta_users = ['postifx']", "watch.mta_users: no such user: 'postifx'"),
        (
            "source = 'journal'\njournal_units = []",
            "watch.journal_units must name at least one unit with source = 'journal'",
        ),
        ("state_dir = ''", "watch.state_dir must name a directory (empty is not one)"),
        (
            "[watch.alerts]\nwebhook_timeout = inf",
            "watch.alerts.webhook_timeout must be a number greater than 0 and at most 600, not inf",
        ),
        (
            "[watch.alerts]\nwebhook_timeout = 0",
            "watch.alerts.webhook_timeout must be a number greater than 0 and at most 600, not 0.0",
        ),
        (
            "[watch.alerts]\nwebhook_retries = 21",
            "watch.alerts.webhook_retries must be from 0 to 20, not 21",
        ),
        ("[watch.alerts]\nsuppress = -1", "watch.alerts.suppress must be at least 0, not -1"),
    ],
)
def test_every_watch_setting_is_checked_when_the_file_is(
    tmp_path: Path, toml: str, message: str
) -> None:
    p = tmp_path / "w.toml"
    p.write_text("[watch]\n" + toml + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        config.load(p)
    assert str(exc.value) == message


def test_a_bare_local_name_is_a_sendmail_recipient_and_builtin_mta_users_may_be_absent(
    tmp_path: Path,
) -> None:
    p = tmp_path / "w.toml"
    p.write_text(
        "[watch]\nmta_users = ['postfix', 'Debian-exim', 'exim', 'nobody']\n"
        "[watch.alerts]\nsendmail_to = ['root', 'postmaster@example.org']\n",
        encoding="utf-8",
    )
    cfg = config.load(p)
    assert cfg.watch.alerts.sendmail_to == ["root", "postmaster@example.org"]
    assert cfg.watch.mta_users == ["postfix", "Debian-exim", "exim", "nobody"]


# -- samplers in a thread of their own (a slow queue command holds nothing up) ------------------

NOW = 1_800_000_000.0


class _StuckSampler(Watcher):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = threading.Event()
        self.release = threading.Event()

    def collect(self) -> Samples:
        self.started.set()
        self.release.wait(60)
        return Samples(taken=NOW, findings=[])


def test_a_slow_sample_holds_up_nothing_and_the_one_due_meanwhile_is_skipped(
    tmp_path: Path,
) -> None:
    mono = [100.0]
    state = StateDir(tmp_path / "state")
    state.open()
    try:
        w = _StuckSampler(
            Config(), QuietLog(), state, clock=lambda: NOW, monotonic=lambda: mono[0], host="mx"
        )
        w.tick()
        assert w.started.wait(30)
        mono[0] += 10  # the next sample is due while the first one still runs
        w.tick()  # returns: the loop goes on
        assert (w.samples_skipped, w.samples.taken) == (1, None)
        w.release.set()
        assert w._sampler is not None
        w._sampler.join(30)
        w.tick()
        assert (w.samples_skipped, w.samples.taken) == (1, NOW)
    finally:
        state.close()


# -- alerts still waiting at shutdown --------------------------------------------------------


class _Blocked(Sink):
    name = "webhook"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, alert: Alert) -> None:
        self.entered.set()
        self.release.wait(60)


def test_alerts_waiting_at_shutdown_are_logged_and_not_saved_as_sent(tmp_path: Path) -> None:
    sink = _Blocked()
    log = io.StringIO()
    worker = Worker(sink, events=log)
    state = StateDir(tmp_path / "state")
    state.open()
    try:
        w = Watcher(
            Config(),
            QuietLog(),
            state,
            router=AlertRouter([worker]),
            sample=False,
            clock=lambda: NOW,
            host="mx",
        )
        w.samples.findings = [finding(1), replace(finding(2), subject=Subject("ip", "192.0.2.2"))]
        w._dirty = True
        assert len(w.evaluate(force=True)) == 2
        assert sink.entered.wait(30)  # the first is being sent, the second waits behind it
        w.shutdown(evaluate=False)
    finally:
        sink.release.set()
        state.close()
    lines = [json.loads(x) for x in log.getvalue().splitlines()]
    for line in lines:
        del line["ts"]
    why = "relayguard watch stopped before it was delivered: it is raised again at the next start"
    assert lines == [
        {"event": "alert_undelivered", "sink": "webhook", "indicator": "auth-bruteforce",
         "subject": "ip:192.0.2.1", "error": why},
        {"event": "alert_undelivered", "sink": "webhook", "indicator": "auth-bruteforce",
         "subject": "ip:192.0.2.2", "error": why},
    ]  # fmt: skip
    saved = json.loads((tmp_path / "state" / "watch.json").read_text())
    assert saved["alerts"] == {}


def test_an_undelivered_reminder_puts_the_previous_entry_back() -> None:
    d = Deduper(0, Severity.LOW)
    first = finding(1)
    assert d.check(first, 10.0) == "new"
    before = list(d.entries["log|auth-bruteforce|ip:192.0.2.1"])
    later = finding(2)
    assert d.check(later, 20.0) == "reminder"
    d.revert(Alert(20.0, "mx", "reminder", later, before))
    assert d.entries == {"log|auth-bruteforce|ip:192.0.2.1": [10.0, int(Severity.HIGH), [1, 1.0]]}


# -- SIGHUP ------------------------------------------------------------------------------------


def test_sighup_saves_the_state_and_logs_it_instead_of_killing_the_daemon(
    tmp_path: Path,
) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    state = tmp_path / "state"
    exe = Path(sys.executable).with_name("relayguard")
    cmd = [str(exe), "watch", "--log", str(log), "--state-dir", str(state), "--no-sample"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert proc.stderr is not None
        assert json.loads(proc.stderr.readline())["event"] == "watching"
        proc.send_signal(signal.SIGHUP)
        hup = json.loads(proc.stderr.readline())
        assert hup["event"] == "hangup"
        assert (state / "watch.json").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


# -- the same log, however spelled; a lost position loses the detectors' state too -------------

LAB = Path(__file__).resolve().parents[1] / "data" / "lab"


def _counts(doc: dict[str, Any]) -> dict[str, int]:
    return {f"{f['indicator']} {f['subject']['value']}": f["count"] for f in doc["findings"]}


def test_a_lost_position_never_counts_the_log_twice(relayguard: Any, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_bytes((LAB / "03_auth_bruteforce.log").read_bytes())
    cfg = tmp_path / "w.toml"
    cfg.write_text("[watch]\nactive_window = 3153600000\n")
    state = tmp_path / "state"
    common = ("watch", "--once", "--no-sample", "--json", "--config", str(cfg))
    args = (*common, "--state-dir", str(state), "--log", str(log))
    first = relayguard(*args).json
    want = _counts(first)
    assert want["auth-bruteforce 127.0.0.66"] == 41

    # the same file spelled another way: the same log, nothing read again
    again = relayguard(*common, "--state-dir", str(state), "--log", f"{tmp_path}/./mail.log").json
    assert (again["log"]["lines_read"], again["state"]["notes"]) == (0, [])
    assert _counts(again) == want

    for damage in ("remove", "garble"):
        if damage == "remove":
            (state / "watch.json").unlink()
        else:
            (state / "watch.json").write_text("{not json")
        doc = relayguard(*args).json
        assert doc["log"]["lines_read"] == first["log"]["lines_read"]
        assert _counts(doc) == want  # not 82: the detectors started afresh with the log
        assert doc["state"]["restored"] is False
        lost = "the log position was lost: the detectors start afresh too"
        assert doc["state"]["notes"][-1] == lost


def test_a_missing_log_is_one_event_and_a_metric_until_it_is_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = QuietLog()
    collector = WatchCollector()
    state = StateDir(tmp_path / "state")
    state.open()
    try:
        w = Watcher(Config(), source, state, collector=collector, sample=False, host="mx")
        source.stats.path_problem = "/var/log/mail.log is missing (No such file or directory)"
        w.tick()
        w.tick()
        w.evaluate(force=True)
        assert collector.state.log_missing is True
        source.stats.path_problem = None
        w.tick()
        w.evaluate(force=True)
        assert collector.state.log_missing is False
    finally:
        state.close()
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    for line in lines:
        del line["ts"]
    assert lines == [
        {"event": "log_missing", "log": "/var/log/mail.log",
         "error": "/var/log/mail.log is missing (No such file or directory)"},
        {"event": "log_back", "log": "/var/log/mail.log"},
    ]  # fmt: skip


# -- webhook credentials ------------------------------------------------------------------------


def test_webhook_credentials_are_basic_auth_and_never_printed() -> None:
    got: queue.Queue[tuple[str, str | None]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got.put((self.path, self.headers.get("Authorization")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        w = Worker(WebhookSink(f"http://alice:s%40cret@127.0.0.1:{port}/hook"))
        w.submit(alert(1))
        assert got.get(timeout=30) == ("/hook", "Basic YWxpY2U6c0BjcmV0")  # alice:s@cret
        w.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_bad_webhook_url_error_does_not_quote_the_password(tmp_path: Path) -> None:
    p = tmp_path / "w.toml"
    p.write_text("[watch.alerts]\nwebhook = 'https://alice:s3cret@hooks.example:port/'\n")
    with pytest.raises(ConfigError) as exc:
        config.load(p)
    assert str(exc.value) == "watch.alerts.webhook: not a URL (a bad host or port)"


# -- the state directory ------------------------------------------------------------------------


def test_state_dir_mistakes_are_one_clear_line(relayguard: Any, tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text("")
    (tmp_path / "afile").write_text("")
    missing = tmp_path / "no-parent" / "state"
    cases = {
        "": "watch.state_dir must name a directory (empty is not one)",
        str(missing): f"cannot create state directory {missing}: its parent "
        f"{missing.parent} is not an existing directory",
        str(tmp_path / "afile"): f"state directory {tmp_path / 'afile'} exists and is not a "
        "directory",
        "/proc/relayguard-state": "state directory /proc/relayguard-state is in /proc: a kernel "
        "file system",
    }
    args = ("watch", "--once", "--no-sample", "--log", str(log), "--state-dir")
    for state_dir, message in cases.items():
        run = relayguard(*args, state_dir)
        assert (run.code, run.out, run.err) == (3, "", f"relayguard: error: {message}\n")
    assert not missing.parent.exists()
    made = tmp_path / "state"
    ok = relayguard(*args, str(made))
    assert ok.code == 0, ok.err
    assert oct(made.stat().st_mode & 0o777) == "0o700"


def test_an_empty_state_dir_is_refused_even_past_the_settings() -> None:
    with pytest.raises(StateError) as exc:
        StateDir("").open()
    assert str(exc.value) == "the state directory must be named (empty is not one)"
