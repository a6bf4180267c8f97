"""The detector registry: adding a detector means adding its module and one line here."""

from __future__ import annotations

from relayguard.analysis.detectors.auth_bruteforce import AuthBruteforce
from relayguard.analysis.detectors.base import Context, Detector
from relayguard.analysis.detectors.blocklisted_by_remote import BlocklistedByRemote
from relayguard.analysis.detectors.compromised_account import CompromisedAccount
from relayguard.analysis.detectors.ndr_flood import NdrFlood
from relayguard.analysis.detectors.open_relay_use import OpenRelayUse
from relayguard.analysis.detectors.outbound_spike import OutboundSpike
from relayguard.analysis.detectors.queue_buildup import QueueBuildup
from relayguard.analysis.detectors.relay_probing import RelayProbing
from relayguard.analysis.detectors.unknown_sender_domain import UnknownSenderDomain

REGISTRY: tuple[type[Detector], ...] = (
    AuthBruteforce,
    CompromisedAccount,
    OutboundSpike,
    UnknownSenderDomain,
    OpenRelayUse,
    RelayProbing,
    NdrFlood,
    QueueBuildup,
    BlocklistedByRemote,
)

__all__ = ["REGISTRY", "Context", "Detector"]
