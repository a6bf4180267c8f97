"""Walk an smtpd restriction list as an attacker would: can it relay through this list?

Theory of operation: the attacker is an outside client, not in mynetworks (PF-04 judges that
list), not authenticated, without a client certificate, free to choose its HELO name, its
envelope sender, its reverse DNS and the recipient. Postfix evaluates the relay and the
recipient lists one after the other; a PERMIT ends only the list it is in, so mail is relayed
exactly when neither list rejects it. :func:`evaluate` answers, for one list: does the
attacker reach a rejecting step, or does a permit it can satisfy come first, and which
permits for third parties (listed clients, DNS allowlists, policy servers) come before the
reject. With ``local=True`` the destination is a local domain: used to check that a
submission port refuses unauthenticated clients altogether.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from relayguard.audit._maps import inspect_map
from relayguard.audit.effective import FileReader
from relayguard.audit.expand import split_list
from relayguard.findings import Severity

_RELAY_GATES = frozenset(
    {
        "reject_unauth_destination",
        "defer_unauth_destination",
        "reject",
        "defer",
        "check_relay_domains",
        "defer_if_permit",
    }
)
# defer_if_permit defers whatever a later step (or the end of the list) would permit.
_LOCAL_GATES = frozenset({"reject", "defer", "defer_if_permit"})
_TAKES_ARG = frozenset(
    {
        "reject_rbl_client",
        "reject_rhsbl_client",
        "reject_rhsbl_sender",
        "reject_rhsbl_helo",
        "reject_rhsbl_recipient",
        "reject_rhsbl_reverse_client",
        "permit_dnswl_client",
        "permit_rhswl_client",
        "sleep",
        "reject_dnsbl_client",
    }
)
# Keys the attacker picks: an OK for any of them is an OK for the attacker.
_ATTACKER_KEYED = ("check_helo", "check_sender", "check_reverse_client_hostname")
_SAFE_MAPS = frozenset({"check_sasl_access", "check_ccert_access"})
_SAFE_PERMITS = frozenset(
    {
        "permit_mynetworks",
        "permit_sasl_authenticated",
        "permit_tls_clientcerts",
        "permit_inet_interfaces",
        "permit_mx_backup",
    }
)
MAX_CLASS_DEPTH = 5


@dataclass(frozen=True, slots=True)
class Item:
    name: str  # the restriction, lower case
    arg: str | None = None

    @property
    def text(self) -> str:
        return self.name if self.arg is None else f"{self.name} {self.arg}"


@dataclass(frozen=True, slots=True)
class Hazard:
    """A permit reachable before the relay check."""

    item: str
    severity: Severity
    attacker: bool  # the attacker itself can satisfy it
    why: str


@dataclass(frozen=True, slots=True)
class Verdict:
    rejects: bool  # the attacker reaches a rejecting step
    gate: str | None = None
    opened_by: Hazard | None = None
    hazards: tuple[Hazard, ...] = ()  # third-party permits before the gate
    bypassed: tuple[str, ...] = ()  # gates disarmed by warn_if_reject
    empty: bool = False


@dataclass(frozen=True, slots=True)
class Context:
    read: FileReader
    classes: dict[str, str] = field(default_factory=dict)  # smtpd_restriction_classes


def parse_restrictions(value: str) -> list[Item]:
    """Restriction list text -> items, each with its table/argument when it takes one."""
    tokens = split_list(value)
    items: list[Item] = []
    k = 0
    while k < len(tokens):
        name = tokens[k].lower()
        takes = name in _TAKES_ARG or (name.startswith("check_") and name != "check_relay_domains")
        if takes and k + 1 < len(tokens):
            items.append(Item(name, tokens[k + 1]))
            k += 2
        else:
            items.append(Item(name))
            k += 1
    return items


def is_gate(name: str, local: bool = False) -> bool:
    return name in (_LOCAL_GATES if local else _RELAY_GATES)


def _map_hazard(item: Item, ctx: Context) -> Hazard | None:
    if item.name in _SAFE_MAPS or item.arg is None:
        return None
    if item.name == "check_policy_service":
        return Hazard(
            item.text,
            Severity.MEDIUM,
            False,
            "a policy server answering OK here would let that client relay",
        )
    report = inspect_map(item.arg, ctx.read)
    if not report.may_permit:
        return None
    attacker_keyed = item.name.startswith(_ATTACKER_KEYED)
    if not report.readable:
        who = "a HELO name or sender the attacker chooses" if attacker_keyed else "a client"
        return Hazard(
            item.text,
            Severity.HIGH,
            False,
            f"{item.arg} cannot be read: an OK it returns for {who} permits relaying",
        )
    keys = ", ".join(report.permits[:5])
    if attacker_keyed or report.catch_all:
        what = "any client" if report.catch_all else "whoever presents that HELO name or sender"
        return Hazard(
            item.text,
            Severity.CRITICAL,
            True,
            f"{item.arg} answers OK for {keys}: {what} may relay anywhere",
        )
    if item.name.startswith("check_recipient"):
        why = f"mail to {keys} is relayed for any client"
    else:
        why = f"clients matching {keys} may relay anywhere, like mynetworks"
    return Hazard(item.text, Severity.MEDIUM, False, why)


def _permit_hazard(item: Item, local: bool) -> Hazard | None:
    name = item.name
    if name == "permit":
        return Hazard(name, Severity.CRITICAL, True, "a bare permit accepts every client")
    if name == "permit_naked_ip_address":
        return Hazard(
            name, Severity.CRITICAL, True, "any client saying HELO with an IP address may relay"
        )
    if name == "permit_auth_destination":
        if local:
            return Hazard(name, Severity.MEDIUM, True, "accepts mail to local domains from anyone")
        return None
    if name in ("permit_dnswl_client", "permit_rhswl_client"):
        return Hazard(
            item.text, Severity.HIGH, False, f"every client listed by {item.arg} may relay anywhere"
        )
    if name == "permit_tls_all_clientcerts":
        return Hazard(
            name,
            Severity.HIGH,
            False,
            "any client with a certificate from any trusted CA may relay",
        )
    return None


def evaluate(items: list[Item], ctx: Context, *, local: bool = False, depth: int = 0) -> Verdict:
    """How ``items`` treat the attacker (see the module docstring)."""
    hazards: list[Hazard] = []
    bypassed: list[str] = []
    disarm_next = False
    for item in items:
        name = item.name
        if disarm_next:
            disarm_next = False
            if is_gate(name, local):
                bypassed.append(name)
            continue
        if name == "warn_if_reject":
            disarm_next = True
            continue
        if is_gate(name, local):
            return Verdict(True, name, None, tuple(hazards), tuple(bypassed), not items)
        if name in ctx.classes and depth < MAX_CLASS_DEPTH:
            sub = evaluate(parse_restrictions(ctx.classes[name]), ctx, local=local, depth=depth + 1)
            hazards.extend(sub.hazards)
            bypassed.extend(sub.bypassed)
            if sub.opened_by is not None:
                return Verdict(False, None, sub.opened_by, tuple(hazards), tuple(bypassed))
            if sub.rejects:
                return Verdict(True, sub.gate, None, tuple(hazards), tuple(bypassed))
            continue
        if name in _SAFE_PERMITS:
            continue
        hazard = (
            _map_hazard(item, ctx) if name.startswith("check_") else _permit_hazard(item, local)
        )
        if hazard is None:
            continue
        if hazard.attacker:
            return Verdict(False, None, hazard, tuple(hazards), tuple(bypassed))
        hazards.append(hazard)
    return Verdict(False, None, None, tuple(hazards), tuple(bypassed), not items)
