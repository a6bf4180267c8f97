"""contain, as a fresh user met it: a dry run checks the store it names, says what is already
done, shows bad names escaped once; the runbook's grep finds this login and no other."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from relayguard.mitigate.containment import runbook
from relayguard.policy.stores import open_store
from tests.mitigate.test_contain_cli import ALICE, FakePostfix


@pytest.fixture
def postfix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePostfix:
    return FakePostfix(tmp_path, monkeypatch)


def _dead_port() -> int:
    s = socket.create_server(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_a_dry_run_reports_a_store_that_would_fail(
    relayguard: Any, postfix: FakePostfix, tmp_path: Path
) -> None:
    port = _dead_port()
    cases = {
        "mysql://x": "bad store 'mysql://x': expected sqlite:PATH, redis://HOST[:PORT][/DB] "
        "or memory:",
        f"redis://127.0.0.1:{port}/0": f"redis: ConnectionError: Error 111 connecting to "
        f"127.0.0.1:{port}. Connection refused.",
        f"sqlite:{tmp_path}/missing/policy.sqlite": f"no policy store at "
        f"'{tmp_path}/missing/policy.sqlite' and no directory '{tmp_path}/missing': "
        "is this the store relayguard policy uses?",
    }
    for spec, message in cases.items():
        run = relayguard("contain", ALICE, "--store", spec)
        assert (run.code, run.out, run.err) == (3, "", f"relayguard: error: {message}\n")
    assert not (tmp_path / "missing").exists()


def test_a_dry_run_says_already_contained_and_creates_no_store(
    relayguard: Any, postfix: FakePostfix, tmp_path: Path
) -> None:
    path = tmp_path / "policy.sqlite"
    first = relayguard("contain", ALICE, "--store", f"sqlite:{path}")
    assert first.out.splitlines()[0] == (
        f"{ALICE}: would be contained in sqlite:{path} (relayguard policy HOLDs its mail)"
    )
    assert not path.exists()
    with open_store(f"sqlite:{path}") as store:
        store.contain(ALICE, "test", 1.0)
    again = relayguard("contain", ALICE, "--store", f"sqlite:{path}")
    assert again.code == 0, again.err
    assert again.out.splitlines()[0] == f"{ALICE}: already contained in sqlite:{path}"
    release = relayguard("contain", "bob@example.org", "--release", "--store", f"sqlite:{path}")
    assert release.out.splitlines()[0] == f"bob@example.org: is not contained in sqlite:{path}"


def test_a_bad_account_name_is_shown_escaped_once(relayguard: Any) -> None:
    run = relayguard("contain", "alice\nbob")
    assert run.code == 3
    assert run.err.startswith("relayguard: error: not an account name: 'alice\\nbob' (")


def test_the_runbook_grep_finds_this_login_and_no_other(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(
        "Dec  4 17:55:18 vm postfix/smtpd[1]: A1: client=x[192.0.2.1], sasl_method=PLAIN, "
        "sasl_username=alice\n"
        "Dec  4 17:55:19 vm postfix/smtpd[1]: A2: client=x[192.0.2.1], sasl_method=PLAIN, "
        "sasl_username=alice@lab.test\n"
        "Dec  4 17:55:20 vm postfix/smtpd[1]: A3: client=x[192.0.2.1], sasl_method=PLAIN, "
        "sasl_username=Alice, sasl_sender=ceo@bank.example\n"
        "Dec  4 17:55:21 vm postfix/smtpd[1]: A4: client=x[192.0.2.1], sasl_method=PLAIN, "
        "sasl_username=alicex\n"
    )
    line = next(x for x in runbook("alice", str(log)) if x.startswith("  grep"))
    assert line == (
        f"  grep -iE -- 'sasl_username=alice(,|$)' {log} | grep -v 'authentication failed' "
        "| tail -n 50"
    )
    found = subprocess.run(line, shell=True, capture_output=True, text=True, check=True).stdout
    assert [x.split(": ")[1] for x in found.splitlines()] == ["A1", "A3"]
    dotted = next(x for x in runbook("a.b+c@lab.test", "l") if x.startswith("  grep"))
    assert "'sasl_username=a\\.b\\+c@lab\\.test(,|$)'" in dotted
