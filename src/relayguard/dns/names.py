"""Query names, built the way RFC 5782 and RFC 1035 want them, and validated input names.

Every name this package sends is absolute (a trailing dot), so a resolver's search list is never
appended; lower-case; IDNA-encoded; at most 253 characters. IPv6 addresses are fully expanded
before their 32 nibbles are reversed (the bug of aiodnsbl and of pydnsbl before 1.1.6).
"""

from __future__ import annotations

import ipaddress
import re

from relayguard.dns._errors import TargetError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_NAME = 253  # RFC 1035 s.3.1: 255 octets on the wire, 253 characters as text
MAX_LABEL = 63
# Host names, plus the underscore labels of _dmarc, _domainkey, _spf and SRV-style names.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def reversed_ip(ip: IPAddress) -> str:
    """``192.0.2.1`` -> ``1.2.0.192``; ``2001:db8::1`` -> the 32 nibbles, reversed."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ".".join(reversed(str(ip).split(".")))
    return ".".join(reversed(ip.exploded.replace(":", "")))


def dnsbl_name(ip: IPAddress, zone: str) -> str:
    """The RFC 5782 query name of ``ip`` on the list ``zone`` (absolute)."""
    return f"{reversed_ip(ip)}.{zone}."


def ptr_name(ip: IPAddress) -> str:
    return ip.reverse_pointer + "."


def parse_ip(text: str) -> IPAddress | None:
    """An IP address (an IPv4-mapped IPv6 address stays IPv6), or None."""
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


ZONE_ID_REFUSED = "zone ids are link-local: not on block lists"
_NUMERIC = re.compile(r"[0-9.]+")
# Addresses that never reach a block list (Python's is_private also counts the documentation
# and benchmarking ranges, which the lab and the docs use as public addresses).
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def target_ip(text: str, what: str = "") -> IPAddress | None:
    """``text`` as a checkable address: None when it is no address at all (a name), a
    TargetError for an address with a zone id (``fe80::1%eth0``) and for digits and dots that
    are no valid IPv4 address (``192.0.2.256``, ``0300.0.2.1``, ``1.2.3.4.5``: never a host
    name either)."""
    raw = text.strip()
    shown = f"{what}{raw[:80]!r}"
    if "%" in raw and ":" in raw:
        raise TargetError(f"{shown}: {ZONE_ID_REFUSED}")
    ip = parse_ip(raw)
    if ip is None and _NUMERIC.fullmatch(raw.rstrip(".")) and not raw.endswith(".."):
        raise TargetError(f"{shown} is not a valid IPv4 address")
    return ip


def unmapped(ip: IPAddress) -> IPAddress:
    """``::ffff:192.0.2.1`` -> ``192.0.2.1``: an IPv4-mapped address is that IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public_ip(ip: IPAddress) -> bool:
    """Whether block lists can ever see ``ip``: not loopback, link-local, multicast,
    unspecified, RFC 1918, CGNAT or ULA."""
    ip = unmapped(ip)
    if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return False
    return not any(ip in net for net in _NOT_PUBLIC if net.version == ip.version)


def looks_like_ip(text: str) -> bool:
    """Digits and dots only, or an IPv6 address: a domain argument that is no domain."""
    raw = text.strip().rstrip(".")
    return bool(_NUMERIC.fullmatch(raw)) or (":" in raw and parse_ip(raw.split("%")[0]) is not None)


def normalize_domain(text: str, *, what: str = "a domain name") -> str:
    """``Bücher.Example.`` -> ``xn--bcher-kva.example`` (no trailing dot), or a TargetError."""
    raw = text.strip()
    shown = raw[:80] + ("…" if len(raw) > 80 else "")
    if not raw or raw.startswith("-") or "\\" in raw:
        raise TargetError(f"{shown!r} is not {what}")
    raw = raw.rstrip(".") if raw.endswith(".") and not raw.endswith("..") else raw
    if raw.isascii():  # the usual case, without dnspython (which would give the same name)
        name = raw.lower()
        if len(name) <= MAX_NAME and all(_LABEL.fullmatch(label) for label in name.split(".")):
            return name
    import dns.exception  # IDNA, escapes and the errors: dnspython's rules
    import dns.name

    try:
        ascii_name = dns.name.from_text(raw, origin=None).to_text(omit_final_dot=True)
    except (dns.exception.DNSException, ValueError, UnicodeError):
        raise TargetError(f"{shown!r} is not {what}") from None
    name = ascii_name.lower()
    labels = name.split(".")
    if len(name) > MAX_NAME or not all(_LABEL.fullmatch(label) for label in labels):
        raise TargetError(f"{shown!r} is not {what}")
    return name


def is_subdomain(name: str, parent: str) -> bool:
    """``a.b.example`` is under ``b.example`` and under itself."""
    return name == parent or name.endswith("." + parent)
