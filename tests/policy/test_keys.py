"""One spelling per key: addresses, logins, senders and domains counted and contained as one."""

from __future__ import annotations

import pytest

from relayguard.errors import ConfigError
from relayguard.policy.decide import containment_keys
from relayguard.policy.keys import admin_key, canonical_domain, canonical_ip
from relayguard.policy.rules import parse_rules, parse_window
from tests.policy.test_rules import T0, rcpt, req, rule, rules


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("2001:DB8:0:0::2", "2001:db8::2"),
        ("2001:db8:0000:0000:0000:0000:0000:0002", "2001:db8::2"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::1"),
        ("192.0.2.7", "192.0.2.7"),
        ("2001:DB8::/64", "2001:db8::/64"),
        ("192.0.2.9/24", "192.0.2.0/24"),
        ("Alice@Example.ORG", "alice@example.org"),
        ("ALICE", "alice"),
        ("bob@Bücher.Example", "bob@xn--bcher-kva.example"),
    ],
)
def test_admin_keys_are_spelled_as_the_server_spells_them(given: str, key: str) -> None:
    assert admin_key(given) == key


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("d1.test.", "d1.test"),
        ("D1.Test", "d1.test"),
        ("bücher.test", "xn--bcher-kva.test"),
        ("XN--BCHER-KVA.test", "xn--bcher-kva.test"),
        ("BÜCHER.test.", "xn--bcher-kva.test"),
    ],
)
def test_domains(given: str, name: str) -> None:
    assert canonical_domain(given) == name


def test_not_an_ip() -> None:
    assert canonical_ip("unknown") == ""


def test_one_outside_domain_however_it_is_spelled() -> None:
    rs = rules(rule("sasl_username", "external_domains"), local=["Bücher.Example."])
    counted = []
    for n, to in enumerate(
        ["a@d1.test", "b@d1.test.", "c@D1.TEST", "d@bücher.test", "e@xn--bcher-kva.test",
         "f@sub.xn--bcher-kva.example", "g@bücher.example."]
    ):  # fmt: skip
        request = rcpt(to, instance=f"i{n}")
        charges = rs.charges(request, T0 + n)
        rs.record(request, charges, T0 + n)
        counted.append(sum(c.cost for c in charges))
    # d1.test once, bücher.test once; the local domain (written in Unicode) never
    assert counted == [1, 0, 0, 1, 0, 0, 0]


def test_logins_and_addresses_are_counted_as_one_key() -> None:
    rs = rules(rule("sasl_username", "messages"), rule("client_address", "messages"))
    keys = set()
    for n, (login, client) in enumerate(
        [("Alice", "2001:db8::2"), ("ALICE", "2001:DB8:0:0::2"), ("alice", "2001:db8::2")]
    ):
        request = req("END-OF-MESSAGE", sasl_username=login, client_address=client,
                      recipient_count="1", instance=f"m{n}")  # fmt: skip
        keys |= {(c.rule.name, c.key) for c in rs.charges(request, T0)}
    assert keys == {
        ("sasl_username-messages", "alice"),
        ("client_address-messages", "2001:db8::2"),
    }


def test_containment_keys_are_canonical() -> None:
    request = req(
        "RCPT", sasl_username="Alice@Example.ORG", sender="Alice@Bücher.Example",
        client_address="::ffff:192.0.2.7",
    )  # fmt: skip
    assert containment_keys(request) == (
        "alice@example.org",
        "alice@xn--bcher-kva.example",
        "192.0.2.7",
    )


@pytest.mark.parametrize("count", ["messages", "recipients", "external_domains"])
@pytest.mark.parametrize("window", ["500MB/day", "1kb/hour", "2GiB/day"])
def test_byte_units_only_count_bytes(count: str, window: str) -> None:
    table = rule("sasl_username", count, windows=[window])
    with pytest.raises(ConfigError) as info:
        parse_rules({"rules": [table], "local_domains": ["example.org"]})
    unit = window.split("/")[0].lstrip("0123456789")
    assert str(info.value) == (
        f"rule 1: bad window {window!r}: byte units ({unit}) only for count = 'bytes'"
    )


def test_units() -> None:
    assert parse_window("500MB/day").limit == 500_000_000
    assert parse_window("2MiB/day").limit == 2 * 1024 * 1024
    assert parse_window("10k/hour", byte_units=False).limit == 10_000
    table = rule("sasl_username", "bytes", windows="500MB/day")  # one window, not a list
    assert parse_rules({"rules": [table]}).rules[0].windows[0].limit == 500_000_000


@pytest.mark.parametrize("name", ["contain", "contain:x"])
def test_reserved_rule_names(name: str) -> None:
    with pytest.raises(ConfigError, match=f"the rule name '{name}' is reserved"):
        parse_rules({"rules": [rule("sasl_username", "messages", name=name)]})
