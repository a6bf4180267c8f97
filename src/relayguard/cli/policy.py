"""``relayguard policy``: run the policy server and administer containment in its store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import click

from relayguard.errors import ConfigError, InputError
from relayguard.policy.config import PolicyConfig, load_config, parse_listen
from relayguard.policy.server import PolicyServer, emit_json
from relayguard.policy.stores import Store, open_store
from relayguard.policy.wiring import HOOKS, parse_overrides, postfix_wiring
from relayguard.report.sanitize import clean


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_store_option = click.option(
    "--store",
    "store_spec",
    metavar="SPEC",
    help="sqlite:PATH or redis://HOST:PORT[/DB] (default: the config's store).",
)
_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="TOML config with a [policy] table.",
)


def _open(store_spec: str | None, config_path: str | None) -> Store:
    if store_spec is None:
        if config_path is None:
            raise ConfigError("give --store SPEC or --config FILE")
        store_spec = load_config(config_path).store
    return open_store(store_spec)


def _key_argument(key: str) -> str:
    if not key or not key.isprintable() or len(key) > 512:
        raise click.BadParameter("a key is 1-512 printable characters", param_hint="KEY")
    return key


@click.group("policy")
def policy() -> None:
    """A Postfix policy server that rate-limits outbound mail and contains accounts."""


@policy.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False))
@click.option("--listen", metavar="HOST:PORT|unix:/path", help="Overrides policy.listen.")
@click.option("--metrics-listen", metavar="HOST:PORT", help="Overrides policy.metrics_listen.")
@_store_option
def serve(
    config_path: str, listen: str | None, metrics_listen: str | None, store_spec: str | None
) -> None:
    """Answer Postfix policy requests until SIGTERM or SIGINT; SIGHUP reloads the rules."""
    config = load_config(config_path)
    if listen is not None:
        parse_listen(listen)
    metrics_at = metrics_listen if metrics_listen is not None else config.metrics_listen
    store = open_store(store_spec or config.store, timeout=config.store_timeout, server=True)
    ping = getattr(store, "ping", None)
    if ping is not None:
        try:
            ping()  # a wrong password or address is an error now, not a fail-open later
        except Exception:
            store.close()
            raise
    server = PolicyServer(config, store)
    _run(_serve(server, config_path, listen, metrics_at))


def _run(main: Coroutine[None, None, None]) -> None:
    """On uvloop when it is installed (a fifth less CPU per request here), else on asyncio's."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


async def _serve(
    server: PolicyServer, config_path: str, listen: str | None, metrics_at: str
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _reload, server, config_path)
    metrics_server = None
    try:
        await server.start(listen)
        if metrics_at:
            metrics_server = _start_metrics(server, metrics_at)
        emit_json(
            {
                "event": "listening",
                "address": str(server.address),
                "metrics": metrics_at,
                "event_loop": type(loop).__module__.split(".")[0],
            }
        )
        await stop.wait()
    finally:
        await server.close()
        if metrics_server is not None:
            metrics_server.shutdown()
        for sig in signals:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        emit_json({"event": "stopped", "requests": server.requests})


def _reload(server: PolicyServer, config_path: str) -> None:
    try:
        config: PolicyConfig = load_config(config_path)
    except ConfigError as exc:
        emit_json({"event": "reload_failed", "error": str(exc), "kept": "the previous rules"})
        return
    event: dict[str, object] = {"event": "reloaded", "rules": len(config.rules.rules)}
    ignored = [
        name
        for name in ("listen", "store", "metrics_listen")
        if getattr(config, name) != getattr(server.config, name)
    ]
    if ignored:
        event["needs_restart"] = ignored
    server.reload(config)
    emit_json(event)


def _start_metrics(server: PolicyServer, where: str) -> Any:
    from prometheus_client import CollectorRegistry, start_http_server

    from relayguard.policy.metrics import PolicyCollector

    address = parse_listen(where)
    if isinstance(address, str):
        raise ConfigError("metrics_listen must be HOST:PORT")
    registry = CollectorRegistry()
    registry.register(PolicyCollector(server.metrics))
    try:
        http, _thread = start_http_server(address[1], addr=address[0], registry=registry)
    except OSError as exc:
        raise InputError(f"cannot listen for metrics on {where}: {exc.strerror}") from None
    return http


@policy.command("list")
@_store_option
@_config_option
def list_cmd(store_spec: str | None, config_path: str | None) -> None:
    """Contained keys, oldest first: KEY, since (UTC), reason; tab-separated."""
    store = _open(store_spec, config_path)
    try:
        for c in store.contained():
            click.echo(f"{clean(c.key)}\t{_iso(c.since)}\t{clean(c.reason)}")
    finally:
        store.close()


@policy.command()
@click.argument("key")
@_store_option
@_config_option
def show(key: str, store_spec: str | None, config_path: str | None) -> None:
    """Containment and live rate-limit windows of KEY."""
    key = _key_argument(key)
    store = _open(store_spec, config_path)
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
                rule = clean(skey[: -len(suffix)])
                click.echo(f"  rule {rule} window {window}: busy until {_iso(tat)}")
    finally:
        store.close()


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
        wanted += compromised_accounts(analyze_file.read())
    if not wanted:
        raise click.UsageError("give a KEY or --from-analyze FILE")
    store = _open(store_spec, config_path)
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
        out.append((key, f"relayguard analyze: {title}"))
    return out


@policy.command()
@click.argument("key")
@_store_option
@_config_option
def release(key: str, store_spec: str | None, config_path: str | None) -> None:
    """Let KEY's mail go again (mail already held stays in the hold queue until released)."""
    key = _key_argument(key)
    store = _open(store_spec, config_path)
    try:
        shown = clean(key)
        if store.release(key):
            click.echo(f"{shown}: released")
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
@click.option("--timeout", default="5s", show_default=True, help="Postfix's wait per request.")
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
    where = listen or (load_config(config_path).listen if config_path else "127.0.0.1:10040")
    postconf = ["postconf", *(["-c", postfix_dir] if postfix_dir else [])]
    main, overrides, note = _current_restrictions(postconf)
    if note:
        click.echo(f"# {note}")
    text = postfix_wiring(
        where,
        timeout=timeout,
        fail_open=fail == "open",
        main=main,
        overrides=overrides,
        postconf=" ".join(shlex.quote(a) for a in postconf),
    )
    sys.stdout.write(text)


def _current_restrictions(
    postconf: list[str],
) -> tuple[dict[str, str], dict[str, dict[str, str]], str]:
    """main.cf hook values, master.cf overrides and a note when postconf could not tell."""
    path = shutil.which(postconf[0], path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if path is None:
        return {}, {}, "postconf not found: the commands assume empty restriction lists"
    try:
        main_out = subprocess.run(
            [path, *postconf[1:], "-h", *HOOKS], capture_output=True, text=True, timeout=30
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
    main = {hook: (values[i].strip() if i < len(values) else "") for i, hook in enumerate(HOOKS)}
    return main, parse_overrides(over_out.stdout), ""
