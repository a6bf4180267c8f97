"""``relayguard dnsbl``: is this server's address (or domain) on a block list, and what to do."""

from __future__ import annotations

import json
import sys

import click

from relayguard.dns import listfile, lists
from relayguard.dns._errors import TargetError
from relayguard.dns.dnsbl import Target
from relayguard.dns.io import ResolverOptions, check_dnsbl, parse_targets
from relayguard.dns.names import normalize_domain
from relayguard.dns.resolver import choose_resolver
from relayguard.report.console import report_console, silence_stdout
from relayguard.report.sanitize import clean

MAX_TARGETS_FILE = 16 * 1024 * 1024  # bytes read from --targets-file


def resolver_options(f: click.decorators.FC) -> click.decorators.FC:
    """--resolver, --timeout, --tries: shared by dnsbl and domain."""
    f = click.option("--tries", type=click.IntRange(1, 5), default=2, show_default=True,
                     help="Attempts per query.")(f)  # fmt: skip
    f = click.option("--timeout", type=click.FloatRange(0.1, 30), default=2.0, show_default=True,
                     help="Seconds to wait for each answer.")(f)  # fmt: skip
    f = click.option(
        "--resolver", metavar="IP[:PORT]",
        help="The DNS resolver to ask (a local recursive resolver: block lists refuse public "
        "ones). Default: $RELAYGUARD_RESOLVER, else the first nameserver of /etc/resolv.conf; "
        "the report always says which.",
    )(f)  # fmt: skip
    return f


def _read_targets(path: str) -> list[str]:
    try:
        if path == "-":
            data = sys.stdin.read(MAX_TARGETS_FILE)
        else:
            with open(path, encoding="utf-8", errors="replace") as handle:
                data = handle.read(MAX_TARGETS_FILE)
    except OSError as exc:
        raise TargetError(f"--targets-file {path}: {exc.strerror or exc}") from None
    words: list[str] = []
    for line in data.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            words.extend(line.split())
    return words


def _show_lists() -> int:
    for ident, spec in lists.BUILTIN.items():
        default = "default" if ident in lists.DEFAULT_IDS else "opt-in "
        kind = spec.kind + ("+v6" if spec.ipv6 else "")
        extra = " (informational)" if spec.informational else ""
        click.echo(f"{ident:<16} {default} {kind:<7} {spec.zone:<28} {spec.name}{extra}")
    click.echo("")
    click.echo("Never queried (dead or listing everything):")
    for zone, why in lists.DEAD_ZONES.items():
        click.echo(f"  {zone:<26} {why}")
    return 0


@click.command("dnsbl")
@click.argument("targets", nargs=-1, metavar="TARGET...")
@click.option("--from-postfix", is_flag=True,
              help="Check the server's own public addresses and HELO name, read with postconf.")
@click.option("--postfix-config", metavar="DIR", help="Postfix config directory (postconf -c).")
@click.option("--targets-file", metavar="FILE",
              help="More targets, one or more per line ('#' comments; '-' reads stdin).")
@resolver_options
@click.option("--lists", "lists_file", metavar="FILE",
              help="TOML file of the lists to query (format: docs/dns.md); default: the "
              "built-in set.")
@click.option("--dqs-key", metavar="KEY",
              help="Spamhaus DQS key: query Spamhaus through its Data Query Service "
              "(adds AuthBL and ZRD).")
@click.option("--helo", metavar="NAME", help="The server's HELO name, compared with the PTR.")
@click.option("--rate", type=click.FloatRange(0, 100000), default=50.0, show_default=True,
              help="Queries per second per list (0: no limit). Keeps a fleet check from "
              "getting the resolver banned.")
@click.option("--max-in-flight", type=click.IntRange(1, 1024), default=64, show_default=True,
              help="Queries in flight at once.")
@click.option("--max-errors", type=click.FloatRange(0, 100), default=20.0, show_default=True,
              help="Percent of a subject's lists that may fail before the answer is UNKNOWN.")
@click.option("--show-lists", is_flag=True, help="Print the built-in lists and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the relayguard.dnsbl/1 JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show every list, also the clean ones.")
def dnsbl(
    targets: tuple[str, ...], from_postfix: bool, postfix_config: str | None,
    targets_file: str | None, resolver: str | None, timeout: float, tries: int,
    lists_file: str | None, dqs_key: str | None, helo: str | None, rate: float,
    max_in_flight: int, max_errors: float, show_lists: bool, as_json: bool, verbose: bool,
) -> int:  # fmt: skip
    """Check TARGET... (IPv4 or IPv6 addresses, host names: all their A/AAAA, domains: on the
    domain lists) against DNS block lists, with every answer classified (a resolver refusal
    or a timeout is never "not listed"), each list health-checked first, and the delisting
    steps of every listing.

    Exit code: 0 not listed, 1 listed only on informational lists, 2 listed, 3 could not
    tell (too many lists failed, a target did not resolve, bad input).
    """
    if show_lists:
        return _show_lists()
    words = list(targets)
    if targets_file:
        words += _read_targets(targets_file)
    if postfix_config and not from_postfix:
        raise click.UsageError("--postfix-config goes with --from-postfix")
    if from_postfix:
        from relayguard.dns.postfix_addresses import from_postfix as read_postfix

        found = read_postfix(postfix_config)
        words += found.addresses + found.names
        helo = helo or found.helo
    if not words:
        raise click.UsageError("name a TARGET, --targets-file or --from-postfix")
    parsed: list[Target] = parse_targets(words)
    helo_name = normalize_domain(helo, what="a HELO name") if helo else None
    specs = listfile.load(lists_file) if lists_file else lists.defaults()
    if dqs_key:
        specs = lists.with_dqs_key(specs, dqs_key.strip())
    choice = choose_resolver(resolver)
    options = ResolverOptions(timeout=timeout, tries=tries, rate=rate, max_in_flight=max_in_flight)
    report = check_dnsbl(parsed, specs, choice, helo=helo_name, options=options,
                         max_error_ratio=max_errors / 100)  # fmt: skip
    try:
        if as_json:
            sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
        else:
            from relayguard.dns.render import render_dnsbl

            render_dnsbl(report, report_console(), verbose=verbose)
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    if report.exit_code == 3 and not as_json:
        click.echo(f"relayguard: {clean(report.why, 300)}", err=True)
    return int(report.exit_code)
