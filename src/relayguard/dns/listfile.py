"""``--lists FILE``: the block lists to query, as TOML.

::

    defaults = false                  # also query the built-in default set
    builtin = ["barracuda"]           # built-in lists by id (relayguard dnsbl --show-lists)

    [[list]]
    zone = "zen.mirror.example"       # required
    like = "spamhaus-zen"             # start from a built-in: codes, errors, delisting
    name = "Spamhaus ZEN (local rbldnsd mirror)"
    type = "ip"                       # ip | domain
    ipv6 = true
    nameserver = "127.0.0.1:5353"     # ask this server for this list only
    informational = false
    codes = { "127.0.0.2" = "listed" }
    bitmask = { 2 = "black" }         # last-octet bits, for SURBL/URIBL-style lists
    errors = { "127.255.255.254" = "resolver-blocked" }
    health_check = true               # RFC 5782 test points (127.0.0.2 / 127.0.0.1)
    delist = "how to get off the list"
    delist_url = "https://..."

Unknown keys are an error: a typo must not silently change what is checked.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from relayguard.dns._errors import ListFileError, ResolverConfigError, TargetError
from relayguard.dns.lists import BUILTIN, ListSpec, defaults
from relayguard.dns.names import normalize_domain
from relayguard.dns.resolver import parse_server
from relayguard.findings import Severity

MAX_LISTS = 200
_LIST_KEYS = {
    "zone", "like", "id", "name", "type", "ipv6", "nameserver", "informational", "codes",
    "bitmask", "errors", "health_check", "delist", "delist_url", "severity", "test_listed",
    "test_unlisted",
}  # fmt: skip
_TOP_KEYS = {"defaults", "builtin", "list"}


def load(path: str) -> list[ListSpec]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ListFileError(f"{path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ListFileError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, path)


def parse(data: dict[str, Any], where: str = "--lists") -> list[ListSpec]:
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ListFileError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    specs: list[ListSpec] = defaults() if _bool(data, "defaults", where, False) else []
    for ident in _strings(data.get("builtin", []), f"{where}: builtin"):
        if ident not in BUILTIN:
            raise ListFileError(f"{where}: no built-in list {ident!r}")
        specs.append(BUILTIN[ident])
    entries = data.get("list", [])
    if not isinstance(entries, list):
        raise ListFileError(f"{where}: 'list' must be an array of tables ([[list]])")
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ListFileError(f"{where}: list #{n} is not a table")
        specs.append(_entry(entry, f"{where}: list #{n}"))
    if not specs:
        raise ListFileError(f"{where}: no lists (add [[list]] tables or defaults = true)")
    if len(specs) > MAX_LISTS:
        raise ListFileError(f"{where}: {len(specs)} lists; at most {MAX_LISTS}")
    seen: set[str] = set()
    ids: set[str] = set()
    for spec in specs:
        if spec.zone in seen:
            raise ListFileError(f"{where}: the zone {spec.zone} is named twice")
        if spec.id in ids:
            raise ListFileError(f"{where}: the id {spec.id!r} is named twice")
        seen.add(spec.zone)
        ids.add(spec.id)
    return specs


def _entry(entry: dict[str, Any], where: str) -> ListSpec:
    unknown = set(entry) - _LIST_KEYS
    if unknown:
        raise ListFileError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    raw_zone = entry.get("zone")
    if not isinstance(raw_zone, str):
        raise ListFileError(f"{where}: 'zone' (a string) is required")
    try:
        zone = normalize_domain(raw_zone, what="a zone name")  # strips " zone " (bug B6)
    except TargetError as exc:
        raise ListFileError(f"{where}: {exc}") from None
    like = entry.get("like")
    if like is not None:
        if like not in BUILTIN:
            raise ListFileError(f"{where}: like = {like!r} names no built-in list")
        base = replace(BUILTIN[like], id=zone, name=f"{BUILTIN[like].name} ({zone})", zone=zone)
    else:
        base = ListSpec(id=zone, name=zone, zone=zone)
    changes: dict[str, Any] = {}
    for key in ("id", "name", "delist", "delist_url", "test_listed", "test_unlisted"):
        if key in entry:
            changes[key] = _string(entry[key], f"{where}: {key}")
    for key in ("ipv6", "informational", "health_check"):
        if key in entry:
            changes[key] = _bool(entry, key, where, False)
    if "type" in entry:
        if entry["type"] not in ("ip", "domain"):
            raise ListFileError(f"{where}: type must be 'ip' or 'domain'")
        changes["kind"] = entry["type"]
    if "severity" in entry:
        names = {s.label: s for s in Severity}
        if entry["severity"] not in names:
            raise ListFileError(f"{where}: severity must be one of {', '.join(names)}")
        changes["severity"] = names[entry["severity"]]
    if "nameserver" in entry:
        try:
            changes["nameserver"] = parse_server(_string(entry["nameserver"], where), where)
        except ResolverConfigError as exc:
            raise ListFileError(str(exc)) from None
    if "codes" in entry:
        changes["codes"] = _addresses(entry["codes"], f"{where}: codes")
    if "errors" in entry:
        changes["errors"] = _addresses(entry["errors"], f"{where}: errors")
    if "bitmask" in entry:
        changes["bitmask"] = _bits(entry["bitmask"], f"{where}: bitmask")
    if changes.get("informational"):
        changes.setdefault("severity", Severity.INFO)
    spec = replace(base, **changes)
    listed, unlisted = spec.test_listed, spec.test_unlisted
    return replace(
        spec,
        test_listed=_test_point(spec.kind, listed, f"{where}: test_listed") if listed else "",
        test_unlisted=_test_point(spec.kind, unlisted, f"{where}: test_unlisted")
        if unlisted else "",
    )  # fmt: skip


def _test_point(kind: str, value: str, where: str) -> str:
    """An ip list's test point is an IPv4 address; a domain list's, a name under the zone."""
    if kind == "ip":
        try:
            return str(ipaddress.IPv4Address(value.strip()))
        except ValueError:
            raise ListFileError(f"{where}: {value[:60]!r} is not an IPv4 address") from None
    try:
        return normalize_domain(value, what="a domain name")
    except TargetError as exc:
        raise ListFileError(f"{where}: {exc}") from None


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > 2000:
        raise ListFileError(f"{where} must be a string (at most 2000 characters)")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ListFileError(f"{where} must be a list of strings")
    return list(value)


def _bool(data: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ListFileError(f"{where}: {key} must be true or false")
    return value


def _addresses(value: Any, where: str) -> dict[str, str]:
    """Codes and error codes: RFC 5782 answers are in 127.0.0.0/8 (others are bogus answers)."""
    if not isinstance(value, dict):
        raise ListFileError(f"{where} must be a table of address = text")
    out = {}
    for address, text in value.items():
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            raise ListFileError(f"{where}: {address!r} is not an IPv4 address") from None
        if not ip.is_loopback:
            raise ListFileError(f"{where}: {address!r} is outside 127.0.0.0/8, where list "
                                "answers are (RFC 5782)")  # fmt: skip
        out[str(ip)] = _string(text, f"{where}: {address}")
    return out


def _bits(value: Any, where: str) -> dict[int, str]:
    if not isinstance(value, dict):
        raise ListFileError(f"{where} must be a table of bit = text")
    out = {}
    for bit, text in value.items():
        if not (bit.isdigit() and 0 < int(bit) < 256 and int(bit) & (int(bit) - 1) == 0):
            raise ListFileError(f"{where}: {bit!r} is not a single bit (1, 2, 4 ... 128)")
        out[int(bit)] = _string(text, f"{where}: {bit}")
    return out
