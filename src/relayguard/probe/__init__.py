"""``relayguard probe``: a safe open-relay and SMTP weakness test of a mail server.

dialogue (sans-I/O SMTP client), catalogue (the tests as data), classify and verdict (pure
decisions), weaknesses (findings), runner (the asyncio shell).
"""

from relayguard.probe._errors import (
    ConnectionLost,
    LocalProtocolError,
    ProbeError,
    ProbeTimeout,
    RemoteProtocolError,
    TargetError,
)
from relayguard.probe.result import SCHEMA, ProbeResult, Reason, ServiceResult, Verdict
from relayguard.probe.runner import ProbeOptions, probe, run

__all__ = [
    "SCHEMA",
    "ConnectionLost",
    "LocalProtocolError",
    "ProbeError",
    "ProbeOptions",
    "ProbeResult",
    "ProbeTimeout",
    "Reason",
    "RemoteProtocolError",
    "ServiceResult",
    "TargetError",
    "Verdict",
    "probe",
    "run",
]
