"""The analyze command as a user runs it: outputs, exit codes, errors."""

from __future__ import annotations

import gzip
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LAB

DOCS = Path(__file__).parents[2] / "docs"
BRUTE = str(LAB / "03_auth_bruteforce.log")


def test_events_output_matches_the_documented_example(relayguard: Any) -> None:
    run = relayguard("analyze", "--events", "--year", "2026", "--timezone", "UTC", BRUTE)
    assert run.code == 0
    lines = run.out.splitlines()
    assert json.loads(lines[0]) == {"schema": "relayguard.events/1"}
    documented = re.search(r"```json\n(.*)\n```", (DOCS / "events.md").read_text()).group(1)
    assert lines[3] == documented
    summary = json.loads(lines[-1])["summary"]
    assert summary == {
        "lines_read": 172,
        "lines_parsed": 172,
        "lines_unparsed": 0,
        "lines_bad_timestamp": 0,
    }
    types = [json.loads(x)["type"] for x in lines[1:-1]]
    assert types.count("auth-failure") == 61
    assert len(types) == 172


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((), "Missing argument"),
        (("--json", "--events", BRUTE), "--json and --events are exclusive"),
        (("--format", "nope", BRUTE), "Invalid value for '--format'"),
        (("--year", "12", BRUTE), "Invalid value for '--year'"),
        (("--bogus", BRUTE), "No such option '--bogus'"),
    ],
)
def test_usage_errors_exit_3_with_one_line(
    relayguard: Any, args: tuple[str, ...], needle: str
) -> None:
    run = relayguard("analyze", *args)
    assert run.code == 3
    assert needle in run.err
    assert run.err.startswith("relayguard: usage error: ")
    assert run.err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--timezone", "Mars/Olympus", BRUTE), "unknown time zone 'Mars/Olympus'"),
        (("--trusted-network", "10.0.0.0/33", BRUTE), "not a network: '10.0.0.0/33'"),
    ],
)
def test_bad_values_exit_3_with_one_line(
    relayguard: Any, args: tuple[str, ...], message: str
) -> None:
    run = relayguard("analyze", *args)
    assert run.code == 3
    assert message in run.err
    assert run.err.count("\n") == 1
    assert "Traceback" not in run.err


def test_missing_file_is_reported_but_the_rest_is_analyzed(relayguard: Any, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.log")
    run = relayguard("analyze", "--json", "--local-domain", "lab.test", BRUTE, missing)
    assert run.code == 3
    assert run.err.count("\n") == 1 and "nope.log" in run.err
    doc = json.loads(run.out)
    assert doc["stats"]["lines_read"] == 172  # what could be read was analyzed
    assert doc["verdict"] == "suspicious"


def test_rotated_compressed_set_in_any_order_and_stdin(
    relayguard: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = (LAB / "04_auth_success_outbound_spam.log").read_bytes().splitlines(keepends=True)
    (tmp_path / "mail.log.2.gz").write_bytes(
        gzip.compress((LAB / "03_auth_bruteforce.log").read_bytes())
    )
    (tmp_path / "mail.log.1").write_bytes(b"".join(lines[:700]))
    (tmp_path / "mail.log").write_bytes(b"".join(lines[700:]))
    names = [str(tmp_path / n) for n in ("mail.log", "mail.log.2.gz", "mail.log.1")]
    run = relayguard("analyze", "--json", "--local-domain", "lab.test", *names)
    doc = json.loads(run.out)
    assert (run.code, doc["verdict"]) == (2, "abused")
    assert doc["findings"][0]["indicator"] == "compromised-account"
    assert doc["stats"]["lines_read"] == 172 + len(lines)

    data = gzip.compress((LAB / "05_open_relay_mynetworks.log").read_bytes())
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    run = relayguard("analyze", "--json", "--local-domain", "lab.test", "-")
    doc = json.loads(run.out)
    assert doc["verdict"] == "abused"
    assert [
        f["subject"]["value"] for f in doc["findings"] if f["indicator"] == "open-relay-use"
    ] == ["127.0.0.9"]


def test_terminal_report_escapes_what_a_peer_controls(relayguard: Any, tmp_path: Path) -> None:
    evil = "\x1b[31m[bold red]pwn[/bold red]\x1b]0;title\x07"
    log = tmp_path / "evil.log"
    body = "".join(
        f"Dec 03 16:17:25 mail postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.7]: "
        f"554 5.7.1 <v{i}@far.example>: Relay access denied; from=<{evil}@x.example> "
        f"to=<v{i}@far.example> proto=ESMTP helo=<{evil}>\n"
        for i in range(6)
    )
    log.write_text(body, encoding="utf-8")
    run = relayguard("analyze", "--year", "2026", "-v", str(log))
    assert run.code == 1
    assert "\x1b" not in run.out and "\x07" not in run.out
    assert "[bold red]pwn[/bold red]" in run.out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no log lines to analyze"),
        (b"\n\n", "no log lines to analyze"),
        (b"garbage\n\x00\x01\x02 more garbage\n", "none of the 2 lines read was understood"),
    ],
)
def test_nothing_understood_is_unknown_not_clean(
    relayguard: Any, tmp_path: Path, content: bytes, message: str
) -> None:
    log = tmp_path / "x.log"
    log.write_bytes(content)
    run = relayguard("analyze", "--json", str(log))
    assert run.code == 3
    assert message in run.err
    doc = json.loads(run.out)
    assert doc["exit_code"] == 3
    assert doc["errors"] == [run.err.removeprefix("relayguard: error: ").strip()]


def test_hostile_lines_cost_one_line_each_never_the_run(relayguard: Any, tmp_path: Path) -> None:
    log = tmp_path / "mixed.log"
    good = (LAB / "02_closed_relay_denied.log").read_bytes()
    log.write_bytes(
        b" " * 20
        + b"x\n"  # once crashed the BSD timestamp cache
        + good
        + b'{"MESSAGE":"connect from unknown[1.2.3.4]","SYSLOG_IDENTIFIER":"postfix/smtpd",'
        b'"__REALTIME_TIMESTAMP":"99999999999999999999999"}\n'  # a corrupt journal stamp
         + b"\xff\xfe\r\n"
    )
    run = relayguard("analyze", "--json", "--local-domain", "lab.test", str(log))
    doc = json.loads(run.out)
    assert run.code == 1, run.err
    assert doc["stats"]["lines_read"] == 102 + 3
    assert doc["stats"]["lines_parsed"] == 102 + 1
    assert doc["stats"]["lines_unparsed"] == 2
    assert doc["stats"]["lines_bad_timestamp"] == 1
