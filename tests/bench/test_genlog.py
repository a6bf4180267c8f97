"""bench/genlog.py: a deterministic, time-ordered Postfix log with the scripted incident."""

from __future__ import annotations

import calendar
import gzip
import importlib.util
import io
import re
import sys
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import pytest

GENLOG_PATH = Path(__file__).resolve().parents[2] / "bench" / "genlog.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_genlog", GENLOG_PATH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_genlog"] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


genlog = _load()

LINES = 40_000
ENVELOPE = re.compile(
    r"^(?P<mon>Nov|Dec) (?P<day>[ 1-3]\d) (?P<hms>\d\d:\d\d:\d\d) mail "
    r"postfix(?:/submission)?/(?P<daemon>[a-z-]+)\[\d+\]: (?P<msg>\S.*)$"
)
QID_LINE = re.compile(r"^(?P<qid>[0-9A-Z][0-9A-Za-z]{9,}): (?P<rest>.*)$")
SHORT_QID = re.compile(r"^[0-9A-F]{10,12}$")
# Postfix's safe alphabet (no vowels); the inode part uses 51 of its 52 characters, never 'z'.
_SAFE52 = "0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z"
_SAFE51 = "0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y"
LONG_QID = re.compile(rf"^[{_SAFE52}]{{10}}z[{_SAFE51}]+$")


def _make(lines: int = LINES, seed: int = 3, days: int = 5) -> tuple[str, dict[str, object]]:
    buf = io.StringIO()
    facts = genlog.generate(buf, genlog.Params(lines=lines, seed=seed, days=days))
    return buf.getvalue(), facts


@pytest.fixture(scope="module")
def log() -> tuple[list[str], dict[str, object]]:
    text, facts = _make()
    return text.splitlines(), facts


def _epoch(line: str) -> int:
    m = ENVELOPE.match(line)
    assert m is not None, line
    h, mi, s = (int(x) for x in m["hms"].split(":"))
    month = 11 if m["mon"] == "Nov" else 12
    return calendar.timegm((2026, month, int(m["day"]), h, mi, s))


def _decode(text: str, base: int) -> int:
    val = 0
    for ch in text:
        val = val * base + genlog.SAFE.index(ch)
    return val


def test_exact_line_count_and_deterministic() -> None:
    a, _ = _make(5_000, seed=9)
    b, _ = _make(5_000, seed=9)
    c, _ = _make(5_000, seed=10)
    assert a.count("\n") == 5_000
    assert a.endswith("\n")
    assert a == b
    assert a != c


def test_every_line_has_the_syslog_envelope_and_time_order(
    log: tuple[list[str], dict[str, object]],
) -> None:
    lines, facts = log
    assert len(lines) == LINES == facts["lines"]
    stamps = [_epoch(line) for line in lines]
    assert stamps == sorted(stamps)
    assert stamps[0] >= genlog.DEFAULT_START
    assert stamps[-1] == facts["last"]
    # syslog pads single-digit days with a space
    assert lines[0].startswith("Nov  2 ")


def test_daemons_and_line_kinds_present(log: tuple[list[str], dict[str, object]]) -> None:
    lines, _ = log
    daemons = {ENVELOPE.match(line)["daemon"] for line in lines}  # type: ignore[index]
    assert daemons == {
        "smtpd",
        "postscreen",
        "cleanup",
        "qmgr",
        "lmtp",
        "virtual",
        "local",
        "smtp",
        "bounce",
        "anvil",
        "pickup",
        "master",
        "postfix-script",
    }
    text = "\n".join(lines)
    for needle in (
        "postfix/submission/smtpd[",
        ": Relay access denied; from=<",
        "Recipient address rejected: User unknown in local recipient table;",
        "blocked using zen.spamhaus.org; from=<",
        "SASL LOGIN authentication failed: UGFzc3dvcmQ6",
        "authentication failed: authentication failure, sasl_username=",
        ": sender non-delivery notification: ",
        "Anonymous TLS connection established from ",
        " TLS connection established to ",
        "statistics: max connection rate ",
        ", status=deferred (",
        ", status=bounced (",
        "Client host [203.0.113.25] blocked using ",
        "PASS OLD [",
    ):
        assert needle in text, needle
    ipv6_clients = [
        ln for ln in lines if re.search(r"connect from \S+\[[0-9a-f:]+:[0-9a-f]+\]$", ln)
    ]
    assert ipv6_clients


def test_queue_ids_short_then_long_with_time_encoded(
    log: tuple[list[str], dict[str, object]],
) -> None:
    lines, facts = log
    reload_at = facts["long_queue_ids_from"]
    short = long = 0
    for line in lines:
        m = QID_LINE.match(ENVELOPE.match(line)["msg"])  # type: ignore[index]
        if m is None or m["qid"] == "NOQUEUE":
            continue
        qid = m["qid"]
        if SHORT_QID.match(qid):
            short += 1
        else:
            assert LONG_QID.match(qid), qid
            long += 1
            # a new long id carries its own creation second; every later line is no earlier
            assert _decode(qid[:6], 52) >= reload_at  # type: ignore[operator]
            assert _decode(qid[:6], 52) <= _epoch(line)
    assert short > 2_000
    assert long > 2_000


def test_queue_lifecycle_order(log: tuple[list[str], dict[str, object]]) -> None:
    lines, _ = log
    first_active: dict[str, int] = {}
    last_seen: dict[str, int] = {}
    removed: dict[str, int] = {}
    for i, line in enumerate(lines):
        m = QID_LINE.match(ENVELOPE.match(line)["msg"])  # type: ignore[index]
        if m is None or m["qid"] == "NOQUEUE":
            continue
        qid, rest = m["qid"], m["rest"]
        if rest.startswith("from=<") and "(queue active)" in rest:
            first_active.setdefault(qid, i)
        if rest.startswith("to=<"):
            assert qid in first_active, line
        if rest == "removed":
            assert qid not in removed, qid
            removed[qid] = i
        else:
            assert qid not in removed, f"line after removal: {line}"
        last_seen[qid] = i
    assert len(removed) > 2_000
    assert all(first_active[q] < removed[q] for q in removed)


def test_compromised_account_incident(log: tuple[list[str], dict[str, object]]) -> None:
    lines, facts = log
    attack_ips = facts["attack_ips"]
    login_ip = facts["login_ip"]
    assert isinstance(attack_ips, list) and len(set(attack_ips)) == 5
    assert login_ip in attack_ips
    failed_by_ip: dict[str, int] = defaultdict(int)
    spree_qids: set[str] = set()
    spree_times: list[int] = []
    login = f"client=unknown[{login_ip}], sasl_method=LOGIN, sasl_username=carol@example.org"
    for line in lines:
        if "sasl_username=carol@example.org" in line and "authentication failed" in line:
            failed_by_ip[line.split("warning: unknown[", 1)[1].split("]", 1)[0]] += 1
        if line.endswith(login):
            spree_qids.add(ENVELOPE.match(line)["msg"].split(":", 1)[0])  # type: ignore[index]
            spree_times.append(_epoch(line))
    assert set(attack_ips) <= set(failed_by_ip)
    assert all(failed_by_ip[ip] >= 50 for ip in attack_ips)
    assert len(spree_qids) == 1_400
    assert max(spree_times) - min(spree_times) <= 7_300
    assert min(spree_times) >= genlog.DEFAULT_START + 86_400  # day 2
    assert max(spree_times) < genlog.DEFAULT_START + 2 * 86_400
    nrcpt = 0
    forged = 0
    for line in lines:
        if "(queue active)" not in line:
            continue
        msg = ENVELOPE.match(line)["msg"]  # type: ignore[index]
        qid, _, rest = msg.partition(": ")
        if qid in spree_qids:
            nrcpt += int(rest.split("nrcpt=", 1)[1].split(" ", 1)[0])
            sender_domain = rest[len("from=<") :].split(">", 1)[0].partition("@")[2]
            forged += sender_domain not in ("example.org", "example.net")
    assert nrcpt == 3_900
    assert 1_100 < forged < 1_300  # 85 % forged


def test_ensure_writes_reuses_and_gzips(tmp_path: Path) -> None:
    p = genlog.Params(lines=2_000, seed=4, days=2)
    path = genlog.ensure(p, gz=True, out_dir=tmp_path)
    assert path.name == f"postfix-2000-s4-d2-v{genlog.GEN_VERSION}.log"
    data = path.read_bytes()
    assert data.count(b"\n") == 2_000
    assert gzip.decompress(path.with_name(path.name + ".gz").read_bytes()) == data
    # dated by its last line, so a reader can infer the year from the mtime
    assert int(path.stat().st_mtime) == _epoch(data.decode().splitlines()[-1])
    facts = genlog.read_facts(path)
    assert facts["lines"] == 2_000
    assert facts["seed"] == 4
    assert facts["messages"] == 1_400
    inode = path.stat().st_ino
    assert genlog.ensure(p, gz=True, out_dir=tmp_path).stat().st_ino == inode
    assert not list(tmp_path.glob("*.tmp"))
