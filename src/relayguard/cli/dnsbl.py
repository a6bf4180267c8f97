"""``relayguard dnsbl``: is this server's address (or domain) on a block list, and what to do."""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

import click

from relayguard.dns import listfile, lists
from relayguard.dns._errors import TargetError
from relayguard.dns.dnsbl import Target
from relayguard.dns.io import ResolverOptions, check_dnsbl, parse_targets
from relayguard.dns.names import normalize_domain
from relayguard.dns.resolver import ResolverChoice, choose_resolver
from relayguard.report.sanitize import clean

MAX_TARGETS_FILE = 16 * 1024 * 1024  # bytes read from --targets-file
# JSON of at most this many subjects is indented; a fleet's report (10 MB) is written compact,
# which json.dumps does in a tenth of the time (docs/dns.md, "JSON").
MAX_INDENTED_SUBJECTS = 1000
SHORT_HELP = "Check IPs, host names and domains against DNS block lists."
# What a line of --targets-file may hold: addresses, names (IDN too), commas and blanks.
_TARGET_LINE = re.compile(r"[\w.:%\[\]/,\s-]*")


class FiniteFloat(click.FloatRange):
    """click's FloatRange, without ``nan`` (every comparison with it is false, so it passes
    any range) and ``inf``."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def resolver_options(f: click.decorators.FC) -> click.decorators.FC:
    """--resolver, --timeout, --tries: shared by dnsbl and domain."""
    f = click.option("--tries", type=click.IntRange(1, 5), default=2, show_default=True,
                     help="Attempts per query.")(f)  # fmt: skip
    f = click.option("--timeout", type=FiniteFloat(0.1, 30), default=2.0, show_default=True,
                     help="Seconds to wait for each answer.")(f)  # fmt: skip
    f = click.option(
        "--resolver", metavar="IP[:PORT]",
        help="The DNS resolver to ask (a local recursive resolver: block lists refuse public "
        "ones). Default: $RELAYGUARD_RESOLVER, else the first nameserver of /etc/resolv.conf; "
        "the report always says which.",
    )(f)  # fmt: skip
    return f


def pick_resolver(option: str | None) -> ResolverChoice:
    """``--resolver ''`` is a mistake (an unset variable), not "use the default"."""
    if option is not None and not option.strip():
        raise click.UsageError(
            "--resolver is empty: name a resolver IP[:PORT], or leave the option out for "
            "$RELAYGUARD_RESOLVER / /etc/resolv.conf"
        )
    return choose_resolver(option)


def _read_targets(path: str) -> tuple[list[str], list[str]]:
    """The words of ``path`` and, for each, where it came from (for its error message)."""
    try:
        if path == "-":
            data = sys.stdin.read(MAX_TARGETS_FILE + 1)
        else:
            with open(path, encoding="utf-8", errors="replace") as handle:
                data = handle.read(MAX_TARGETS_FILE + 1)
    except OSError as exc:
        raise TargetError(f"--targets-file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_TARGETS_FILE:
        raise TargetError("--targets-file: over 16 MiB")
    words: list[str] = []
    origins: list[str] = []
    for number, line in enumerate(data.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"--targets-file {path[:80]} line {number}: "
        if not _TARGET_LINE.fullmatch(line):
            raise TargetError(f"{where}{line[:80]!r} has characters no target can have")
        for word in line.replace(",", " ").split():
            words.append(word)
            origins.append(where)
    return words, origins


def _show_lists(as_json: bool) -> int:
    if as_json:
        doc = {
            "lists": [
                {"id": ident, "zone": spec.zone, "name": spec.name, "type": spec.kind,
                 "ipv6": spec.ipv6, "informational": spec.informational,
                 "default": ident in lists.DEFAULT_IDS}
                for ident, spec in lists.BUILTIN.items()
            ],
            "dead_zones": [{"zone": zone, "why": why} for zone, why in lists.DEAD_ZONES.items()],
        }  # fmt: skip
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
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


@click.command("dnsbl", short_help=SHORT_HELP)
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
@click.option("--rate", type=FiniteFloat(0, 100000), default=50.0, show_default=True,
              help="Queries per second per list (0: no limit). Keeps a fleet check from "
              "getting the resolver banned.")
@click.option("--max-in-flight", type=click.IntRange(1, 1024), default=64, show_default=True,
              help="Queries in flight at once.")
@click.option("--max-errors", type=FiniteFloat(0, 100), default=20.0, show_default=True,
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
        if targets or targets_file or from_postfix:
            raise click.UsageError("--show-lists prints the built-in lists: it takes no target")
        return _show_lists(as_json)
    words = list(targets)
    origins = [""] * len(words)
    if targets_file:
        more, where = _read_targets(targets_file)
        words += more
        origins += where
    if postfix_config and not from_postfix:
        raise click.UsageError("--postfix-config goes with --from-postfix")
    notes: list[str] = []
    if from_postfix:
        from relayguard.dns.postfix_addresses import from_postfix as read_postfix

        found = read_postfix(postfix_config)
        words += found.addresses + found.names
        origins += ["--from-postfix: "] * (len(found.addresses) + len(found.names))
        notes += [f"--from-postfix: skipped {why}" for why in found.skipped]
        helo = helo or found.helo
    if not words:
        if targets_file and not (targets or from_postfix):
            shown = clean(str(targets_file), 200)
            raise click.UsageError(f"--targets-file {shown} holds no target")
        raise click.UsageError("name a TARGET, --targets-file or --from-postfix")
    parsed: list[Target] = parse_targets(words, origins)
    helo_name = normalize_domain(helo, what="a HELO name") if helo else None
    specs = listfile.load(lists_file) if lists_file else lists.defaults()
    if dqs_key:
        specs = lists.with_dqs_key(specs, dqs_key.strip())
    choice = pick_resolver(resolver)
    options = ResolverOptions(timeout=timeout, tries=tries, rate=rate, max_in_flight=max_in_flight)
    report = check_dnsbl(parsed, specs, choice, helo=helo_name, options=options,
                         max_error_ratio=max_errors / 100)  # fmt: skip
    report.notes += notes
    if as_json:
        write_json(report.to_json(), compact=len(report.subjects) > MAX_INDENTED_SUBJECTS)
    else:
        from relayguard.dns.render import render_dnsbl
        from relayguard.report.console import report_console, silence_stdout

        try:
            render_dnsbl(report, report_console(), verbose=verbose)
            sys.stdout.flush()
        except BrokenPipeError:
            silence_stdout()
    if report.exit_code == 3 and not as_json:
        click.echo(f"relayguard: {clean(report.why, 300)}", err=True)
    return int(report.exit_code)


def write_json(doc: dict[str, Any], compact: bool = False) -> None:
    text = json.dumps(doc, separators=(",", ":")) if compact else json.dumps(doc, indent=2)
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        from relayguard.report.console import silence_stdout

        silence_stdout()
