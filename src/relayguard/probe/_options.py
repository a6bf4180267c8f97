"""What ``relayguard probe`` is asked to do: targets, addresses, timeouts and bounds."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from relayguard.probe.dialogue import Limits


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeOptions:
    host: str
    ports: tuple[int, ...] = (25,)
    implicit_tls_ports: frozenset[int] = frozenset({465})
    family: int | None = None  # 4, 6 or None for both
    source_address: str | None = None
    compare_source: str | None = None
    domain: str | None = None
    local_domain: str | None = None
    helo: str = "relayguard.invalid"
    starttls: bool = True  # run the tests again after STARTTLS
    prove_to: str | None = None
    check_rate_limit: bool = False
    rate_connections: int = 30
    connect_timeout: float = 10.0
    command_timeout: float = 30.0
    total_timeout: float = 300.0
    backoff: float = 30.0
    retry_delay: float = 10.0  # negative: never retry a 4xx
    max_rejects: int = 8
    max_transactions: int = 16
    max_connections: int = 40
    max_addresses: int = 4
    token: str = field(default_factory=lambda: secrets.token_hex(6))
    limits: Limits = field(default_factory=Limits)
