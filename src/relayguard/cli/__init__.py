"""The ``relayguard`` command: click commands, one module per capability, each imported only
when its command runs (:data:`COMMANDS`).

``main(argv) -> int`` never raises for bad input: usage errors and unusable input are one line
on stderr and exit code 3 (UNKNOWN in the monitoring-plugin convention), not click's 2.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

import click

from relayguard import __version__
from relayguard.cli.lazy import LazyCommand, LazyGroup
from relayguard.errors import RelayguardError
from relayguard.findings import ExitCode


def _command(module: str, attribute: str, short_help: str) -> LazyCommand:
    return LazyCommand(f"relayguard.cli.{module}", attribute, short_help)


# Each command's module is imported only when that command runs (cli/lazy.py). The short help
# is what `relayguard --help` lists: the first sentence of the command's own help, which
# tests/cli/test_lazy_commands.py checks against the command itself.
COMMANDS: dict[str, LazyCommand] = {
    "analyze": _command(
        "analyze", "analyze",
        "Read mail logs (files, .gz/.bz2/.xz, rotated sets, - for stdin, journalctl -o json) "
        "and report spam-relay abuse: brute force, compromised accounts, outbound spikes, open "
        "relay use, relay probing, bounces, queue build-up and block-list rejections.",
    ),
    "audit": _command(
        "audit", "audit",
        "Audit a Postfix and/or Exim configuration for settings that allow relay abuse.",
    ),
    "config": _command("config_cmd", "config_group", "Show or check the TOML configuration."),
    "contain": _command(
        "contain", "contain",
        "Contain ACCOUNT (a SASL login or sender): relayguard policy HOLDs its new mail, and its "
        "mail already queued is put on hold (postsuper -h; nothing is deleted).",
    ),
    "dnsbl": _command(
        "dnsbl", "dnsbl", "Check IPs, host names and domains against DNS block lists."
    ),
    "domain": _command(
        "domain", "domain",
        "Audit DOMAIN's SPF (parsed and evaluated: the 10-lookup and 2-void limits as RFC 7208 "
        "counts them, +all/?all, include loops), DMARC (tree walk, every tag, report "
        "authorization), DKIM keys (RFC 8301 sizes, revoked, testing) and MX records.",
    ),
    "firewall": _command(
        "firewall", "firewall_group",
        "Egress and ban rules (nftables; --iptables for hosts without nft).",
    ),
    "ids-rules": _command(
        "ids_rules", "ids_rules",
        "Print IDS rules for relay attempts against your domains (exact domain and subdomain "
        "matching, any case, optional space and brackets, quoted local parts, address "
        "literals), relay tricks, relay refusals and probing, AUTH brute force (thresholded), "
        "and port 25 traffic from hosts that are not mail servers.",
    ),
    "pcap": _command(
        "pcap", "pcap",
        "Reassemble the SMTP sessions in a pcap or pcapng capture (also gzip-compressed, or "
        "from standard input) and report open relay use, AUTH brute force, relay probing, "
        "outbound spikes, and hosts that are not mail servers sending straight to port 25.",
    ),
    "policy": _command(
        "policy", "policy",
        "A Postfix policy server that rate-limits outbound mail and contains accounts.",
    ),
    "probe": _command(
        "probe", "probe",
        "Test whether HOST (a name or an address; nothing else is contacted) relays mail for "
        "anyone, and report SMTP weaknesses found on the way: AUTH before TLS, no STARTTLS, "
        "VRFY/EXPN, XCLIENT, accepting unknown users, version banners, tarpits.",
    ),
    "watch": _command(
        "watch", "watch",
        "Watch the mail server live: log detectors, queue, outbound SMTP, MTA load; alert.",
    ),
}  # fmt: skip


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="relayguard")
def cli() -> None:
    """Find out whether a mail server is abused as a spam relay, prove it, and stop it.

    Exit codes: 0 clean/OK, 1 suspicious/WARNING, 2 abused/CRITICAL, 3 could not decide/UNKNOWN.
    """


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        result = cli.main(args=args, prog_name="relayguard", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
        return ExitCode.UNKNOWN
    except click.UsageError as exc:
        hint = f" (try '{exc.ctx.command_path} --help')" if exc.ctx else ""
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
