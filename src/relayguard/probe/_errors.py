"""The probe's errors: one root, split by whose fault it is (h11's Local/Remote split)."""

from __future__ import annotations

from relayguard.errors import RelayguardError


class ProbeError(RelayguardError):
    """The probe could not finish."""


class LocalProtocolError(ProbeError):
    """relayguard tried to send something the dialogue forbids (a bug, or a refused command)."""


class RemoteProtocolError(ProbeError):
    """The server broke the SMTP reply syntax or exceeded a bound."""


class ProbeTimeout(ProbeError):
    """The server did not answer in time."""


class ConnectionLost(ProbeError):
    """The connection closed or was reset."""


class TargetError(ProbeError):
    """The target cannot be reached (name does not resolve, connection refused)."""
