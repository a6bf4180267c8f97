"""master.cf as Postfix reads it: services, their commands and ``-o name=value`` overrides.

Theory of operation: logical lines as in main.cf; eight blank-separated fields (service, type,
private, unpriv, chroot, wakeup, maxproc, command) followed by the command's arguments. Since
Postfix 3.0 ``{ ... }`` protects blanks in an argument, so ``-o { name = value with spaces }``
is an override too. ``-o`` also comes glued (``-oname=value``). A later entry with the same
service name and type replaces the earlier one. The same reader parses ``postconf -M`` and
``postconf -Mf`` output.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from relayguard.audit._errors import ConfigSyntaxError
from relayguard.audit.maincf import LogicalLine, logical_lines

SERVICE_TYPES = ("inet", "unix", "unix-dgram", "fifo", "pass")
# Daemons whose command line is options only (mail_server getopt: "cdDi:lm:n:o:s:St:uvVz");
# any other word kills them with "fatal: unexpected command-line argument".
OPTIONS_ONLY = frozenset({"smtpd", "postscreen"})
_VALUE_OPTIONS = frozenset({"-i", "-m", "-n", "-o", "-s", "-t"})


@dataclass(frozen=True, slots=True)
class Override:
    """One ``-o name=value`` of a service, with the physical line it is written on."""

    name: str
    value: str
    file: str
    line: int
    source: str  # that physical line, stripped

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class StrayArg:
    """A command-line word that is no option: usually the tail of an ``-o`` value with a blank."""

    token: str
    file: str
    line: int
    source: str  # the physical line it is on
    after: str | None  # the ``-o name=value`` it follows, when it does

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    type: str
    private: str
    unpriv: str
    chroot: str
    wakeup: str
    maxproc: str
    command: str
    args: tuple[str, ...]
    file: str
    line: int
    source: str  # the first physical line of the entry
    overrides: dict[str, Override] = field(default_factory=dict)
    stray: tuple[StrayArg, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.name}/{self.type}"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class MasterCf:
    file: str
    services: tuple[Service, ...]
    warnings: tuple[str, ...] = ()

    def find(self, name: str, type_: str) -> Service | None:
        for service in self.services:
            if service.name == name and service.type == type_:
                return service
        return None


def tokenize(text: str) -> list[tuple[int, str]]:
    """Blank-separated tokens with their start offsets; ``{ ... }`` groups stay whole."""
    tokens: list[tuple[int, str]] = []
    start = -1
    level = 0
    for i, c in enumerate(text):
        if c == "{":
            if start < 0:
                start = i
            level += 1
            continue
        if c == "}" and level:
            level -= 1
            continue
        if c in " \t" and level == 0:
            if start >= 0:
                tokens.append((start, text[start:i]))
                start = -1
        elif start < 0:
            start = i
    if start >= 0:
        tokens.append((start, text[start:]))
    return tokens


def unbrace(token: str) -> str:
    """``{ text }`` -> ``text``; other tokens unchanged."""
    if len(token) >= 2 and token[0] == "{" and token[-1] == "}":
        return token[1:-1].strip()
    return token


def _override(arg: str, file: str, line: int, source: str) -> Override:
    name, sep, value = unbrace(arg).partition("=")
    name = name.strip()
    if not sep or not name:
        raise ConfigSyntaxError(file, line, f"missing '=' in -o {arg!r}")
    return Override(name, value.strip(), file, line, source)


def _parse_entry(logical: LogicalLine, file: str) -> Service:
    # The join puts one blank between physical lines; keep where each one starts.
    offsets: list[int] = []
    pos = 0
    for physical in logical.physical:
        offsets.append(pos)
        pos += len(physical.strip()) + 1
    text = logical.text
    tokens = tokenize(text)
    if len(tokens) < 8:
        raise ConfigSyntaxError(file, logical.line, "bad field count (want 8 fields)")
    fields = [t for _, t in tokens[:8]]
    if fields[1] not in SERVICE_TYPES:
        raise ConfigSyntaxError(file, logical.line, f"unknown service type {fields[1]!r}")

    def where(offset: int) -> tuple[int, str]:
        k = bisect_right(offsets, offset) - 1
        return logical.numbers[k], logical.physical[k].strip()

    args: list[str] = []
    overrides: dict[str, Override] = {}
    stray: list[StrayArg] = []
    options_only = fields[7] in OPTIONS_ONLY
    last: str | None = None  # the previous argument, as written
    rest = tokens[8:]
    k = 0
    while k < len(rest):
        offset, token = rest[k]
        args.append(token)
        if token == "-o" and k + 1 < len(rest):
            offset, arg = rest[k + 1]
            args.append(arg)
            k += 1
        elif token.startswith("-o") and len(token) > 2:
            arg = token[2:]
        else:
            if options_only and not token.startswith("-"):
                line, source = where(offset)
                after = last if last is not None and last.startswith("-o") else None
                stray.append(StrayArg(token, file, line, source, after))
                k += 1
                continue  # "-o a=b c d": d belongs to the same -o as c
            if token in _VALUE_OPTIONS and k + 1 < len(rest):
                k += 1
                args.append(rest[k][1])
            last = token
            k += 1
            continue
        line, source = where(offset)
        found = _override(arg, file, line, source)
        overrides[found.name] = found
        last = f"-o {arg}"
        k += 1
    name, type_, private, unpriv, chroot, wakeup, maxproc, command = fields
    return Service(
        name,
        type_,
        private,
        unpriv,
        chroot,
        wakeup,
        maxproc,
        command,
        tuple(args),
        file,
        logical.line,
        logical.physical[0].strip(),
        overrides,
        tuple(stray),
    )


def parse_master_cf(text: str, file: str = "master.cf") -> MasterCf:
    """Parse master.cf (or ``postconf -M`` output); ConfigSyntaxError where Postfix would stop."""
    found: dict[tuple[str, str], Service] = {}
    warnings: list[str] = []
    for logical in logical_lines(text):
        if logical.physical[0][0] in " \t":
            warnings.append(f"{file}, line {logical.line}: ignored: starts with whitespace")
            continue
        service = _parse_entry(logical, file)
        key = (service.name, service.type)
        if key in found:
            previous = found.pop(key)
            warnings.append(
                f"{file}, line {service.line}: duplicate {service.key} replaces line "
                f"{previous.line}"
            )
        found[key] = service
    return MasterCf(file, tuple(found.values()), tuple(warnings))
