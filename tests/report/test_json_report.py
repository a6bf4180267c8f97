"""``relayguard.analyze/1``: exact keys and values, and a faithful round trip."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path, PurePosixPath
from typing import Any

from relayguard import mitigations
from relayguard.analysis.result import Incident
from relayguard.findings import Finding, Severity, Subject, Verdict
from relayguard.mitigations import CATALOGUE
from relayguard.report import json_report
from relayguard.report.json_report import dumps, in_report_order, summary, to_json
from tests.report.test_terminal import (
    BRUTE_EVIDENCE,
    ESC_SENDER,
    HUGE,
    MARKUP_HELO,
    clean_result,
    compromised,
    hostile,
)

TOP_KEYS = {
    "schema",
    "verdict",
    "exit_code",
    "errors",
    "summary",
    "findings",
    "incidents",
    "stats",
    "mitigations",
}


def test_compromised_top_level() -> None:
    doc = to_json(compromised())
    assert set(doc) == TOP_KEYS | {"unparsed_samples"}
    assert doc["schema"] == "relayguard.analyze/1"
    assert doc["verdict"] == "abused"
    assert doc["exit_code"] == 2
    assert doc["errors"] == []
    assert doc["summary"] == "Account alice@lab.test was broken into and sends spam"
    assert doc["unparsed_samples"] == ["Dec 03 16:17:40 mail postfix/anvil[31]: something new"]


def test_compromised_findings_keep_result_order() -> None:
    doc = to_json(compromised())
    assert [f["indicator"] for f in doc["findings"]] == ["auth-bruteforce", "outbound-spike"]
    brute = doc["findings"][0]
    assert brute == {
        "indicator": "auth-bruteforce",
        "severity": "high",
        "subject": {"kind": "ip", "value": "127.0.0.66"},
        "title": "312 failed SASL logins from 127.0.0.66 for 2 accounts",
        "first_seen": "2026-12-03T16:17:46Z",
        "last_seen": "2026-12-03T16:18:10Z",
        "count": 312,
        "evidence": BRUTE_EVIDENCE,
        "mitigations": ["limit-auth-attempts", "ban-ip"],
        "timeline": [],
        "details": {
            "failures": 312,
            "accounts": ["alice@lab.test", "info@lab.test"],
            "per_minute": 780.5,
        },
        "related": [{"kind": "sasl_user", "value": "alice@lab.test"}],
    }


def test_compromised_incident() -> None:
    doc = to_json(compromised())
    actions = doc["incidents"][0].pop("actions")
    assert [a["mitigation"] for a in actions] == [
        "reset-password",
        "hold-queued-mail",
        "rate-limit-outbound",
        "limit-auth-attempts",
        "ban-ip",
    ]
    assert doc["incidents"] == [
        {
            "id": "I1",
            "title": "Account alice@lab.test was broken into and sends spam",
            "severity": "critical",
            "subjects": [
                {"kind": "sasl_user", "value": "alice@lab.test"},
                {"kind": "ip", "value": "127.0.0.66"},
            ],
            # The incident tells the spike first: indexes point into findings[].
            "findings": [1, 0],
            "mitigations": [
                "reset-password",
                "hold-queued-mail",
                "rate-limit-outbound",
                "limit-auth-attempts",
                "ban-ip",
            ],
            "timeline": [
                {"time": "2026-12-03T16:17:46Z", "text": "first failed login from 127.0.0.66"},
                {"time": "2026-12-03T16:18:19Z", "text": "127.0.0.66 logged in as alice@lab.test"},
                {"time": "2026-12-03T16:19:00Z", "text": "200 messages sent to 57 domains"},
            ],
            "first_seen": "2026-12-03T16:17:46Z",
            "last_seen": "2026-12-03T16:19:00Z",
        }
    ]


def test_compromised_stats() -> None:
    assert to_json(compromised())["stats"] == {
        "sources": ["/var/log/mail.log"],
        "bytes_read": 250_000,
        "lines_read": 1500,
        "lines_parsed": 1490,
        "lines_unparsed": 10,
        "lines_bad_timestamp": 2,
        "lines_truncated": 0,
        "lines_empty": 0,
        "by_mta": {"postfix": 1490, "exim": 0},
        "first_time": "2026-12-03T16:17:40Z",
        "last_time": "2026-12-03T16:19:05Z",
        "messages": 200,
        "recipients": 200,
        "external_recipients": 200,
        "delivered": 198,
        "deferred": 2,
        "bounced": 0,
        "rejected": 0,
        "relay_denied": 0,
        "auth_failures": 312,
        "auth_successes": 200,
        "ndrs": 0,
        "incomplete_messages": 0,
        "local_domains": ["lab.test"],
        "local_domains_inferred": True,
        "top": {
            "sasl_users": [{"value": "alice@lab.test", "count": 200}],
            "client_ips": [{"value": "127.0.0.66", "count": 512}],
            "recipient_domains": [
                {"value": "mailbox36.example", "count": 9},
                {"value": "mailbox1.example", "count": 7},
            ],
        },
    }


def test_compromised_mitigations_are_catalogue_entries_in_first_use_order() -> None:
    mitigations = to_json(compromised())["mitigations"]
    assert [m["id"] for m in mitigations] == [
        "reset-password",
        "hold-queued-mail",
        "rate-limit-outbound",
        "limit-auth-attempts",
        "ban-ip",
    ]
    ban = CATALOGUE["ban-ip"]
    assert mitigations[4] == {
        "id": "ban-ip",
        "title": "Block the attacking IP",
        "why": ban.why,
        "postfix": list(ban.postfix),
        "exim": list(ban.exim),
    }
    # The top-level entries are the templates; incidents carry them filled in.
    assert mitigations[4]["postfix"][1] == "fail2ban-client set postfix-sasl banip <ip>"


def test_round_trip_is_exact() -> None:
    for result in (compromised(), clean_result(), hostile()):
        assert json.loads(dumps(result)) == to_json(result)


def test_clean_result() -> None:
    doc = to_json(clean_result())
    assert set(doc) == TOP_KEYS
    assert doc["verdict"] == "clean"
    assert doc["exit_code"] == 0
    assert doc["errors"] == []
    assert doc["summary"] == "No sign of relay abuse in 1,000 lines."
    assert doc["findings"] == []
    assert doc["incidents"] == []
    assert doc["mitigations"] == []
    assert doc["stats"]["top"] == {}
    assert doc["stats"]["lines_read"] == 1000


def test_hostile_strings_are_kept_exactly_and_output_is_ascii() -> None:
    result = hostile()
    text = dumps(result)
    assert text.isascii()
    assert "\x1b" not in text
    doc = json.loads(text)
    finding = doc["findings"][0]
    assert finding["subject"] == {"kind": "sender", "value": ESC_SENDER}
    assert finding["evidence"][1] == "line one\nline two\r\x00\x9b2J\u202eevil\udcff"
    assert finding["evidence"][2] == HUGE
    assert finding["details"]["helo"] == MARKUP_HELO
    # Unknown ids stay in the finding but only catalogue entries are listed.
    assert finding["mitigations"] == ["no-such-fix", "check-blocklists"]
    assert [m["id"] for m in doc["mitigations"]] == ["check-blocklists"]
    assert doc["stats"]["top"]["senders"][0] == {"value": ESC_SENDER, "count": 3}
    assert doc["unparsed_samples"] == [ESC_SENDER, HUGE]
    assert doc["verdict"] == "suspicious"
    assert doc["exit_code"] == 1
    assert doc["summary"] == f"sender {ESC_SENDER} via helo {MARKUP_HELO}"


def test_details_become_plain_json() -> None:
    result = clean_result()
    result.findings.append(
        Finding(
            indicator="queue-buildup",
            severity=Severity.LOW,
            subject=Subject("host", "mail"),
            title="t",
            details={
                "ips": {"203.0.113.9", "198.51.100.7"},
                "window": (60, 3600),
                "ratio": math.nan,
                "rate": math.inf,
                "path": PurePosixPath("/var/spool/postfix"),
                7: "int key",  # type: ignore[dict-item]
                "nested": {"a": [{"b"}]},
            },
        )
    )
    result.extra["why"] = {("a", "b")}
    doc = json.loads(dumps(result))
    assert doc["findings"][0]["details"] == {
        "ips": ["198.51.100.7", "203.0.113.9"],
        "window": [60, 3600],
        "ratio": None,
        "rate": None,
        "path": "/var/spool/postfix",
        "7": "int key",
        "nested": {"a": [["b"]]},
    }
    assert doc["extra"] == {"why": [["a", "b"]]}
    assert doc["summary"] == "No sign of relay abuse in 1,000 lines; 1 low-severity note below."


def test_finding_only_in_an_incident_is_appended_and_indexed() -> None:
    result = compromised()
    spike = result.findings.pop()  # still referenced by the incident
    doc = to_json(result)
    assert [f["indicator"] for f in doc["findings"]] == ["auth-bruteforce", "outbound-spike"]
    assert doc["incidents"][0]["findings"] == [1, 0]
    assert doc["findings"][1] == spike.to_json()


def test_report_order_incidents_first_then_the_rest() -> None:
    result = compromised()
    extra = Finding(
        indicator="relay-probing",
        severity=Severity.LOW,
        subject=Subject("ip", "203.0.113.9"),
        title="probe",
        mitigations=["block-relay-probers"],
    )
    result.findings.insert(0, extra)
    assert [f.indicator for f in in_report_order(result)] == [
        "outbound-spike",
        "auth-bruteforce",
        "relay-probing",
    ]
    assert [m["id"] for m in to_json(result)["mitigations"]][-1] == "block-relay-probers"


def test_summary_picks_the_worst() -> None:
    result = compromised()
    result.incidents[0].severity = Severity.HIGH
    assert summary(result) == "Account alice@lab.test was broken into and sends spam"
    result.incidents.clear()
    assert summary(result) == "alice@lab.test sent 200 messages to 57 domains in 41 seconds"
    empty = clean_result()
    empty.input.lines_read = 0
    assert summary(empty) == "No log lines were read."


def test_dumps_indent() -> None:
    assert dumps(clean_result(), indent=None).startswith('{"schema": "relayguard.analyze/1", ')
    assert dumps(clean_result()).startswith('{\n  "schema": "relayguard.analyze/1",\n')


def test_traffic_counters_cover_every_traffic_field() -> None:
    from dataclasses import fields

    from relayguard.analysis.result import TrafficStats

    numeric = {f.name for f in fields(TrafficStats) if f.type == "int"}
    assert set(json_report.TRAFFIC_COUNTERS) == numeric


DOC = Path(__file__).resolve().parents[2] / "docs" / "analyze-json.md"


def _doc_example() -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    block = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    example: dict[str, Any] = json.loads(block)
    return example


def _documented_fields(section: str) -> set[str]:
    """Field names in the table under ``## <section>`` of the schema document."""
    text = DOC.read_text(encoding="utf-8").split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in text.splitlines():
        if row.startswith("| `"):
            names.update(re.findall(r"`([a-z_]+)`", row.split("|")[1]))
    return names


def test_doc_example_has_the_shape_of_real_output() -> None:
    example = _doc_example()
    real = to_json(compromised())
    assert example["schema"] == "relayguard.analyze/1"
    assert set(example) == set(real)
    assert set(example["stats"]) == set(real["stats"])
    assert set(example["incidents"][0]) == set(real["incidents"][0])
    assert set(example["incidents"][0]["actions"][0]) == set(real["incidents"][0]["actions"][0])
    assert set(example["findings"][0]) == set(real["findings"][0])
    assert set(example["mitigations"][0]) == set(real["mitigations"][0])
    # The example's mitigations are the current catalogue text, and its actions are those of
    # the same incident (alice@lab.test from 127.0.0.66).
    for entry in example["mitigations"]:
        assert (
            entry == real["mitigations"][[m["id"] for m in real["mitigations"]].index(entry["id"])]
        )
    real_actions = {a["mitigation"]: a for a in real["incidents"][0]["actions"]}
    for action in example["incidents"][0]["actions"]:
        assert action == real_actions[action["mitigation"]]


def test_every_field_is_documented() -> None:
    real = to_json(compromised())
    assert _documented_fields("Top level") == set(real) | {"extra"}
    assert _documented_fields("finding") == set(real["findings"][0])
    assert _documented_fields("incident") == set(real["incidents"][0])
    assert _documented_fields("stats") == set(real["stats"])
    assert _documented_fields("mitigation") == set(real["mitigations"][0])
    assert _documented_fields("action") == set(real["incidents"][0]["actions"][0])


def test_every_placeholder_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8").split("\n## mitigation\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(<[a-z_]+>)` \|", text, flags=re.M))
    assert documented == set(mitigations.PLACEHOLDERS)


# --- errors, exit code, per-incident actions ----------------------------------------------------


def test_errors_make_exit_code_3_and_keep_the_verdict() -> None:
    result = compromised()
    result.errors = ["cannot read /var/log/mail.log.2.gz: not a gzip file"]
    doc = to_json(result)
    assert doc["verdict"] == "abused"
    assert doc["exit_code"] == 3
    assert doc["errors"] == ["cannot read /var/log/mail.log.2.gz: not a gzip file"]
    clean = clean_result()
    clean.errors = ["cannot read /var/log/mail.log: permission denied"]
    doc = json.loads(dumps(clean))
    assert (doc["verdict"], doc["exit_code"]) == ("clean", 3)


def test_lines_empty_in_stats() -> None:
    result = clean_result()
    result.input.lines_read, result.input.lines_empty = 1003, 3
    stats = to_json(result)["stats"]
    assert (stats["lines_read"], stats["lines_parsed"], stats["lines_empty"]) == (1003, 1000, 3)


def test_compromised_actions_are_filled_in() -> None:
    actions = {a["mitigation"]: a for a in to_json(compromised())["incidents"][0]["actions"]}
    assert actions["reset-password"]["postfix"][:3] == [
        "# Cyrus sasldb: set a new password for alice@lab.test\nsaslpasswd2 -c -u lab.test alice",
        "# Dovecot SASL: make a new hash for the passwd-file / SQL user entry\n"
        "doveadm pw -s SHA512-CRYPT",
        "doveadm kick alice@lab.test",
    ]
    assert actions["ban-ip"] == {
        "mitigation": "ban-ip",
        "postfix": [
            "# at the firewall, every port (for an IPv6 address: ip6tables)\n"
            "iptables -I INPUT -s 127.0.0.66 -j DROP",
            "fail2ban-client set postfix-sasl banip 127.0.0.66",
            "echo '127.0.0.66 REJECT' >> /etc/postfix/client_access.cidr",
            'postconf -e "smtpd_client_restrictions = check_client_access '
            'cidr:/etc/postfix/client_access.cidr, $(postconf -h smtpd_client_restrictions)"',
            "postfix reload",
        ],
        "exim": [
            "# at the firewall, every port (for an IPv6 address: ip6tables)\n"
            "iptables -I INPUT -s 127.0.0.66 -j DROP",
            "fail2ban-client set exim banip 127.0.0.66",
            "echo '127.0.0.66' >> /etc/exim4/blocked_hosts",
            "# first statement of acl_smtp_connect\n"
            "drop    hosts   = /etc/exim4/blocked_hosts\n"
            "        message = blocked",
        ],
    }
    # Placeholders the incident does not pin down stay.
    hold = actions["hold-queued-mail"]["postfix"]
    assert hold[0] == (
        "postqueue -j | jq -r 'select(.sender == \"<sender>\") | .queue_id' | postsuper -h -"
    )
    assert "echo 'alice@lab.test HOLD' >> /etc/postfix/sasl_access" in hold[3]


def test_hostile_login_stays_a_placeholder_in_actions() -> None:
    hostile_login = "a';rm -rf /'@x"
    finding = Finding(
        indicator="compromised-account",
        severity=Severity.CRITICAL,
        subject=Subject("sasl_user", hostile_login),
        title="t",
        mitigations=["reset-password", "ban-ip", "unknown-id"],
        details={"login_ip": "127.0.0.66"},
    )
    result = clean_result()
    result.verdict = Verdict.ABUSED
    result.findings.append(finding)
    result.incidents.append(
        Incident(
            id="I1",
            title="t",
            severity=Severity.CRITICAL,
            subjects=[finding.subject],
            findings=[finding],
            timeline=[],
        )
    )
    doc = json.loads(dumps(result))
    (incident,) = doc["incidents"]
    # Unknown ids are listed but have no action.
    assert incident["mitigations"] == ["reset-password", "ban-ip", "unknown-id"]
    reset, ban = incident["actions"]
    assert reset["postfix"][2] == "doveadm kick <login>"
    assert not any(
        "rm -rf" in step for a in incident["actions"] for step in a["postfix"] + a["exim"]
    )
    assert ban["postfix"][1] == "fail2ban-client set postfix-sasl banip 127.0.0.66"
    # The subject itself is kept exactly, as every log-derived string in the JSON.
    assert doc["findings"][0]["subject"]["value"] == hostile_login


def test_summary_of_a_clean_verdict_with_errors_says_what_it_covers() -> None:
    result = clean_result()
    result.errors = ["cannot read /var/log/mail.log.1: permission denied"]
    assert summary(result) == (
        "No sign of relay abuse in the 1,000 lines understood, but input is missing."
    )
    result.input.lines_parsed = 0
    assert summary(result) == "No line of the input was understood as a mail log."
    result.input.lines_read = 0
    assert summary(result) == "No log lines were read."
