"""Command modules load on first use; the listing comes from a table that cannot drift."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from typing import Any

import click
import pytest

import relayguard.cli
from relayguard.cli import COMMANDS, cli
from relayguard.cli.lazy import LazyGroup

LISTING = """\
Commands:
  analyze    Read mail logs (files, .gz/.bz2/.xz, rotated sets, - for...
  audit      Audit a Postfix and/or Exim configuration for settings that...
  config     Show or check the TOML configuration.
  contain    Contain ACCOUNT (a SASL login or sender): relayguard policy...
  dnsbl      Check IPs, host names and domains against DNS block lists.
  domain     Audit DOMAIN's SPF (parsed and evaluated: the 10-lookup and...
  firewall   Egress and ban rules (nftables; --iptables for hosts without...
  ids-rules  Print IDS rules for relay attempts against your domains...
  pcap       Reassemble the SMTP sessions in a pcap or pcapng capture...
  policy     A Postfix policy server that rate-limits outbound mail and...
  probe      Test whether HOST (a name or an address; nothing else is...
  watch      Watch the mail server live: log detectors, queue, outbound...
"""


def top_level_commands() -> dict[str, click.Command]:
    """Every click command defined in a relayguard.cli module that no group holds."""
    found: list[click.Command] = []
    for info in pkgutil.iter_modules(relayguard.cli.__path__, "relayguard.cli."):
        module = importlib.import_module(info.name)
        found += [v for v in vars(module).values() if isinstance(v, click.Command)]
    held = {
        id(sub)
        for group in found
        if isinstance(group, click.Group) and group is not cli
        for sub in group.commands.values()
    }
    return {c.name or "": c for c in found if id(c) not in held and c is not cli}


def test_the_table_names_every_command_with_its_own_first_sentence() -> None:
    commands = top_level_commands()
    assert sorted(commands) == sorted(COMMANDS)
    for name, entry in COMMANDS.items():
        command = entry.load()
        assert command is commands[name]
        assert entry.short_help == command.get_short_help_str(limit=sys.maxsize), name


def test_the_listing_is_the_same_before_and_after_loading() -> None:
    group = LazyGroup("relayguard", lazy_commands=COMMANDS)

    def commands_section() -> str:
        # click lays help out 2 columns narrower than the terminal: 78 on an 80-column one
        ctx = click.Context(group, info_name="relayguard", terminal_width=78)
        return group.get_help(ctx).split("\n\n")[-1] + "\n"

    assert group.commands == {}
    assert commands_section() == LISTING
    for name in COMMANDS:
        group.get_command(click.Context(group), name)
    assert sorted(group.commands) == sorted(COMMANDS)
    assert commands_section() == LISTING


def modules_loaded_by(*argv: str) -> dict[str, Any]:
    code = (
        "import json, sys\n"
        "from relayguard.cli import main\n"
        f"code = main({list(argv)!r})\n"
        "mods = sorted(m for m in sys.modules if m.startswith('relayguard.cli.'))\n"
        "print(json.dumps({'code': code, 'cli': mods, 'wire': 'relayguard.wire' in sys.modules,"
        " 'dns': 'dns.resolver' in sys.modules}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    doc: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    return doc


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--help"], {"code": 0, "cli": ["relayguard.cli.lazy"], "wire": False, "dns": False}),
        (
            ["pcap", "--help"],
            {
                "code": 0,
                "cli": ["relayguard.cli.lazy", "relayguard.cli.pcap"],
                "wire": False,
                "dns": False,
            },
        ),
        (["nosuch"], {"code": 3, "cli": ["relayguard.cli.lazy"], "wire": False, "dns": False}),
    ],
)
def test_only_the_command_that_runs_is_imported(argv: list[str], expected: dict[str, Any]) -> None:
    assert modules_loaded_by(*argv) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nosuch"], "No such command 'nosuch'. (try 'relayguard --help')"),
        (["config", "nosuch"], "No such command 'nosuch'. (try 'relayguard config --help')"),
        (
            ["pcap", "--bogus"],
            "No such option '--bogus'. Did you mean '--verbose'? (try 'relayguard pcap --help')",
        ),
        (
            ["policy", "serve", "--bogus"],
            "No such option '--bogus'. (try 'relayguard policy serve --help')",
        ),
    ],
)
def test_usage_error_hint_names_the_command_path(
    relayguard: Any, argv: list[str], message: str
) -> None:
    run = relayguard(*argv)
    assert (run.code, run.out, run.err) == (3, "", f"relayguard: usage error: {message}\n")
