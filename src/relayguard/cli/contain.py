"""``relayguard contain ACCOUNT``: stop an account's mail now, keep everything for review."""

from __future__ import annotations

import os
import time

import click

from relayguard.mitigate import postfix_queue
from relayguard.mitigate.containment import check_account, runbook, select, shown_store
from relayguard.mitigate.postfix_queue import QueueCommandError
from relayguard.policy.config import DEFAULT_STORE, load_config
from relayguard.policy.keys import admin_key
from relayguard.policy.stores import Store, StoreError, check_store_spec, open_store
from relayguard.report.sanitize import clean

NOTHING_CHANGED = "Nothing was changed: run again with --apply."


def store_to_use(store_spec: str | None, config_path: str | None) -> tuple[str, list[str]]:
    """The store spec (--store, else the config's [policy] store, else the policy server's
    default), and the options that name it again in the printed release command."""
    if store_spec is not None:
        if store_spec == DEFAULT_STORE:
            return store_spec, []
        return store_spec, ["--store", shown_store(store_spec)]
    if config_path is not None:
        return load_config(config_path).store, ["--config", config_path]
    return DEFAULT_STORE, []


@click.command("contain")
@click.argument("account")
@click.option("--apply", "apply_", is_flag=True, help="Do it (without: only say what it would do).")
@click.option("--release", is_flag=True, help="Undo: release the account and its held mail.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="The TOML config of relayguard policy serve: its [policy] store is used.",
)
@click.option(
    "--store",
    "store_spec",
    metavar="SPEC",
    help="The policy store relayguard policy reads: sqlite:PATH or redis://[:PASSWORD@]HOST"
    f"[:PORT][/DB] (overrides --config; default: {DEFAULT_STORE}).",
)
@click.option("--postfix-config", metavar="DIR", help="Postfix config directory (postqueue -c).")
@click.option("--reason", default="contained by relayguard contain", show_default=True)
@click.option(
    "--log",
    "log_path",
    default="/var/log/mail.log",
    show_default=True,
    metavar="FILE",
    help="The mail log named in the runbook.",
)
def contain(
    account: str,
    apply_: bool,
    release: bool,
    config_path: str | None,
    store_spec: str | None,
    postfix_config: str | None,
    reason: str,
    log_path: str,
) -> None:
    """Contain ACCOUNT (a SASL login or sender): relayguard policy HOLDs its new mail, and its
    mail already queued is put on hold (postsuper -h; nothing is deleted).

    Without --apply nothing changes: it prints what it would do.
    """
    account = admin_key(check_account(account))  # as the policy server spells it
    reason = clean(reason, 200)
    spec, store_options = store_to_use(store_spec, config_path)
    shown = shown_store(spec)
    would = "" if apply_ else "would "
    store = _existing_store(spec)  # the dry run opens it too, to report what would fail
    try:
        # The store first: it stops new mail, and must not depend on the queue being readable.
        if not apply_:
            _say_dry_run(account, release, shown, store)
        else:
            if store is None:
                store = open_store(spec)  # an SQLite file not made yet, in a directory that is
            _store_step(store, account, release, reason, shown)
        queue_error = _queue_step(account, release, apply_, would, postfix_config)
        if not release:
            click.echo("")
            options = store_options + (
                ["--postfix-config", postfix_config] if postfix_config else []
            )
            for line in runbook(account, log_path, options):
                click.echo(clean(line, 1000))
            if shown != spec and store_spec is not None:
                click.echo("  (with the store's password in RELAYGUARD_REDIS_PASSWORD)")
        if not apply_:
            click.echo("")
            click.echo(NOTHING_CHANGED)
    finally:
        if store is not None:
            store.close()
    if queue_error is not None:
        raise QueueCommandError(queue_error)


def _store_step(store: Store, account: str, release: bool, reason: str, shown: str) -> None:
    if release:
        was = store.release(account)
        click.echo(f"{account}: {'released' if was else 'was not contained'} in {shown}")
    else:
        new = store.contain(account, reason, time.time())
        click.echo(f"{account}: {'contained' if new else 'already contained'} in {shown}")


def _existing_store(spec: str) -> Store | None:
    """The store opened without creating anything: None for an SQLite file not made yet (its
    directory must exist: a store nobody created is not the one relayguard policy reads).
    A bad spec, an unreachable Redis or an unreadable file is an error (exit 3)."""
    check_store_spec(spec)
    kind, _sep, where = spec.partition(":")
    if kind == "sqlite":
        if not os.path.exists(where):
            parent = os.path.dirname(os.path.abspath(where))
            if not os.path.isdir(parent):
                raise StoreError(
                    f"no policy store at {where!r} and no directory {parent!r}: "
                    "is this the store relayguard policy uses?"
                )
            return None
        return open_store(spec, create=False)
    store = open_store(spec)
    ping = getattr(store, "ping", None)
    try:
        if callable(ping):
            ping()  # connect and log in now: a dry run says what would fail
    except Exception:
        store.close()
        raise
    return store


def _say_dry_run(account: str, release: bool, shown: str, store: Store | None) -> None:
    contained = store is not None and store.is_contained(account)
    if release:
        state = "would be released" if contained or store is None else "is not contained"
        click.echo(f"{account}: {state} in {shown}")
    elif contained:
        click.echo(f"{account}: already contained in {shown}")
    else:
        click.echo(f"{account}: would be contained in {shown} (relayguard policy HOLDs its mail)")


def _queue_step(
    account: str, release: bool, apply_: bool, would: str, postfix_config: str | None
) -> str | None:
    """Hold (or release) the account's queued mail; the reason when the queue could not be
    read or changed (the store step is done by then and stays done)."""
    try:
        messages = postfix_queue.list_queue(postfix_config)
        logins = postfix_queue.logins_of(postfix_config, [m.queue_id for m in messages])
        sel = select(account, messages, logins)
        if release:
            ids = [m.queue_id for m in sel.held]
            click.echo(f"{would}release {len(ids)} held message(s): {' '.join(ids) or '-'}")
            if apply_:
                postfix_queue.postsuper(postfix_config, "-H", ids)
        else:
            ids = [m.queue_id for m in sel.to_hold]
            click.echo(
                f"{would}hold {len(ids)} queued message(s) ({sel.by_login} by SASL login, "
                f"{sel.by_sender} by sender; {len(sel.held)} already held): "
                f"{' '.join(ids) or '-'}"
            )
            if apply_:
                postfix_queue.postsuper(postfix_config, "-h", ids)
    except QueueCommandError as exc:
        what = "released" if release else "held"
        click.echo(f"queue: {exc}: its queued mail was not {what}")
        return f"the account's queued mail was not {what}: {exc}"
    return None
