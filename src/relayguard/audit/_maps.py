"""What a Postfix lookup table named in a restriction can answer: does it ever say OK?

An access map placed before the relay check opens the relay for every key it answers OK (or
another permit) for. Tables whose source text is a file (cidr, regexp, pcre, texthash, and
the source next to hash/btree/lmdb/cdb/dbm maps), ``static:`` and ``inline:`` tables are read;
network tables (ldap, mysql, socketmap, ...) cannot be, and count as "may say OK".
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from relayguard.audit.effective import FileReader
from relayguard.audit.expand import split_list
from relayguard.audit.maincf import logical_lines

_FILE_TYPES = frozenset(
    {"hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash", "cidr", "regexp", "pcre"}
)
_REGEX_TYPES = frozenset({"regexp", "pcre"})
# Outside addresses and names an attacker may present: a permit that matches them is a
# permit for everyone.
_SAMPLES = (
    "203.0.113.7",
    "2001:db8::7",
    "unknown",
    "attacker.example",
    "mail.attacker.example",
    "spammer@attacker.example",
    "unknown[203.0.113.7]",
)
# Narrower than this, a network is a set of specific hosts rather than "anyone".
BROAD_V4_PREFIX = 8
BROAD_V6_PREFIX = 16


@dataclass(frozen=True, slots=True)
class MapReport:
    table: str
    readable: bool
    permits: tuple[str, ...] = ()  # the keys (or patterns) answered with a permit
    catch_all: bool = False  # one of them matches any client or address

    @property
    def may_permit(self) -> bool:
        return not self.readable or bool(self.permits)


def is_permit_action(action: str) -> bool:
    word = action.split(None, 1)[0] if action.strip() else ""
    lowered = word.lower()
    if lowered == "ok" or lowered == "permit":
        return True
    if word.isdigit() and word == action.strip():  # "all-numerical" means OK (access(5))
        return True
    return lowered.startswith("permit_") and lowered != "permit_auth_destination"


def _network_is_broad(key: str) -> bool:
    try:
        net = ipaddress.ip_network(key.strip("[]").replace("]/", "/"), strict=False)
    except ValueError:
        return False
    limit = BROAD_V4_PREFIX if net.version == 4 else BROAD_V6_PREFIX
    return net.prefixlen <= limit


def _cidr_key(key: str) -> str:
    if key.startswith("[") and "]" in key:
        return key[1:].replace("]", "", 1)
    return key


def _regex_matches_anything(pattern: str) -> bool:
    """``/re/flags`` or ``!/re/`` that matches one of the attacker samples."""
    negate = pattern.startswith("!")
    body = pattern[1:] if negate else pattern
    if len(body) < 2:
        return False
    delim = body[0]
    end = body.rfind(delim)
    if end <= 0:
        return False
    flags = body[end + 1 :]
    # Postfix tables ignore case unless the "i" flag toggles it off
    options = 0 if "i" in flags else re.IGNORECASE
    try:
        regex = re.compile(body[1:end], options)
    except re.error:
        return False
    hits = any(regex.search(sample) for sample in _SAMPLES)
    return not hits if negate else hits


def _entries(kind: str, text: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for logical in logical_lines(text):
        line = logical.text
        if kind in _REGEX_TYPES:
            lowered = line.lower()
            if lowered.startswith(("if ", "if!", "endif")):
                continue
            split_at = _pattern_end(line)
            pairs.append((line[:split_at], line[split_at:].strip()))
        else:
            key, _, action = line.partition(" ") if " " in line else line.partition("\t")
            pairs.append((key.strip(), action.strip()))
    return pairs


def _pattern_end(line: str) -> int:
    start = 1 if line.startswith("!") else 0
    if start >= len(line):
        return len(line)
    delim = line[start]
    end = line.find(delim, start + 1)
    while end > 0 and line[end - 1] == "\\":
        end = line.find(delim, end + 1)
    if end < 0:
        return len(line)
    stop = end + 1
    while stop < len(line) and not line[stop].isspace():
        stop += 1
    return stop


def _inline_entries(body: str) -> list[tuple[str, str]]:
    pairs = []
    for item in split_list(body.strip()[1:-1] if body.strip().startswith("{") else body):
        item = item.strip()
        if item.startswith("{") and item.endswith("}"):
            item = item[1:-1]
        key, _, value = item.partition("=")
        pairs.append((key.strip(), value.strip()))
    return pairs


# Public names for other judges of table contents (relay_domains).
table_entries = _entries
inline_entries = _inline_entries


def inspect_map(table: str, read: FileReader) -> MapReport:
    """What ``table`` (``type:name``) answers; unreadable tables may answer anything."""
    kind, sep, name = table.partition(":")
    if not sep:
        return MapReport(table, readable=False)
    if kind == "proxy":
        return inspect_map(name, read)
    if kind == "static":
        value = name[1:-1].strip() if name.startswith("{") and name.endswith("}") else name
        permit = is_permit_action(value)
        return MapReport(table, True, ("*",) if permit else (), catch_all=permit)
    if kind == "inline":
        pairs = _inline_entries(name)
    elif kind in _FILE_TYPES:
        text = read(name)
        if text is None:
            return MapReport(table, readable=False)
        pairs = _entries(kind, text)
    else:
        return MapReport(table, readable=False)
    permits = tuple(key for key, action in pairs if is_permit_action(action))
    if kind in _REGEX_TYPES:
        catch_all = any(_regex_matches_anything(key) for key in permits)
    elif kind == "cidr":
        catch_all = any(_network_is_broad(_cidr_key(key)) for key in permits)
    else:
        # access(5) lookups of an IP try it and its shorter prefixes: "10" is 10.0.0.0/8
        catch_all = any(key.isdigit() for key in permits)
    return MapReport(table, True, permits, catch_all)
