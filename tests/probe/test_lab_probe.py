"""relayguard probe against the real Postfix of the mail lab, in every relay mode, on both
its smtpd (port 25's service) and its submission service.

The truth per mode comes from tests/lab/config.py: open-mynetworks and open-access-ok relay
for anyone on the smtpd port only (the submission service has its own "permit_sasl_authenticated,
reject"); submission-broken relays on the submission port only; trusted-source relays only for
127.0.0.77. 127.0.0.2 is outside every mode's mynetworks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from relayguard.cli.probe import probe as probe_command
from relayguard.probe import ProbeOptions, ProbeResult, probe
from relayguard.probe.result import Reason, Verdict
from tests.lab.config import TESTER_ADDRESS
from tests.lab.postfix import MailLab

OUTSIDE = "127.0.0.2"
OPEN = (Verdict.OPEN, None)
CLOSED = (Verdict.CLOSED, None)
TRUSTED = (Verdict.INCONCLUSIVE, Reason.TRUSTED_SOURCE)


@pytest.fixture
def lab(mail_lab: MailLab) -> Iterator[MailLab]:
    mail_lab.set_mode("closed")
    yield mail_lab
    mail_lab.set_mode("closed")


def run(lab: MailLab, source: str, **kw: object) -> ProbeResult:
    options = ProbeOptions(
        host="127.0.0.1", ports=(lab.smtp_port, lab.submission_port), source_address=source,
        helo="probe.example.com", token="labtok", command_timeout=10, retry_delay=-1, **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return asyncio.run(probe(options))


@pytest.mark.parametrize(
    ("mode", "source", "smtpd", "submission", "overall", "code"),
    [
        ("closed", OUTSIDE, CLOSED, CLOSED, Verdict.CLOSED, 1),
        ("open-mynetworks", OUTSIDE, OPEN, CLOSED, Verdict.OPEN, 2),
        ("open-access-ok", OUTSIDE, OPEN, CLOSED, Verdict.OPEN, 2),
        ("submission-broken", OUTSIDE, CLOSED, OPEN, Verdict.OPEN, 2),
        ("trusted-source", TESTER_ADDRESS, TRUSTED, CLOSED, Verdict.INCONCLUSIVE, 3),
        ("trusted-source", OUTSIDE, CLOSED, CLOSED, Verdict.CLOSED, 1),
    ],
)
def test_every_mode_on_both_ports(
    lab: MailLab,
    mode: str,
    source: str,
    smtpd: tuple[Verdict, Reason | None],
    submission: tuple[Verdict, Reason | None],
    overall: Verdict,
    code: int,
) -> None:
    lab.set_mode(mode)
    queued_before = len(lab.sink_messages())
    in_queue_before = {e["queue_id"] for e in lab.queue()}  # other tests' mail in flight
    mark = lab.mark()
    result = run(lab, source)
    by_port = {s.port: (s.verdict, s.reason) for s in result.services}
    assert by_port == {lab.smtp_port: smtpd, lab.submission_port: submission}
    assert (result.verdict, result.exit_code) == (overall, code)
    assert all(s.source == source for s in result.services)
    # No message was ever sent: nothing queued, nothing relayed, no "queued as" in the log.
    assert {e["queue_id"] for e in lab.queue()} <= in_queue_before
    assert len(lab.sink_messages()) == queued_before
    log = lab.log_text(mark)
    assert ": message-id=" not in log
    assert f"connect from unknown[{source}]" in log
    # Weaknesses of the lab's Postfix: plaintext AUTH, no TLS, VRFY on.
    indicators = {f.indicator for f in result.findings if f.subject.value.endswith(
        f":{lab.smtp_port}")}  # fmt: skip
    assert {"smtp-auth-before-tls", "smtp-no-starttls", "smtp-vrfy-enabled"} <= indicators


def test_open_relay_details(lab: MailLab) -> None:
    lab.set_mode("open-mynetworks")
    result = run(lab, OUTSIDE)
    smtpd = next(s for s in result.services if s.port == lab.smtp_port)
    assert smtpd.comparison is not None
    assert smtpd.comparison.source == "127.0.0.253"
    assert smtpd.comparison.outcome.value == "accepted"
    assert smtpd.host == "mail.lab.test"
    outcomes = {t.test: t.outcome.value for t in smtpd.tests}
    # Postfix validates its own users even while relaying for everyone
    assert outcomes["C1"] == "recipient-rejected"
    assert (outcomes["C2"], outcomes["C3"], outcomes["R01"]) == ("accepted", "accepted", "accepted")
    r01 = next(t for t in smtpd.tests if t.test == "R01")
    assert r01.code == 250 and r01.enhanced == "2.1.5"
    relay = next(f for f in result.findings if f.indicator == "open-relay")
    assert relay.subject.value == f"127.0.0.1:{lab.smtp_port}"
    assert relay.details["proven"] is False


def test_closed_replies_are_postfix_relay_denials(lab: MailLab) -> None:
    result = run(lab, OUTSIDE)
    smtpd = next(s for s in result.services if s.port == lab.smtp_port)
    r01 = next(t for t in smtpd.tests if t.test == "R01")
    assert r01.reply == "554 5.7.1 <relaytest@example.net>: Relay access denied"
    c1 = next(t for t in smtpd.tests if t.test == "C1")
    assert c1.reply == (
        "550 5.1.1 <labtok@lab.test>: Recipient address rejected: "
        "User unknown in local recipient table"
    )


def test_prove_to_relays_one_message_to_the_canary(lab: MailLab) -> None:
    lab.set_mode("open-mynetworks")
    before = len(lab.sink_messages())
    options = ProbeOptions(
        host="127.0.0.1", ports=(lab.smtp_port,), source_address=OUTSIDE, token="proof1",
        prove_to="canary@canary.example", retry_delay=-1,
    )  # fmt: skip
    result = asyncio.run(probe(options))
    assert (result.verdict, result.exit_code) == (Verdict.PROVEN, 2)
    lab.wait_queue_empty(timeout=30)
    messages = lab.sink_messages()[before:]
    assert len(messages) == 1
    assert messages[0].rcpts == ("canary@canary.example",)
    assert messages[0].subject == f"relayguard open-relay proof: 127.0.0.1:{lab.smtp_port}"


def test_cli_json_against_the_lab(lab: MailLab, capsys: pytest.CaptureFixture[str]) -> None:
    lab.set_mode("submission-broken")
    code = probe_command.main(
        ["127.0.0.1", "-p", str(lab.submission_port), "--source-address", OUTSIDE, "--json",
         "--retry-delay", "-1"],
        standalone_mode=False,
    )  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 2
    assert (out["schema"], out["verdict"], out["exit_code"]) == ("relayguard.probe/1", "open", 2)
    [service] = out["services"]
    assert service["port"] == lab.submission_port
    assert service["source_address"] == OUTSIDE
    assert "open-relay" in [f["indicator"] for f in out["findings"]]
    assert "close-open-relay" in [m["id"] for m in out["mitigations"]]
