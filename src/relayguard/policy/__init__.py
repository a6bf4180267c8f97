"""``relayguard policy``: a Postfix policy server that rate-limits outbound mail.

codec (the sans-I/O policy delegation protocol), limiter (GCRA, one float of state per key).
"""

from relayguard.policy._errors import LocalProtocolError, PolicyError, RemoteProtocolError
from relayguard.policy.codec import (
    DUNNO,
    NEED_DATA,
    Action,
    ConnectionClosed,
    Event,
    Limits,
    PolicyConnection,
    PolicyReply,
    PolicyRequest,
)
from relayguard.policy.limiter import Decision, Limit, allow_all

__all__ = [
    "DUNNO",
    "NEED_DATA",
    "Action",
    "ConnectionClosed",
    "Decision",
    "Event",
    "Limit",
    "Limits",
    "LocalProtocolError",
    "PolicyConnection",
    "PolicyError",
    "PolicyReply",
    "PolicyRequest",
    "RemoteProtocolError",
    "allow_all",
]
