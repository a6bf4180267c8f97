"""Every public sample, end to end through the CLI: all mail lines understood."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import DATA

PUBLIC = DATA / "public"
CLEAN_SAMPLES = sorted(p for p in PUBLIC.glob("*/*.log") if p.name != "sergeymakinen-mail.log")


@pytest.mark.parametrize("path", CLEAN_SAMPLES, ids=lambda p: p.name)
def test_sample_parses_with_zero_unparsed_lines(relayguard: Any, path: Any) -> None:
    run = relayguard("analyze", "--json", "--year", "2024", str(path))
    stats = json.loads(run.out)["stats"]
    non_empty = sum(1 for line in path.read_text().splitlines() if line.strip())
    assert stats["lines_unparsed"] == 0
    assert stats["lines_parsed"] == non_empty
    assert stats["lines_bad_timestamp"] == 0


def test_deliberately_malformed_sample_fails_only_on_its_malformed_lines(relayguard: Any) -> None:
    """sergeymakinen's exporter test log opens with a section of malformed lines on purpose,
    and has comment headers and one "Unsupported" body per daemon; nothing else may fail."""
    path = PUBLIC / "postfix_exporter" / "sergeymakinen-mail.log"
    run = relayguard(
        "analyze",
        "--json",
        "--year",
        "2024",
        "--show-unparsed",
        "--unparsed-samples",
        "100",
        str(path),
    )
    doc = json.loads(run.out)
    unparsed = doc["unparsed_samples"]
    assert doc["stats"]["lines_unparsed"] == len(unparsed) == 22
    comments = [u for u in unparsed if u.startswith("#")]
    assert len(comments) == 7
    assert [u for u in unparsed if not u.startswith("#")] == [
        "Jan 1 00:00:00 hostname postfix1[12345]: foo",
        "Jan 1 00:00:00 hostname postfix/unknown[12345]: foo",
        "Jan: 1 00:00:00 hostname postfix/postscreen[12345]: foo",
        "Jan 1 00:00:00 hostname postfix/postscreen[abcde]: foo",
        "Jan 1 00:00:00 hostname postfix/postscreen[12345",
        "Jan 1 00:00:00 hostname postfix/postscreen",
        "Foo 1 00:00:00 hostname",
        "Jan 1 00:00:00",
        "Jan",
        "Jan 1 00:00:00 hostname postfix/smtpd[12345]: NOQUEUE: reject: Unsupported",
        "Jan 1 00:00:00 hostname postfix/smtpd[12345]: Unsupported",
        "Jan 1 00:00:00 hostname postfix/lmtp[12345]: Unsupported",
        "Jan 1 00:00:00 hostname postfix/smtp[12345]: Unsupported",
        "Jan 1 00:00:00 hostname postfix/cleanup[12345]: Unsupported",
        "Jan 1 00:00:00 hostname postfix/qmgr[12345]: Unsupported",
    ]
    assert doc["stats"]["lines_parsed"] == 44
