"""Which recipients are ours, which clients are trusted.

Local domains come from the configuration; when none are configured they are learned from the
log as it streams: a recipient delivered into a mailbox (local, virtual, lmtp, pipe), the
domain of a SASL username, or a domain whose unknown users are rejected from the local
recipient table. A recipient is external when its domain is not local and it was not delivered
into a local mailbox.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from relayguard.errors import ConfigError

# Postfix delivery agents that put mail into a mailbox on this server (or its LMTP store).
MAILBOX_AGENTS = frozenset({"local", "virtual", "lmtp", "pipe", "dovecot", "maildrop"})
_MAX_LEARNED = 1000
_MAX_CACHE = 65536


def domain_of(address: str | None) -> str:
    """Lower-cased domain of an address; "" for the null sender or a bare local part."""
    if not address:
        return ""
    at = address.rfind("@")
    if at < 0:
        return ""
    return address[at + 1 :].rstrip(".").lower()


class LocalDomains:
    def __init__(self, configured: list[str]) -> None:
        self.domains: set[str] = {d.strip().rstrip(".").lower() for d in configured if d.strip()}
        self.inferred = not self.domains

    def is_local(self, domain: str) -> bool:
        return domain in self.domains

    def learn(self, domain: str) -> None:
        """Record evidence that ``domain`` is local (only when none were configured)."""
        if self.inferred and domain and len(self.domains) < _MAX_LEARNED:
            self.domains.add(domain)

    def is_external(self, address: str | None) -> bool:
        domain = domain_of(address)
        return bool(domain) and domain not in self.domains


class TrustedNetworks:
    def __init__(self, networks: list[str]) -> None:
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for text in networks:
            try:
                self.networks.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise ConfigError(f"not a network: {text!r} (want e.g. 192.0.2.0/24)") from None
        self._cache: dict[str, bool] = {}

    def contains(self, ip: str | None) -> bool:
        if not ip:
            return False
        hit = self._cache.get(ip)
        if hit is None:
            hit = self._lookup(ip)
            if len(self._cache) >= _MAX_CACHE:
                self._cache.clear()
            self._cache[ip] = hit
        return hit

    def _lookup(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip.removeprefix("IPv6:"))
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr.version == n.version and addr in n for n in self.networks)


@lru_cache(maxsize=65536)
def network_of(ip: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) an address belongs to, as text; the IP itself if unparsable."""
    if ":" not in ip:
        head, _, _ = ip.rpartition(".")
        return f"{head}.0/24" if head else ip
    try:
        net = ipaddress.ip_network(f"{ip}/64", strict=False)
    except ValueError:
        return ip
    return str(net)
