"""Judge a destination-domain list (Postfix ``relay_domains``): mail to whom may anyone relay?

``reject_unauth_destination`` lets through every recipient domain the list matches. A name
matches itself and, with ``parent_domain_matches_subdomains`` (relay_domains is in its
default), its subdomains. A ``type:table`` matches when a lookup returns any value at all (the
value is ignored): fixed tables (hash, inline, static, ...) are asked for the domain and then
each parent (``invalid`` or, without parent matching, ``.invalid``); regexp/pcre tables only for
the whole domain. So ``static:OK`` or a ``/./`` pattern matches every domain: an open relay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from relayguard.audit._maps import inline_entries, table_entries
from relayguard.audit.effective import FileReader
from relayguard.audit.expand import split_list
from relayguard.findings import Severity

# Domains nobody relays for on purpose, one per top-level domain: a table answering for all
# of them answers for every domain.
SAMPLE_DOMAINS = ("example.net", "evil.invalid", "mail.attacker.example", "example.com")
_PROBE = "evil.invalid"
_KEYED = frozenset({"hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash"})
_REGEX = frozenset({"regexp", "pcre"})
MAX_DEPTH = 3


@dataclass(frozen=True, slots=True)
class DomainEntry:
    text: str  # as written (table members: "key (in type:name)")
    severity: Severity | None  # None: nothing wrong with it
    why: str = ""
    catch_all: bool = False  # matches every domain: reject_unauth_destination relays anything
    unevaluated: bool = False  # a table or file whose members cannot be read


def _unevaluated(item: str, what: str) -> DomainEntry:
    if item.startswith("/"):
        why = f"{what}: check that it names only your own backup-MX domains"
    else:
        why = (
            f"{what}: its members cannot be read from the configuration; check with "
            f"'postmap -q {_PROBE} {item}' (an answer means mail to any domain is relayed)"
        )
    return DomainEntry(item, Severity.MEDIUM, why, unevaluated=True)


def _catch_all(item: str, why: str) -> DomainEntry:
    return DomainEntry(
        item,
        Severity.CRITICAL,
        f"{why}: reject_unauth_destination lets mail to any domain through (open relay)",
        catch_all=True,
    )


def lookup_keys(domain: str, parent: bool) -> list[str]:
    """What a fixed table is asked for ``domain``: itself, then each parent domain."""
    keys = [domain]
    rest = domain
    while "." in rest:
        rest = rest.split(".", 1)[1]
        keys.append(rest if parent else f".{rest}")
    return keys


def _judge_name(name: str, shown: str) -> DomainEntry:
    bare = name.strip(".")
    if name.strip() == "*" or (bare and "." not in bare):
        return DomainEntry(shown, Severity.HIGH, "mail to a whole top-level domain is relayed")
    return DomainEntry(shown, None)


def _compile(pattern: str) -> tuple[re.Pattern[str], bool] | None:
    """``/re/flags`` or ``!/re/`` -> (regex, negated); None when Python cannot read it."""
    negate = pattern.startswith("!")
    body = pattern[1:] if negate else pattern
    if len(body) < 2:
        return None
    end = body.rfind(body[0])
    if end <= 0:
        return None
    # Postfix regexp/pcre tables ignore case unless the "i" flag toggles it back on
    options = 0 if "i" in body[end + 1 :] else re.IGNORECASE
    try:
        return re.compile(body[1:end], options), negate
    except re.error:
        return None


def _regex_table(item: str, text: str) -> DomainEntry:
    hits: set[str] = set()
    for pattern, _ in table_entries("regexp", text):
        compiled = _compile(pattern)
        if compiled is None:
            return _unevaluated(item, f"pattern {pattern} is not understood")
        regex, negate = compiled
        hits.update(d for d in SAMPLE_DOMAINS if (regex.search(d) is None) == negate)
    if len(hits) == len(SAMPLE_DOMAINS):
        return _catch_all(item, f"a pattern of {item} matches every domain")
    if hits:
        shown = ", ".join(d for d in SAMPLE_DOMAINS if d in hits)
        return DomainEntry(
            item, Severity.HIGH, f"its patterns match other people's domains ({shown})"
        )
    return DomainEntry(item, None)


def _keyed_table(item: str, keys: list[str], parent: bool) -> list[DomainEntry]:
    wanted = {k.lower() for k in keys}
    if all(any(k in wanted for k in lookup_keys(d, parent)) for d in SAMPLE_DOMAINS):
        return [_catch_all(item, f"{item} answers for every domain")]
    return [_judge_name(k, f"{k} (in {item})") for k in keys]


def _table(item: str, read: FileReader, parent: bool) -> list[DomainEntry]:
    kind, _, name = item.partition(":")
    kind = kind.lower()
    if kind == "proxy":
        return [replace(e, text=item) if e.text == name else e for e in _table(name, read, parent)]
    if kind == "static":
        return [_catch_all(item, "a static: table matches every domain")]
    if kind == "cidr":  # matches addresses, never a domain name
        return [DomainEntry(item, None)]
    if kind == "inline":
        return _keyed_table(item, [k for k, _ in inline_entries(name) if k], parent)
    text = read(name) if kind in _KEYED or kind in _REGEX else None
    if text is None:
        return [_unevaluated(item, f"a {kind}: table")]
    if kind in _REGEX:
        return [_regex_table(item, text)]
    return _keyed_table(item, [k for k, _ in table_entries(kind, text) if k], parent)


def classify(
    value: str, read: FileReader, parent: bool = True, depth: int = 0
) -> list[DomainEntry]:
    """Every entry of a relay_domains-style list, with what is wrong with it."""
    entries: list[DomainEntry] = []
    for item in split_list(value):
        if item.startswith("!"):
            entries.append(DomainEntry(item, None))
        elif item.startswith("/"):
            text = read(item) if depth < MAX_DEPTH else None
            if text is None:
                entries.append(_unevaluated(item, "the file could not be read"))
                continue
            lines = [ln.split("#", 1)[0] for ln in text.splitlines()]
            entries.extend(classify(" ".join(lines), read, parent, depth + 1))
        elif ":" in item and item.split(":", 1)[0].isalpha():
            entries.extend(_table(item, read, parent))
        else:
            entries.append(_judge_name(item, item))
    return entries


def catch_all_value(value: str) -> bool:
    """True when every item of a table list is a ``static:`` table (answers for any key)."""
    items = split_list(value)
    return bool(items) and all(
        i.lower().removeprefix("proxy:").startswith("static:") for i in items
    )
