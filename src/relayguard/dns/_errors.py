"""Errors of the DNS capability: each is one line for the user and exit code 3."""

from __future__ import annotations

from relayguard.errors import InputError, RelayguardError


class DnsError(RelayguardError):
    """A DNS check could not be made."""


class TargetError(InputError):
    """A target or a domain given on the command line is not usable."""


class ResolverConfigError(InputError):
    """The resolver address is unusable."""


class ListFileError(InputError):
    """The --lists file is invalid."""
