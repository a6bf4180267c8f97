"""relayguard pcap and ids-rules on real SMTP sessions: the mail lab's Postfix, captured with
tcpdump on loopback while the lab scenarios run, compared with what its own log says."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from relayguard.cli import main
from relayguard.config import Config
from relayguard.wire import ids
from tests.lab import scenarios
from tests.lab.client import message
from tests.lab.postfix import MailLab
from tests.lab.sink import SmtpSink
from tests.ports import free_port
from tests.wire.capture import Tcpdump
from tests.wire.suricata import run_suricata

ATTACKER, PROBER, RELAY_USER = "127.0.0.66", "127.0.0.67", "127.0.0.68"
WEB_SERVER, OUTSIDE_MX = "127.0.0.5", "127.0.0.9"  # a host of ours that is no mail server


@dataclass
class Captured:
    pcap: Path
    log: Path
    args: list[str]


def _direct_spam(port: int, count: int) -> None:
    """What a hijacked web application does: deliver to an outside MX itself."""
    with smtplib.SMTP(local_hostname="web01.lab.test", source_address=(WEB_SERVER, 0)) as smtp:
        smtp.connect(OUTSIDE_MX, port)
        smtp.ehlo("web01.lab.test")
        for i in range(count):
            rcpts = [f"buyer{i}@shop{i}.example", f"buyer{i}@mall.example"]
            smtp.sendmail(
                "www-data@web01.lab.test", rcpts, message("www-data@web01.lab.test", rcpts, "deal")
            )


@pytest.fixture(scope="module")
def captured(mail_lab: MailLab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Captured]:
    root = tmp_path_factory.mktemp("labcap")
    mx_port = free_port()
    outside = SmtpSink(mx_port, host=OUTSIDE_MX)
    outside.start()
    ports = (mail_lab.smtp_port, mail_lab.submission_port, mail_lab.sink_port, mx_port)
    bpf = " or ".join(f"tcp port {p}" for p in ports)
    pcap = root / "lab.pcap"
    mail_lab.set_mode("closed")
    mark = mail_lab.mark()
    try:
        with Tcpdump(pcap, bpf):
            scenarios.bruteforce(mail_lab, ATTACKER, 12)
            scenarios.relay_probe(mail_lab, PROBER, 5)
            mail_lab.set_mode("open-access-ok")
            runs = scenarios.relay_run(mail_lab, RELAY_USER, 4)
            mail_lab.wait_removed(scenarios.queue_ids(runs), since=mark)
            _direct_spam(mx_port, 3)
            time.sleep(0.2)  # the last FINs
    finally:
        mail_lab.set_mode("closed")
        outside.stop()
    log = root / "mail.log"
    log.write_text("\n".join(mail_lab.log_lines_since(mark)) + "\n")
    args = [
        "--mail-server", "127.0.0.1", "--local-domain", "lab.test",
        "--port", str(mail_lab.smtp_port), "--port", str(mail_lab.sink_port),
        "--port", str(mx_port),
        "--submission-port", str(mail_lab.submission_port),
    ]  # fmt: skip
    yield Captured(pcap, log, args)


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    import json

    code = main(list(argv))
    out = capsys.readouterr()
    assert out.err == ""
    return code, json.loads(out.out)


def _by(doc: Any, indicator: str) -> dict[str, Any]:
    return {f["subject"]["value"]: f for f in doc["findings"] if f["indicator"] == indicator}


def test_pcap_of_the_lab_finds_every_scenario(
    captured: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = _json(capsys, "pcap", str(captured.pcap), "--json", *captured.args)
    assert (code, doc["verdict"]) == (2, "abused")
    assert doc["capture"]["format"] == "pcap" and doc["skipped"] == {}
    brute = _by(doc, "auth-bruteforce")[ATTACKER]
    assert brute["count"] == 12
    users = {u["value"]: u["count"] for u in brute["details"]["usernames"]}
    assert users == {"alice@lab.test": 4, "admin@lab.test": 2, "info@lab.test": 2,
                     "bob@lab.test": 2, "test": 2}  # fmt: skip
    probing = _by(doc, "relay-probing")[PROBER]
    assert (probing["count"], probing["severity"]) == (10, "medium")
    relay = _by(doc, "open-relay-use")[RELAY_USER]
    assert relay["details"]["messages"] == 4 and relay["details"]["messages_delivered"] == 4
    assert relay["details"]["external_recipients"] == 4 and relay["details"]["domains"] == 4
    egress = _by(doc, "egress-smtp")[WEB_SERVER]
    assert egress["severity"] == "high"
    assert (egress["details"]["sessions"], egress["details"]["messages"]) == (1, 3)
    assert egress["details"]["recipients"] == 6
    assert egress["details"]["servers"] == [{"value": OUTSIDE_MX, "count": 1}]
    # Postfix relaying to its relayhost is our own server at work: no finding for 127.0.0.1
    assert all(f["subject"]["value"] != "127.0.0.1" for f in doc["findings"])
    s = doc["sessions"]
    assert (s["auth_failures"], s["relay_denied"], s["broken"], s["midstream"]) == (12, 10, 0, 0)


def test_the_wire_and_the_log_agree(captured: Captured, capsys: pytest.CaptureFixture[str]) -> None:
    _, wire = _json(capsys, "pcap", str(captured.pcap), "--json", *captured.args)
    _, log = _json(capsys, "analyze", "--json", "--local-domain", "lab.test", str(captured.log))
    for indicator in ("auth-bruteforce", "relay-probing", "open-relay-use"):
        on_wire = {k: (f["count"], f["severity"]) for k, f in _by(wire, indicator).items()}
        in_log = {k: (f["count"], f["severity"]) for k, f in _by(log, indicator).items()}
        assert on_wire == in_log, indicator
    # the web server's direct delivery never reaches the MTA's log
    assert _by(log, "egress-smtp") == {}


def test_generated_rules_fire_on_the_lab_capture(captured: Captured, tmp_path: Path) -> None:
    rules = tmp_path / "lab.rules"
    rules.write_text(
        ids.build(
            Config(),
            ["lab.test"],
            ["127.0.0.1"],
            "snort",
            ports=tuple(int(p) for p in captured.args[5:11:2]),
        ).render([])
    )
    # HOME_NET holds our hosts: the server and the web server; the rest of loopback is "outside"
    alerts = run_suricata(captured.pcap, rules, tmp_path / "out",
                          f"[127.0.0.1,{WEB_SERVER}]", "[127.0.0.1]")  # fmt: skip
    fired: dict[int, set[str]] = {}
    for a in alerts:
        client = a["src_ip"] if a["src_ip"] != "127.0.0.1" else a["dest_ip"]
        fired.setdefault(int(a["alert"]["signature_id"]), set()).add(client)
    assert fired[1_970_101] == {PROBER, RELAY_USER}  # relay attempts (accepted or not)
    assert fired[1_970_201] == {PROBER}  # refusals
    assert fired[1_970_202] == {PROBER}  # refused in its 5th connection
    assert fired[1_970_301] == {ATTACKER}  # failed in its 10th connection (of 12)
    # one alert per connection: the 10th, 11th and 12th brute-force sessions
    assert sum(a["alert"]["signature_id"] == 1_970_301 for a in alerts) == 3
    assert fired[1_970_401] == fired[1_970_402] == {WEB_SERVER}
