"""``relayguard contain ACCOUNT``: stop an account's mail now, keep everything for review."""

from __future__ import annotations

import time

import click

from relayguard.mitigate import postfix_queue
from relayguard.mitigate.containment import check_account, runbook, select
from relayguard.policy.config import DEFAULT_STORE
from relayguard.policy.stores import open_store
from relayguard.report.sanitize import clean


@click.command("contain")
@click.argument("account")
@click.option("--apply", "apply_", is_flag=True, help="Do it (without: only say what it would do).")
@click.option("--release", is_flag=True, help="Undo: release the account and its held mail.")
@click.option(
    "--store",
    "store_spec",
    default=DEFAULT_STORE,
    show_default=True,
    metavar="SPEC",
    help="The policy store relayguard policy reads (sqlite:PATH).",
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
    store_spec: str,
    postfix_config: str | None,
    reason: str,
    log_path: str,
) -> None:
    """Contain ACCOUNT (a SASL login or sender): relayguard policy HOLDs its new mail, and its
    mail already queued is put on hold (postsuper -h; nothing is deleted).

    Without --apply nothing changes: it prints what it would do.
    """
    account = check_account(account)
    reason = clean(reason, 200)
    messages = postfix_queue.list_queue(postfix_config)
    logins = postfix_queue.logins_of(postfix_config, [m.queue_id for m in messages])
    sel = select(account, messages, logins)
    would = "" if apply_ else "would "
    store = open_store(store_spec) if apply_ else None
    try:
        if release:
            if store is not None:
                was = store.release(account)
                click.echo(
                    f"{account}: {'released' if was else 'was not contained'} in {store_spec}"
                )
            else:
                click.echo(f"{account}: would be released in {store_spec}")
            ids = [m.queue_id for m in sel.held]
            click.echo(f"{would}release {len(ids)} held message(s): {' '.join(ids) or '-'}")
            if store is not None:
                postfix_queue.postsuper(postfix_config, "-H", ids)
            return
        if store is not None:
            new = store.contain(account, reason, time.time())
            click.echo(f"{account}: {'contained' if new else 'already contained'} in {store_spec}")
        else:
            click.echo(
                f"{account}: would be contained in {store_spec} (relayguard policy HOLDs its mail)"
            )
        ids = [m.queue_id for m in sel.to_hold]
        click.echo(
            f"{would}hold {len(ids)} queued message(s) ({sel.by_login} by SASL login, "
            f"{sel.by_sender} by sender; {len(sel.held)} already held): {' '.join(ids) or '-'}"
        )
        if store is not None:
            postfix_queue.postsuper(postfix_config, "-h", ids)
        click.echo("")
        options = [] if store_spec == DEFAULT_STORE else ["--store", store_spec]
        options += ["--postfix-config", postfix_config] if postfix_config else []
        for line in runbook(account, log_path, options):
            click.echo(clean(line, 1000))
        if store is None:
            click.echo("")
            click.echo("Nothing was changed: run again with --apply.")
    finally:
        if store is not None:
            store.close()
