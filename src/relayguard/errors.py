"""One error root for the whole tool; the CLI turns each into a one-line message and exit 3."""

from __future__ import annotations


class RelayguardError(Exception):
    """relayguard could not do what was asked."""


class InputError(RelayguardError):
    """The input (a log file, a config file, an argument) is unusable."""


class ConfigError(InputError):
    """The configuration file is invalid."""
