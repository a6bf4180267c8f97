"""``relayguard probe`` as a command: output, exit codes, argument checks, escaping."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import click
import pytest

from relayguard.cli import main
from relayguard.cli.probe import default_helo
from relayguard.cli.probe import probe as command
from tests.probe import hostile
from tests.probe.hostile import Threaded
from tests.probe.test_runner import no_dns

FAST = ["--timeout", "2", "--retry-delay", "-1", "--backoff", "0"]


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = command.main(list(args), standalone_mode=False)
    return code, capsys.readouterr().out


def test_terminal_report_verdict_first(capsys: pytest.CaptureFixture[str]) -> None:
    with Threaded(hostile.Server()) as server:
        code, out = invoke(capsys, "127.0.0.1", "-p", str(server.port), *FAST)
    lines = out.splitlines()
    assert code == 1
    assert lines[0] == " CLOSED  127.0.0.1 is not an open relay  exit 1"
    assert lines[1] == f"  127.0.0.1:{server.port} closed: all 29 relay tests were refused (plain)"
    tests = lines.index(f"Tests on 127.0.0.1:{server.port}  from 127.0.0.1, 5 connections")
    assert lines[tests + 1] == f"  banner: 220 {hostile.HOST} ESMTP"
    assert lines[tests + 5] == "  plain/R01      relay-denied        554 5.7.1   external recipient"
    assert lines.index("Weaknesses") > tests + 33
    assert "smtp-no-starttls" in out
    assert "Offer STARTTLS with a real certificate" in out


def test_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    with Threaded(hostile.OpenServer()) as server:
        code, out = invoke(
            capsys, "127.0.0.1", "-p", str(server.port), "--source-address", "127.0.0.2",
            "--json", *FAST,
        )  # fmt: skip
    doc = json.loads(out)
    assert code == 2
    assert sorted(doc) == [
        "error", "exit_code", "findings", "host", "mitigations", "reason", "schema", "seconds",
        "services", "started", "verdict",
    ]  # fmt: skip
    assert (doc["schema"], doc["verdict"], doc["reason"], doc["exit_code"]) == (
        "relayguard.probe/1", "open", None, 2,
    )  # fmt: skip
    [service] = doc["services"]
    assert len(service["tests"]) == 32
    first = service["tests"][0]
    assert sorted(first) == [
        "attempt", "code", "dialogue", "enhanced", "helo", "id", "kind", "outcome", "phase",
        "recipient", "reply", "seconds", "sender", "source", "technique",
    ]  # fmt: skip
    assert service["comparison"]["source"] == "127.0.0.253"
    assert [m["id"] for m in doc["mitigations"]][:2] == ["close-open-relay", "narrow-mynetworks"]


class Nasty(hostile.Server):
    banner = "220 mx.relay.test ESMTP \x1b[2J\x1b]0;pwned\x07[red]x[/red] \u202egnp.exe"

    def rcpt(self, session: hostile.Session, address: str) -> str:
        return f"554 5.7.1 no \x1b[31mway\x1b[0m <{address}>"


def test_peer_text_is_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    with Threaded(Nasty()) as server:
        code, out = invoke(capsys, "127.0.0.1", "-p", str(server.port), "-v", *FAST)
    assert code == 1
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b[2J\\x1b]0;pwned\\x07[red]x[/red]" in out  # shown escaped, never run
    assert "\\u202egnp.exe" in out
    with Threaded(Nasty()) as server:
        code, out = invoke(capsys, "127.0.0.1", "-p", str(server.port), "--json", *FAST)
    doc = json.loads(out)
    assert doc["services"][0]["banner"] == [
        "220 mx.relay.test ESMTP \\x1b[2J\\x1b]0;pwned\\x07[red]x[/red] \\u202egnp.exe"
    ]
    assert doc["services"][0]["tests"][3]["reply"] == (
        "554 5.7.1 no \\x1b[31mway\\x1b[0m <relaytest@example.net>"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["h", "--source-address", "not-an-ip"], "'not-an-ip' is not an IP address"),
        (["h", "--compare-source", "10.0.0.300"], "'10.0.0.300' is not an IP address"),
        (["h", "--domain", "bad domain"], "'bad domain' is not a domain name"),
        (["h", "--helo", "-x"], "'-x' is not a domain name"),
        (["h", "--prove-to", "no-at-sign"], "'no-at-sign' is not a plain mailbox address"),
        (["h", "--prove-to", "a@b@c"], "'a@b@c' is not a plain mailbox address"),
        (["h", "--prove-to", "@b"], "'@b' is not a plain mailbox address"),
        (["h", "--prove-to", "a b@example.com"], "is not a plain mailbox address"),
        (["h", "--prove-to", "a@b>\r\nDATA"], "is not a plain mailbox address"),
        (["h", "-4", "-6"], "-4 and -6 are exclusive"),
        (["h", "-p", "0"], "0 is not in the range 1<=x<=65535"),
    ],
)  # fmt: skip
def test_usage_errors(args: list[str], message: str) -> None:
    with pytest.raises(click.UsageError) as caught:
        command.main(args, standalone_mode=False)
    assert message in caught.value.format_message()


def test_unresolvable_host_is_exit_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_dns(monkeypatch, {})
    code = command.main(["mx.nowhere.invalid", "--json"], standalone_mode=False)
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 3
    assert (doc["verdict"], doc["services"]) == ("inconclusive", [])
    assert captured.err.startswith("relayguard: error: cannot resolve mx.nowhere.invalid")


def test_default_helo_is_a_full_name() -> None:
    name = default_helo()
    assert "." in name and " " not in name


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Through ``relayguard.cli.main``: errors become one stderr line and exit 3."""
    code = main(["probe", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help_tells_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "--help")[0] == 0
    with pytest.raises(SystemExit):
        command.main(["--help"], prog_name="probe")
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "EHLO name. Default: this host's name if it is fully qualified (has a dot), else "
        "relayguard.invalid." in text
    )
    assert (
        "Default: 127.0.0.253 (127.0.0.254 if that is the source) when --source-address is an "
        "IPv4 loopback address (127.0.0.1 too) and the target is loopback, else none." in text
    )


@pytest.mark.parametrize(
    ("source", "compared"),
    [("127.0.0.1", "127.0.0.253"), ("127.0.0.253", "127.0.0.254")],
)
def test_automatic_comparison_runs_as_the_help_says(
    capsys: pytest.CaptureFixture[str], source: str, compared: str
) -> None:
    with Threaded(hostile.OpenServer()) as server:
        code, out = invoke(
            capsys, "127.0.0.1", "-p", str(server.port), "--source-address", source, "--json",
            *FAST,
        )  # fmt: skip
    [service] = json.loads(out)["services"]
    assert (code, service["verdict"], service["comparison_chosen"]) == (2, "open", False)
    assert (service["comparison"]["source"], service["comparison"]["outcome"]) == (
        compared, "accepted",
    )  # fmt: skip
    assert len(service["comparisons"]) == len(service["counted"]) == 24
    assert {s.peer for s in server.sessions} == {source, compared}


@pytest.mark.parametrize(
    ("hostname", "helo"),
    [("box", "relayguard.invalid"), ("localhost.localdomain", "relayguard.invalid"),
     ("mx1.example.com", "mx1.example.com")],
)  # fmt: skip
def test_default_helo_matches_the_help(
    monkeypatch: pytest.MonkeyPatch, hostname: str, helo: str
) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: hostname)
    assert default_helo() == helo


def test_automatic_comparison_source_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    with Threaded(hostile.OpenServer()) as server:
        code, out = invoke(
            capsys, "127.0.0.1", "-p", str(server.port), "--source-address", "127.0.0.2", *FAST
        )
    assert code == 2
    assert (
        " comparison from 127.0.0.253: chosen automatically (another loopback address); "
        "name one with --compare-source"
    ) in " ".join(out.split())  # (the console wraps at 80 columns)
    assert "\n  plain/R01 from 127.0.0.253 accepted" in out


def test_named_comparison_refused_is_closed(capsys: pytest.CaptureFixture[str]) -> None:
    with Threaded(hostile.TrustingServer()) as server:
        code, out = invoke(
            capsys, "127.0.0.1", "-p", str(server.port), "--source-address", "127.0.0.77",
            "--compare-source", "127.0.0.2", *FAST,
        )  # fmt: skip
    lines = out.splitlines()
    assert code == 1  # closed, with the no-STARTTLS weakness
    assert lines[0] == " CLOSED  127.0.0.1 is not an open relay  exit 1"
    assert " ".join(out.split()).startswith(
        f"CLOSED 127.0.0.1 is not an open relay exit 1 127.0.0.1:{server.port} closed: relays "
        "only for the probing address 127.0.0.77 (trusted): all 24 relay tests accepted from "
        "it were refused from 127.0.0.2 (first: R01, relay-denied 554) Tests on"
    )
    assert "  plain/R01 from 127.0.0.2 relay-denied        554 5.7.1   external recipient" in lines
    assert sum(" from 127.0.0.2 relay-denied " in line for line in lines) == 24
    assert "chosen automatically" not in out


@pytest.mark.parametrize("as_json", [False, True])
def test_closed_pipe_keeps_the_exit_code(as_json: bool) -> None:
    with Threaded(hostile.OpenServer()) as server:
        argv = [sys.executable, "-c", "from relayguard.cli import run; run()", "probe",
                "127.0.0.1", "-p", str(server.port), "--source-address", "127.0.0.2",
                *FAST]  # fmt: skip
        proc = subprocess.Popen(
            argv + (["--json"] if as_json else []),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader (`| head`) is gone before the report is written
        err = proc.stderr.read()
        proc.stderr.close()
        code = proc.wait(60)
    assert (code, err) == (2, b"")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source-address", "8.8.8.8"], "8.8.8.8 is not an address of this host"),
        (["--compare-source", "8.8.4.4"], "8.8.4.4 is not an address of this host"),
        (["--source-address", "::1"],
         "the source and the target families differ: --source-address ::1 is IPv6, 127.0.0.1 "
         "is IPv4"),
        (["-4", "--source-address", "::1"], "-4 conflicts with the IPv6 --source-address ::1"),
        (["--source-address", "127.0.0.2", "--compare-source", "::1"],
         "the source and the target families differ: --compare-source ::1 is IPv6, 127.0.0.1 "
         "is IPv4"),
    ],
)  # fmt: skip
def test_unusable_source_fails_before_any_connection(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with Threaded(hostile.OpenServer()) as server:
        code, out, err = run_cli(capsys, "127.0.0.1", "-p", str(server.port), *args, *FAST)
    assert (code, out, err) == (3, "", f"relayguard: error: {message}\n")
    assert server.sessions == []


def test_nothing_tested_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    with Threaded(hostile.WeirdBanner()) as server:
        code, out = invoke(capsys, "127.0.0.1", "-p", str(server.port), *FAST)
    lines = out.splitlines()
    assert code == 3
    assert (
        lines[1] == f"  127.0.0.1:{server.port} inconclusive/error: not an SMTP reply line: "
        "999-weird"
    )
    assert f"Tests on 127.0.0.1:{server.port}  from 127.0.0.1, 1 connection" in lines
    assert "No weaknesses found." not in lines
    assert lines[-1] == "Nothing was tested: no weaknesses could be looked for."
