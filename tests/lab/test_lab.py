"""The mail lab itself: every relay mode answers as real Postfix does, and the analyzer finds
the abuse in the log the lab really wrote (real traffic -> real log -> findings)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.lab import scenarios
from tests.lab.client import Session, Transcript
from tests.lab.config import TESTER_ADDRESS
from tests.lab.fixtures import gate
from tests.lab.postfix import MailLab
from tests.lab.sink import SmtpSink
from tests.ports import free_port

DENIED = "554 5.7.1 <user@external.example>: Relay access denied"
QUEUED = "250 2.1.5 Ok"
ALICE, ALICE_PW = "alice@lab.test", "S3cret-pass"


def text(reply: object) -> str:
    return str(reply)


def message_of(line: str) -> str:
    """``Dec 03 16:17:25 mail postfix/smtpd[27951]: MESSAGE`` -> ``MESSAGE``."""
    return line.split("]: ", 1)[1]


def relayed(lab: MailLab, run: Transcript, mark: int) -> list[str]:
    """Wait for the delivery of the run's message; the envelope recipients the sink got."""
    [qid] = run.queue_ids
    lab.wait_removed([qid], since=mark)
    found = [m for m in lab.sink_messages() if qid in m.data.decode(errors="replace")]
    return [r for m in found for r in m.rcpts]


@pytest.fixture
def lab(mail_lab: MailLab) -> MailLab:
    """The session's lab, back in closed mode."""
    mail_lab.set_mode("closed")
    return mail_lab


# -- when the lab runs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("root", "missing", "ci", "action", "why"),
    [
        (True, [], False, "run", ""),
        (True, [], True, "run", ""),
        (False, [], False, "skip", "the mail lab needs root (it runs a private Postfix instance)"),
        (True, ["postfix", "saslpasswd2"], False, "skip",
         "the mail lab needs postfix, saslpasswd2: run scripts/install-test-deps"),
        (True, ["postfix"], True, "fail",
         "mail lab unavailable on CI: the mail lab needs postfix: run scripts/install-test-deps"),
        (False, [], True, "fail", "mail lab unavailable on CI: the mail lab needs root"
         " (it runs a private Postfix instance)"),
    ],
)  # fmt: skip
def test_gate(root: bool, missing: list[str], ci: bool, action: str, why: str) -> None:
    assert gate(root, missing, ci) == (action, why)


# -- the instance -------------------------------------------------------------------------


def test_instance_is_private_and_fast(lab: MailLab) -> None:
    assert lab.startup_seconds < 5
    assert len({lab.smtp_port, lab.submission_port, lab.sink_port}) == 3
    assert lab.master_pid() in lab.processes()
    assert lab.postconf("-h", "config_directory").strip() == str(lab.config_dir)
    assert lab.postconf("-h", "maillog_file").strip() == str(lab.maillog)
    assert "daemon started -- version" in lab.log_text()
    # chroot is off for every service (a chrooted smtpd could not read the sasldb)
    assert {f.split()[4] for f in lab.postconf("-M").splitlines()} == {"n"}


# -- closed -------------------------------------------------------------------------------


def test_closed_refuses_unauthenticated_relay(lab: MailLab) -> None:
    mark = lab.mark()
    run = lab.send("127.0.0.2", "spammer@evil.example", ["user@external.example"])
    assert [text(r) for r in run.rcpt] == [DENIED]
    assert run.data is None
    line = lab.wait_for_log("Relay access denied", since=mark)
    assert message_of(line) == (
        "NOQUEUE: reject: RCPT from unknown[127.0.0.2]: " + DENIED + ";"
        " from=<spammer@evil.example> to=<user@external.example> proto=ESMTP"
        " helo=<client.example>"
    )


def test_closed_accepts_local_delivery(lab: MailLab) -> None:
    mark = lab.mark()
    run = lab.send("127.0.0.2", "friend@outside.example", [ALICE], subject="hello alice")
    assert [text(r) for r in run.rcpt] == [QUEUED]
    assert run.accepted
    [qid] = run.queue_ids
    lab.wait_removed([qid], since=mark)
    [delivery] = [x for x in lab.log_lines_since(mark) if f"{qid}: to=<{ALICE}>" in x]
    assert "status=sent (delivered to file: " in delivery
    assert f"{lab.root}/mail/alice.mbox" in delivery
    assert "Subject: hello alice" in lab.mailbox("alice")


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_relays_to_the_sink(lab: MailLab, mechanism: str) -> None:
    mark = lab.mark()
    rcpt = f"friend-{mechanism.lower()}@mailbox1.example"
    run = lab.send("127.0.0.5", ALICE, [rcpt], user=ALICE, password=ALICE_PW, mechanism=mechanism)
    assert text(run.auth) == "235 2.7.0 Authentication successful"
    assert [text(r) for r in run.rcpt] == [QUEUED]
    assert relayed(lab, run, mark) == [rcpt]
    [sent] = [m for m in lab.sink_messages() if m.rcpts == (rcpt,)]
    assert (sent.mail_from, sent.peer, sent.helo) == (ALICE, "127.0.0.1", "mail.lab.test")
    [qid] = run.queue_ids
    assert any(
        message_of(x)
        == f"{qid}: client=unknown[127.0.0.5], sasl_method={mechanism}, sasl_username={ALICE}"
        for x in lab.log_lines_since(mark)
    )


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_wrong_password_is_535(lab: MailLab, mechanism: str) -> None:
    mark = lab.mark()
    run = lab.send("127.0.0.5", ALICE, ["x@mailbox1.example"], user=ALICE, password="nope",
                   mechanism=mechanism)  # fmt: skip
    assert text(run.auth) == "535 5.7.8 Error: authentication failed: authentication failure"
    assert run.of("MAIL") == []
    line = lab.wait_for_log("authentication failed", since=mark)
    assert message_of(line) == (
        f"warning: unknown[127.0.0.5]: SASL {mechanism} authentication failed:"
        f" authentication failure, sasl_username={ALICE}"
    )


# -- the open modes -----------------------------------------------------------------------


def test_open_mynetworks_relays_for_anyone(lab: MailLab) -> None:
    lab.set_mode("open-mynetworks")
    assert lab.postconf("-h", "mynetworks").strip() == "0.0.0.0/0"
    mark = lab.mark()
    run = lab.send("127.0.0.9", "spammer@evil.example", ["victim@external.example"])
    assert [text(r) for r in run.rcpt] == [QUEUED]
    assert relayed(lab, run, mark) == ["victim@external.example"]
    lab.set_mode("closed")
    again = lab.send("127.0.0.9", "spammer@evil.example", ["user@external.example"])
    assert [text(r) for r in again.rcpt] == [DENIED]


def test_open_access_map_ok_relays(lab: MailLab) -> None:
    lab.set_mode("open-access-ok", access_client="127.0.0.10")
    mark = lab.mark()
    run = lab.send("127.0.0.10", "spammer@evil.example", ["victim2@external.example"])
    assert [text(r) for r in run.rcpt] == [QUEUED]
    assert relayed(lab, run, mark) == ["victim2@external.example"]
    # the map names one client: the others are still refused
    other = lab.send("127.0.0.11", "spammer@evil.example", ["user@external.example"])
    assert [text(r) for r in other.rcpt] == [DENIED]


def test_submission_broken_relays_on_the_submission_port_only(lab: MailLab) -> None:
    refused = lab.send("127.0.0.3", "spammer@evil.example", ["user@external.example"],
                       submission=True)  # fmt: skip
    assert [text(r) for r in refused.rcpt] == [
        "554 5.7.1 <user@external.example>: Recipient address rejected: Access denied"
    ]
    lab.set_mode("submission-broken")
    mark = lab.mark()
    run = lab.send("127.0.0.3", "spammer@evil.example", ["v3@external.example"], submission=True)
    assert [text(r) for r in run.rcpt] == [QUEUED]
    assert relayed(lab, run, mark) == ["v3@external.example"]
    assert any("postfix/submission/smtpd[" in x for x in lab.log_lines_since(mark))
    port25 = lab.send("127.0.0.3", "spammer@evil.example", ["user@external.example"])
    assert [text(r) for r in port25.rcpt] == [DENIED]


def test_trusted_source_relays_only_for_the_tester(lab: MailLab) -> None:
    lab.set_mode("trusted-source")
    assert lab.postconf("-h", "mynetworks").strip() == f"127.0.0.1/32, {TESTER_ADDRESS}/32"
    mark = lab.mark()
    ok = lab.send(TESTER_ADDRESS, "me@outside.example", ["you@external.example"])
    assert [text(r) for r in ok.rcpt] == [QUEUED]
    lab.wait_removed(ok.queue_ids, since=mark)  # leave an empty queue to the next test
    outsider = lab.send("127.0.0.2", "me@outside.example", ["user@external.example"])
    assert [text(r) for r in outsider.rcpt] == [DENIED]


def test_unknown_mode_is_refused(lab: MailLab) -> None:
    with pytest.raises(ValueError, match="unknown lab mode 'wide-open'"):
        lab.set_mode("wide-open")


# -- the queue ----------------------------------------------------------------------------


def test_queue_shows_a_deferred_message_and_flush_retries_it(lab: MailLab) -> None:
    try:
        mark = lab.mark()
        run = lab.send("127.0.0.5", ALICE, ["tempfail-me@mailbox8.example"], user=ALICE,
                       password=ALICE_PW)  # fmt: skip
        [qid] = run.queue_ids
        deferred = f"{qid}: to=<tempfail-me@mailbox8.example>, relay=127.0.0.1[127.0.0.1]:"
        lab.wait_for_log("status=deferred", since=mark)
        # qmgr logs the deferral before it moves the file from "active" to "deferred": poll
        deadline = time.monotonic() + 10
        while (entries := [e for e in lab.queue() if e["queue_id"] == qid]) and entries[0][
            "queue_name"
        ] != "deferred":
            assert time.monotonic() < deadline, entries
            time.sleep(0.05)
        [entry] = entries
        assert (entry["queue_id"], entry["queue_name"], entry["sender"]) == (qid, "deferred", ALICE)
        [rcpt] = entry["recipients"]
        assert rcpt["address"] == "tempfail-me@mailbox8.example"
        assert rcpt["delay_reason"] == (
            "host 127.0.0.1[127.0.0.1] said: 450 4.2.0 <tempfail-me@mailbox8.example>:"
            " Mailbox temporarily unavailable (in reply to RCPT TO command)"
        )
        retry = lab.mark()
        lab.flush()
        line = lab.wait_for_log("status=deferred", since=retry)
        assert message_of(line).startswith(deferred)
    finally:
        lab.purge()  # never leave a deferred message to the tests that follow
    assert lab.queue() == []


# -- the sink on its own ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rcpt", "reply"),
    [
        ("anyone@external.example", "250 2.1.5 Ok"),
        ("reject-me@mailbox7.example", "550 5.1.1 <reject-me@mailbox7.example>:"
         " Recipient address rejected: User unknown"),
        ("TempFail@mailbox8.example", "450 4.2.0 <TempFail@mailbox8.example>:"
         " Mailbox temporarily unavailable"),
    ],
)  # fmt: skip
def test_sink_answers(rcpt: str, reply: str) -> None:
    sink = SmtpSink(free_port())
    sink.start()
    try:
        with Session(sink.port, "127.0.0.1", helo="mail.lab.test") as smtp:
            queued = smtp.mail("a@lab.test", [rcpt], "to the sink")
        assert text(smtp.transcript.replies[0]) == "220 sink.internet.test ESMTP lab sink"
        assert [text(r) for r in smtp.transcript.rcpt] == [reply]
        messages = sink.messages()
        if reply.startswith("250"):
            assert queued and text(smtp.transcript.data) == "250 2.0.0 Ok: queued as SINK000001"
            [got] = messages
            assert (got.mail_from, got.rcpts, got.subject) == ("a@lab.test", (rcpt,), "to the sink")
        else:
            assert not queued and messages == []
    finally:
        sink.stop()


# -- end to end: real traffic -> real log -> relayguard analyze ---------------------------


def analyze(capsys: pytest.CaptureFixture[str], log: Path) -> tuple[int, Any]:
    from relayguard.cli import main

    capsys.readouterr()
    code = main(
        ["analyze", "--json", "--local-domain", "lab.test", "--trusted-network", "127.0.0.1/32",
         str(log)]
    )  # fmt: skip
    out = capsys.readouterr().out
    return code, json.loads(out)


def findings(doc: Any, indicator: str) -> list[Any]:
    return [f for f in doc["findings"] if f["indicator"] == indicator]


def test_analyzer_finds_the_abuse_the_lab_really_logged(
    lab: MailLab, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mark = lab.mark()
    # 1. brute force from 127.0.0.66, then 2. the account it cracked sends spam from there
    brute = scenarios.bruteforce(lab, "127.0.0.66", attempts=30)
    assert {text(r.auth)[:3] for r in brute} == {"535"}
    spam = scenarios.spam_run(lab, "127.0.0.66", messages=60, domains=30)
    assert {text(r) for run in spam for r in run.of("AUTH")} == {
        "235 2.7.0 Authentication successful"
    }
    # 3. an open relay abused from 127.0.0.9
    lab.set_mode("open-mynetworks")
    relay = scenarios.relay_run(lab, "127.0.0.9", messages=10)
    # 4. relay probing against the closed server from 127.0.0.2
    lab.set_mode("closed")
    probe = scenarios.relay_probe(lab, "127.0.0.2", sessions=8)
    assert {text(r)[:10] for run in probe for r in run.rcpt} == {"554 5.7.1 "}
    ids = scenarios.queue_ids(spam) + scenarios.queue_ids(relay)
    assert len(ids) == 70
    lab.wait_removed(ids, timeout=40, since=mark)
    # postlogd writes asynchronously: wait until every refusal the client saw is in the log
    refused = sum(1 for run in probe for _ in run.rcpt)
    deadline = time.monotonic() + 10
    while lab.log_text(mark).count("Relay access denied") < refused:
        assert time.monotonic() < deadline, "refusals missing from the log"
        time.sleep(0.05)

    log = tmp_path / "maillog"
    log.write_text(lab.log_text(mark))
    code, doc = analyze(capsys, log)

    assert (code, doc["verdict"]) == (2, "abused")
    assert doc["stats"]["lines_unparsed"] == 0
    [comp] = findings(doc, "compromised-account")
    assert comp["subject"] == {"kind": "sasl_user", "value": ALICE}
    details = comp["details"]
    assert comp["severity"] == "critical"
    details = comp["details"]
    assert details["login_ip"] == "127.0.0.66"
    assert details["messages_after"] == 60
    assert details["external_recipients_after"] == 150
    assert details["recipient_domains_after"] == 30
    [brute] = findings(doc, "auth-bruteforce")
    assert brute["subject"] == {"kind": "ip", "value": "127.0.0.66"}
    assert brute["details"]["failures"] == 30
    # the 6 names are guessed in turn, alice twice: 10 of the 30 failures were against her
    assert brute["details"]["usernames"] == [
        {"value": ALICE, "count": 10},
        {"value": "admin@lab.test", "count": 5},
        {"value": "bob@lab.test", "count": 5},
        {"value": "info@lab.test", "count": 5},
        {"value": "test", "count": 5},
    ]
    [relay_use] = findings(doc, "open-relay-use")
    assert relay_use["subject"] == {"kind": "ip", "value": "127.0.0.9"}
    assert relay_use["severity"] == "critical"
    assert (relay_use["details"]["messages"], relay_use["details"]["domains"]) == (10, 5)
    [probing] = findings(doc, "relay-probing")
    assert probing["subject"] == {"kind": "ip", "value": "127.0.0.2"}
    assert probing["count"] == 16  # 8 sessions x 2 outside recipients
    stats = doc["stats"]
    assert (stats["messages"], stats["delivered"], stats["relay_denied"]) == (70, 160, 16)
    # Postfix logs a successful login only on each message's "client=..., sasl_username=" line
    assert (stats["auth_failures"], stats["auth_successes"]) == (30, 60)
