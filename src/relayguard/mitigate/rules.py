"""Firewall rules as text: nftables (``nft -f``) and iptables (``iptables-restore``).

Pure builders. Every ruleset lives in tables and chains of its own (``relayguard_egress``,
``relayguard_ban``; ``RELAYGUARD-EGRESS``, ``RELAYGUARD-BAN``), so applying touches nothing
else; and each script creates what is missing, then empties and refills its own chains in one
transaction, so applying it twice gives the same rules (idempotent). Bans are set elements
with a timeout: they expire by themselves.

* **egress**: outbound TCP to the SMTP ports is accepted from the MTA's user (``meta skuid``,
  ``-m owner --uid-owner``) and to the loopback interface (local submission to the MTA),
  logged (rate-limited) and dropped for everyone else.
* **ban**: inbound traffic from the banned addresses is dropped.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

EGRESS_TABLE = "relayguard_egress"
BAN_TABLE = "relayguard_ban"
EGRESS_CHAIN = "RELAYGUARD-EGRESS"
BAN_CHAIN = "RELAYGUARD-BAN"
BAN_SET = "relayguard-ban"
LOG_PREFIX = "relayguard egress: "
LOG_RATE = "10/minute"
IPSET_DEFAULT_TIMEOUT = 86400


def _ports(ports: Sequence[int]) -> str:
    return "{ " + ", ".join(str(p) for p in sorted(set(ports))) + " }"


def nft_egress(uids: Sequence[tuple[str, int]], ports: Sequence[int]) -> str:
    """``uids``: (user name, uid) of the MTA users allowed out."""
    t = f"inet {EGRESS_TABLE}"
    dports = f"tcp dport {_ports(ports)}"
    allowed = "{ " + ", ".join(str(uid) for _, uid in uids) + " }"
    names = ", ".join(name for name, _ in uids)
    return "\n".join(
        [
            f"# relayguard firewall egress: only {names} may connect out to TCP port(s) "
            + ", ".join(str(p) for p in sorted(set(ports))),
            f"add table {t}",
            f"add chain {t} output {{ type filter hook output priority 0; policy accept; }}",
            f"flush chain {t} output",
            f'add rule {t} output oifname "lo" accept comment "local submission to the MTA"',
            f'add rule {t} output {dports} meta skuid {allowed} accept comment "the MTA: {names}"',
            f"add rule {t} output {dports} ct state new limit rate {LOG_RATE} "
            f'log prefix "{LOG_PREFIX}" level warn',
            f"add rule {t} output {dports} counter drop",
            "",
        ]
    )


def split_addresses(
    addresses: Sequence[str],
) -> tuple[list[str], list[str]]:
    """(IPv4, IPv6) addresses, each once, sorted; ValueError names a bad one."""
    v4: set[ipaddress.IPv4Address] = set()
    v6: set[ipaddress.IPv6Address] = set()
    for text in addresses:
        ip = ipaddress.ip_address(text.strip())
        if isinstance(ip, ipaddress.IPv4Address):
            v4.add(ip)
        else:
            v6.add(ip)
    return [str(a) for a in sorted(v4)], [str(a) for a in sorted(v6)]


def nft_ban(addresses: Sequence[str], timeout: int) -> str:
    v4, v6 = split_addresses(addresses)
    t = f"inet {BAN_TABLE}"
    lines = [
        f"# relayguard firewall ban: {len(v4) + len(v6)} address(es) for {timeout} s",
        f"add table {t}",
        f"add set {t} ban4 {{ type ipv4_addr; flags timeout; }}",
        f"add set {t} ban6 {{ type ipv6_addr; flags timeout; }}",
        f"add chain {t} input {{ type filter hook input priority -10; policy accept; }}",
        f"flush chain {t} input",
        f"add rule {t} input ip saddr @ban4 counter drop",
        f"add rule {t} input ip6 saddr @ban6 counter drop",
    ]
    for name, group in (("ban4", v4), ("ban6", v6)):
        if group:
            elements = ", ".join(f"{a} timeout {timeout}s" for a in group)
            lines.append(f"add element {t} {name} {{ {elements} }}")
    return "\n".join(lines) + "\n"


def iptables_egress(uids: Sequence[tuple[str, int]], ports: Sequence[int]) -> str:
    """``iptables-restore --noflush`` input (the same for ip6tables-restore)."""
    dports = f"-p tcp -m multiport --dports {','.join(str(p) for p in sorted(set(ports)))}"
    lines = ["*filter", f":{EGRESS_CHAIN} - [0:0]", f"-A {EGRESS_CHAIN} -o lo -j RETURN"]
    for _, uid in uids:
        lines.append(f"-A {EGRESS_CHAIN} {dports} -m owner --uid-owner {uid} -j RETURN")
    lines += [
        f"-A {EGRESS_CHAIN} {dports} -m conntrack --ctstate NEW -m limit --limit 10/min "
        f'-j LOG --log-prefix "{LOG_PREFIX}"',
        f"-A {EGRESS_CHAIN} {dports} -j DROP",
        "COMMIT",
        "",
    ]
    return "\n".join(lines)


def iptables_ban(family: str) -> str:
    """The ban chain for ``family`` ("inet" or "inet6"): drop what is in the ipset."""
    return "\n".join(
        [
            "*filter",
            f":{BAN_CHAIN} - [0:0]",
            f"-A {BAN_CHAIN} -m set --match-set {BAN_SET}-{family} src -j DROP",
            "COMMIT",
            "",
        ]
    )


def ipset_ban(addresses: Sequence[str], timeout: int) -> str:
    """``ipset restore -exist`` input: the sets (created if missing) and the addresses.

    The sets are always created with the same default timeout (each address carries its
    own): ``-exist`` forgives only an identical ``create``, so a set created by an earlier
    run with another ``--timeout`` would make every later run fail.
    """
    v4, v6 = split_addresses(addresses)
    lines = [
        f"create {BAN_SET}-inet hash:ip family inet timeout {IPSET_DEFAULT_TIMEOUT}",
        f"create {BAN_SET}-inet6 hash:ip family inet6 timeout {IPSET_DEFAULT_TIMEOUT}",
    ]
    for family, group in (("inet", v4), ("inet6", v6)):
        lines += [f"add {BAN_SET}-{family} {a} timeout {timeout}" for a in group]
    return "\n".join(lines) + "\n"
