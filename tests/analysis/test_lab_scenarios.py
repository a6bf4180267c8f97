"""End to end on the real lab logs, as the lab server's admin would run it."""

from __future__ import annotations

from typing import Any

from tests.conftest import LAB

ADMIN = ("--local-domain", "lab.test", "--trusted-network", "127.0.0.1/32")


def analyze(relayguard: Any, *names: str) -> Any:
    files = [str(next(LAB.glob(f"{n}_*.log"))) for n in names]
    run = relayguard("analyze", "--json", *ADMIN, *files)
    assert run.err == ""
    doc = run.json
    assert doc["schema"] == "relayguard.analyze/1"
    assert doc["stats"]["lines_unparsed"] == 0
    return run.code, doc


def by(doc: Any, indicator: str) -> list[Any]:
    return [f for f in doc["findings"] if f["indicator"] == indicator]


def test_bruteforce_then_spam_is_a_compromised_account(relayguard: Any) -> None:
    code, doc = analyze(relayguard, "03", "04")
    assert (code, doc["verdict"]) == (2, "abused")
    [comp] = by(doc, "compromised-account")
    assert comp["subject"] == {"kind": "sasl_user", "value": "alice@lab.test"}
    assert comp["severity"] == "critical"
    d = comp["details"]
    assert d["login_ip"] == "127.0.0.66"
    assert d["how"] == "an attacking IP: 41 failed logins against 6 accounts"
    # 03 attacks alice from two addresses: 15 failures from .66, 20 from .67
    assert d["failures_before"] == 35
    assert sorted(d["failing_ips"], key=lambda x: x["value"]) == [
        {"value": "127.0.0.66", "count": 15},
        {"value": "127.0.0.67", "count": 20},
    ]
    # 201 messages: the attacker's first test message to friend@mailbox1.example, then 200
    assert d["messages_after"] == 201
    assert d["external_recipients_after"] == 627
    assert d["recipient_domains_after"] == 68
    texts = [e["text"] for e in comp["timeline"]]
    assert texts[0].startswith("first of ")
    assert any(t.startswith("successful login as alice@lab.test from 127.0.0.66") for t in texts)
    # the brute force itself, and the spam run, are in the same incident
    brute = {f["subject"]["value"]: f["count"] for f in by(doc, "auth-bruteforce")}
    assert brute == {"127.0.0.66": 41, "127.0.0.67": 20}
    incident = doc["incidents"][0]
    indicators = {doc["findings"][i]["indicator"] for i in incident["findings"]}
    assert {"compromised-account", "auth-bruteforce", "outbound-spike"} <= indicators


def test_bruteforce_alone_is_suspicious_not_abused(relayguard: Any) -> None:
    code, doc = analyze(relayguard, "03")
    assert (code, doc["verdict"]) == (1, "suspicious")
    assert by(doc, "compromised-account") == []
    brute = {f["subject"]["value"]: f["count"] for f in by(doc, "auth-bruteforce")}
    # two attacking addresses only: below the 3-address spraying threshold
    assert brute == {"127.0.0.66": 41, "127.0.0.67": 20}


def test_open_relay_via_mynetworks(relayguard: Any) -> None:
    code, doc = analyze(relayguard, "05")
    assert (code, doc["verdict"]) == (2, "abused")
    relays = by(doc, "open-relay-use")
    assert [f["subject"]["value"] for f in relays] == ["127.0.0.9"]
    assert relays[0]["severity"] == "critical"


def test_open_relay_via_access_map(relayguard: Any) -> None:
    code, doc = analyze(relayguard, "06")
    assert (code, doc["verdict"]) == (2, "abused")
    assert [f["subject"]["value"] for f in by(doc, "open-relay-use")] == ["127.0.0.10"]


def test_closed_relay_probing_is_at_most_suspicious(relayguard: Any) -> None:
    code, doc = analyze(relayguard, "02")
    assert doc["verdict"] in ("clean", "suspicious")
    assert code in (0, 1)
    [probe] = by(doc, "relay-probing")
    assert probe["subject"] == {"kind": "ip", "value": "127.0.0.2"}
    assert probe["count"] == 50
    assert by(doc, "open-relay-use") == []


def test_bounces_are_reported(relayguard: Any) -> None:
    _, doc = analyze(relayguard, "07")
    [ndr] = by(doc, "ndr-flood")
    assert ndr["details"]["ndrs"] == doc["stats"]["ndrs"]
    assert ndr["details"]["backscatter"] == 3
    assert ndr["details"]["backscatter_domains"] == [{"value": "innocent.example", "count": 3}]


def test_queue_buildup_while_the_next_hop_is_down(relayguard: Any) -> None:
    _, doc = analyze(relayguard, "08")
    [q] = by(doc, "queue-buildup")
    assert q["details"]["peak_deferred"] == 100
    assert q["details"]["deferred_at_end"] == 100


def test_queue_recovers_after_flush(relayguard: Any) -> None:
    _, doc = analyze(relayguard, "08", "09")
    [q] = by(doc, "queue-buildup")
    assert q["details"]["peak_deferred"] == 100
    # the flush delivered all 100; one new message to tempfail-me@ is deferred at the end
    assert q["details"]["deferred_at_end"] == 1
    assert "1 still deferred" in q["title"]


def test_benign_office_log_is_clean(relayguard: Any) -> None:
    log = str(LAB.parent / "benign" / "steady_office.log")
    for args in (("--local-domain", "example.org"), ()):
        run = relayguard("analyze", "--json", "--year", "2026", *args, log)
        doc = run.json
        assert (run.code, doc["verdict"]) == (0, "clean"), doc["findings"]
        assert doc["findings"] == []
        assert doc["stats"]["auth_failures"] == 1
        assert doc["stats"]["lines_unparsed"] == 0
