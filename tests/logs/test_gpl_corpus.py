"""Every line of the GPL samples (Exim test suite, Wazuh rules) is understood.

The samples are GPL-2.0, so they are read in place from ``../shared/corpus`` (or
``$RELAYGUARD_SHARED/corpus``) and never copied; the tests skip when that folder is absent.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest

from relayguard.logs import dovecot, exim, sendmail
from relayguard.logs.events import Event

pytestmark = pytest.mark.corpus

SHARED = Path(os.environ.get("RELAYGUARD_SHARED") or Path(__file__).parents[3] / "shared")
CORPUS = SHARED / "corpus" / "public"

_MAINLOG = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? (.*)")
_SYSLOG = re.compile(r"(?:\w{3} +\d+ \d\d:\d\d:\d\d) (.*)")

# Lines written by the test suite's own ACL ``logwrite``/``log_message`` settings: free text
# chosen by whoever wrote the configuration, so no parser can understand them.
EXIM_CUSTOM_LOGWRITE = (
    "10.9.8.8 accepted by connect ACL",
    "10.9.8.10 accepted by connect ACL",
    'mail accepted "',
    "acl_c0: ",
)


def _need(folder: str) -> Path:
    path = CORPUS / folder
    if not path.is_dir():
        pytest.skip(f"GPL corpus not present at {path}")
    return path


def _syslog(line: str) -> tuple[str, str]:
    """(program, message) of a syslog line whose host may be missing."""
    m = _SYSLOG.fullmatch(line)
    assert m is not None, line
    first, _, rest = m.group(1).partition(" ")
    if first.endswith(":"):
        tag, message = first[:-1], rest
    else:
        tag, _, message = rest.partition(": ")
    return re.sub(r"\[\d+\]$", "", tag), message


def _lines(path: Path) -> list[str]:
    return [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("********")  # test-suite section banners
    ]


def test_exim_testsuite_every_line_understood() -> None:
    folder = _need("exim-testsuite")
    counts: Counter[str] = Counter()
    skipped = 0
    for path in sorted(folder.glob("*.log")):
        for line in _lines(path):
            m = _MAINLOG.fullmatch(line)
            assert m is not None, line
            message = m.group(1)
            ev = Event(0.0, "", "exim", None, line)
            exim.parse(ev, message)
            if message.startswith(EXIM_CUSTOM_LOGWRITE):
                assert ev.type == "unparsed", line
                skipped += 1
                continue
            assert ev.type != "unparsed", line
            counts[ev.type] += 1
    assert skipped == 8
    assert dict(counts) == EXIM_COUNTS


EXIM_COUNTS = {
    "queued": 58,
    "delivery": 101,
    "removed": 57,
    "daemon": 36,
    "auth-failure": 27,
    "reject": 21,
    "info": 12,
    "warning": 7,
    "connect-failed": 6,
    "relay-denied": 1,
    "lost-connection": 1,
}


def test_wazuh_exim_sendmail_dovecot_every_line_understood() -> None:
    folder = _need("wazuh")
    counts: dict[str, Counter[str]] = {}
    for name, parser in (
        ("ruleset-0515-exim.log", "exim"),
        ("ruleset-0025-sendmail.log", "sendmail"),
        ("ruleset-0155-dovecot.log", "dovecot"),
    ):
        c = counts[parser] = Counter()
        for line in _lines(folder / name):
            if parser == "exim":
                m = _MAINLOG.fullmatch(line)
                assert m is not None, line
                ev = Event(0.0, "", "exim", None, line)
                exim.parse(ev, m.group(1))
            else:
                program, message = _syslog(line)
                ev = Event(0.0, "", program, None, line)
                # The Dovecot 1.x lines have a log level where the tag should be ("Info:");
                # dispatch does not route those today, so call the parser directly.
                (sendmail.parse if parser == "sendmail" else dovecot.parse)(ev, message)
            assert ev.type != "unparsed", line
            c[ev.type] += 1
    assert {k: dict(v) for k, v in counts.items()} == WAZUH_COUNTS


WAZUH_COUNTS = {
    "exim": {"auth-failure": 2, "connect": 1, "lost-connection": 2},
    "sendmail": {"queued": 2, "daemon": 1},
    "dovecot": {
        "auth-failure": 7,
        "auth-success": 1,
        "disconnect": 3,
        "daemon": 1,
        "warning": 2,
        "info": 1,
    },
}
