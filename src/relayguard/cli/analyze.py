"""``relayguard analyze``: find spam-relay abuse in mail logs."""

from __future__ import annotations

import json
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from relayguard import config as config_mod
from relayguard.analysis.engine import Analyzer
from relayguard.analysis.result import AnalysisResult
from relayguard.errors import InputError, RelayguardError
from relayguard.findings import ExitCode
from relayguard.logs.envelope import FORMATS
from relayguard.logs.events import EVENTS_SCHEMA
from relayguard.logs.reader import LogReader
from relayguard.logs.stats import InputStats
from relayguard.report import json_report, terminal
from relayguard.report.console import report_console, silence_stdout


@click.command("analyze")
@click.argument("paths", nargs=-1, required=True, metavar="LOG...")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config.")
@click.option(
    "--local-domain",
    "local_domains",
    multiple=True,
    metavar="DOMAIN",
    help="A domain this server receives mail for (repeatable). Default: inferred from the log.",
)
@click.option(
    "--trusted-network",
    "trusted_networks",
    multiple=True,
    metavar="CIDR",
    help="A network allowed to relay without auth, like mynetworks (repeatable).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="Log line format; auto detects it per line.",
)
@click.option("--year", type=click.IntRange(1970, 9999), help="Year of syslog lines without one.")
@click.option("--timezone", "tz_name", metavar="ZONE", help="Zone of times without an offset.")
@click.option("--json", "as_json", is_flag=True, help="Print the relayguard.analyze/1 JSON.")
@click.option("--events", "as_events", is_flag=True, help="Print each parsed event as JSON.")
@click.option(
    "--show-unparsed", is_flag=True, help="Show lines that were not understood (first 20)."
)
@click.option(
    "--unparsed-samples",
    type=click.IntRange(1, 10_000),
    default=20,
    show_default=True,
    metavar="N",
    help="How many not-understood lines --show-unparsed keeps.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show more evidence lines.")
@click.option("--no-progress", is_flag=True, help="Never show a progress bar.")
def analyze(
    paths: tuple[str, ...],
    config_path: str | None,
    local_domains: tuple[str, ...],
    trusted_networks: tuple[str, ...],
    fmt: str,
    year: int | None,
    tz_name: str | None,
    as_json: bool,
    as_events: bool,
    show_unparsed: bool,
    unparsed_samples: int,
    verbose: bool,
    no_progress: bool,
) -> int:
    """Read mail logs (files, .gz/.bz2/.xz, rotated sets, - for stdin, journalctl -o json)
    and report spam-relay abuse: brute force, compromised accounts, outbound spikes, open
    relay use, relay probing, bounces, queue build-up and block-list rejections.

    Exit code: 0 clean, 1 suspicious, 2 abused, 3 error.
    """
    if as_json and as_events:
        raise click.UsageError("--json and --events are exclusive")
    cfg = config_mod.with_overrides(
        config_mod.load(config_path),
        local_domains=list(local_domains),
        trusted_networks=list(trusted_networks),
    )
    tz = _zone(tz_name)
    keep = unparsed_samples if show_unparsed else 0
    reader = LogReader(list(paths), fmt=fmt, year=year, tz=tz, keep_unparsed=keep)
    if as_events:
        return _print_events(reader)
    analyzer = Analyzer(cfg)
    with _progress(no_progress) as progress:
        if progress is not None:
            task = progress.add_task("reading", total=reader.total_bytes or None)

            def on_progress(done: int, total: int | None) -> None:
                progress.update(task, completed=done, total=total)

            reader.on_progress = on_progress
        analyzer.feed_all(reader.events())
    result = analyzer.finish(_input_stats(reader))
    result.errors = _input_errors(reader)
    try:
        _output(result, as_json=as_json, verbose=verbose, show_unparsed=show_unparsed)
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: the reader left, the verdict still stands
        silence_stdout()
    except OSError as exc:  # a full disk, a closed terminal: the report is lost, say so
        silence_stdout()
        raise RelayguardError(f"cannot write the report: {exc.strerror or exc}") from None
    for error in result.errors:
        click.echo(f"relayguard: error: {error}", err=True)
    return result.exit_code


def _input_errors(reader: LogReader) -> list[str]:
    """Why the verdict cannot be trusted: unreadable inputs, or nothing understood."""
    s = reader.stats
    errors = [why for _, why in s.failed_sources]
    if s.lines_parsed == 0:
        if s.lines_read - s.lines_empty == 0:
            errors.append("no log lines to analyze")
        else:
            errors.append(
                f"none of the {s.lines_read:,} lines read was understood as a mail log "
                "(see them with --show-unparsed; is --format right?)"
            )
    return errors


def _zone(name: str | None) -> ZoneInfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"unknown time zone {name!r} (want e.g. Europe/Berlin or UTC)") from None


def _progress(disabled: bool) -> AbstractContextManager[Any]:
    if disabled or not sys.stderr.isatty():
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def _print_events(reader: LogReader) -> int:
    out = sys.stdout
    dumps = json.dumps
    header = {"schema": EVENTS_SCHEMA}
    out.write(dumps(header) + "\n")
    for ev in reader.events():
        out.write(dumps(ev.to_json(), ensure_ascii=False) + "\n")
    s = reader.stats
    out.write(
        dumps(
            {
                "summary": {
                    "lines_read": s.lines_read,
                    "lines_parsed": s.lines_parsed,
                    "lines_unparsed": s.lines_unparsed,
                    "lines_bad_timestamp": s.lines_bad_timestamp,
                }
            }
        )
        + "\n"
    )
    for _, why in s.failed_sources:
        click.echo(f"relayguard: error: {why}", err=True)
    return ExitCode.UNKNOWN if s.failed_sources else ExitCode.OK


def _input_stats(reader: LogReader) -> InputStats:
    return reader.stats.to_input_stats()


def _output(result: AnalysisResult, *, as_json: bool, verbose: bool, show_unparsed: bool) -> None:
    if as_json:
        sys.stdout.write(json_report.dumps(result) + "\n")
        return
    console = report_console()
    terminal.render(result, console, verbose=verbose)
    if show_unparsed and result.input.unparsed_samples:
        from relayguard.report.sanitize import clean

        console.print(f"Lines not understood (first {len(result.input.unparsed_samples)}):")
        for line in result.input.unparsed_samples:
            console.print("  " + clean(line, 300), markup=False)
