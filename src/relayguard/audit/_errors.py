"""Errors of ``relayguard audit``: each becomes one line on stderr and exit code 3."""

from __future__ import annotations

from relayguard.errors import InputError


class AuditError(InputError):
    """The configuration could not be audited."""


class ConfigSyntaxError(AuditError):
    """A configuration file is invalid in a way the MTA itself would refuse."""

    def __init__(self, file: str, line: int, why: str) -> None:
        super().__init__(f"{file}, line {line}: {why}")
        self.file = file
        self.line = line
        self.why = why
