"""One spelling per key: what the server counts and contains, and what the admin commands name.

Postfix writes an address one way (``2001:db8::2``), a person may type it another
(``2001:DB8:0:0::2``); most authentication back ends accept a login in any case; a domain may
arrive with a trailing dot or in Unicode. Counting each spelling apart would let a sender evade
a limit by varying it, and would make ``policy show`` miss the key, so every key is made here:

* IP addresses: Python's canonical text (RFC 5952 for IPv6, lower case, zeros compressed), an
  IPv4-mapped IPv6 address as the IPv4 address, any ``%zone`` dropped;
* SASL logins and envelope senders: lower case;
* domains: lower case, no trailing dot, international names as their ASCII form
  (``bücher.test`` is ``xn--bcher-kva.test``).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=8192)
def canonical_ip(text: str) -> str:
    """``text`` as an IP address in its canonical form; ``""`` when it is not an address."""
    try:
        ip = ipaddress.ip_address(text.partition("%")[0].strip().strip("[]"))
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


@lru_cache(maxsize=8192)
def canonical_domain(text: str) -> str:
    """``text`` lower-cased, without a trailing dot, international names in ASCII (A-labels)."""
    name = text.strip().rstrip(".").lower()
    if name.isascii():
        return name
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name  # not a valid international name: counted as written


def canonical_address(address: str) -> str:
    """An e-mail address lower-cased, its domain as :func:`canonical_domain`."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address.lower()
    return f"{local.lower()}@{canonical_domain(domain)}"


def domain_of(address: str) -> str:
    """The canonical domain of an e-mail address; ``""`` without an ``@``."""
    if "@" not in address:
        return ""
    return canonical_domain(address.rpartition("@")[2])


def canonical_network(text: str) -> str:
    """``text`` as a network (``2001:db8::/64``) in canonical form, or ``""``."""
    if "/" not in text:
        return ""
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        return ""


def admin_key(text: str) -> str:
    """A key typed by an administrator, spelled as the server spells it: an IP address or a
    network in its canonical form, anything else (a login, a sender) lower-cased."""
    return canonical_ip(text) or canonical_network(text) or canonical_address(text.strip())
