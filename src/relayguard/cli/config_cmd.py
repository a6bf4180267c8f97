"""``relayguard config``: print the documented defaults, check a config file."""

from __future__ import annotations

import click

from relayguard import config as config_mod


@click.group("config")
def config_group() -> None:
    """Show or check the TOML configuration."""


@config_group.command("defaults")
def defaults() -> int:
    """Print every setting with its default and what it means."""
    click.echo(config_mod.render_defaults(), nl=False)
    return 0


@config_group.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
def check(path: str) -> int:
    """Validate PATH (a [policy] table as policy serve reads it); exit 0 if it loads, 3 with
    the reason if not."""
    config_mod.load(path)
    if _has_policy_table(path):
        from relayguard.policy.config import load_config  # the code policy serve runs

        load_config(path)
    click.echo(f"{path}: ok")
    return 0


def _has_policy_table(path: str) -> bool:
    import tomllib

    with open(path, "rb") as f:  # config_mod.load read it already: it is UTF-8 TOML
        return "policy" in tomllib.load(f)
