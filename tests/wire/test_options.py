"""Options of relayguard pcap and ids-rules that cannot work are one-line errors, exit 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.wire.craft import Conn, relay_session, write_pcap


@pytest.mark.parametrize("network", ["0.0.0.0/0", "::/0"])
def test_ids_rules_refuse_the_whole_address_space_as_mail_servers(
    relayguard: Any, network: str
) -> None:
    run = relayguard("ids-rules", "--local-domain", "example.org", "--mail-server", network)
    assert (run.code, run.out) == (3, "")
    assert run.err == (
        f"relayguard: error: --mail-server {network}: the whole address space cannot be your "
        "mail servers (name the servers themselves)\n"
    )


@pytest.mark.parametrize(
    ("args", "first", "second"),
    [
        (["--tls-port", "25"], "--port", "--tls-port"),
        (["--port", "25", "--submission-port", "25"], "--port", "--submission-port"),
        (["--port", "2525", "--submission-port", "465"], "--submission-port", "--tls-port"),
    ],
)
def test_pcap_refuses_a_port_with_two_roles(
    tmp_path: Path, relayguard: Any, args: list[str], first: str, second: str
) -> None:
    path = write_pcap(
        tmp_path / "r.pcap", relay_session(Conn(), "a@b.example", ["c@d.example"]).frames
    )
    run = relayguard("pcap", str(path), *args)
    port = args[-1]
    assert (run.code, run.out) == (3, "")
    assert run.err == (
        f"relayguard: error: port {port} is given to both {first} and {second}: a port has one "
        "role (defaults: --port 25, --submission-port 587, --tls-port 465)\n"
    )


@pytest.mark.parametrize("command", ["pcap", "ids-rules"])
@pytest.mark.parametrize("value", ["abc", "0", "70000"])
def test_a_bad_port_says_what_a_port_is(relayguard: Any, command: str, value: str) -> None:
    run = relayguard(command, *(["x.pcap"] if command == "pcap" else []), "--port", value)
    assert run.code == 3
    assert run.err == (
        f"relayguard: usage error: Invalid value for '--port': '{value}' is not a port number "
        f"(1 to 65535) (try 'relayguard {command} --help')\n"
    )


ESC = "\x1b[2J\x1b[31mPWNED\x1b[0m"


def test_escape_sequences_are_shown_escaped_with_their_case(
    tmp_path: Path, relayguard: Any
) -> None:
    conn = relay_session(Conn(), f"{ESC}@deals.example", [f"v@{ESC}.Example", "w@t.example"])
    path = write_pcap(tmp_path / "h.pcap", conn.frames)
    ours = ["--mail-server", "192.0.2.25", "--local-domain", "example.org"]
    run = relayguard("pcap", str(path), "-v", *ours)
    assert "\x1b" not in run.out
    flat = " ".join(run.out.split())
    assert "senders: \\x1b[2J\\x1b[31mPWNED\\x1b[0m@deals.example (1)" in flat
    assert "RCPT TO:<v@\\x1b[2J\\x1b[31mPWNED\\x1b[0m.Example> accepted" in flat  # as sent
    doc = relayguard("pcap", str(path), "--json", *ours).json
    (relay,) = doc["findings"]
    assert relay["details"]["senders"] == [{"value": f"{ESC}@deals.example", "count": 1}]
    assert f"RCPT TO:<v@{ESC}.Example> accepted" in " ".join(relay["evidence"])
