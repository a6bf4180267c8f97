"""``relayguard policy``: run the policy server and administer containment in its store."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from datetime import UTC, datetime

import click

from relayguard.errors import ConfigError
from relayguard.policy.server import PolicyServer, emit_json, load_config
from relayguard.policy.stores import Store, open_store


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_store_option = click.option(
    "--store", "store_spec", metavar="sqlite:PATH", help="The store (default: the config's)."
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
            raise ConfigError("give --store sqlite:PATH or --config FILE")
        store_spec = load_config(config_path).store
    return open_store(store_spec)


@click.group("policy")
def policy() -> None:
    """A Postfix policy server that rate-limits outbound mail and contains accounts."""


@policy.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False))
@click.option("--listen", metavar="HOST:PORT|unix:/path", help="Overrides policy.listen.")
@_store_option
def serve(config_path: str, listen: str | None, store_spec: str | None) -> None:
    """Answer Postfix policy requests until SIGTERM or SIGINT."""
    config = load_config(config_path)
    store = open_store(store_spec or config.store)
    asyncio.run(_serve(PolicyServer(config, store), listen))


async def _serve(server: PolicyServer, listen: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start(listen)
        emit_json({"event": "listening", "address": str(server.address)})
        await stop.wait()
    finally:
        await server.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        emit_json({"event": "stopped", "requests": server.requests})


@policy.command("list")
@_store_option
@_config_option
def list_cmd(store_spec: str | None, config_path: str | None) -> None:
    """Contained keys, oldest first: KEY, since (UTC), reason; tab-separated."""
    store = _open(store_spec, config_path)
    try:
        for c in store.contained():
            click.echo(f"{c.key}\t{_iso(c.since)}\t{c.reason}")
    finally:
        store.close()


@policy.command()
@click.argument("key")
@_store_option
@_config_option
def show(key: str, store_spec: str | None, config_path: str | None) -> None:
    """Containment and live rate-limit windows of KEY."""
    store = _open(store_spec, config_path)
    try:
        now = time.time()
        match = [c for c in store.contained() if c.key == key]
        if match:
            click.echo(f"{key}: contained since {_iso(match[0].since)}: {match[0].reason}")
        else:
            click.echo(f"{key}: not contained")
        suffix = f":{key}"
        for (skey, window), tat in sorted(store.states().items()):
            if skey.endswith(suffix) and tat > now:
                rule = skey[: -len(suffix)]
                click.echo(f"  rule {rule} window {window}: busy until {_iso(tat)}")
    finally:
        store.close()


@policy.command()
@click.argument("key")
@click.option("--reason", default="contained by an administrator", show_default=True)
@_store_option
@_config_option
def contain(key: str, reason: str, store_spec: str | None, config_path: str | None) -> None:
    """HOLD every further message of KEY (a SASL login or a sender) until released."""
    store = _open(store_spec, config_path)
    try:
        if store.contain(key, reason, time.time()):
            click.echo(f"{key}: contained")
        else:
            click.echo(f"{key}: already contained")
    finally:
        store.close()


@policy.command()
@click.argument("key")
@_store_option
@_config_option
def release(key: str, store_spec: str | None, config_path: str | None) -> None:
    """Let KEY's mail go again."""
    store = _open(store_spec, config_path)
    try:
        click.echo(f"{key}: released" if store.release(key) else f"{key}: was not contained")
    finally:
        store.close()
