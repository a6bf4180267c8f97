"""docs/examples/make_pcaps.py writes the captures docs/pcap.md shows, with the outputs shown."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).parents[2] / "docs" / "examples" / "make_pcaps.py"


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("examples")
    main = runpy.run_path(str(SCRIPT))["main"]
    assert main(["make_pcaps.py", str(out)]) == 0
    return out


def test_the_examples_are_written(examples: Path) -> None:
    sizes = {p.name: p.stat().st_size for p in examples.iterdir()}
    assert sizes == {
        "classic.pcap": 7963, "classic.rules": 167, "corrupt.pcap": 117559, "cut.pcap": 58636,
        "demo.pcap": 117259, "demo.pcapng": 139316, "egress.pcap": 4943,
        "header-only.pcap": 24, "relay.pcap": 2151,
    }  # fmt: skip


def test_demo_reads_as_the_page_says(examples: Path, relayguard: Any) -> None:
    run = relayguard("pcap", str(examples / "demo.pcap"), "--local-domain", "example.org")
    lines = run.out.splitlines()
    assert lines[0] == " ABUSED   exit 2  5 findings in 5 incident(s)"
    assert "Packets  1,304 read (96,371 bytes), 1,304 TCP segments on SMTP ports" in lines


def test_cut_and_corrupt_read_as_the_page_says(examples: Path, relayguard: Any) -> None:
    cut = relayguard("pcap", str(examples / "cut.pcap"), "--local-domain", "example.org")
    assert cut.out.splitlines()[:2] == [
        " ABUSED   exit 2  4 findings in 4 incident(s)",
        "note: the capture ends inside a packet record (cut short): read up to there",
    ]
    bad = relayguard("pcap", str(examples / "corrupt.pcap"), "--local-domain", "example.org")
    assert "Skipped  corrupt records 1, corrupt bytes 300" in bad.out.splitlines()
