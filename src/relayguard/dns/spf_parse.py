"""SPF records (RFC 7208): which TXT records are SPF, their terms, and macro expansion. Pure.

A record is SPF when it begins with exactly ``v=spf1`` followed by a space or its end (s.4.5):
``" v=spf1 -all"`` with a leading space is not one (checkdmarc #258). Character-strings are
joined without separators before this (s.3.3), so a record split mid-token parses.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass

MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MAX_TERMS = 1000  # beyond any real record; ip4/ip6 terms cost nothing, lookups are bounded apart
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")
_MACRO = re.compile(r"%\{([slodiphcrtvSLODIPHCRTV])([0-9]*)(r?)([.\-+,/_=]*)\}|%%|%_|%-|%")
# RFC 7208 toplabel: letters, digits and inner hyphens, with at least one letter.
_TOPLABEL = re.compile(r"(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


class SpfSyntaxError(ValueError):
    """A term RFC 7208 does not allow (the record is a permerror)."""


@dataclass(frozen=True, slots=True)
class Mechanism:
    qualifier: str  # + - ~ ?
    name: str
    domain: str | None = None  # a macro-string (domain-spec), or for ip4/ip6 the network
    cidr4: int | None = None
    cidr6: int | None = None
    text: str = ""

    @property
    def result(self) -> str:
        return QUALIFIERS[self.qualifier]


@dataclass(frozen=True, slots=True)
class Record:
    text: str
    mechanisms: tuple[Mechanism, ...]
    redirect: str | None
    exp: str | None
    unknown_modifiers: tuple[str, ...]

    @property
    def all(self) -> Mechanism | None:
        return next((m for m in self.mechanisms if m.name == "all"), None)


def is_spf(txt: str) -> bool:
    return txt[:6].lower() == "v=spf1" and (len(txt) == 6 or txt[6] == " ")


def looks_like_spf(txt: str) -> bool:
    """Not SPF, but meant to be: leading blanks, or ``v=spf1`` glued to the next term."""
    stripped = txt.strip().lower()
    return stripped.startswith("v=spf1") and not is_spf(txt)


def _cidr(text: str, limit: int, term: str) -> int:
    if not text.isdigit() or int(text) > limit or (len(text) > 1 and text[0] == "0"):
        raise SpfSyntaxError(f"{term}: bad prefix length /{text}")
    return int(text)


def _split_cidr(rest: str, term: str) -> tuple[str, int | None, int | None]:
    cidr4 = cidr6 = None
    if "//" in rest:
        rest, _, six = rest.partition("//")
        cidr6 = _cidr(six, 128, term)
    if "/" in rest:
        rest, _, four = rest.rpartition("/")
        cidr4 = _cidr(four, 32, term)
    return rest, cidr4, cidr6


def check_domain_spec(spec: str, term: str) -> None:
    """A macro-string that may expand to a domain (s.7.1); raises SpfSyntaxError."""
    if not spec:
        raise SpfSyntaxError(f"{term}: empty domain")
    if any(m.group(0) == "%" for m in _MACRO.finditer(spec)):
        raise SpfSyntaxError(f"{term}: '%' must start a macro (%{{...}}, %%, %_ or %-)")
    if any(not ("!" <= ch <= "~") for ch in spec):
        raise SpfSyntaxError(f"{term}: characters outside visible ASCII")
    if "%" not in spec:
        labels = spec.rstrip(".").split(".")
        if len(labels) < 2 or not all(labels) or not _TOPLABEL.fullmatch(labels[-1]):
            raise SpfSyntaxError(f"{term}: {spec!r} is not a domain name")


def parse_term(term: str) -> Mechanism | tuple[str, str]:
    """A mechanism, or a modifier as (name, value)."""
    name, eq, value = term.partition("=")
    if eq and _NAME.fullmatch(name):
        if name.lower() in MECHANISMS:
            raise SpfSyntaxError(f"{term}: {name}= is not a mechanism (did you mean {name}:?)")
        return name.lower(), value
    qualifier = "+"
    body = term
    if body[:1] in QUALIFIERS:
        qualifier, body = body[0], body[1:]
    head, colon, rest = body.partition(":")
    if not colon:
        head, slash, tail = body.partition("/")
        rest = slash + tail if slash else ""
    mech = head.lower()
    if mech not in MECHANISMS:
        raise SpfSyntaxError(f"{term}: unknown mechanism")
    if mech == "all":
        if colon or rest:
            raise SpfSyntaxError(f"{term}: 'all' takes no argument")
        return Mechanism(qualifier, "all", text=term)
    if mech in ("ip4", "ip6"):
        if not colon:
            raise SpfSyntaxError(f"{term}: {mech} needs an address")
        address, _, prefix = rest.partition("/")
        limit = 32 if mech == "ip4" else 128
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise SpfSyntaxError(f"{term}: {address!r} is not an IPv{mech[-1]} address") from None
        if ip.version != int(mech[-1]):
            raise SpfSyntaxError(f"{term}: {address!r} is not an IPv{mech[-1]} address")
        bits = _cidr(prefix, limit, term) if prefix or "/" in rest else limit
        return Mechanism(qualifier, mech, address, cidr4=bits if mech == "ip4" else None,
                         cidr6=bits if mech == "ip6" else None, text=term)  # fmt: skip
    if colon and not rest:
        raise SpfSyntaxError(f"{term}: empty domain after ':'")
    domain, cidr4, cidr6 = _split_cidr(rest, term) if mech in ("a", "mx") else (rest, None, None)
    if colon:
        check_domain_spec(domain, term)
    elif mech in ("include", "exists"):
        raise SpfSyntaxError(f"{term}: {mech} needs a domain ({mech}:example.com)")
    return Mechanism(qualifier, mech, domain or None, cidr4, cidr6, text=term)


def parse_record(text: str) -> Record:
    """A ``v=spf1`` record's terms; raises SpfSyntaxError for anything RFC 7208 forbids."""
    if not is_spf(text):
        raise SpfSyntaxError("not an SPF record")
    terms = [t for t in text[6:].split(" ") if t]
    if len(terms) > MAX_TERMS:
        raise SpfSyntaxError(f"{len(terms)} terms (at most {MAX_TERMS} are read)")
    mechanisms: list[Mechanism] = []
    modifiers: dict[str, str] = {}
    unknown: list[str] = []
    for term in terms:
        if not term.isascii() or not term.isprintable():
            raise SpfSyntaxError(f"{term!r}: characters outside visible ASCII")
        parsed = parse_term(term)
        if isinstance(parsed, Mechanism):
            mechanisms.append(parsed)
            continue
        name, value = parsed
        if name in ("redirect", "exp"):
            if name in modifiers:
                raise SpfSyntaxError(f"{term}: {name}= appears twice")
            check_domain_spec(value, term)
            modifiers[name] = value
        else:
            unknown.append(term)
    return Record(text, tuple(mechanisms), modifiers.get("redirect"), modifiers.get("exp"),
                  tuple(unknown))  # fmt: skip


# --- macros (s.7) -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MacroContext:
    sender: str  # local-part@domain
    domain: str  # the current <domain>
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    helo: str
    timestamp: int = 0
    receiver: str = "unknown"


class MacroNeedsClient(Exception):
    """The macro names the client address, which an audit without --ip does not have."""


def _value(letter: str, ctx: MacroContext) -> str:
    local, _, sender_domain = ctx.sender.rpartition("@")
    if letter in "ivpc" and ctx.ip is None:
        raise MacroNeedsClient(letter)
    if letter == "s":
        return ctx.sender
    if letter == "l":
        return local or "postmaster"
    if letter == "o":
        return sender_domain
    if letter == "d":
        return ctx.domain
    if letter == "h":
        return ctx.helo
    if letter == "r":
        return ctx.receiver
    if letter == "t":
        return str(ctx.timestamp)
    assert ctx.ip is not None
    if letter == "i":
        if ctx.ip.version == 4:
            return str(ctx.ip)
        return ".".join(ctx.ip.exploded.replace(":", ""))
    if letter == "c":
        return str(ctx.ip)
    if letter == "v":
        return "in-addr" if ctx.ip.version == 4 else "ip6"
    return "unknown"  # p: the validated domain name is never worked out here (s.7.2: SHOULD NOT)


def expand(spec: str, ctx: MacroContext, *, exp: bool = False) -> str:
    """``spec`` with its macros replaced (s.7.4); MacroNeedsClient when it needs the IP."""

    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "%%":
            return "%"
        if token == "%_":
            return " "
        if token == "%-":
            return "%20"
        letter, digits, reverse, delimiters = match.groups()
        if letter.lower() in "crt" and not exp:
            raise SpfSyntaxError(f"%{{{letter}}} is only allowed in exp= text")
        value = _value(letter.lower(), ctx)
        parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
        if reverse:
            parts.reverse()
        if digits:
            if int(digits) == 0:
                raise SpfSyntaxError("a macro keeps at least one label")
            parts = parts[-int(digits) :]
        out = ".".join(parts)
        return urllib.parse.quote(out, safe="") if letter.isupper() else out

    expanded = _MACRO.sub(one, spec)
    if exp:
        return expanded
    # s.7.3: a name over 253 characters loses labels on the left until it fits
    while len(expanded.rstrip(".")) > 253 and "." in expanded:
        expanded = expanded.split(".", 1)[1]
    return expanded.rstrip(".").lower()
