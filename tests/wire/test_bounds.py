"""A capture with a great many clients costs bounded memory and gives a readable report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relayguard.wire import analyzer as analyzer_mod
from relayguard.wire import bounds
from tests.wire.craft import Conn, frames_of, relay_session, write_pcap

OURS = ["--mail-server", "192.0.2.25", "--local-domain", "example.org"]


def probes(n: int, twice: int = 0) -> list[Conn]:
    """``n`` clients refused relaying once each; the first ``twice`` of them come back."""
    conns = []
    for i in range(n):
        client = f"198.51.100.{i + 1}"
        start = 1_796_313_600.0 + i
        conns.append(relay_session(Conn(client=client, time=start), "a@b.example",
                                   ["v@t.example"], accept=False))  # fmt: skip
        if i < twice:
            again = Conn(client=client, cport=41000 + i, time=start + 0.5)
            conns.append(relay_session(again, "a@b.example", ["w@t.example"], accept=False))
    return conns


def test_low_findings_beyond_the_cap_are_counted_not_kept(tmp_path: Path, relayguard: Any) -> None:
    path = write_pcap(tmp_path / "many.pcap", frames_of(*probes(60, twice=3)))
    run = relayguard("pcap", str(path), "--json", *OURS)
    doc = run.json
    assert run.code == 0 and doc["verdict"] == "clean"
    assert len(doc["findings"]) == 50
    assert len(doc["incidents"]) == 50
    assert doc["findings_omitted"] == {"relay-probing": 10}
    # the busiest clients are kept, then the others in address order
    counts = sorted((f["count"] for f in doc["findings"]), reverse=True)
    assert counts[:4] == [2, 2, 2, 1]
    kept = {f["subject"]["value"] for f in doc["findings"]}
    assert "198.51.100.1" in kept and "198.51.100.60" not in kept
    assert doc["notes"] == [
        "+10 more low-severity relay-probing finding(s) not shown: the 50 with the highest "
        "counts are kept (JSON findings_omitted)"
    ]
    text = relayguard("pcap", str(path), *OURS).out
    assert text.splitlines()[0] == " CLEAN   exit 0  50 findings (+10 more low) in 50 incident(s)"


def test_no_findings_omitted_under_the_cap(tmp_path: Path, relayguard: Any) -> None:
    path = write_pcap(tmp_path / "few.pcap", frames_of(*probes(3)))
    doc = relayguard("pcap", str(path), "--json", *OURS).json
    assert len(doc["findings"]) == 3
    assert doc["findings_omitted"] == {}
    assert "clients_forgotten" not in doc["skipped"]


def test_per_client_state_is_bounded(
    tmp_path: Path, relayguard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bounds, "MAX_TRACKED_CLIENTS", 4)
    monkeypatch.setattr(analyzer_mod, "MAX_TRACKED_CLIENTS", 4)
    # clients 1 and 2 are refused twice, 3 to 6 once: when the fifth client comes, the
    # two quiet ones (3, 4) are forgotten; the sixth fills the table again
    path = write_pcap(tmp_path / "b.pcap", frames_of(*probes(6, twice=2)))
    doc = relayguard("pcap", str(path), "--json", *OURS).json
    assert sorted(f["subject"]["value"] for f in doc["findings"]) == [
        "198.51.100.1", "198.51.100.2", "198.51.100.5", "198.51.100.6",
    ]  # fmt: skip
    assert doc["skipped"]["clients_forgotten"] == 2


def test_forget_quiet_clients_keeps_the_busiest_half_when_all_are_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bounds, "MAX_TRACKED_CLIENTS", 4)
    table = {"a": 2, "b": 5, "c": 3, "d": 1}
    assert bounds.forget_quiet_clients(table, lambda n: n) == {"b": 5, "c": 3}
    assert bounds.forget_quiet_clients({"a": 2, "d": 1}, lambda n: n) == {"a": 2}


def test_recipients_past_the_kept_addresses_are_counted(tmp_path: Path, relayguard: Any) -> None:
    rcpts = [f"u{i}@d{i}.example" for i in range(1200)] + ["bob@example.org"]
    conn = relay_session(Conn(), "bulk@deals.example", rcpts)
    doc = relayguard("pcap", str(write_pcap(tmp_path / "r.pcap", conn.frames)), "--json",
                     *OURS).json  # fmt: skip
    relay = next(f for f in doc["findings"] if f["indicator"] == "open-relay-use")
    assert relay["details"]["external_recipients"] == 1200
    assert relay["details"]["domains"] == 1200
    assert relay["title"].endswith("had 1 messages relayed to 1200 external recipients in 1200 "
                                   "domains")  # fmt: skip
    assert relay["evidence"][-1].endswith("RCPT TO:<(address not kept)@d1199.example> accepted")
    assert doc["sessions"]["recipients_accepted"] == 1201
    assert doc["sessions"]["external_recipients"] == 1200
    assert doc["sessions"]["recipients_not_judged"] == 0


def test_recipients_past_every_bound_are_counted_and_named(
    tmp_path: Path, relayguard: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relayguard.wire import conversation

    monkeypatch.setattr(conversation, "MAX_RECIPIENTS", 10)
    monkeypatch.setattr(conversation, "MAX_MORE_DOMAINS", 5)
    rcpts = [f"u{i}@d{i}.example" for i in range(30)]
    conn = relay_session(Conn(), "bulk@deals.example", rcpts)
    doc = relayguard("pcap", str(write_pcap(tmp_path / "r.pcap", conn.frames)), "--json",
                     *OURS).json  # fmt: skip
    assert doc["sessions"]["recipients_accepted"] == 30
    assert doc["sessions"]["external_recipients"] == 15
    assert doc["sessions"]["recipients_not_judged"] == 15
    assert "15 accepted recipient(s) counted but not judged: past 1,000 in one transaction, " \
        "and in more than 10,000 other domains" in doc["notes"]  # fmt: skip
