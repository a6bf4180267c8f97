"""relayguard ids-rules: thresholds from --config mean in Suricata what they mean in the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.wire.craft import BANNER, EHLO_REPLY, T0, Conn, frames_of, write_pcap
from tests.wire.suricata import run_suricata

SERVER = "192.0.2.25"
OUTSIDE_MX = "198.51.100.200"
CONFIG = """
[detectors.egress_smtp]
min_sessions = 2

[detectors.relay_probing]
min_denials = 3
"""


def _rules(relayguard: Any, tmp_path: Path) -> Path:
    config = tmp_path / "relayguard.toml"
    config.write_text(CONFIG)
    run = relayguard(
        "ids-rules", "--config", str(config), "--local-domain", "example.org",
        "--mail-server", SERVER,
    )  # fmt: skip
    assert run.code == 0
    rules = tmp_path / "relayguard.rules"
    rules.write_text(run.out)
    return rules


def test_thresholds_are_in_the_rule_text(tmp_path: Path, relayguard: Any) -> None:
    text = _rules(relayguard, tmp_path).read_text()
    assert "threshold:type both, track by_src, count 2, seconds 3600; classtype" in text
    assert "at its 2nd\n# attempt (egress_smtp.min_sessions)" in text
    assert "relay refused in the 3rd connection of the" in text


def test_egress_alerts_only_at_the_min_sessions_th_attempt(tmp_path: Path, relayguard: Any) -> None:
    conns = []
    port = 45000
    # a host of ours with one session to an outside MX (below the threshold), one with three
    for host, sessions in (("192.0.2.81", 1), ("192.0.2.82", 3)):
        for _ in range(sessions):
            conn = Conn(client=host, cport=port, server=OUTSIDE_MX, time=T0 + port - 45000)
            conn.open().dialogue(("", BANNER), ("EHLO web\r\n", EHLO_REPLY))
            conns.append(conn.dialogue(("QUIT\r\n", "221 Bye\r\n")).close())
            port += 1
    pcap = write_pcap(tmp_path / "egress.pcap", frames_of(*conns))
    alerts = run_suricata(
        pcap, _rules(relayguard, tmp_path), tmp_path / "out", "[192.0.2.0/24]", f"[{SERVER}]"
    )
    syn = [(a["src_ip"], a["src_port"]) for a in alerts if a["alert"]["signature_id"] == 1_970_401]
    assert syn == [("192.0.2.82", 45002)]  # the second attempt of .82, once in the hour
