"""``relayguard policy``: run the policy server and administer containment in its store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from relayguard.errors import ConfigError, InputError
from relayguard.policy.config import (
    DEFAULT_STORE,
    MAX_WORKERS,
    PolicyConfig,
    load_config,
    parse_listen,
    parse_workers,
)
from relayguard.policy.keys import admin_key
from relayguard.policy.limiter import Limit
from relayguard.policy.metrics import MergedCollector, PolicyCollector
from relayguard.policy.server import Listener, PolicyServer, emit_json, open_worker_listeners
from relayguard.policy.stores import Store, StoreError, open_store
from relayguard.policy.stores.base import CONTAIN_PREFIX, window_id
from relayguard.policy.wiring import HOOKS, parse_overrides, postfix_wiring
from relayguard.policy.workers import SNAPSHOT_EVERY, Supervisor
from relayguard.report.sanitize import clean


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_store_option = click.option(
    "--store",
    "store_spec",
    metavar="SPEC",
    help="sqlite:PATH or redis://HOST:PORT[/DB] (default: the config's store, else "
    f"{DEFAULT_STORE}).",
)
_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="TOML config with a [policy] table.",
)


def _open(store_spec: str | None, config_path: str | None, *, create: bool) -> Store:
    """--store, else the config's store, else the default store (the one serve uses).

    ``create``: only ``contain`` may create a store; the others read or change an existing one.
    """
    if store_spec is None:
        store_spec = load_config(config_path).store if config_path else DEFAULT_STORE
    return open_store(store_spec, create=create)


def _key_argument(key: str) -> str:
    """KEY as the server spells it: an address canonical, a login or sender lower-cased."""
    if not key or not key.isprintable() or len(key) > 512:
        raise click.BadParameter("a key is 1-512 printable characters", param_hint="KEY")
    return admin_key(key)


@click.group("policy")
def policy() -> None:
    """A Postfix policy server that rate-limits outbound mail and contains accounts."""


@policy.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False))
@click.option("--listen", metavar="HOST:PORT|unix:/path", help="Overrides policy.listen.")
@click.option("--metrics-listen", metavar="HOST:PORT", help="Overrides policy.metrics_listen.")
@click.option(
    "--workers",
    type=int,
    metavar="N",
    help=f"Server processes (1 to {MAX_WORKERS}; one per core at most). Overrides policy.workers.",
)
@_store_option
def serve(
    config_path: str,
    listen: str | None,
    metrics_listen: str | None,
    workers: int | None,
    store_spec: str | None,
) -> None:
    """Answer Postfix policy requests until SIGTERM or SIGINT; SIGHUP reloads the rules."""
    config = load_config(config_path)
    if listen is not None:
        parse_listen(listen)
    metrics_at = metrics_listen if metrics_listen is not None else config.metrics_listen
    if metrics_at and isinstance(parse_listen(metrics_at), str):
        raise ConfigError("--metrics-listen must be HOST:PORT")
    count = config.workers if workers is None else parse_workers(workers, "--workers")
    spec = store_spec or config.store
    if count > 1 and spec.startswith("memory"):
        raise ConfigError("several workers need a shared store (sqlite: or redis://)")
    if count == 1:
        server = _server(config, spec)
        _run(_serve(server, config_path, listen, metrics_at))
        return
    _serve_workers(config, config_path, spec, listen, metrics_at, count)


def _server(config: PolicyConfig, spec: str) -> PolicyServer:
    """A server on the store ``spec``, in its fail mode when the store does not answer yet."""
    store = open_store(spec, timeout=config.store_timeout, server=True)
    server = PolicyServer(config, store)
    ping = getattr(store, "ping", None)
    if ping is not None:
        try:
            ping()
        except StoreError as exc:
            # Unreachable now, maybe up later: serve in the fail mode and keep trying, rather
            # than exit and let systemd's restarts hit the start limit.
            server.start_with_store_down(str(exc))
        except Exception:
            store.close()  # a refused password or a bad URL: no retry can fix it
            raise
    return server


def _serve_workers(
    config: PolicyConfig, config_path: str, spec: str, listen: str | None, metrics_at: str, n: int
) -> None:
    listeners = open_worker_listeners(config, n, listen)
    supervisor_pid = os.getpid()

    def worker(listener: Listener, number: int, snapshot: Path) -> None:
        server = _server(config, spec)
        _run(_serve(server, config_path, None, "", listener=listener, worker=number,
                    snapshot=snapshot, supervisor=supervisor_pid))  # fmt: skip

    supervisor = Supervisor(listeners, n, worker)
    metrics_server = None

    def started() -> None:
        nonlocal metrics_server
        if metrics_at:
            metrics_server = _start_metrics(MergedCollector(supervisor.snapshots), metrics_at)
        event: dict[str, object] = {
            "event": "listening",
            "address": listeners[0].text,
            "workers": n,
            "event_loop": _loop_name(),
        }
        if metrics_at:
            event["metrics"] = metrics_at
        emit_json(event)

    try:
        code = supervisor.run(started)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
    emit_json({"event": "stopped", "requests": supervisor.final.requests, "workers": n})
    if code:
        raise SystemExit(code)


def _loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def _run(main: Coroutine[None, None, None]) -> None:
    """On uvloop when it is installed (a fifth less CPU per request here), else on asyncio's."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


async def _serve(
    server: PolicyServer,
    config_path: str,
    listen: str | None,
    metrics_at: str,
    *,
    listener: Listener | None = None,
    worker: int | None = None,
    snapshot: Path | None = None,
    supervisor: int = 0,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    try:
        await server.start(listen, listener)
    except BaseException:
        server.store.close()
        raise
    signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _reload, server, config_path, worker)
    metrics_server = None
    snapshots = None
    try:
        if metrics_at:
            metrics_server = _start_metrics(PolicyCollector(server.metrics), metrics_at)
        if worker is None:
            listening: dict[str, object] = {"event": "listening", "address": server.address_text}
            if metrics_at:
                listening["metrics"] = metrics_at
            listening["event_loop"] = type(loop).__module__.split(".")[0]
            emit_json(listening)
        if snapshot is not None:
            watch = _write_snapshots(server, snapshot, stop, worker, supervisor)
            snapshots = asyncio.create_task(watch)
        await stop.wait()
    finally:
        if snapshots is not None:
            snapshots.cancel()
        await server.close()
        if snapshot is not None:
            server.metrics.write_snapshot(snapshot)
        if metrics_server is not None:
            metrics_server.shutdown()
        for sig in signals:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        stopped: dict[str, object] = {"event": "stopped", "requests": server.requests}
        if worker is not None:
            stopped["worker"] = worker
        emit_json(stopped)


async def _write_snapshots(
    server: PolicyServer, path: Path, stop: asyncio.Event, worker: int | None, supervisor: int
) -> None:
    """The worker's counters for the supervisor's /metrics, every second; and a worker whose
    supervisor (process ``supervisor``) is gone, killed with SIGKILL say, stops rather than
    serve on unsupervised."""
    while True:
        if os.getppid() != supervisor:
            emit_json({"event": "supervisor_gone", "worker": worker})
            stop.set()
            return
        with contextlib.suppress(OSError):
            server.metrics.write_snapshot(path)
        await asyncio.sleep(SNAPSHOT_EVERY)


def _reload(server: PolicyServer, config_path: str, worker: int | None = None) -> None:
    try:
        config: PolicyConfig = load_config(config_path)
    except ConfigError as exc:
        failed: dict[str, object] = {
            "event": "reload_failed",
            "error": str(exc),
            "kept": "the previous rules",
        }
        if worker is not None:
            failed["worker"] = worker
        emit_json(failed)
        return
    event: dict[str, object] = {"event": "reloaded", "rules": len(config.rules.rules)}
    ignored = [
        name
        for name in ("listen", "store", "metrics_listen", "workers")
        if getattr(config, name) != getattr(server.config, name)
    ]
    if ignored:
        event["needs_restart"] = ignored
    if worker is not None:
        event["worker"] = worker
    server.reload(config)
    emit_json(event)


def _start_metrics(collector: PolicyCollector, where: str) -> Any:
    from prometheus_client import CollectorRegistry, start_http_server

    address = parse_listen(where)
    if isinstance(address, str):
        raise ConfigError("metrics_listen must be HOST:PORT")
    registry = CollectorRegistry()
    registry.register(collector)
    try:
        http, _thread = start_http_server(address[1], addr=address[0], registry=registry)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(f"cannot listen for metrics on {where}: {reason}") from None
    return http


@policy.command("list")
@_store_option
@_config_option
def list_cmd(store_spec: str | None, config_path: str | None) -> None:
    """Contained keys, oldest first: KEY, since (UTC), reason; tab-separated.

    Nothing on stdout when no key is contained (a line on stderr says so).
    """
    store = _open(store_spec, config_path, create=False)
    try:
        contained = store.contained()
        for c in contained:
            click.echo(f"{clean(c.key)}\t{_iso(c.since)}\t{clean(c.reason)}")
        if not contained:
            click.echo("no key is contained", err=True)
    finally:
        store.close()


@policy.command()
@click.argument("key")
@_store_option
@_config_option
def show(key: str, store_spec: str | None, config_path: str | None) -> None:
    """Containment and live rate-limit windows of KEY.

    Each window in use: the rule, its limit as written in the config, what is left of it now,
    and when it is whole again. With --config, a window the config no longer has (its limit
    was changed or its rule removed since KEY was charged) is marked as not enforced.
    """
    key = _key_argument(key)
    configured: dict[str, set[str]] | None = None
    if config_path:
        rules = load_config(config_path).rules.rules
        configured = {r.name: {window_id(w) for w in r.windows} for r in rules}
    store = _open(store_spec, config_path, create=False)
    try:
        now = time.time()
        shown = clean(key)
        match = [c for c in store.contained() if c.key == key]
        if match:
            reason = clean(match[0].reason)
            click.echo(f"{shown}: contained since {_iso(match[0].since)}: {reason}")
        else:
            click.echo(f"{shown}: not contained")
        suffix = f":{key}"
        for (skey, window), tat in sorted(store.states().items()):
            if skey.endswith(suffix) and tat > now:
                rule = skey[: -len(suffix)]
                kind = ""
                if rule.startswith(CONTAIN_PREFIX):
                    rule, kind = rule[len(CONTAIN_PREFIX) :], "CONTAIN "
                stale = ""
                if configured is not None and window not in configured.get(rule, ()):
                    stale = " (not in the config now: not enforced)"
                click.echo(
                    f"  rule {clean(rule)}: {kind}{_window_state(window, tat, now)}{stale}"
                )
    finally:
        store.close()


def _window_state(window: str, tat: float, now: float) -> str:
    """``5/hour: 2 of 5 left now, all back at ...`` for a window id and its state."""
    try:
        count, period, burst = window.split("/")
        limit = Limit(int(count), float(period), int(burst))
    except ValueError:
        return f"window {clean(window)}: in use until {_iso(tat)}"
    left = max(0, limit.remaining(tat, now))
    return f"{window_text(limit)}: {left} of {limit.burst} left now, all back at {_iso(tat)}"


def window_text(limit: Limit) -> str:
    """A limit as the config writes it: ``5/hour``, ``10/5min``, ``100/hour burst 10``."""
    period = limit.period
    span = f"{period:g}s"
    for seconds, one, many in (
        (604800, "week", "weeks"),
        (86400, "day", "days"),
        (3600, "hour", "hours"),
        (60, "min", "min"),
        (1, "s", "s"),
    ):
        if period % seconds == 0:
            n = int(period // seconds)
            span = one if n == 1 and seconds != 1 else f"{n}{one if n == 1 else many}"
            break
    burst = "" if limit.burst == limit.limit else f" burst {limit.burst}"
    return f"{limit.limit}/{span}{burst}"


@policy.command()
@click.argument("keys", nargs=-1)
@click.option("--reason", default="contained by an administrator", show_default=True)
@click.option(
    "--from-analyze",
    "analyze_file",
    type=click.File("rb"),
    help="Contain every compromised account of a 'relayguard analyze --json' report ('-': stdin).",
)
@_store_option
@_config_option
def contain(
    keys: tuple[str, ...],
    reason: str,
    analyze_file: Any,
    store_spec: str | None,
    config_path: str | None,
) -> None:
    """HOLD every further message of KEY (a SASL login, a sender or a client IP) until released."""
    wanted = [(_key_argument(k), reason) for k in keys]
    if analyze_file is not None:
        found = compromised_accounts(analyze_file.read())
        if not found and not wanted:
            click.echo("no compromised account in the report: nothing to contain")
            return
        wanted += found
    if not wanted:
        raise click.UsageError("give a KEY or --from-analyze FILE")
    store = _open(store_spec, config_path, create=True)
    try:
        now = time.time()
        for key, why in wanted:
            state = "contained" if store.contain(key, why, now) else "already contained"
            click.echo(f"{clean(key)}: {state}")
    finally:
        store.close()


def compromised_accounts(document: bytes) -> list[tuple[str, str]]:
    """(SASL login, reason) of every ``compromised-account`` finding of an analyze report."""
    try:
        report = json.loads(document)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"--from-analyze: not JSON: {exc}") from None
    if not isinstance(report, dict) or report.get("schema") != "relayguard.analyze/1":
        raise InputError("--from-analyze: not a relayguard.analyze/1 report")
    out: list[tuple[str, str]] = []
    for finding in report.get("findings") or ():
        if not isinstance(finding, dict) or finding.get("indicator") != "compromised-account":
            continue
        subject = finding.get("subject") or {}
        key = subject.get("value") if isinstance(subject, dict) else None
        if subject.get("kind") != "sasl_user" or not isinstance(key, str) or not key:
            continue
        title = str(finding.get("title", "compromised account"))[:300]
        out.append((admin_key(key), f"relayguard analyze: {title}"))
    return out


@policy.command()
@click.argument("key")
@_store_option
@_config_option
def release(key: str, store_spec: str | None, config_path: str | None) -> None:
    """Let KEY's mail go again: end its containment and clear its CONTAIN rules' windows.

    Other rules' windows are kept. Mail already held stays in the hold queue until released.
    """
    key = _key_argument(key)
    store = _open(store_spec, config_path, create=False)
    try:
        shown = clean(key)
        if store.release(key):
            click.echo(f"{shown}: released (its CONTAIN rule windows are cleared)")
            click.echo(
                "  its held mail is still in the hold queue: review it with 'postqueue -j' and "
                "release it with 'postsuper -H QUEUE_ID' (or 'relayguard contain --release')",
                err=True,
            )
        else:
            click.echo(f"{shown}: was not contained")
    finally:
        store.close()


@policy.command()
@_config_option
@click.option("--listen", metavar="HOST:PORT|unix:/path", help="Where the server listens.")
@click.option(
    "--timeout",
    default="5s",
    show_default=True,
    help="Postfix's wait per request: a Postfix time such as 5s, 1m or 10.",
)
@click.option(
    "--fail",
    type=click.Choice(["open", "closed"]),
    default="open",
    show_default=True,
    help="What Postfix does when the server does not answer.",
)
@click.option(
    "--postfix-config",
    "postfix_dir",
    metavar="DIR",
    help="Postfix config directory to read the current restrictions from (default: postconf's).",
)
def wiring(
    config_path: str | None,
    listen: str | None,
    timeout: str,
    fail: str,
    postfix_dir: str | None,
) -> None:
    """Print the postconf commands that wire the policy server into Postfix (changes nothing).

    The current restrictions (main.cf and master.cf overrides) are read with postconf and kept
    after the check, so the commands can be run as printed.
    """
    if not re.fullmatch(r"[0-9]{1,6}[smhdw]?", timeout) or not int(timeout.rstrip("smhdw")):
        raise click.BadParameter(
            f"{timeout!r} is not a Postfix time: a number above 0 with an optional unit "
            "s, m, h, d or w (e.g. 5s, 1m, 10)",
            param_hint="--timeout",
        )
    where = listen or (load_config(config_path).listen if config_path else "127.0.0.1:10040")
    parse_listen(where)
    postconf = ["postconf", *(["-c", postfix_dir] if postfix_dir else [])]
    main, overrides, queue_directory, note = _current_restrictions(postconf)
    if note:
        click.echo(f"# {note}")
    text = postfix_wiring(
        where,
        timeout=timeout,
        fail_open=fail == "open",
        main=main,
        overrides=overrides,
        postconf=" ".join(shlex.quote(a) for a in postconf),
        queue_directory=queue_directory,
    )
    sys.stdout.write(text)


def _current_restrictions(
    postconf: list[str],
) -> tuple[dict[str, str], dict[str, dict[str, str]], str, str]:
    """main.cf hook values, master.cf overrides, the queue directory and a note when postconf
    could not tell."""
    path = shutil.which(postconf[0], path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if path is None:
        note = "postconf not found: the commands assume empty restriction lists"
        return {}, {}, "/var/spool/postfix", note
    names = (*HOOKS, "queue_directory")
    try:
        main_out = subprocess.run(
            [path, *postconf[1:], "-h", *names], capture_output=True, text=True, timeout=30
        )
        over_out = subprocess.run(
            [path, *postconf[1:], "-P"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"cannot run postconf: {exc}") from None
    if main_out.returncode != 0:
        first = (main_out.stderr.strip().splitlines() or ["failed"])[0]
        raise InputError(f"postconf: {clean(first)}")
    values = main_out.stdout.splitlines()
    got = {name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(names)}
    queue_directory = got.pop("queue_directory") or "/var/spool/postfix"
    return got, parse_overrides(over_out.stdout), queue_directory, ""
