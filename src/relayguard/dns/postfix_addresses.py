"""``--from-postfix``: the public addresses this Postfix sends from, and its HELO name.

Postfix sends from ``smtp_bind_address`` / ``smtp_bind_address6`` when set; behind NAT the
public address is in ``proxy_interfaces``; otherwise it is an address of ``inet_interfaces``
(``all``: every address of the host, read with ``ip -j address``). Addresses that never reach
the Internet (loopback, link-local, RFC 1918, ULA, CGNAT) are left out: block lists never see
them.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from dataclasses import dataclass, field

from relayguard.dns._errors import TargetError
from relayguard.dns.names import ZONE_ID_REFUSED, is_public_ip, unmapped

PARAMETERS = (
    "inet_interfaces", "inet_protocols", "proxy_interfaces", "smtp_bind_address",
    "smtp_bind_address6", "smtp_helo_name",
)  # fmt: skip


@dataclass(slots=True)
class PostfixAddresses:
    addresses: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # host names in inet_interfaces
    helo: str | None = None
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # addresses left out, and why (for the user)
    filtered: list[str] = field(default_factory=list)  # addresses of a family inet_protocols drops


def is_public(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return is_public_ip(ip)


def _words(value: str) -> list[str]:
    return [w for w in value.replace(",", " ").split() if w]


def choose(values: dict[str, str], host_addresses: list[str]) -> PostfixAddresses:
    """Pure: the ``postconf -x -h`` values (and the host's addresses, for ``all``) -> targets."""
    out = PostfixAddresses()
    protocols = set(_words(values.get("inet_protocols", "all").lower())) or {"all"}
    families = {4, 6} if "all" in protocols else {4 if "ipv4" in protocols else 0,
                                                   6 if "ipv6" in protocols else 0}  # fmt: skip
    helo = values.get("smtp_helo_name", "").strip().rstrip(".")
    out.helo = helo or None
    candidates: list[str] = []
    for key in ("smtp_bind_address", "smtp_bind_address6"):
        for word in _words(values.get(key, "")):
            address = word.strip("[]").split("%")[0]
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise TargetError(
                    f"--from-postfix: {key} = {word[:60]!r} is not an IP address"
                ) from None
            candidates.append(word)
    if candidates:
        out.notes.append("from smtp_bind_address / smtp_bind_address6")
    proxies = _words(values.get("proxy_interfaces", ""))
    if proxies:
        out.notes.append("from proxy_interfaces (the public side of NAT)")
        candidates += proxies
    if not candidates:
        interfaces = [w.lower() for w in _words(values.get("inet_interfaces", "all"))]
        if "all" in interfaces:
            out.notes.append("inet_interfaces = all: every address of this host")
            candidates = list(host_addresses)
        else:
            out.notes.append("from inet_interfaces")
            candidates = [w for w in interfaces if w not in ("loopback-only",)]
    for word in dict.fromkeys(candidates):
        word = word.strip("[]")
        if "%" in word and ":" in word:
            out.skipped.append(f"{word[:60]}: {ZONE_ID_REFUSED}")
            continue
        try:
            ip = unmapped(ipaddress.ip_address(word))
        except ValueError:
            if word and not word.startswith("$"):
                out.names.append(word)
            continue
        if ip.version not in families:
            out.filtered.append(str(ip))
        elif is_public_ip(ip):
            out.addresses.append(str(ip))
    return out


def _postconf(config_dir: str | None) -> dict[str, str]:
    postconf = shutil.which("postconf") or "/usr/sbin/postconf"
    argv = [postconf, *(("-c", config_dir) if config_dir else ()), "-x", "-h", *PARAMETERS]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TargetError(f"--from-postfix: cannot run postconf: {exc}") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["failed"])[0][:200]
        raise TargetError(f"--from-postfix: postconf: {first}")
    lines = done.stdout.split("\n")
    return {name: (lines[i] if i < len(lines) else "") for i, name in enumerate(PARAMETERS)}


def _host_addresses() -> list[str]:
    ip = shutil.which("ip") or "/usr/sbin/ip"
    try:
        done = subprocess.run([ip, "-j", "address", "show"], capture_output=True, text=True,
                              timeout=30, check=True)  # fmt: skip
        data = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    out = []
    for link in data if isinstance(data, list) else []:
        for info in link.get("addr_info", []) if isinstance(link, dict) else []:
            local = info.get("local") if isinstance(info, dict) else None
            if isinstance(local, str):
                out.append(local)
    return out


def from_postfix(config_dir: str | None = None) -> PostfixAddresses:
    values = _postconf(config_dir)
    interfaces = [w.lower() for w in _words(values.get("inet_interfaces", ""))]
    host = _host_addresses() if "all" in interfaces else []
    found = choose(values, host)
    if not found.addresses and not found.names:
        shown = values.get("inet_interfaces", "").strip() or "(empty)"
        if found.filtered:
            protocols = values.get("inet_protocols", "").strip() or "all"
            raise TargetError(
                f"--from-postfix: no public address: inet_protocols = {protocols[:40]} leaves "
                f"out {', '.join(found.filtered[:3])}; name the address: relayguard dnsbl IP"
            )
        raise TargetError(
            f"--from-postfix: no public address (inet_interfaces = {shown[:80]}, no "
            f"proxy_interfaces or smtp_bind_address); name the address: relayguard dnsbl IP"
        )
    return found
