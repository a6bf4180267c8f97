"""main.cf as Postfix reads it: logical lines, comments, last definition wins.

Theory of operation: a logical line starts in column one; a line that starts with whitespace
continues the previous one; a line whose first non-blank character is ``#`` is a comment, while
a ``#`` later in a line is part of the value. ``name = value`` with blanks around ``=`` and at
the end ignored. The same reader serves ``postconf -n`` output (one logical line per setting,
folded with ``-f``). Values are kept unexpanded; see :mod:`relayguard.audit.expand`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from relayguard.audit._errors import ConfigSyntaxError

# Postfix parameter names are letters, digits and underscores (plus "-" in a few legacy ones).
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True, slots=True)
class LogicalLine:
    """One logical line: its first line number, the physical lines, and their join."""

    line: int
    physical: tuple[str, ...]
    numbers: tuple[int, ...]  # the line number of each physical line (comments skipped)

    @property
    def text(self) -> str:
        return " ".join(p.strip() for p in self.physical)


@dataclass(frozen=True, slots=True)
class Param:
    """One ``name = value`` definition with where it was read."""

    name: str
    value: str
    file: str
    line: int
    source: str  # the logical line as written (continuations joined by a blank)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class MainCf:
    file: str
    params: dict[str, Param] = field(default_factory=dict)
    # Earlier definitions that a later one overrode (Postfix uses the last one silently).
    overridden: tuple[Param, ...] = ()
    warnings: tuple[str, ...] = ()

    def get(self, name: str) -> Param | None:
        return self.params.get(name)


def logical_lines(text: str) -> Iterator[LogicalLine]:
    """Group physical lines into logical ones, dropping comments and blank lines.

    As in Postfix's readlline(), comment and blank lines are skipped without ending the
    logical line, so an indented line after a comment still continues the setting above it.
    A first line that starts with whitespace is yielded on its own; callers decide.
    """
    current: list[str] = []
    numbers: list[int] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0] in " \t" and current:
            current.append(line)
            numbers.append(number)
            continue
        if current:
            yield LogicalLine(numbers[0], tuple(current), tuple(numbers))
        current, numbers = [line], [number]
    if current:
        yield LogicalLine(numbers[0], tuple(current), tuple(numbers))


def split_assignment(text: str) -> tuple[str, str] | None:
    """``name = value`` -> (name, value); None when there is no valid name before ``=``."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name or not all(c in _NAME_CHARS for c in name):
        return None
    return name, value.strip()


def parse_main_cf(text: str, file: str = "main.cf") -> MainCf:
    """Parse main.cf (or ``postconf -n`` output); ConfigSyntaxError where Postfix would stop."""
    params: dict[str, Param] = {}
    overridden: list[Param] = []
    warnings: list[str] = []
    for logical in logical_lines(text):
        if logical.physical[0][0] in " \t":
            # Postfix warns "logical line must not start with whitespace" and skips it.
            warnings.append(f"{file}, line {logical.line}: ignored: starts with whitespace")
            continue
        joined = logical.text
        pair = split_assignment(joined)
        if pair is None:
            raise ConfigSyntaxError(file, logical.line, "missing '=' after attribute name")
        name, value = pair
        previous = params.get(name)
        if previous is not None:
            overridden.append(previous)
        params[name] = Param(name, value, file, logical.line, joined)
    return MainCf(file, params, tuple(overridden), tuple(warnings))
