"""Read log inputs into events: sources -> envelope -> MTA parser, with counts of everything.

Theory of operation
-------------------
:class:`LogReader` opens its inputs one after the other (rotated sets oldest first, see
:func:`~relayguard.logs.sources.order_sources`), splits each line's envelope with one
:class:`~relayguard.logs.envelope.EnvelopeParser` and hands the message to
:func:`relayguard.logs.dispatch.parse_message`. :meth:`LogReader.events` yields, in input
order, every event whose type is not ``unparsed``. Nothing is dropped silently: every line
read is counted in :attr:`LogReader.stats` as parsed, unparsed or empty.

Failures: an input that cannot be opened, or that breaks while being read (a truncated
``.gz``), does not stop the run. It is recorded in ``stats.failed_sources`` as
``(name, one-line message)`` and the reader goes on with the next input; the events of the
inputs (and of the part of the input) already read stay delivered. After the iteration the
caller decides: :meth:`LogReader.raise_for_failures` raises one
:class:`~relayguard.errors.InputError` naming the failed inputs (the CLI turns it into exit
3). :meth:`LogReader.preflight` checks that every named file can be opened, before any reading.

Times: a line whose envelope was recognised but whose timestamp was not (localised month)
gets the previous line's time and is counted in ``lines_bad_timestamp`` (FORMATS A4).
BSD stamps take their year from ``year``, else from each file's mtime (for stdin, from
``now``, default the current time).

``by_mta`` counts the lines the dispatcher routed to each MTA (``ev.mta``), understood or not.
``bytes_read`` counts bytes taken from the files, compressed bytes for compressed files.
"""

from __future__ import annotations

import math
import os
import stat
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from functools import partial
from typing import BinaryIO

from relayguard.errors import InputError
from relayguard.logs import dispatch
from relayguard.logs.envelope import EnvelopeParser
from relayguard.logs.events import UNPARSED, Event
from relayguard.logs.sources import (
    MAX_LINE,
    READ_ERRORS,
    STDIN,
    LineSource,
    display_name,
    input_error,
    open_source,
    order_sources,
    total_size,
)
from relayguard.logs.stats import InputStats

ProgressCallback = Callable[[int, int | None], None]

_PROGRESS_EVERY = 0xFFFF  # lines - 1: a power of two minus one, tested with ``&``


@dataclass(slots=True, kw_only=True)
class ReaderStats(InputStats):
    """:class:`InputStats`, plus the inputs that could not be read (name, one-line reason)."""

    failed_sources: list[tuple[str, str]] = field(default_factory=list)

    def to_input_stats(self) -> InputStats:
        """A copy without the reader-only fields."""
        return InputStats(**{name: getattr(self, name) for name in InputStats.__dataclass_fields__})


class LogReader:
    """Events from a list of log inputs (paths, ``-`` for stdin). Iterate :meth:`events` once."""

    def __init__(
        self,
        paths: Sequence[str],
        fmt: str = "auto",
        year: int | None = None,
        tz: tzinfo | None = None,
        keep_unparsed: int = 0,
        *,
        on_progress: ProgressCallback | None = None,
        stdin: BinaryIO | None = None,
        reorder: bool = True,
        now: float | None = None,
    ) -> None:
        # Validates fmt now rather than at the first line.
        EnvelopeParser(fmt, year=year, tz=tz, reference_time=0.0)
        self.paths = order_sources(paths) if reorder else list(paths)
        self.fmt = fmt
        self.year = year
        self.tz = tz
        self.keep_unparsed = keep_unparsed
        self.on_progress = on_progress
        self.total_bytes = total_size(self.paths)
        self.stats = ReaderStats(sources=[display_name(p) for p in self.paths])
        self._stdin = stdin
        self._now = now

    def preflight(self) -> list[InputError]:
        """One error per named file that cannot be opened for reading (nothing is read)."""
        errors = []
        for name in self.paths:
            if name == STDIN:
                continue
            # stat and access() rather than open(): opening a FIFO would block
            try:
                if stat.S_ISDIR(os.stat(name).st_mode):
                    raise IsADirectoryError(name)
                if not os.access(name, os.R_OK):
                    raise PermissionError(name)
            except OSError as exc:
                errors.append(input_error(name, exc))
        return errors

    def raise_for_failures(self) -> None:
        """Raise one :class:`InputError` if any input failed (after or during reading)."""
        failed = self.stats.failed_sources
        if not failed:
            return
        message = failed[0][1]
        if len(failed) > 1:
            others = ", ".join(display_name(name) for name, _ in failed[1:])
            message += f" (also failed: {others})"
        raise InputError(message)

    def events(self) -> Iterator[Event]:
        """Every understood event, in input order; ``stats`` is complete when this ends."""
        st = self.stats
        now = self._now if self._now is not None else time.time()
        parser = EnvelopeParser(self.fmt, year=self.year, tz=self.tz, reference_time=now)
        progress = self.on_progress
        total = self.total_bytes
        last_t: float | None = None
        for name in self.paths:
            try:
                src = open_source(name, stdin=self._stdin)
            except InputError as exc:
                st.failed_sources.append((name, str(exc)))
                continue
            parser.start_source(src.mtime if src.mtime is not None else now)
            done_before = st.bytes_read
            tick = None
            if progress is not None:
                tick = partial(_report_progress, progress, src, done_before, total)
            try:
                last_t = yield from parse_lines(
                    src.lines,
                    parser,
                    st,
                    self.keep_unparsed,
                    last_t,
                    limit=src.max_line,
                    skip_rest_of_line=src.skip_rest_of_line,
                    tick=tick,
                )
            except READ_ERRORS as exc:
                st.failed_sources.append((name, str(input_error(name, exc))))
            finally:
                src.close()
                st.bytes_read = done_before + src.bytes_done()
            if progress is not None:
                progress(st.bytes_read, total)


def _report_progress(
    progress: ProgressCallback, src: LineSource, done_before: int, total: int | None
) -> None:
    progress(done_before + src.bytes_done(), total)


def parse_lines(
    lines: Iterable[str],
    parser: EnvelopeParser,
    st: InputStats,
    keep_unparsed: int,
    last_t: float | None = None,
    *,
    limit: int = MAX_LINE,
    skip_rest_of_line: Callable[[], bool] | None = None,
    tick: Callable[[], None] | None = None,
) -> Generator[Event, None, float | None]:
    """The understood events of ``lines`` (each as ``readline`` gives it, with its newline),
    counting every line in ``st``; returns the time of the last line that had one.

    A line without a newline and at least ``limit`` long was cut: ``skip_rest_of_line`` drops
    the rest and says whether there was any. ``tick`` is called every 65,536 lines (progress).
    A line whose timestamp was not understood gets ``last_t``, the previous line's time.
    """
    parse = parser.parse
    parse_message = dispatch.parse_message
    samples = st.unparsed_samples
    by_mta = st.by_mta
    n = parsed = unparsed = bad = truncated = empty = 0
    first = math.inf if st.first_time is None else st.first_time
    last = -math.inf if st.last_time is None else st.last_time
    try:
        for line in lines:
            n += 1
            if not n & _PROGRESS_EVERY and tick is not None:
                tick()
            if line[-1] == "\n":
                line = line[:-2] if line[-2:-1] == "\r" else line[:-1]
                if not line:
                    empty += 1
                    continue
            elif len(line) >= limit and (skip_rest_of_line is None or skip_rest_of_line()):
                truncated += 1
            try:
                r = parse(line)
                if r is not None:
                    parse_message(r[0], r[1])
            except Exception:  # a parser bug must cost one line, never the run
                r = None
            if r is None:
                if line.isspace():
                    empty += 1
                    continue
                unparsed += 1
                if len(samples) < keep_unparsed:
                    samples.append(line)
                continue
            ev = r[0]
            t = ev.time
            if t is None:
                bad += 1
                ev.time = last_t
            else:
                last_t = t
                if t < first:
                    first = t
                if t > last:
                    last = t
            mta = ev.mta
            if mta is not None:
                by_mta[mta] = by_mta.get(mta, 0) + 1
            if ev.type == UNPARSED:
                unparsed += 1
                if len(samples) < keep_unparsed:
                    samples.append(line)
                continue
            parsed += 1
            yield ev
    finally:
        st.lines_read += n
        st.lines_parsed += parsed
        st.lines_unparsed += unparsed
        st.lines_bad_timestamp += bad
        st.lines_truncated += truncated
        st.lines_empty += empty
        st.first_time = None if first == math.inf else first
        st.last_time = None if last == -math.inf else last
    return last_t
