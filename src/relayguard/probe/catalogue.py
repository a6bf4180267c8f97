"""The relay test catalogue as data (RELAY_TESTS.md section 8), and how a test is filled in.

A test is one transaction: ``MAIL FROM:<sender>``, ``RCPT TO:<recipient>``, ``RSET`` (after an
EHLO with ``helo`` when the test names one). Addresses are templates over :class:`Variables`:

``{X}``  external test domain (RFC 2606 ``example.net`` unless ``--domain``)
``{XM}`` the same in mixed case        ``{SX}`` the plain sender's domain (``example.org``)
``{T}``  the target's own mail domain   ``{H}`` the target's host name from its banner
``{IP}`` the target's address literal   ``{TOKEN}`` a random token, new for every run

Literal relay targets come from the documentation ranges only: 192.0.2.1 (RFC 5737) and
2001:db8::1 (RFC 3849). Controls run first: an accept-all server answers 250 to all of them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Kind(StrEnum):
    CONTROL = "control"
    RELAY = "relay"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeTest:
    id: str
    kind: Kind
    technique: str
    recipient: str
    sender: str = "probe@{SX}"
    helo: str | None = None  # None: the probe's own EHLO name
    # The final domain is the target's own (or there is none): a server that accepts any
    # local user takes it as a local address, so acceptance proves relaying only when the
    # unknown-user control was refused.
    local_looking: bool = False


def _relay(id_: str, technique: str, rcpt: str, local_looking: bool = False) -> ProbeTest:
    return ProbeTest(
        id=id_, kind=Kind.RELAY, technique=technique, recipient=rcpt, local_looking=local_looking
    )


CONTROLS: Final = (
    ProbeTest(id="C1", kind=Kind.CONTROL, technique="unknown local user", recipient="{TOKEN}@{T}"),
    ProbeTest(
        id="C2",
        kind=Kind.CONTROL,
        technique="unresolvable domain",
        recipient="relaytest@{TOKEN}.invalid",
    ),
    ProbeTest(id="C3", kind=Kind.CONTROL, technique="postmaster", recipient="postmaster@{T}"),
)

# The core test: every phase's verdict leans on it.
CORE_TEST: Final = "R01"

RECIPIENT_TESTS: Final = (
    _relay("R01", "external recipient", "relaytest@{X}"),
    _relay("R02", "percent hack via host name", "relaytest%{X}@{H}", True),
    _relay("R03", "percent hack via address literal", "relaytest%{X}@{IP}", True),
    _relay("R04", "quoted local part with @", '"relaytest@{X}"', True),
    _relay("R05", "quoted local part with %", '"relaytest%{X}"', True),
    _relay("R06", "double @ via host name", "relaytest@{X}@{H}", True),
    _relay("R07", "double @ via address literal", "relaytest@{X}@{IP}", True),
    _relay("R08", "quoted @ at host name", '"relaytest@{X}"@{H}', True),
    _relay("R09", "quoted @ at address literal", '"relaytest@{X}"@{IP}', True),
    _relay("R10", "source route via host name", "@{H}:relaytest@{X}"),
    _relay("R11", "source route via address literal", "@{IP}:relaytest@{X}"),
    _relay("R12", "bang path", "{X}!relaytest", True),
    _relay("R13", "bang path at host name", "{X}!relaytest@{H}", True),
    _relay("R14", "bang path at address literal", "{X}!relaytest@{IP}", True),
    _relay("R15", "null trailing domain", "relaytest@{X}@", True),
    _relay("R16a", "IPv4 domain literal", "relaytest@[192.0.2.1]"),
    _relay("R16b", "IPv6 domain literal", "relaytest@[IPv6:2001:db8::1]"),
    _relay("R17a", "trailing dot", "relaytest@{X}."),
    _relay("R17b", "mixed case domain", "relaytest@{XM}"),
)


def _sender(id_: str, technique: str, sender: str) -> ProbeTest:
    return ProbeTest(
        id=id_, kind=Kind.RELAY, technique=technique, recipient="relaytest@{X}", sender=sender
    )


SENDER_TESTS: Final = (
    _sender("S01", "null sender", ""),
    _sender("S02", "sender in the recipient's domain", "probe@{X}"),
    _sender("S03", "sender spoofs the target's domain", "postmaster@{T}"),
    _sender("S04", "sender spoofs the target's host name", "probe@{H}"),
    _sender("S05", "sender at the target's address literal", "probe@{IP}"),
    _sender("S06", "unqualified sender", "probe"),
)


def _helo(id_: str, technique: str, helo: str) -> ProbeTest:
    return ProbeTest(
        id=id_, kind=Kind.RELAY, technique=technique, recipient="relaytest@{X}", helo=helo
    )


HELO_TESTS: Final = (
    _helo("H01", "EHLO localhost", "localhost"),
    _helo("H02", "EHLO localhost.localdomain", "localhost.localdomain"),
    _helo("H03", "EHLO with the target's own name", "{H}"),
    _helo("H04", "EHLO with the target's address literal", "{IP}"),
)

# Run order: controls first, then the core test, then the address tricks.
PLAN: Final = (*CONTROLS, *RECIPIENT_TESTS, *SENDER_TESTS, *HELO_TESTS)
BY_ID: Final = {t.id: t for t in PLAN}

DEFAULT_EXTERNAL: Final = "example.net"
DEFAULT_SENDER_DOMAIN: Final = "example.org"


@dataclass(frozen=True, slots=True, kw_only=True)
class Variables:
    external: str
    sender_domain: str
    local: str
    host: str
    ip_literal: str
    token: str

    def mapping(self) -> dict[str, str]:
        return {
            "X": self.external,
            "XM": _mixed_case(self.external),
            "SX": self.sender_domain,
            "T": self.local,
            "H": self.host,
            "IP": self.ip_literal,
            "TOKEN": self.token,
        }


@dataclass(frozen=True, slots=True)
class Filled:
    """A test with its addresses filled in (``sender`` without angle brackets)."""

    test: ProbeTest
    helo: str | None
    sender: str
    recipient: str


def fill(test: ProbeTest, variables: Variables) -> Filled:
    values = variables.mapping()
    helo = test.helo.format_map(values) if test.helo is not None else None
    return Filled(test, helo, test.sender.format_map(values), test.recipient.format_map(values))


def make_variables(
    *,
    target_ip: str,
    host: str | None,
    token: str,
    domain: str | None = None,
    local_domain: str | None = None,
) -> Variables:
    """The values for one target. ``host`` is the name from the banner, when it gave one."""
    literal = address_literal(target_ip)
    own_host = host or literal
    return Variables(
        external=domain or DEFAULT_EXTERNAL,
        sender_domain=domain or DEFAULT_SENDER_DOMAIN,
        local=local_domain or (parent_domain(host) if host else literal),
        host=own_host,
        ip_literal=literal,
        token=token,
    )


def address_literal(ip: str) -> str:
    """``[192.0.2.1]`` or ``[IPv6:2001:db8::1]`` (RFC 5321 4.1.3)."""
    addr = ipaddress.ip_address(ip)
    return f"[IPv6:{addr.compressed}]" if addr.version == 6 else f"[{addr}]"


def parent_domain(host: str) -> str:
    """The mail domain a host name most likely serves: ``mail.lab.test`` -> ``lab.test``."""
    labels = host.rstrip(".").split(".")
    return ".".join(labels[1:]) if len(labels) > 2 else host.rstrip(".")


def _mixed_case(domain: str) -> str:
    return "".join(ch.upper() if i % 2 == 0 else ch.lower() for i, ch in enumerate(domain))
