"""Judge a trusted-network list (Postfix mynetworks, Exim relay_from_hosts): who may relay?

Every member relays without a password, so the question per entry is how much of the world it
covers. Postfix writes IPv6 networks in brackets (``[::1]/128``); unbracketed, ``::1/128`` is
read as a ``type:table`` and fails.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from relayguard.audit.effective import FileReader
from relayguard.audit.expand import split_list
from relayguard.findings import Severity

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
# Default address pools of Docker, Kubernetes (flannel, Calico, k3s), Podman and LXC: a proxy
# or NAT in such a network hands smtpd the gateway's address for every Internet client.
CONTAINER_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("172.16.0.0/12", "10.42.0.0/16", "10.244.0.0/16", "10.88.0.0/16", "10.0.3.0/24")
)
LOOPBACK_FIX = ("127.0.0.0/8", "[::1]/128")


@dataclass(frozen=True, slots=True)
class NetEntry:
    text: str  # as written
    network: Network | None
    severity: Severity | None  # None: nothing wrong with it
    why: str = ""
    container: bool = False
    unevaluated: bool = False  # a table whose members cannot be read from the configuration


def parse_network(text: str) -> Network | None:
    """``10.0.0.0/8``, ``192.0.2.1``, ``[2001:db8::]/32``, ``[::1]``; None for anything else."""
    item = text.strip()
    if item.startswith("["):
        close = item.find("]")
        if close < 0:
            return None
        item = item[1:close] + item[close + 1 :]
    try:
        net = ipaddress.ip_network(item, strict=False)
    except ValueError:
        return None
    if isinstance(net, ipaddress.IPv6Network) and net.subnet_of(_MAPPED):
        base = net.network_address.ipv4_mapped
        if base is not None:
            return ipaddress.IPv4Network((base, max(net.prefixlen - 96, 0)), strict=False)
    return net


def _is_public(net: Network) -> bool:
    if net.prefixlen == 0:
        return True
    return not (net.is_private or net.is_loopback or net.is_link_local or net.is_multicast)


def judge(net: Network, text: str) -> NetEntry:
    v4 = net.version == 4
    if net.prefixlen == 0:
        return NetEntry(text, net, Severity.CRITICAL, "the whole Internet may relay")
    if net.is_loopback:
        return NetEntry(text, net, None)
    if _is_public(net):
        if net.prefixlen <= (8 if v4 else 32):
            return NetEntry(
                text, net, Severity.CRITICAL, f"{net.num_addresses:,} public addresses may relay"
            )
        if net.prefixlen < (24 if v4 else 48):
            return NetEntry(
                text,
                net,
                Severity.HIGH,
                "a large public network may relay: more than one site's hosts",
            )
        return NetEntry(
            text, net, Severity.LOW, "public addresses may relay: make sure they are yours"
        )
    # a /24 inside 172.16.0.0/12 is as likely an office LAN; bridges are /16 or wider
    container = any(
        c.version == net.version and net.overlaps(c) and net.prefixlen <= max(16, c.prefixlen)
        for c in CONTAINER_NETS
    )
    if container:
        return NetEntry(
            text,
            net,
            Severity.MEDIUM,
            "a container/bridge network: behind a proxy or NAT every client gets "
            "its gateway address",
            container=True,
        )
    # /16 and wider (IPv6: /48, a whole site) is a block of networks, not a set of hosts
    if net.prefixlen <= (16 if v4 else 48):
        return NetEntry(
            text, net, Severity.MEDIUM, "a large private block: every host and VM in it may relay"
        )
    return NetEntry(text, net, None)


# Tables whose source is a text file Postfix reads as is (keys are networks or addresses).
_TEXT_TABLES = frozenset({"cidr", "texthash"})
_PROBE = "192.0.2.1"


def _unevaluated(item: str, kind: str) -> NetEntry:
    return NetEntry(
        item,
        None,
        Severity.MEDIUM,
        f"a {kind}: table: its members cannot be read from the configuration; check with "
        f"'postmap -q {_PROBE} {item}' (an answer means that client may relay)",
        unevaluated=True,
    )


def _table_keys(kind: str, name: str, read: FileReader) -> list[str] | None:
    """The keys of an ``inline:``/``cidr:``/``texthash:`` table; None when unreadable."""
    if kind == "inline":
        body = name.strip()
        if body.startswith("{") and body.endswith("}"):
            body = body[1:-1]
        keys = []
        for item in split_list(body):
            if item.startswith("{") and item.endswith("}"):
                item = item[1:-1]
            keys.append(item.partition("=")[0].strip())
        return [k for k in keys if k]
    text = read(name)
    if text is None:
        return None
    keys = []
    for raw in text.splitlines():
        words = raw.split()
        if not words or words[0].startswith("#") or raw[0] in " \t":
            continue
        if kind == "cidr" and words[0].lower() in ("if", "endif"):
            continue
        keys.append(words[0])
    return keys


def _table(item: str, read: FileReader, depth: int) -> list[NetEntry]:
    kind, _, name = item.partition(":")
    kind = kind.lower()
    if kind == "proxy":
        return _table(name, read, depth)
    if kind == "static":
        return [NetEntry(item, None, Severity.CRITICAL, "a static: table matches every client")]
    keys = _table_keys(kind, name, read) if kind in _TEXT_TABLES or kind == "inline" else None
    if keys is None or depth > 0:
        return [_unevaluated(item, kind)]
    entries = []
    for key in keys:
        # cidr keys are bare networks; bracket IPv6 so they are judged, not called unbracketed
        shown = f"[{key}]" if ":" in key and not key.startswith("[") and "/" in key else key
        for entry in classify(shown, read, depth + 1):
            entries.append(
                NetEntry(f"{entry.text} (in {item})", entry.network, entry.severity, entry.why,
                         entry.container)
            )  # fmt: skip
    return entries


def _hostname(item: str) -> NetEntry:
    if item.startswith("$") or not all(c.isalnum() or c in ".-_" for c in item):
        return NetEntry(item, None, Severity.INFO, "not an address or network")
    return NetEntry(
        item,
        None,
        Severity.MEDIUM,
        "a host name: trust depends on DNS, and its subdomains match too "
        "(parent_domain_matches_subdomains)",
    )


def classify(value: str, read: FileReader, depth: int = 0) -> list[NetEntry]:
    """Every entry of a mynetworks-style list, with what is wrong with it."""
    entries: list[NetEntry] = []
    for item in split_list(value):
        if item.startswith("!"):
            entries.append(NetEntry(item, None, None))
        elif item.startswith("/"):
            text = read(item) if depth == 0 else None
            if text is None:
                entries.append(NetEntry(item, None, Severity.INFO, "file could not be read"))
                continue
            lines = [ln.split("#", 1)[0] for ln in text.splitlines()]
            entries.extend(classify(" ".join(lines), read, depth + 1))
        elif (net := parse_network(item)) is not None:
            if ":" in item and not item.startswith("["):
                entries.append(
                    NetEntry(
                        item,
                        net,
                        Severity.MEDIUM,
                        "IPv6 without brackets: Postfix reads it as a table name and fails",
                    )
                )
            else:
                entries.append(judge(net, item))
        elif ":" in item and item.split(":", 1)[0].isalpha():
            entries.extend(_table(item, read, depth))
        else:
            entries.append(_hostname(item))
    return entries


def fixed_list(entries: list[NetEntry]) -> list[str]:
    """The entries worth keeping (loopback first), for a narrower list."""
    keep = [e.text for e in entries if e.severity is None or e.severity <= Severity.LOW]
    nets = [e.network for e in entries if e.text in keep and e.network is not None]
    head = []
    if not any(n.version == 4 and n.is_loopback for n in nets):
        head.append(LOOPBACK_FIX[0])
    if not any(n.version == 6 and n.is_loopback for n in nets):
        head.append(LOOPBACK_FIX[1])
    return head + keep
