"""The ``relayguard`` command: click commands, one module per capability.

``main(argv) -> int`` never raises for bad input: usage errors and unusable input are one line
on stderr and exit code 3 (UNKNOWN in the monitoring-plugin convention), not click's 2.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

import click

from relayguard import __version__
from relayguard.cli.analyze import analyze
from relayguard.cli.audit import audit
from relayguard.cli.config_cmd import config_group
from relayguard.cli.contain import contain
from relayguard.cli.dnsbl import dnsbl
from relayguard.cli.domain import domain
from relayguard.cli.firewall import firewall_group
from relayguard.cli.ids_rules import ids_rules
from relayguard.cli.pcap import pcap
from relayguard.cli.policy import policy
from relayguard.cli.probe import probe
from relayguard.cli.watch import watch
from relayguard.errors import RelayguardError
from relayguard.findings import ExitCode


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="relayguard")
def cli() -> None:
    """Find out whether a mail server is abused as a spam relay, prove it, and stop it.

    Exit codes: 0 clean/OK, 1 suspicious/WARNING, 2 abused/CRITICAL, 3 could not decide/UNKNOWN.
    """


cli.add_command(analyze)
cli.add_command(audit)
cli.add_command(probe)
cli.add_command(policy)
cli.add_command(config_group)
cli.add_command(dnsbl)
cli.add_command(domain)
cli.add_command(pcap)
cli.add_command(ids_rules)
cli.add_command(watch)
cli.add_command(contain)
cli.add_command(firewall_group)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=args, prog_name="relayguard", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
        return ExitCode.UNKNOWN
    except click.UsageError as exc:
        hint = f" (try 'relayguard {exc.ctx.info_name} --help')" if exc.ctx else ""
        click.echo(f"relayguard: usage error: {exc.format_message()}{hint}", err=True)
        return ExitCode.UNKNOWN
    except click.exceptions.Abort:
        click.echo("relayguard: aborted", err=True)
        return ExitCode.UNKNOWN
    except click.ClickException as exc:
        click.echo(f"relayguard: {exc.format_message()}", err=True)
        return ExitCode.UNKNOWN
    except RelayguardError as exc:
        click.echo(f"relayguard: error: {exc}", err=True)
        return ExitCode.UNKNOWN
    except BrokenPipeError:
        return ExitCode.OK
    except KeyboardInterrupt:
        click.echo("relayguard: interrupted", err=True)
        return ExitCode.UNKNOWN
    if isinstance(result, int):
        return result
    return ExitCode.OK


def run() -> None:
    """Console-script entry point."""
    code = main()
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    sys.exit(code)
