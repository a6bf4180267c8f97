"""The catalogue: every test form filled in, on the lab's names; only reserved names used."""

from __future__ import annotations

import ipaddress
import re

import pytest

from relayguard.probe.catalogue import (
    BY_ID,
    PLAN,
    Kind,
    address_literal,
    fill,
    make_variables,
    parent_domain,
)

LAB = make_variables(target_ip="127.0.0.1", host="mail.lab.test", token="t0k")

# id: (helo or "-", sender, recipient) with the lab's variables
FILLED = {
    "C1": ("-", "probe@example.org", "t0k@lab.test"),
    "C2": ("-", "probe@example.org", "relaytest@t0k.invalid"),
    "C3": ("-", "probe@example.org", "postmaster@lab.test"),
    "R01": ("-", "probe@example.org", "relaytest@example.net"),
    "R02": ("-", "probe@example.org", "relaytest%example.net@mail.lab.test"),
    "R03": ("-", "probe@example.org", "relaytest%example.net@[127.0.0.1]"),
    "R04": ("-", "probe@example.org", '"relaytest@example.net"'),
    "R05": ("-", "probe@example.org", '"relaytest%example.net"'),
    "R06": ("-", "probe@example.org", "relaytest@example.net@mail.lab.test"),
    "R07": ("-", "probe@example.org", "relaytest@example.net@[127.0.0.1]"),
    "R08": ("-", "probe@example.org", '"relaytest@example.net"@mail.lab.test'),
    "R09": ("-", "probe@example.org", '"relaytest@example.net"@[127.0.0.1]'),
    "R10": ("-", "probe@example.org", "@mail.lab.test:relaytest@example.net"),
    "R11": ("-", "probe@example.org", "@[127.0.0.1]:relaytest@example.net"),
    "R12": ("-", "probe@example.org", "example.net!relaytest"),
    "R13": ("-", "probe@example.org", "example.net!relaytest@mail.lab.test"),
    "R14": ("-", "probe@example.org", "example.net!relaytest@[127.0.0.1]"),
    "R15": ("-", "probe@example.org", "relaytest@example.net@"),
    "R16a": ("-", "probe@example.org", "relaytest@[192.0.2.1]"),
    "R16b": ("-", "probe@example.org", "relaytest@[IPv6:2001:db8::1]"),
    "R17a": ("-", "probe@example.org", "relaytest@example.net."),
    "R17b": ("-", "probe@example.org", "relaytest@ExAmPlE.NeT"),
    "S01": ("-", "", "relaytest@example.net"),
    "S02": ("-", "probe@example.net", "relaytest@example.net"),
    "S03": ("-", "postmaster@lab.test", "relaytest@example.net"),
    "S04": ("-", "probe@mail.lab.test", "relaytest@example.net"),
    "S05": ("-", "probe@[127.0.0.1]", "relaytest@example.net"),
    "S06": ("-", "probe", "relaytest@example.net"),
    "H01": ("localhost", "probe@example.org", "relaytest@example.net"),
    "H02": ("localhost.localdomain", "probe@example.org", "relaytest@example.net"),
    "H03": ("mail.lab.test", "probe@example.org", "relaytest@example.net"),
    "H04": ("[127.0.0.1]", "probe@example.org", "relaytest@example.net"),
}


def test_plan_order_and_ids() -> None:
    assert [t.id for t in PLAN] == list(FILLED)
    assert [t.id for t in PLAN if t.kind is Kind.CONTROL] == ["C1", "C2", "C3"]
    assert len(BY_ID) == len(PLAN) == 32


@pytest.mark.parametrize("test_id", list(FILLED))
def test_filled(test_id: str) -> None:
    filled = fill(BY_ID[test_id], LAB)
    assert (filled.helo or "-", filled.sender, filled.recipient) == FILLED[test_id]


RESERVED = ("example.com", "example.net", "example.org", ".example", ".invalid", ".test")


@pytest.mark.parametrize("test_id", list(FILLED))
def test_only_reserved_names_and_documentation_addresses(test_id: str) -> None:
    """Outside the target's own names, every domain is RFC 2606 and every literal RFC 5737/3849."""
    own = {"lab.test", "mail.lab.test", "[127.0.0.1]"}
    docs = (ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8::/32"))
    filled = fill(BY_ID[test_id], LAB)
    for address in (filled.sender, filled.recipient):
        for literal in re.findall(r"\[[^\]]*\]", address):
            if literal in own:
                continue
            ip = ipaddress.ip_address(literal.strip("[]").removeprefix("IPv6:"))
            assert any(ip in net for net in docs if net.version == ip.version), literal
        names = re.sub(r"\[[^\]]*\]", " ", address)
        for name in re.findall(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", names):
            name = name.lower()
            assert name in own or name.endswith(RESERVED), name


def test_domain_option_replaces_the_external_names() -> None:
    mine = make_variables(
        target_ip="192.0.2.25", host=None, token="t", domain="canary.example.com",
        local_domain="corp.example",
    )  # fmt: skip
    assert fill(BY_ID["R01"], mine).recipient == "relaytest@canary.example.com"
    assert fill(BY_ID["R01"], mine).sender == "probe@canary.example.com"
    assert fill(BY_ID["C1"], mine).recipient == "t@corp.example"
    # no banner name: the address literal stands in for the host
    assert fill(BY_ID["R02"], mine).recipient == "relaytest%canary.example.com@[192.0.2.25]"


@pytest.mark.parametrize(
    ("host", "parent"),
    [("mail.lab.test", "lab.test"), ("lab.test", "lab.test"),
     ("mx1.eu.corp.example.", "eu.corp.example"),
     ("localhost", "localhost")],
)  # fmt: skip
def test_parent_domain(host: str, parent: str) -> None:
    assert parent_domain(host) == parent


@pytest.mark.parametrize(
    ("ip", "literal"),
    [
        ("192.0.2.1", "[192.0.2.1]"),
        ("2001:0db8::0001", "[IPv6:2001:db8::1]"),
        ("::1", "[IPv6:::1]"),
    ],
)
def test_address_literal(ip: str, literal: str) -> None:
    assert address_literal(ip) == literal
