"""The policy server's errors: one root, split by whose fault it is (h11's Local/Remote split)."""

from __future__ import annotations

from relayguard.errors import RelayguardError


class PolicyError(RelayguardError):
    """The policy server could not do what was asked."""


class LocalProtocolError(PolicyError):
    """relayguard tried to send something the protocol forbids (a bug in the caller)."""


class RemoteProtocolError(PolicyError):
    """The client broke the policy protocol or exceeded a bound: close the connection.

    Per SMTPD_POLICY_README the server sends nothing on such an error and disconnects; Postfix
    then retries and finally applies its ``default_action``.
    """
