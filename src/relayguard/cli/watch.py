"""``relayguard watch``: live detection from the mail log, queue, egress and MTA sampling."""

from __future__ import annotations

import json
import os
import signal
import threading
from dataclasses import replace
from typing import Any

import click

from relayguard import config as config_mod
from relayguard.config import Config, WatchSettings
from relayguard.findings import ExitCode
from relayguard.logs.follow import FileFollower, Position
from relayguard.logs.journal import JournalFollower, valid_cursor
from relayguard.monitor import report
from relayguard.monitor.metrics import WatchCollector, serve
from relayguard.monitor.settings import parse_listen, validate_watch
from relayguard.monitor.sinks import (
    AlertRouter,
    SendmailSink,
    StdoutSink,
    SyslogSink,
    WebhookSink,
    Worker,
    emit_event,
)
from relayguard.monitor.state import StateDir
from relayguard.monitor.watcher import Source, Watcher
from relayguard.report.sanitize import clean


@click.command("watch")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config.")
@click.option("--log", "log_path", metavar="FILE", help="The mail log to follow (watch.log).")
@click.option("--journal", is_flag=True, help="Follow the systemd journal instead of a file.")
@click.option("--state-dir", metavar="DIR", help="Where the state is kept (watch.state_dir).")
@click.option(
    "--postfix-config", metavar="DIR", help="Postfix config directory (postqueue -c DIR)."
)
@click.option("--metrics-listen", metavar="HOST:PORT", help="Serve Prometheus /metrics here.")
@click.option("--interval", type=click.IntRange(1, 86400), help="Seconds between samples.")
@click.option(
    "--start-at",
    type=click.Choice(["beginning", "end"]),
    help="Where a first run starts in the log (later runs resume).",
)
@click.option("--no-sample", is_flag=True, help="Only follow the log: no queue/egress/MTA samples.")
@click.option("--once", is_flag=True, help="Catch up, sample once, print a snapshot and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: the relayguard.watch/1 JSON.")
def watch(
    config_path: str | None,
    log_path: str | None,
    journal: bool,
    state_dir: str | None,
    postfix_config: str | None,
    metrics_listen: str | None,
    interval: int | None,
    start_at: str | None,
    no_sample: bool,
    once: bool,
    as_json: bool,
) -> int:
    """Watch the mail server live: log detectors, queue, outbound SMTP, MTA load; alert.

    With --once it is a check (Nagios/Icinga, cron): it reads the log from where the last run
    stopped, samples once, prints the snapshot and exits 0/1/2 (clean/suspicious/abused), or 3
    when a sampler failed and nothing worse was found.
    """
    if as_json and not once:
        raise click.UsageError("--json needs --once (the daemon prints alerts as JSON lines)")
    cfg = _settings(
        config_mod.load(config_path),
        log=log_path,
        source="journal" if journal else None,
        state_dir=state_dir,
        postfix_config=postfix_config,
        metrics_listen=metrics_listen,
        interval=interval,
        start_at=start_at,
    )
    w = cfg.watch
    state = StateDir(w.state_dir)
    state.open()
    router: AlertRouter | None = None
    source: Source | None = None
    try:
        loaded = state.load(cfg)
        notes = list(loaded.notes)
        source, resumed = _source(cfg, loaded.watch, notes, follow=not once)
        if loaded.analyzer is not None and not resumed:
            # the log is read again from start_at: the detectors must not count it twice
            loaded.analyzer = None
            notes.append("the log position was lost: the detectors start afresh too")
        collector = None
        if w.metrics_listen and not once:
            collector = WatchCollector()
            serve(parse_listen(w.metrics_listen), collector)
        router = _router(cfg, stdout=not once)
        watcher = Watcher(
            cfg,
            source,
            state,
            analyzer=loaded.analyzer,
            saved=loaded.watch,
            router=router,
            collector=collector,
            sample=not no_sample,
        )
        for note in notes:
            click.echo(f"relayguard: {clean(note, 300)}", err=True)
        if once:
            return _once(watcher, as_json, restored=loaded.analyzer is not None, notes=notes)
        _daemon(watcher)
        return ExitCode.OK
    finally:
        if router is not None:
            router.close()
        if source is not None:
            source.close()
        state.close()


def _settings(cfg: Config, **overrides: Any) -> Config:
    values = {k: v for k, v in overrides.items() if v is not None}
    watch = replace(cfg.watch, **values)
    cfg = replace(cfg, watch=watch)
    validate_watch(watch)
    return cfg


def _source(
    cfg: Config, saved: dict[str, Any], notes: list[str], *, follow: bool
) -> tuple[Source, bool]:
    """The log source, and whether it resumes from the saved position. ``follow=False``
    (--once): the journal is read to its end, not followed."""
    w = cfg.watch
    log = saved.get("log") if isinstance(saved.get("log"), dict) else {}
    assert isinstance(log, dict)
    position = log.get("position")
    same = log.get("source") == w.source and (
        w.source == "journal" or _same_file(log.get("path"), w.log, position)
    )
    if not same:
        position = None
    if log and not same:
        notes.append("the log source changed since the last run: starting afresh in it")
    at_end = w.start_at == "end"
    if w.source == "journal":
        cursor = valid_cursor(position.get("cursor")) if isinstance(position, dict) else None
        journal = JournalFollower(w.journal_units, cursor, start_at_end=at_end, follow=follow)
        return journal, cursor is not None
    pos = Position.from_json(position)
    if position is not None and pos is None:
        notes.append("the saved log position was damaged: starting afresh in the log")
    return FileFollower(w.log, pos, start_at_end=at_end), pos is not None


def _same_file(saved_path: object, path: str, position: object) -> bool:
    """The saved log is this one: the same file however spelled (``mail.log``,
    ``./mail.log``, an absolute path, a symlink), or the file the position names."""
    if not isinstance(saved_path, str):
        return False
    if os.path.realpath(saved_path) == os.path.realpath(path):
        return True
    pos = Position.from_json(position)
    try:
        st = os.stat(path)
    except OSError:
        return False
    return pos is not None and (pos.dev, pos.ino) == (st.st_dev, st.st_ino)


def _router(cfg: Config, *, stdout: bool) -> AlertRouter:
    a = cfg.watch.alerts
    workers = []
    if stdout and a.stdout:
        workers.append(Worker(StdoutSink()))
    if a.syslog:
        workers.append(Worker(SyslogSink(a.syslog_socket)))
    if a.webhook:
        sink = WebhookSink(a.webhook, a.webhook_timeout)
        workers.append(Worker(sink, retries=a.webhook_retries))
    if a.sendmail_to:
        config_dir = cfg.watch.postfix_config if cfg.watch.mta == "postfix" else ""
        workers.append(Worker(SendmailSink(a.sendmail, a.sendmail_to, config_dir or None)))
    return AlertRouter(workers)


def _once(watcher: Watcher, as_json: bool, *, restored: bool, notes: list[str]) -> int:
    watcher.catch_up()
    if watcher.sampling:
        watcher.sample()
    watcher.evaluate(force=True)
    watcher.shutdown(evaluate=False)  # the sinks' last seconds, then the state
    doc = report.document(watcher, restored=restored, notes=notes)
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        _print_summary(doc)
    return int(doc["exit_code"])


def _print_summary(doc: dict[str, Any]) -> None:
    log = doc["log"]
    click.echo(f"relayguard watch: {doc['verdict'].upper()} (exit {doc['exit_code']})")
    click.echo(f"log     {log['lines_read']:,} new lines, {log['lines_unparsed']:,} not understood")
    q = doc["queue"]
    if q is not None:
        if q["error"]:
            click.echo(f"queue   error: {clean(q['error'], 300)}")
        else:
            parts = ", ".join(f"{k} {v}" for k, v in q["by_queue"].items() if v) or "empty"
            click.echo(f"queue   {q['total']} ({parts})")
    e = doc["egress"]
    if e is not None:
        if e["error"]:
            click.echo(f"egress  error: {clean(e['error'], 300)}")
        else:
            click.echo(f"egress  {e['connections']} outbound SMTP connection(s)")
    m = doc["mta"]
    if m is not None and m["error"]:
        click.echo(f"mta     error: {clean(m['error'], 300)}")
    for f in doc["findings"]:
        subject = clean(f"{f['subject']['kind']}:{f['subject']['value']}", 120)
        click.echo(f"  {f['severity']:<8} {f['indicator']:<22} {subject}  {clean(f['title'], 300)}")


def _daemon(watcher: Watcher) -> None:
    stop = threading.Event()
    hangup = threading.Event()

    def handle(signum: int, frame: object) -> None:
        (hangup if signum == signal.SIGHUP else stop).set()  # the loop does the rest

    signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {sig: signal.signal(sig, handle) for sig in signals}
    try:
        emit_event(watching_event(watcher.w))
        watcher.run(stop, hangup)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def watching_event(w: WatchSettings) -> dict[str, object]:
    """The daemon's start-up line: what it reads."""
    if w.source == "journal":
        units = list(w.journal_units)
        return {"event": "watching", "log": "journal", "source": "journal", "units": units}
    return {"event": "watching", "log": w.log, "source": "file"}
