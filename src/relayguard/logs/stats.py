"""What reading the input amounted to: shared by the reader (which fills it) and the reports."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, kw_only=True)
class InputStats:
    """What was read and what could not be understood; nothing is dropped silently."""

    sources: list[str] = field(default_factory=list)
    bytes_read: int = 0
    lines_read: int = 0
    lines_parsed: int = 0
    lines_unparsed: int = 0
    lines_bad_timestamp: int = 0
    lines_truncated: int = 0
    lines_empty: int = 0
    unparsed_samples: list[str] = field(default_factory=list)
    # "postfix": 1200, "exim": 0, ...; lines per MTA as recognised
    by_mta: dict[str, int] = field(default_factory=dict)
    first_time: float | None = None
    last_time: float | None = None
