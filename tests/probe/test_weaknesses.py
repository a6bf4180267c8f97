"""Findings from observations, without sockets: one table row per weakness."""

from __future__ import annotations

from typing import Any

import pytest

from relayguard.probe.result import (
    Phase,
    RateResult,
    ServiceResult,
    TlsInfo,
    Verdict,
    VrfyResult,
)
from relayguard.probe.weaknesses import INDICATORS, findings_for

PLAIN_OK = {"PIPELINING": "", "STARTTLS": ""}


def found(**kw: Any) -> dict[str, str]:
    options: dict[str, Any] = {"address": "192.0.2.1", "port": 25, "verdict": Verdict.CLOSED}
    options.setdefault("extensions", {Phase.PLAIN: PLAIN_OK})
    options |= kw
    return {f.indicator: f.severity.label for f in findings_for(ServiceResult(**options))}


CASES: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({}, {}),
    ({"extensions": {Phase.PLAIN: {"PIPELINING": ""}}}, {"smtp-no-starttls": "medium"}),
    # implicit TLS needs no STARTTLS
    ({"implicit_tls": True, "extensions": {Phase.TLS: {}}}, {}),
    ({"extensions": {Phase.PLAIN: PLAIN_OK | {"AUTH": "PLAIN LOGIN"}}},
     {"smtp-auth-before-tls": "high"}),
    ({"extensions": {Phase.PLAIN: PLAIN_OK | {"AUTH": "CRAM-MD5 SCRAM-SHA-256"}}},
     {"smtp-auth-before-tls": "medium"}),
    # AUTH after STARTTLS only is how it should be
    ({"extensions": {Phase.PLAIN: PLAIN_OK, Phase.STARTTLS: {"AUTH": "PLAIN LOGIN"}}}, {}),
    ({"extensions": {Phase.PLAIN: PLAIN_OK, Phase.STARTTLS: {"AUTH": "PLAIN ANONYMOUS"}}},
     {"smtp-auth-anonymous": "critical"}),
    ({"tls": [TlsInfo(phase=Phase.STARTTLS, version="TLSv1.3", cipher="TLS_AES_256_GCM_SHA384")]},
     {}),
    ({"tls": [TlsInfo(phase=Phase.STARTTLS, version="TLSv1", cipher="AES256-SHA")]},
     {"smtp-weak-tls": "medium"}),
    ({"tls": [TlsInfo(phase=Phase.STARTTLS, error="STARTTLS answered 454")]},
     {"smtp-starttls-broken": "medium"}),
    ({"vrfy": VrfyResult(known=252, unknown=550, expn=502)}, {"smtp-vrfy-enabled": "medium"}),
    ({"vrfy": VrfyResult(known=252, unknown=252, expn=502)}, {}),  # 252 for all: fine
    ({"vrfy": VrfyResult(known=502, unknown=502, expn=250)}, {"smtp-expn-enabled": "medium"}),
    ({"extensions": {Phase.PLAIN: PLAIN_OK | {"XFORWARD": "NAME ADDR"}}},
     {"smtp-xforward-offered": "low"}),
    ({"extensions": {Phase.PLAIN: PLAIN_OK, Phase.STARTTLS: {"XCLIENT": "ADDR"}}},
     {"smtp-xclient-offered": "critical"}),
    ({"greeting": ["S: 220 mx.example.net ESMTP Postfix (Debian/GNU)"]},
     {"smtp-banner-version": "low"}),
    ({"help_lines": ("S: 214-2.0.0 This is sendmail version 8.15.2",)},
     {"smtp-banner-version": "low"}),
    ({"slow_replies": 2, "slowest_reply": 7.5}, {"smtp-tarpit": "info"}),
    ({"rate": RateResult(attempted=30, served=30, refused=0, seconds=1.2)},
     {"smtp-no-connection-limit": "low"}),
    ({"rate": RateResult(attempted=12, served=11, refused=1, seconds=1.2)}, {}),
]  # fmt: skip


@pytest.mark.parametrize(("kw", "expected"), CASES)
def test_findings(kw: dict[str, Any], expected: dict[str, str]) -> None:
    assert found(**kw) == expected


def test_open_relay_on_a_submission_port_points_at_submission_first() -> None:
    s = ServiceResult(
        address="192.0.2.1", port=587, verdict=Verdict.OPEN, why="1 relay test accepted",
        extensions={Phase.PLAIN: PLAIN_OK},
    )  # fmt: skip
    [relay] = findings_for(s)
    assert relay.indicator == "open-relay"
    assert relay.severity.label == "critical"
    assert relay.subject.value == "192.0.2.1:587"
    assert relay.title == "192.0.2.1:587 relays mail for anyone: 1 relay test accepted"
    assert relay.mitigations[:2] == ["require-auth-submission", "close-open-relay"]


def test_every_indicator_has_known_mitigations() -> None:
    from relayguard import mitigations

    assert len(set(INDICATORS)) == len(INDICATORS) == 16
    for kw, _ in CASES:
        options: dict[str, Any] = {"address": "192.0.2.1", "port": 25}
        options.setdefault("extensions", {Phase.PLAIN: PLAIN_OK})
        for f in findings_for(ServiceResult(**(options | kw))):
            assert f.indicator in INDICATORS
            assert all(mitigations.get(m) is not None for m in f.mitigations), f.mitigations


def test_the_json_doc_lists_every_indicator() -> None:
    import re
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "probe-json.md").read_text()
    section = doc.split("## Indicators", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z-]+)` \|", section, re.MULTILINE)
    assert listed == list(INDICATORS)
