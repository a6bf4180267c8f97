"""What every detector is: a small object fed events and recipients, asked for findings at the end.

A detector never reads files or clocks: time comes from the events. It keeps bounded state
(counters, small deques, the first and last evidence lines) so a 5 GB log costs what a 5 MB
one does.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from relayguard.analysis.locality import LocalDomains, TrustedNetworks
from relayguard.analysis.messages import Message
from relayguard.config import Config
from relayguard.findings import MAX_EVIDENCE, Finding
from relayguard.logs.events import Event


@dataclass(slots=True)
class Context:
    config: Config
    local: LocalDomains
    trusted: TrustedNetworks


class Detector:
    indicator: ClassVar[str]
    # Event types passed to on_event.
    events: ClassVar[tuple[str, ...]] = ()
    # Whether on_external_recipient is called for each new external recipient of a message.
    wants_external_recipients: ClassVar[bool] = False

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def on_event(self, ev: Event) -> None:  # pragma: no cover - default does nothing
        pass

    def on_external_recipient(
        self, msg: Message, ev: Event, domain: str
    ) -> None:  # pragma: no cover
        pass

    def finish(self) -> list[Finding]:
        raise NotImplementedError


def ranked(counts: dict[str, int]) -> list[tuple[str, int]]:
    """``counts`` most frequent first, ties in name order: how every top list is shown."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


class Evidence:
    """The first and the last lines of something: how it started and where it is now."""

    __slots__ = ("first", "half", "last", "seen")

    def __init__(self, limit: int = MAX_EVIDENCE) -> None:
        self.half = max(1, limit // 2)
        self.first: list[str] = []
        # created on demand: a botnet's thousands of one-line subjects never need it
        self.last: deque[str] | None = None
        self.seen = 0

    def add(self, line: str) -> None:
        self.seen += 1
        if len(self.first) < self.half:
            self.first.append(line)
            return
        if self.last is None:
            self.last = deque(maxlen=self.half)
        self.last.append(line)

    def lines(self) -> list[str]:
        out = list(self.first)
        last = self.last or ()
        skipped = self.seen - len(self.first) - len(last)
        if skipped > 0:
            out.append(f"... {skipped} more lines ...")
        out.extend(last)
        return out


class Span:
    """First and last time something was seen, and how often."""

    __slots__ = ("count", "first", "last")

    def __init__(self) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self.count = 0

    def add(self, t: float | None, n: int = 1) -> None:
        self.count += n
        if t is not None:
            if self.first is None:
                self.first = t
            self.last = t
