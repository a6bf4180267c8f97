"""Rate-limit rules: what each policy request counts, against which key, in which windows.

Theory of operation
-------------------
:func:`parse_rules` turns the ``rules``/``local_domains`` part of the TOML config (already loaded
as a dict) into a :class:`RuleSet`, or raises :class:`~relayguard.errors.ConfigError` with a
one-line message. For every request the server asks :meth:`RuleSet.charges` what to charge, asks
the store to admit all of the charges, and, when the mail goes on (the reply is DUNNO, WARN or
HOLD), calls :meth:`RuleSet.record`. Nothing here reads a clock, a socket or a store; ``now`` is
passed in.

A rule::

    [[rules]]
    name = "user-messages"                 # optional; unique; default "<key>-<count>"
    key = "sasl_username"                  # or sender, sender_domain, client_address,
                                           # client_network (/24, /64), any Postfix attribute
                                           # name, or "attribute:NAME" for any other name
    count = "messages"                     # messages, recipients, external_domains, bytes
    stage = "END-OF-MESSAGE"               # optional, see below
    windows = ["100/hour", "1000/day"]     # COUNT/PERIOD [burst N]; all must admit
    action = "DEFER"                       # DEFER, REJECT, HOLD, WARN, CONTAIN
    text = "450 4.7.1 Too much mail, try again later"   # optional; DEFER text must be 4xx

A request without the key's value (no ``sasl_username`` for unauthenticated mail, the null
sender for a ``sender`` rule) is not counted by that rule.

What is counted, and when (``protocol_state``):

* ``messages``: 1 per message, at END-OF-MESSAGE (default) or DATA; a message whose
  ``recipient_count`` is explicitly 0 (nothing accepted) is not counted.
* ``recipients``: at RCPT (default) 1 per distinct recipient of the message, so a RCPT that
  Postfix retries after a policy timeout is not counted twice; or, at DATA/END-OF-MESSAGE,
  ``recipient_count`` (accepted recipients only) once per message.
* ``external_domains``: at RCPT, 1 when the recipient's domain is outside ``local_domains``
  (a listed domain covers its subdomains) and was not already counted for the same rule and key
  within the rule's longest window. This approximates "distinct external domains per window"
  with a GCRA counter: a domain counted at t weighs on the limiter for about one period, and is
  counted again only after that period, so a steady set of correspondents costs about its size
  per period. The memory of counted domains is per process and bounded (least recently used
  entries are forgotten first); forgetting, or several servers sharing one store, can only count
  a domain again, never miss a new one, so the error is on the strict side.
* ``bytes``: the message ``size`` at END-OF-MESSAGE.

Double counting is avoided by ``instance`` (the same for every request about one message):
a bounded LRU of recent instances remembers which rules, and which recipients, were already
recorded for that message. A request without ``instance`` is never deduplicated. The same memory
keeps what was charged at each stage, so that a message refused as a whole (DEFER or REJECT at
DATA or END-OF-MESSAGE) gives back what its earlier stages charged (:meth:`RuleSet.refundable`).

Keys are spelled one way (:mod:`relayguard.policy.keys`): logins and senders lower-cased,
addresses canonical, domains lower-cased in ASCII without a trailing dot.

``action = "CONTAIN"`` makes a rule a compromise detector: the request that overflows one of its
windows gets HOLD and the rule's key is contained in the store (every further message of it is
held until an administrator releases it); see :mod:`relayguard.policy.decide`.

Windows are GCRA limits (:class:`~relayguard.policy.limiter.Limit`). The burst defaults to the
window's count: "100/hour" is a bucket of 100 refilled at 100 per hour, so a user may send 10
messages in a minute, and any one hour admits at most 199 (the limiter's ``limit + burst - 1``;
add a longer window such as "1000/day" to bound the long run). ``burst N`` narrows it; for
``bytes`` and ``recipients`` at DATA, one message's cost must fit in the burst or it is never
admitted. Counts take an optional K/M/G (x1000) suffix; ``bytes`` counts also KB/MB/GB (x1000)
and KiB/MiB/GiB (x1024): "500MB/day" is 500,000,000 bytes a day.
"""

from __future__ import annotations

import enum
import ipaddress
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, NamedTuple

from relayguard.errors import ConfigError
from relayguard.policy._errors import LocalProtocolError
from relayguard.policy.codec import KNOWN_ATTRIBUTES, Action, PolicyReply, PolicyRequest
from relayguard.policy.keys import canonical_address, canonical_domain, canonical_ip
from relayguard.policy.limiter import Limit

RCPT: Final = "RCPT"
DATA: Final = "DATA"
END_OF_MESSAGE: Final = "END-OF-MESSAGE"

INSTANCE_MEMORY: Final = 10_000
"""Messages remembered for deduplication; far more than the transactions open at once."""
DOMAIN_MEMORY: Final = 100_000
"""(rule, key, external domain) triples remembered for ``external_domains``."""


class Counted(enum.StrEnum):
    MESSAGES = "messages"
    RECIPIENTS = "recipients"
    EXTERNAL_DOMAINS = "external_domains"
    BYTES = "bytes"


# The stages each counted thing may use; the first is the default.
_STAGES: Final[Mapping[Counted, tuple[str, ...]]] = {
    Counted.MESSAGES: (END_OF_MESSAGE, DATA),
    Counted.RECIPIENTS: (RCPT, DATA, END_OF_MESSAGE),
    Counted.EXTERNAL_DOMAINS: (RCPT,),
    Counted.BYTES: (END_OF_MESSAGE,),
}

CONTAIN: Final = "CONTAIN"
CONTAINED_TEXT: Final = "held for review: the sending account is contained by relayguard"

_DEFAULT_TEXT: Final[Mapping[Action, str]] = {
    Action.DEFER: "450 4.7.1 Rate limit exceeded, try again later",
    Action.REJECT: "554 5.7.1 Rate limit exceeded",
    Action.HOLD: "Rate limit exceeded",
    Action.WARN: "Rate limit exceeded",
}

_RULE_FIELDS: Final = frozenset(("name", "key", "count", "stage", "windows", "action", "text"))

_SECONDS: Final[Mapping[str, int]] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("w", "week", "weeks"), 7 * 86400),
}
_MULTIPLIERS: Final[Mapping[str, int]] = {
    "": 1,
    **dict.fromkeys(("k", "kb"), 1000),
    **dict.fromkeys(("m", "mb"), 1000**2),
    **dict.fromkeys(("g", "gb"), 1000**3),
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
RESERVED_NAME: Final = "contain"
"""The store-key prefix of CONTAIN rules' windows (see ``decide.store_key``): no rule has it."""


# --- keys -------------------------------------------------------------------------------------

KeyFunc = Callable[[PolicyRequest], str]


@lru_cache(maxsize=4096)
def client_network(address: str) -> str:
    """``address``'s /24 (IPv4) or /64 (IPv6) as ``network/len``; ``""`` when not an address."""
    ip = canonical_ip(address)
    if not ip:
        return ""
    return str(ipaddress.ip_network((ip, 24 if "." in ip else 64), strict=False))


def client_address_key(request: PolicyRequest) -> str:
    """The client address in canonical form (anything else Postfix sends, as sent)."""
    address = request.attributes.get("client_address", "")
    return canonical_ip(address) or address


def sasl_username_key(request: PolicyRequest) -> str:
    """The login lower-cased: most authentication back ends ignore case, so must the limits."""
    return request.attributes.get("sasl_username", "").lower()


def sender_key(request: PolicyRequest) -> str:
    return canonical_address(request.attributes.get("sender", ""))


def _attribute(name: str) -> KeyFunc:
    return lambda request: request.attributes.get(name, "")


_DERIVED_KEYS: Final[Mapping[str, KeyFunc]] = {
    "sasl_username": sasl_username_key,
    "sender": sender_key,
    "sender_domain": lambda request: request.sender_domain,
    "client_address": client_address_key,
    "client_network": lambda request: client_network(request.attributes.get("client_address", "")),
}


def _key_func(key: str) -> KeyFunc | None:
    if key in _DERIVED_KEYS:
        return _DERIVED_KEYS[key]
    if key in KNOWN_ATTRIBUTES:
        return _attribute(key)
    prefix, sep, name = key.partition(":")
    printable = name.isascii() and name.isprintable() and "=" not in name and " " not in name
    if sep and prefix == "attribute" and name and printable:
        return _attribute(name.lower())  # the codec lower-cases names Postfix does not send
    return None


# --- windows ----------------------------------------------------------------------------------


def _split_number(text: str) -> tuple[str, str]:
    """``"10m"`` -> ``("10", "m")``; leading ASCII digits and the rest, stripped."""
    text = text.strip()
    i = 0
    while i < len(text) and text[i].isascii() and text[i].isdigit():
        i += 1
    return text[:i], text[i:].strip()


def parse_window(text: str, *, byte_units: bool = True) -> Limit:
    """``"100/hour"``, ``"10/5min"``, ``"500MB/day"``, ``"100/hour burst 10"`` as a Limit.

    ``byte_units``: whether KB/MB/GB/KiB/MiB/GiB are allowed (only for counting bytes).
    """
    error = ConfigError(
        f"bad window {text!r}: expected COUNT/PERIOD [burst N], e.g. '100/hour' or '1000/day'"
    )
    amount, sep, rest = text.partition("/")
    span_text, has_burst, burst_text = rest.partition("burst")
    burst_text = burst_text.strip()
    if not sep or (has_burst and not (burst_text.isascii() and burst_text.isdigit())):
        raise error
    digits, suffix = _split_number(amount)
    span_digits, unit = _split_number(span_text)
    multiplier = _MULTIPLIERS.get(suffix.lower())
    seconds = _SECONDS.get(unit.lower())
    if not digits or multiplier is None or seconds is None:
        raise error
    if not byte_units and suffix.lower().endswith("b"):
        raise ConfigError(f"bad window {text!r}: byte units ({suffix}) only for count = 'bytes'")
    count = int(digits) * multiplier
    period = (int(span_digits) if span_digits else 1) * seconds
    burst = int(burst_text) if has_burst else count
    try:
        return Limit(count, period, burst)
    except ValueError:
        raise error from None


# --- actions ----------------------------------------------------------------------------------


def _reply(action: Action, text: str) -> PolicyReply:
    """The reply sent when a rule's window is full; ``text`` may start with an SMTP code."""
    code_text, _, rest = text.partition(" ")
    if action is Action.DEFER and not text.startswith("4"):
        raise ConfigError(f"DEFER text {text!r} must start with a 4xx code, e.g. '450 4.7.1 ...'")
    if action in (Action.DEFER, Action.REJECT) and text[:1].isdigit():
        if not (len(code_text) == 3 and code_text.isascii() and code_text.isdigit()):
            raise ConfigError(f"{action.value} text {text!r} must start with a 3-digit SMTP code")
        status: str | None = None
        first, _, after = rest.lstrip().partition(" ")
        if first[:1].isdigit() and "." in first:
            status, rest = first, after
        try:
            return PolicyReply(action, rest, code=int(code_text), status=status)
        except LocalProtocolError as exc:
            raise ConfigError(f"{action.value} text {text!r}: {exc}") from None
    return PolicyReply(action, text)


# --- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    key: str
    count: Counted
    stage: str
    windows: tuple[Limit, ...]
    reply: PolicyReply
    key_func: KeyFunc
    span: float
    """The longest window's period: how long an external domain stays counted."""
    contains: bool = False
    """A CONTAIN rule: overflowing a window contains the key."""

    @property
    def action(self) -> Action:
        return self.reply.action

    def describe(self) -> str:
        """The rule in words for logs and alerts: ``"over 50 external_domains per hour"``."""
        windows = " or ".join(f"{w.limit} per {_period_words(w.period)}" for w in self.windows)
        return f"rule {self.name!r}: over {windows} {self.count} of one {self.key}"


def _period_words(period: float) -> str:
    for seconds, unit in ((604800, "week"), (86400, "day"), (3600, "hour"), (60, "minute")):
        if period % seconds == 0:
            n = int(period // seconds)
            return unit if n == 1 else f"{n} {unit}s"
    return f"{period:g} seconds"


class Charge(NamedTuple):
    """Charge ``cost`` units to ``key`` under ``rule``; over any window, reply ``action``."""

    rule: Rule
    key: str
    cost: int
    windows: tuple[Limit, ...]
    action: PolicyReply


def _string(where: str, table: Mapping[str, object], name: str, default: str | None) -> str:
    value = table.get(name, default)
    if value is None:
        raise ConfigError(f"{where}: missing {name!r}")
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {name!r} must be a string")
    return value


def _parse_rule(index: int, table: object, names: set[str], local: bool) -> Rule:
    where = f"rule {index + 1}"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: must be a table")
    if isinstance(table.get("name"), str):
        where = f"rule {index + 1} ({table['name']!r})"
    unknown = sorted(str(field) for field in table if field not in _RULE_FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}")
    key = _string(where, table, "key", None)
    key_func = _key_func(key)
    if key_func is None:
        raise ConfigError(
            f"{where}: unknown key {key!r}; use {', '.join(_DERIVED_KEYS)}, "
            "a Postfix attribute name or attribute:NAME"
        )
    count_text = _string(where, table, "count", None)
    try:
        count = Counted(count_text)
    except ValueError:
        raise ConfigError(
            f"{where}: unknown counted thing {count_text!r}; use {', '.join(Counted)}"
        ) from None
    if count is Counted.EXTERNAL_DOMAINS and not local:
        raise ConfigError(f"{where}: counting external_domains needs local_domains")
    stages = _STAGES[count]
    stage = _string(where, table, "stage", stages[0]).upper()
    if stage not in stages:
        raise ConfigError(
            f"{where}: {count} cannot be counted at {stage!r}; use {', '.join(stages)}"
        )
    raw_windows = table.get("windows")
    if isinstance(raw_windows, str):
        raw_windows = [raw_windows]
    if not isinstance(raw_windows, list) or not raw_windows:
        raise ConfigError(f"{where}: 'windows' must be a non-empty list such as ['100/hour']")
    windows: list[Limit] = []
    for window in raw_windows:
        if not isinstance(window, str):
            raise ConfigError(f"{where}: bad window {window!r}: must be a string")
        try:
            windows.append(parse_window(window, byte_units=count is Counted.BYTES))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    action_text = _string(where, table, "action", None)
    contains = action_text.upper() == CONTAIN
    try:
        action = Action.HOLD if contains else Action(action_text.upper())
    except ValueError:
        action = Action.DUNNO  # not a rule action: refused just below
    if action not in _DEFAULT_TEXT:
        raise ConfigError(
            f"{where}: bad action {action_text!r}; use DEFER, REJECT, HOLD, WARN or CONTAIN"
        )
    default_text = CONTAINED_TEXT if contains else _DEFAULT_TEXT[action]
    text = _string(where, table, "text", default_text).strip()
    try:
        reply = _reply(action, text)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    name = _string(where, table, "name", f"{key}-{count}")
    if not name or not name.isprintable():
        raise ConfigError(f"{where}: a rule name is printable text")
    if name == RESERVED_NAME or name.startswith(f"{RESERVED_NAME}:"):
        raise ConfigError(f"{where}: the rule name {name!r} is reserved")
    if name in names:
        raise ConfigError(f"{where}: duplicate rule name {name!r}")
    names.add(name)
    span = max(limit.period for limit in windows)
    return Rule(name, key, count, stage, tuple(windows), reply, key_func, span, contains)


def _local_domains(config: Mapping[str, object]) -> frozenset[str]:
    value = config.get("local_domains", [])
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise ConfigError("local_domains must be a list of domain names")
    names = (canonical_domain(d.strip().lstrip(".")) for d in value)
    return frozenset(name for name in names if name)


def parse_rules(config: Mapping[str, object]) -> RuleSet:
    """The rules of ``config`` (``rules``: list of tables, ``local_domains``: list of strings)."""
    local = _local_domains(config)
    tables = config.get("rules", [])
    if not isinstance(tables, list):
        raise ConfigError("rules must be a list of tables ([[rules]])")
    names: set[str] = set()
    return RuleSet([_parse_rule(i, t, names, bool(local)) for i, t in enumerate(tables)], local)


# --- evaluation -------------------------------------------------------------------------------


class RuleSet:
    """Rules indexed by stage, with the bounded memories that prevent double counting."""

    __slots__ = (
        "_by_stage",
        "_domain_memory",
        "_domains",
        "_instance_memory",
        "_instances",
        "local_domains",
        "rules",
    )

    def __init__(
        self,
        rules: Iterable[Rule],
        local_domains: Iterable[str] = (),
        instance_memory: int = INSTANCE_MEMORY,
        domain_memory: int = DOMAIN_MEMORY,
    ) -> None:
        self.rules = tuple(rules)
        self.local_domains = frozenset(local_domains)
        self._by_stage: dict[str, tuple[Rule, ...]] = {}
        for rule in self.rules:
            self._by_stage[rule.stage] = (*self._by_stage.get(rule.stage, ()), rule)
        self._instance_memory = instance_memory
        self._domain_memory = domain_memory
        # instance -> what was recorded for that message
        self._instances: OrderedDict[str, _Message] = OrderedDict()
        # (rule name, key, domain) -> when it was last counted
        self._domains: OrderedDict[tuple[str, str, str], float] = OrderedDict()

    def adopt_memory(self, old: RuleSet) -> None:
        """Take over ``old``'s memory of counted messages and domains (a reload of the rules),
        so that a message under way is not counted again by the rules that kept their name."""
        self._instances = old._instances
        self._domains = old._domains

    def is_local(self, domain: str) -> bool:
        """``domain`` is a local domain or one of their subdomains."""
        local = self.local_domains
        while domain:
            if domain in local:
                return True
            domain = domain.partition(".")[2]
        return False

    def charges(self, request: PolicyRequest, now: float) -> list[Charge]:
        """What ``request`` costs under each rule of its stage (rules costing nothing omitted)."""
        rules = self._by_stage.get(request.protocol_state)
        if not rules:
            return []
        instance = request.instance
        message = self._instances.get(instance) if instance else None
        seen = None
        if message is not None:
            self._instances.move_to_end(instance)
            seen = message.marks
        out: list[Charge] = []
        for rule in rules:
            key = rule.key_func(request)
            if not key:
                continue
            cost = self._cost(rule, key, request, seen, now)
            if cost > 0:
                out.append(Charge(rule, key, cost, rule.windows, rule.reply))
        return out

    def record(self, request: PolicyRequest, charges: Iterable[Charge], now: float) -> None:
        """Remember ``charges`` as admitted, so that a repeat of them costs nothing.

        Call it only when the mail goes on: a refused charge left unrecorded is charged again
        when the client retries, which is what keeps a retry from slipping through.
        """
        instance = request.instance
        for charge in charges:
            rule = charge.rule
            domain = ""
            if rule.count is Counted.EXTERNAL_DOMAINS:
                domain = request.recipient_domain
                self._remember_domain((rule.name, charge.key, domain), now)
            if not instance:
                continue
            message = self._instances.get(instance)
            if message is None:
                message = self._instances[instance] = _Message()
                if len(self._instances) > self._instance_memory:
                    self._instances.popitem(last=False)
            else:
                self._instances.move_to_end(instance)
            if not domain:
                message.marks.add(_mark(rule, request))
            message.charged.append((charge, domain))

    def refundable(self, request: PolicyRequest) -> list[Charge]:
        """The charges recorded for ``request``'s message at its earlier stages, now that the
        message is refused as a whole: forgotten here (a retry is charged again, and nothing
        is given back twice), to be given back to the store by the caller."""
        instance = request.instance
        message = self._instances.pop(instance, None) if instance else None
        if message is None:
            return []
        for charge, domain in message.charged:
            if domain:
                self._domains.pop((charge.rule.name, charge.key, domain), None)
        return [charge for charge, _domain in message.charged]

    def _cost(
        self, rule: Rule, key: str, request: PolicyRequest, seen: set[object] | None, now: float
    ) -> int:
        count = rule.count
        if count is Counted.EXTERNAL_DOMAINS:
            domain = request.recipient_domain
            if not domain or self.is_local(domain):
                return 0
            entry = (rule.name, key, domain)
            when = self._domains.get(entry)
            if when is None or now - when >= rule.span:
                return 1
            self._domains.move_to_end(entry)  # in use: forget others first
            return 0
        if seen is not None and _mark(rule, request) in seen:
            return 0
        if count is Counted.MESSAGES:
            return 0 if request.attributes.get("recipient_count") == "0" else 1
        if count is Counted.RECIPIENTS:
            if rule.stage == RCPT:
                return 1 if request.recipient else 0
            return request.recipient_count
        return request.size  # bytes

    def _remember_domain(self, entry: tuple[str, str, str], now: float) -> None:
        domains = self._domains
        if entry in domains:
            domains.move_to_end(entry)
        domains[entry] = now
        if len(domains) > self._domain_memory:
            domains.popitem(last=False)


class _Message:
    """What was recorded for one message (one ``instance``)."""

    __slots__ = ("charged", "marks")

    def __init__(self) -> None:
        self.marks: set[object] = set()
        """Rule names, (rule name, recipient): the charges a repeat must not make again."""
        self.charged: list[tuple[Charge, str]] = []
        """Every charge admitted for the message, with its domain for external_domains."""


def _mark(rule: Rule, request: PolicyRequest) -> object:
    """What identifies one charge of ``rule`` within one message."""
    if rule.count is Counted.RECIPIENTS and rule.stage == RCPT:
        return (rule.name, canonical_address(request.recipient))
    return rule.name
