"""Detectors on hand-built event streams: thresholds, baselines, no double counting."""

from __future__ import annotations

from relayguard.analysis.engine import Analyzer
from relayguard.config import Config, with_overrides
from relayguard.findings import Finding, Severity
from relayguard.logs import events as E
from relayguard.logs.events import Event
from tests.analysis.factory import T0, ev, message, run

HOUR = 3600.0
LISA = "lisa@example.org"


def indicators(result: object) -> list[tuple[str, str]]:
    return [(f.indicator, f.subject.value) for f in result.findings]  # type: ignore[attr-defined]


def test_steady_newsletter_is_not_a_spike_but_a_new_burst_is() -> None:
    events = []
    n = 0
    # 30 hours of a newsletter: 300 external recipients every hour (above the 200-message
    # and 50-domain ceilings), from the same authenticated user.
    for h in range(30):
        for i in range(300):
            n += 1
            events += message(
                T0 + h * HOUR + i,
                f"Q{n:09d}",
                [f"r{i}@d{i % 60}.example"],
                user="news@example.org",
                sender="news@example.org",
            )
    result = run(events)
    assert [f for f in result.findings if f.indicator == "outbound-spike"] == []
    # the same stream plus a user who normally sends 2 mails an hour and then bursts
    for h in range(30):
        for i in range(2):
            n += 1
            events += message(
                T0 + h * HOUR + 1000 + i,
                f"Q{n:09d}",
                [f"x{i}@p.example"],
                user="dave@example.org",
                sender="dave@example.org",
            )
    for i in range(150):
        n += 1
        events += message(
            T0 + 30 * HOUR + i,
            f"Q{n:09d}",
            [f"v{i}@victim{i % 40}.example", f"w{i}@victim{(i + 1) % 40}.example"],
            user="dave@example.org",
            sender="dave@example.org",
        )
    events.sort(key=lambda e: e.time)
    result = run(events)
    spikes = [f for f in result.findings if f.indicator == "outbound-spike"]
    assert [(f.subject.kind, f.subject.value) for f in spikes] == [
        ("sasl_user", "dave@example.org")
    ]
    [spike] = spikes[0].details["spikes"]
    assert (spike["messages"], spike["recipients"], spike["domains"]) == (150, 300, 40)
    assert "usual 2" in spike["basis"]


def test_burst_without_history_is_judged_by_the_ceilings() -> None:
    events = []
    for i in range(210):
        events += message(
            T0 + i,
            f"Q{i:09d}",
            [f"a{i}@t{i % 10}.example"],
            user="new@example.org",
            sender="new@example.org",
        )
    result = run(events)
    [spike] = [f for f in result.findings if f.indicator == "outbound-spike"]
    assert spike.severity == Severity.HIGH
    assert spike.details["spikes"][0]["basis"] == "210 messages >= ceiling 200"
    assert result.verdict.value == "abused"


def test_disconnect_counters_add_only_unexplained_auth_failures() -> None:
    ip = "203.0.113.9"
    events = []
    t = T0
    for i in range(6):  # six sessions with an explicit failure line each: auth=0/1
        events.append(ev(E.CONNECT, t, pid=i, client_ip=ip))
        events.append(ev(E.AUTH_FAILURE, t, pid=i, client_ip=ip, sasl_username="bob@example.org"))
        events.append(ev(E.DISCONNECT, t, pid=i, client_ip=ip, auth_attempts=1, auth_failed=1))
        t += 1
    for i in range(6, 10):  # four sessions that aborted AUTH: no failure line, auth=0/1
        events.append(ev(E.CONNECT, t, pid=i, client_ip=ip))
        events.append(ev(E.DISCONNECT, t, pid=i, client_ip=ip, auth_attempts=1, auth_failed=1))
        t += 1
    result = run(events)
    [brute] = [f for f in result.findings if f.indicator == "auth-bruteforce"]
    assert (brute.subject.value, brute.count) == (ip, 10)
    assert brute.details["usernames"] == [{"value": "bob@example.org", "count": 6}]


def test_user_mistyping_on_a_usual_network_is_not_a_compromise() -> None:
    ip = "198.51.100.7"
    events = []
    for i in range(25):  # a history of logins from the office network
        events += message(
            T0 + i * 600,
            f"H{i:09d}",
            [f"p{i}@partner.example"],
            user="eve@example.org",
            sender="eve@example.org",
            ip=ip,
        )
    t = T0 + 30 * 600
    for _ in range(3):
        events.append(ev(E.AUTH_FAILURE, t, client_ip=ip, sasl_username="eve@example.org"))
        t += 5
    events += message(
        t + 10,
        "Q000000001",
        ["p@partner.example"],
        user="eve@example.org",
        sender="eve@example.org",
        ip=ip,
    )
    result = run(events)
    assert indicators(result) == []
    assert result.verdict.value == "clean"


def _spray_then_login(history: int, login_ip: str, tries: int = 20) -> list[Event]:
    events = []
    for i in range(history):  # frank's usual logins from the office
        events += message(
            T0 - 7200 + i * 60,
            f"H{i:09d}",
            ["p@partner.example"],
            user="frank@example.org",
            sender="frank@example.org",
            ip="198.51.100.4",
        )
    t = T0
    for i in range(3 * tries):  # three attackers, `tries` each against frank, and admin
        ip = f"203.0.113.{i % 3 + 1}"
        events.append(ev(E.AUTH_FAILURE, t, client_ip=ip, sasl_username="frank@example.org"))
        events.append(ev(E.AUTH_FAILURE, t, client_ip=ip, sasl_username="admin@example.org"))
        t += 2
    events += message(
        t + 60,
        "Q000000002",
        ["x@far.example"],
        user="frank@example.org",
        sender="frank@example.org",
        ip=login_ip,
    )
    return events


def _burst(events: list[Event], ip: str, n: int = 120) -> list[Event]:
    for i in range(n):  # external recipients within minutes of the login
        events += message(
            T0 + 200 + i,
            f"B{i:09d}",
            [f"v{i}@victim{i}.example"],
            user="frank@example.org",
            sender="frank@example.org",
            ip=ip,
        )
    return events


def compromised(events: list[Event]) -> list[Finding]:
    return [f for f in run(events).findings if f.indicator == "compromised-account"]


def test_targeted_attack_then_login_from_a_new_network_is_high() -> None:
    [comp] = compromised(_spray_then_login(5, "192.0.2.200", tries=20))  # 60 against frank
    assert comp.severity == Severity.HIGH
    assert comp.details["how"] == "after a targeted attack from other IPs"
    assert comp.details["messages_after"] == 1


def test_targeted_attack_then_first_login_seen_is_medium() -> None:
    [comp] = compromised(_spray_then_login(0, "192.0.2.200", tries=20))
    assert comp.severity == Severity.MEDIUM


def test_login_from_the_usual_network_while_attacked_is_not_a_compromise() -> None:
    assert compromised(_spray_then_login(5, "198.51.100.4", tries=20)) == []


def test_light_spraying_then_a_new_network_needs_a_burst() -> None:
    # one try per attacker against frank: background spraying, and frank on his phone
    assert compromised(_spray_then_login(5, "192.0.2.200", tries=1)) == []
    [comp] = compromised(_burst(_spray_then_login(5, "192.0.2.200", tries=1), "192.0.2.200"))
    assert comp.severity == Severity.HIGH
    assert comp.details["how"] == (
        "a new network after failed logins, then a burst of 100 external recipients"
    )
    assert comp.details["messages_after"] == 121
    assert comp.details["external_recipients_after"] == 121


def test_open_relay_use_ignores_trusted_and_authenticated_clients() -> None:
    events = []
    events += message(T0, "Q1", ["a@ext.example"], sender="x@spam.example", ip="203.0.113.50")
    events += message(
        T0 + 1,
        "Q2",
        ["b@ext.example"],
        sender="me@example.org",
        user="me@example.org",
        ip="203.0.113.51",
    )
    events += message(T0 + 2, "Q3", ["c@ext.example"], sender="me@example.org", ip="127.0.0.1")
    events += message(T0 + 3, "Q4", ["me@example.org"], sender="x@spam.example", ip="203.0.113.52")
    cfg = with_overrides(Config(), local_domains=["example.org"], trusted_networks=["127.0.0.1/32"])
    a = Analyzer(cfg)
    a.feed_all(events)
    result = a.finish()
    relays = [f.subject.value for f in result.findings if f.indicator == "open-relay-use"]
    assert relays == ["203.0.113.50"]


def test_attacks_alone_make_a_server_suspicious_never_abused() -> None:
    events = [
        ev(E.AUTH_FAILURE, T0 + i, client_ip="203.0.113.9", sasl_username=f"u{i % 7}@example.org")
        for i in range(500)
    ]
    result = run(events)
    [brute] = [f for f in result.findings if f.subject.kind == "ip"]
    assert brute.severity == Severity.HIGH  # 500 failures: a heavy attack...
    assert result.verdict.value == "suspicious"  # ...but no sign mail is leaving


def test_phone_retrying_an_old_password_from_the_office_is_not_a_compromise() -> None:
    ip = "192.0.2.50"
    events = []
    for i in range(36):  # six days of logins from the office
        events += message(T0 + i * 14400, f"H{i:09d}", ["p@partner.example"],
                          user=LISA, sender=LISA, ip=ip)  # fmt: skip
    t = T0 + 36 * 14400
    for i in range(12):  # one failure every five minutes: the phone with the old password
        events.append(ev(E.AUTH_FAILURE, t + i * 300, client_ip=ip, sasl_username=LISA))
    events += message(t + 3700, "Q000000009", ["p@partner.example"], user=LISA,
                      sender="lisa@example.org", ip=ip)  # fmt: skip
    result = run(events)
    assert [f.indicator for f in result.findings] == ["auth-bruteforce"]
    assert result.verdict.value == "suspicious"


def test_a_login_after_a_few_failures_with_nothing_sent_is_only_medium() -> None:
    events = [
        ev(E.AUTH_FAILURE, T0 + i, client_ip="203.0.113.7", sasl_username=f"u{i}@example.org")
        for i in range(4)
    ]
    events.append(ev(E.AUTH_SUCCESS, T0 + 60, client_ip="203.0.113.7",
                     sasl_username="test@example.org", queue_id=None))  # fmt: skip
    [comp] = [f for f in run(events).findings if f.indicator == "compromised-account"]
    assert comp.severity == Severity.MEDIUM
    assert comp.details["how"] == "an attacking IP: 4 failed logins against 4 accounts"


def test_a_message_put_back_by_a_content_filter_is_counted_once() -> None:
    events = []
    for i in range(260):  # erin's burst, then the same messages again from the filter on loopback
        first, again = f"A{i:09d}", f"B{i:09d}"
        mid = f"<m{i}@example.org>"
        events += message(T0 + i, first, [f"v{i}@d{i}.example"], user="erin@example.org",
                          sender="erin@example.org", ip="203.0.113.66")  # fmt: skip
        events.insert(
            -3, ev(E.MESSAGE_ID, T0 + i, "postfix/cleanup", queue_id=first, message_id=mid)
        )
        events += message(T0 + i + 1, again, [f"v{i}@d{i}.example"], sender="erin@example.org",
                          ip="127.0.0.1")  # fmt: skip
        events.insert(-3, ev(E.MESSAGE_ID, T0 + i + 1, "postfix-out/cleanup", queue_id=again,
                             message_id=mid))  # fmt: skip
    result = run(events)
    assert result.traffic.external_recipients == 260
    spikes = [
        (f.subject.kind, f.subject.value)
        for f in result.findings
        if f.indicator == "outbound-spike"
    ]
    assert spikes == [("sasl_user", "erin@example.org")]


def test_a_botnet_failing_once_per_address_is_a_distributed_brute_force() -> None:
    def failures(n: int) -> list[Event]:
        return [
            ev(E.AUTH_FAILURE, T0 + i * 5, client_ip=f"198.18.{i // 250}.{i % 250 + 1}")
            for i in range(n)
        ]

    [f] = run(failures(400)).findings
    assert (f.indicator, f.subject.kind, f.severity) == ("auth-bruteforce", "host", Severity.HIGH)
    assert (
        f.title
        == "distributed brute force: 400 failed SASL logins from 400 addresses within an hour"
    )
    assert run(failures(400)).verdict.value == "suspicious"
    assert run(failures(250)).findings == []  # below 300 in an hour
