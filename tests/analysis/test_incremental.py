"""The analyzer fed in pieces, asked for findings in between, saved and restored: the way
``relayguard watch`` uses it must give exactly what one ``relayguard analyze`` run gives."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relayguard.analysis import snapshot
from relayguard.analysis.engine import Analyzer
from relayguard.config import AnalyzeSettings, Config
from relayguard.logs.events import Event
from relayguard.logs.reader import LogReader
from tests.conftest import DATA, LAB

CONFIG = Config(analyze=AnalyzeSettings(local_domains=["lab.test"]))

# log sets with findings of every detector between them
SETS = {
    "bruteforce-then-spam": sorted(LAB.glob("0[34]_*.log")),
    "whole-lab": sorted(LAB.glob("*.log")),
    "crowdsec": sorted((DATA / "public" / "crowdsec-hub").glob("postfix-*.log")),
    "benign": [DATA / "benign" / "steady_office.log"],
}


def events(paths: list[Path]) -> list[Event]:
    return list(LogReader([str(p) for p in paths]).events())


EVENTS = {name: events(paths) for name, paths in SETS.items()}


def findings(analyzer: Analyzer) -> list[dict[str, Any]]:
    result = analyzer.finish()
    return [f.to_json() for f in result.findings] + [{"verdict": str(result.verdict)}]


def one_shot(name: str) -> list[dict[str, Any]]:
    analyzer = Analyzer(CONFIG)
    analyzer.feed_all(EVENTS[name])
    return findings(analyzer)


EXPECTED = {name: one_shot(name) for name in SETS}


def test_the_sets_cover_every_detector() -> None:
    indicators = {f["indicator"] for doc in EXPECTED.values() for f in doc if "indicator" in f}
    assert indicators >= {
        "auth-bruteforce",
        "compromised-account",
        "outbound-spike",
        "unknown-sender-domain",
        "open-relay-use",
        "relay-probing",
        "ndr-flood",
        "queue-buildup",
    }


@pytest.mark.parametrize("name", sorted(SETS))
def test_finish_twice_gives_the_same_findings(name: str) -> None:
    analyzer = Analyzer(CONFIG)
    analyzer.feed_all(EVENTS[name])
    assert findings(analyzer) == findings(analyzer) == EXPECTED[name]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(SETS)),
    cuts=st.lists(st.floats(min_value=0, max_value=1), max_size=6),
    restore=st.booleans(),
)
def test_pieces_with_findings_between_equal_one_run(
    name: str, cuts: list[float], restore: bool
) -> None:
    evs = EVENTS[name]
    points = [*sorted({int(c * len(evs)) for c in cuts}), len(evs)]
    analyzer = Analyzer(CONFIG)
    start = 0
    for point in points:
        analyzer.feed_all(evs[start:point])
        start = point
        findings(analyzer)  # asking must not change what comes later
        if restore:
            analyzer = snapshot.load(snapshot.dump(analyzer), CONFIG)
    assert findings(analyzer) == EXPECTED[name]


def test_a_brute_force_goes_on_across_a_restart() -> None:
    evs = EVENTS["bruteforce-then-spam"]
    failures = [i for i, ev in enumerate(evs) if ev.type == "auth-failure"]
    cut = failures[5]  # 5 failures before the restart: below every threshold
    before = Analyzer(CONFIG)
    before.feed_all(evs[:cut])
    assert not [f for f in before.finish().findings if f.indicator == "auth-bruteforce"]
    after = snapshot.load(snapshot.dump(before), CONFIG)
    after.feed_all(evs[cut:])
    comp = [f for f in after.finish().findings if f.indicator == "compromised-account"]
    assert [f.details["failures_before"] for f in comp] == [35]


def test_restore_uses_the_new_config_object() -> None:
    analyzer = Analyzer(CONFIG)
    fresh = Config(analyze=AnalyzeSettings(local_domains=["lab.test"]))
    restored = snapshot.load(snapshot.dump(analyzer), fresh)
    assert restored.ctx.config is fresh


def test_changed_detection_settings_refuse_the_state() -> None:
    data = snapshot.dump(Analyzer(CONFIG))
    other = replace(CONFIG, analyze=replace(CONFIG.analyze, local_domains=["other.test"]))
    with pytest.raises(snapshot.StaleSnapshot, match="detection settings changed"):
        snapshot.load(data, other)


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "not a relayguard analyzer state"),
        (b"something else entirely", "not a relayguard analyzer state"),
        (snapshot.MAGIC + b"abc", "truncated"),
        (
            snapshot.MAGIC + snapshot.fingerprint(CONFIG).encode() + b"\n" + b"\x80\x05garbage",
            "damaged",
        ),
        (
            snapshot.MAGIC + snapshot.fingerprint(CONFIG).encode() + b"\n" + pickle.dumps(_Evil()),
            "names posix.system, which is not analyzer state",
        ),
        (
            snapshot.MAGIC
            + snapshot.fingerprint(CONFIG).encode()
            + b"\n"
            + pickle.dumps(snapshot.dump),
            "not a class",
        ),
        (
            snapshot.MAGIC + snapshot.fingerprint(CONFIG).encode() + b"\n" + pickle.dumps([1]),
            "holds something else",
        ),
    ],
)
def test_bad_state_files_are_refused(payload: bytes, message: str) -> None:
    with pytest.raises(snapshot.SnapshotError, match=message):
        snapshot.load(payload, CONFIG)
