"""Rules: config -> Rule objects, requests -> charges (exact keys and costs), instance dedupe."""

from __future__ import annotations

from typing import Any

import pytest

from relayguard.errors import ConfigError
from relayguard.policy.codec import Action, PolicyReply, PolicyRequest
from relayguard.policy.limiter import Limit
from relayguard.policy.rules import (
    Counted,
    RuleSet,
    client_network,
    parse_rules,
    parse_window,
)

T0 = 1_700_000_000.0

# What Postfix 3.7 sends from a submission service (SMTPD_POLICY_README attribute set).
BASE = {
    "request": "smtpd_access_policy",
    "protocol_name": "ESMTP",
    "helo_name": "[192.168.1.20]",
    "queue_id": "",
    "sender": "Alice@Example.COM",
    "recipient": "",
    "recipient_count": "0",
    "client_address": "203.0.113.45",
    "client_name": "unknown",
    "reverse_client_name": "unknown",
    "instance": "3f1a.6571c2d0.8a0b1.0",
    "sasl_method": "PLAIN",
    "sasl_username": "alice",
    "sasl_sender": "",
    "size": "0",
    "encryption_protocol": "TLSv1.3",
    "stress": "",
}


def req(state: str, **attrs: str) -> PolicyRequest:
    return PolicyRequest({**BASE, "protocol_state": state, **attrs})


def rcpt(to: str, **attrs: str) -> PolicyRequest:
    return req("RCPT", recipient=to, **attrs)


def eom(*, count: int = 1, size: int = 2048, **attrs: str) -> PolicyRequest:
    return req(
        "END-OF-MESSAGE",
        queue_id="4Qx1Lz0Zk5z9sQ",
        recipient_count=str(count),
        size=str(size),
        **attrs,
    )


def rules(*tables: dict[str, Any], local: list[str] | None = None) -> RuleSet:
    config: dict[str, Any] = {"rules": list(tables)}
    if local is not None:
        config["local_domains"] = local
    return parse_rules(config)


def rule(key: str, count: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "count": count, "windows": ["100/hour"], "action": "DEFER", **extra}


def summary(
    ruleset: RuleSet, request: PolicyRequest, now: float = T0
) -> list[tuple[str, str, int]]:
    return [(c.rule.name, c.key, c.cost) for c in ruleset.charges(request, now)]


# --- windows ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("100/hour", Limit(100, 3600, 100)),
        ("1000/day", Limit(1000, 86400, 1000)),
        ("10/5min", Limit(10, 300, 10)),
        ("10 / 5 minutes", Limit(10, 300, 10)),
        ("30/s", Limit(30, 1, 30)),
        ("5000/week", Limit(5000, 604800, 5000)),
        ("100/hour burst 10", Limit(100, 3600, 10)),
        ("100/h burst 1", Limit(100, 3600, 1)),
        ("500MB/day", Limit(500_000_000, 86400, 500_000_000)),
        ("2GiB/2d", Limit(2 * 1024**3, 172800, 2 * 1024**3)),
        ("20k/hour", Limit(20_000, 3600, 20_000)),
    ],
)
def test_parse_window(text: str, limit: Limit) -> None:
    parsed = parse_window(text)
    assert (parsed.limit, parsed.period, parsed.burst) == (limit.limit, limit.period, limit.burst)


@pytest.mark.parametrize(
    "text",
    ["", "100", "100/", "/hour", "100/fortnight", "0/hour", "-5/hour", "1.5/hour", "100/0h",
     "100/hour burst", "100/hour burst 0", "100/hour burst x", "100XB/day", "hundred/hour",
     "100/hour/day", "100/hour bursty 3"],
)  # fmt: skip
def test_parse_window_errors(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_window(text)
    assert str(info.value) == (
        f"bad window {text!r}: expected COUNT/PERIOD [burst N], e.g. '100/hour' or '1000/day'"
    )


# --- parsing rules --------------------------------------------------------------------------------


def test_parse_full_rule() -> None:
    ruleset = rules(
        {
            "name": "user-mail",
            "key": "sasl_username",
            "count": "messages",
            "stage": "data",
            "windows": ["100/hour", "1000/day"],
            "action": "defer",
            "text": "451 4.7.1 Too much mail from you, try again later",
        }
    )
    (r,) = ruleset.rules
    assert (r.name, r.key, r.count, r.stage, r.span) == (
        "user-mail", "sasl_username", Counted.MESSAGES, "DATA", 86400
    )  # fmt: skip
    assert r.windows == (Limit(100, 3600, 100), Limit(1000, 86400, 1000))
    assert r.action is Action.DEFER
    assert r.reply == PolicyReply(
        Action.DEFER, "Too much mail from you, try again later", 451, "4.7.1"
    )
    assert r.reply.wire == b"action=451 4.7.1 Too much mail from you, try again later\n\n"


@pytest.mark.parametrize(
    ("action", "text", "wire"),
    [
        ("DEFER", None, b"action=450 4.7.1 Rate limit exceeded, try again later\n\n"),
        ("DEFER", "450 slow down", b"action=450 slow down\n\n"),
        ("REJECT", None, b"action=554 5.7.1 Rate limit exceeded\n\n"),
        ("REJECT", "account blocked", b"action=REJECT account blocked\n\n"),
        ("REJECT", "550 5.7.1 blocked", b"action=550 5.7.1 blocked\n\n"),
        ("HOLD", None, b"action=HOLD Rate limit exceeded\n\n"),
        ("hold", "compromised?", b"action=HOLD compromised?\n\n"),
        ("WARN", None, b"action=WARN Rate limit exceeded\n\n"),
    ],
)
def test_actions(action: str, text: str | None, wire: bytes) -> None:
    table = rule("sasl_username", "messages", action=action)
    if text is not None:
        table["text"] = text
    assert rules(table).rules[0].reply.wire == wire


def test_defaults_and_stages() -> None:
    ruleset = rules(
        rule("sasl_username", "messages"),
        rule("sasl_username", "recipients"),
        rule("sender", "recipients", stage="END-OF-MESSAGE"),
        rule("client_network", "bytes"),
        rule("sasl_username", "external_domains"),
        local=["example.com"],
    )
    assert [(r.name, r.stage) for r in ruleset.rules] == [
        ("sasl_username-messages", "END-OF-MESSAGE"),
        ("sasl_username-recipients", "RCPT"),
        ("sender-recipients", "END-OF-MESSAGE"),
        ("client_network-bytes", "END-OF-MESSAGE"),
        ("sasl_username-external_domains", "RCPT"),
    ]


def test_empty_config() -> None:
    assert rules().rules == ()
    assert parse_rules({}).charges(eom(), T0) == []


R = "rule 1 ('r')"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"rules": {"key": "sender"}}, "rules must be a list of tables ([[rules]])"),
        ({"rules": ["x"]}, "rule 1: must be a table"),
        ({"local_domains": "example.com"}, "local_domains must be a list of domain names"),
        ({"local_domains": [1]}, "local_domains must be a list of domain names"),
        (
            {"rules": [rule("sasl_user", "messages", name="r")]},
            f"{R}: unknown key 'sasl_user'; use sasl_username, sender, sender_domain, "
            "client_address, client_network, a Postfix attribute name or attribute:NAME",
        ),
        (
            {"rules": [rule("attribute:", "messages", name="r")]},
            f"{R}: unknown key 'attribute:'; use sasl_username, sender, sender_domain, "
            "client_address, client_network, a Postfix attribute name or attribute:NAME",
        ),
        (
            {"rules": [rule("sender", "mails", name="r")]},
            f"{R}: unknown counted thing 'mails'; use messages, recipients, "
            "external_domains, bytes",
        ),
        (
            {"rules": [rule("sender", "messages", name="r", windows=["100/hr", "lots/day"])]},
            f"{R}: bad window 'lots/day': expected COUNT/PERIOD [burst N], "
            "e.g. '100/hour' or '1000/day'",
        ),
        (
            {"rules": [rule("sender", "messages", name="r", windows=[100])]},
            f"{R}: bad window 100: must be a string",
        ),
        (
            {"rules": [rule("sender", "messages", name="r", windows=[])]},
            f"{R}: 'windows' must be a non-empty list such as ['100/hour']",
        ),
        (
            {"rules": [rule("sender", "messages", name="r", action="OK")]},
            f"{R}: bad action 'OK'; use DEFER, REJECT, HOLD, WARN or CONTAIN",
        ),
        (
            {"rules": [rule("sender", "messages", name="r", action="DUNNO")]},
            f"{R}: bad action 'DUNNO'; use DEFER, REJECT, HOLD, WARN or CONTAIN",
        ),
        (
            {"rules": [rule("sender", "messages", name="r", text="550 5.7.1 go away")]},
            f"{R}: DEFER text '550 5.7.1 go away' must start with a 4xx code, e.g. '450 4.7.1 ...'",
        ),
        (
            {"rules": [rule("sender", "messages", name="r", text="slow down")]},
            f"{R}: DEFER text 'slow down' must start with a 4xx code, e.g. '450 4.7.1 ...'",
        ),
        (
            {"rules": [rule("sender", "messages", name="r", text="4.7.1 slow down")]},
            f"{R}: DEFER text '4.7.1 slow down' must start with a 3-digit SMTP code",
        ),
        (
            {"rules": [rule("sender", "messages", name="r", text="450 5.7.1 slow down")]},
            f"{R}: DEFER text '450 5.7.1 slow down': bad enhanced status '5.7.1'",
        ),
        (
            {"rules": [rule("sender", "messages", name="r", action="REJECT", text="450 no")]},
            f"{R}: REJECT text '450 no': code 450 does not fit REJECT",
        ),
        (
            {"rules": [rule("sender", "messages", name="r", stage="RCPT")]},
            f"{R}: messages cannot be counted at 'RCPT'; use END-OF-MESSAGE, DATA",
        ),
        (
            {"rules": [rule("sender", "bytes", name="r", stage="DATA")]},
            f"{R}: bytes cannot be counted at 'DATA'; use END-OF-MESSAGE",
        ),
        (
            {"rules": [rule("sender", "external_domains", name="r")]},
            f"{R}: counting external_domains needs local_domains",
        ),
        (
            {"rules": [rule("sender", "messages", name="r", window="1/hour")]},
            f"{R}: unknown field 'window'",
        ),
        ({"rules": [{"count": "messages"}]}, "rule 1: missing 'key'"),
        ({"rules": [{"key": "sender", "count": 3}]}, "rule 1: 'count' must be a string"),
        (
            {"rules": [rule("sender", "messages"), rule("sender", "messages")]},
            "rule 2: duplicate rule name 'sender-messages'",
        ),
    ],
)
def test_config_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_rules(config)
    assert str(info.value) == message
    assert "\n" not in message


# --- keys -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.45", "203.0.113.0/24"),
        ("10.0.0.1", "10.0.0.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8::1", "2001:db8::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:198.51.100.7", "198.51.100.0/24"),
        ("unknown", ""),
        ("", ""),
        ("300.1.1.1", ""),
    ],
)
def test_client_network(address: str, network: str) -> None:
    assert client_network(address) == network


KEY_RULES = rules(
    *(
        rule(key, "messages", name=key)
        for key in (
            "sasl_username", "sender", "sender_domain", "client_address", "client_network",
            "helo_name", "policy_context", "attribute:X-Tenant",
        )
    )
)  # fmt: skip


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        (
            {"policy_context": "submission", "x-tenant": "acme"},
            [
                ("sasl_username", "alice", 1),
                ("sender", "alice@example.com", 1),
                ("sender_domain", "example.com", 1),
                ("client_address", "203.0.113.45", 1),
                ("client_network", "203.0.113.0/24", 1),
                ("helo_name", "[192.168.1.20]", 1),
                ("policy_context", "submission", 1),
                ("attribute:X-Tenant", "acme", 1),
            ],
        ),
        (  # unauthenticated, null sender, IPv6 client: only the keys present count
            {
                "sasl_username": "",
                "sasl_method": "",
                "sender": "",
                "client_address": "2001:db8::25",
            },
            [
                ("client_address", "2001:db8::25", 1),
                ("client_network", "2001:db8::/64", 1),
                ("helo_name", "[192.168.1.20]", 1),
            ],
        ),
    ],
)
def test_keys(attrs: dict[str, str], expected: list[tuple[str, str, int]]) -> None:
    assert summary(KEY_RULES, req("END-OF-MESSAGE", recipient_count="1", **attrs)) == expected


# --- charges ----------------------------------------------------------------------------------


def mixed() -> RuleSet:
    return rules(
        rule("sasl_username", "messages", name="msg-eom"),
        rule("sender", "messages", name="msg-data", stage="DATA"),
        rule("sasl_username", "recipients", name="rcpt"),
        rule("sasl_username", "recipients", name="rcpt-accepted", stage="END-OF-MESSAGE"),
        rule("sasl_username", "external_domains", name="ext"),
        rule("client_address", "bytes", name="bytes", windows=["1GB/day"]),
        local=["example.com", "Example.NET."],
    )


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (req("CONNECT"), []),
        (req("MAIL", size="10240"), []),
        (rcpt("bob@example.com"), [("rcpt", "alice", 1)]),
        (rcpt("bob@lists.example.net"), [("rcpt", "alice", 1)]),
        (rcpt("carol@gmail.com"), [("rcpt", "alice", 1), ("ext", "alice", 1)]),
        (rcpt("carol@GMail.Com"), [("rcpt", "alice", 1), ("ext", "alice", 1)]),
        (rcpt("dave@example.com.evil.org"), [("rcpt", "alice", 1), ("ext", "alice", 1)]),
        (rcpt("postmaster"), [("rcpt", "alice", 1)]),
        (rcpt("x@gmail.com", sasl_username=""), []),
        (req("DATA", recipient_count="3"), [("msg-data", "alice@example.com", 1)]),
        (req("DATA", recipient_count="0"), []),
        (
            eom(count=3, size=15000),
            [
                ("msg-eom", "alice", 1),
                ("rcpt-accepted", "alice", 3),
                ("bytes", "203.0.113.45", 15000),
            ],
        ),
        (eom(count=0, size=15000), [("bytes", "203.0.113.45", 15000)]),
        (eom(count=1, size=0), [("msg-eom", "alice", 1), ("rcpt-accepted", "alice", 1)]),
        (
            eom(count=2, sasl_username="", sasl_method=""),
            [("bytes", "203.0.113.45", 2048)],
        ),
    ],
)
def test_charges_table(request_: PolicyRequest, expected: list[tuple[str, str, int]]) -> None:
    assert summary(mixed(), request_) == expected


def test_charge_carries_windows_and_reply() -> None:
    ruleset = rules(rule("sasl_username", "messages", windows=["10/min", "100/day"], action="HOLD"))
    (charge,) = ruleset.charges(eom(), T0)
    assert charge.windows == (Limit(10, 60, 10), Limit(100, 86400, 100))
    assert charge.action == PolicyReply(Action.HOLD, "Rate limit exceeded")
    assert charge.rule is ruleset.rules[0]


# --- dedupe -----------------------------------------------------------------------------------


def admit(ruleset: RuleSet, request: PolicyRequest, now: float = T0) -> list[tuple[str, str, int]]:
    """Charge ``request`` and record it as admitted, as the server does when the mail goes on."""
    charges = ruleset.charges(request, now)
    ruleset.record(request, charges, now)
    return [(c.rule.name, c.key, c.cost) for c in charges]


def test_one_message_is_counted_once() -> None:
    ruleset = mixed()
    first = [("rcpt", "alice", 1), ("ext", "alice", 1)]
    assert admit(ruleset, rcpt("a@gmail.com", instance="1.1")) == first
    # The same RCPT again (Postfix retrying after a policy timeout), another case of it,
    # and a second recipient in the same domain.
    assert admit(ruleset, rcpt("a@gmail.com", instance="1.1")) == []
    assert admit(ruleset, rcpt("A@GMAIL.COM", instance="1.1")) == []
    assert admit(ruleset, rcpt("b@gmail.com", instance="1.1")) == [("rcpt", "alice", 1)]
    assert admit(ruleset, req("DATA", recipient_count="2", instance="1.1")) == [
        ("msg-data", "alice@example.com", 1)
    ]
    assert admit(ruleset, req("DATA", recipient_count="2", instance="1.1")) == []
    expected = [
        ("msg-eom", "alice", 1),
        ("rcpt-accepted", "alice", 2),
        ("bytes", "203.0.113.45", 2048),
    ]
    assert admit(ruleset, eom(count=2, instance="1.1")) == expected
    assert admit(ruleset, eom(count=2, instance="1.1")) == []
    # The next message on the connection has a new instance and counts again, except the
    # external domain already counted within the window.
    assert admit(ruleset, rcpt("a@gmail.com", instance="1.2")) == [("rcpt", "alice", 1)]
    assert admit(ruleset, eom(count=1, instance="1.2")) == [
        ("msg-eom", "alice", 1),
        ("rcpt-accepted", "alice", 1),
        ("bytes", "203.0.113.45", 2048),
    ]


def test_refused_charges_are_charged_again() -> None:
    ruleset = rules(rule("sasl_username", "recipients"), rule("sasl_username", "messages"))
    first = ruleset.charges(rcpt("x@example.org", instance="7.1"), T0)
    assert [(c.key, c.cost) for c in first] == [("alice", 1)]
    # Not recorded (the store refused it): the client's retry is charged again.
    assert summary(ruleset, rcpt("x@example.org", instance="7.1")) == [
        ("sasl_username-recipients", "alice", 1)
    ]
    assert summary(ruleset, eom(instance="7.1")) == [("sasl_username-messages", "alice", 1)]
    assert summary(ruleset, eom(instance="7.1")) == [("sasl_username-messages", "alice", 1)]


def test_no_instance_no_dedupe() -> None:
    ruleset = rules(rule("sasl_username", "messages"))
    assert admit(ruleset, eom(instance="")) == [("sasl_username-messages", "alice", 1)]
    assert admit(ruleset, eom(instance="")) == [("sasl_username-messages", "alice", 1)]


def test_instance_memory_is_bounded_lru() -> None:
    ruleset = rules(rule("sasl_username", "messages"))
    ruleset = RuleSet(ruleset.rules, instance_memory=2)
    one = [("sasl_username-messages", "alice", 1)]
    assert admit(ruleset, eom(instance="a")) == one
    assert admit(ruleset, eom(instance="b")) == one
    assert admit(ruleset, eom(instance="a")) == []  # refreshes "a"
    assert admit(ruleset, eom(instance="c")) == one  # evicts "b", the least recently used
    assert admit(ruleset, eom(instance="a")) == []
    assert admit(ruleset, eom(instance="b")) == one


def test_external_domains_window_and_keys() -> None:
    ruleset = rules(
        rule("sasl_username", "external_domains", windows=["50/hour", "200/day"]),
        local=["example.com"],
    )
    ext = [("sasl_username-external_domains", "alice", 1)]
    assert admit(ruleset, rcpt("a@gmail.com", instance="1")) == ext
    assert admit(ruleset, rcpt("b@gmail.com", instance="2"), T0 + 3600) == []
    # Another user is a separate key; the span is the longest window (one day).
    assert admit(ruleset, rcpt("a@gmail.com", instance="3", sasl_username="bob")) == [
        ("sasl_username-external_domains", "bob", 1)
    ]
    assert admit(ruleset, rcpt("c@gmail.com", instance="4"), T0 + 86399) == []
    assert admit(ruleset, rcpt("c@gmail.com", instance="5"), T0 + 86399 + 86400) == ext
    assert admit(ruleset, rcpt("c@sub.example.com", instance="6")) == []


def test_external_domain_memory_is_bounded() -> None:
    base = rules(rule("sasl_username", "external_domains"), local=["example.com"])
    ruleset = RuleSet(base.rules, base.local_domains, domain_memory=2)
    ext = [("sasl_username-external_domains", "alice", 1)]
    assert admit(ruleset, rcpt("a@one.org")) == ext
    assert admit(ruleset, rcpt("a@two.org")) == ext
    assert admit(ruleset, rcpt("b@one.org")) == []  # refreshes one.org
    assert admit(ruleset, rcpt("a@three.org")) == ext  # evicts two.org
    assert admit(ruleset, rcpt("b@two.org")) == ext  # forgotten: counted again (strict side)
    assert admit(ruleset, rcpt("c@three.org")) == []
