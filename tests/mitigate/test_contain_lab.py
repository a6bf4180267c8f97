"""``relayguard contain`` against the real lab queue: exactly the account's mail is held."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relayguard.mitigate.containment import runbook
from relayguard.policy.stores import open_store
from tests.lab.config import USERS
from tests.lab.postfix import LabError, MailLab

ALICE, BOB = "alice@lab.test", "bob@lab.test"


def queue_by_id(lab: MailLab) -> dict[str, dict[str, Any]]:
    return {m["queue_id"]: m for m in lab.queue()}


@pytest.fixture
def stuck_queue(mail_lab: MailLab) -> Iterator[MailLab]:
    """Mail that cannot leave: the sink is down. Purged and the sink restarted afterwards."""
    mail_lab.purge()
    mail_lab.sink.stop()
    try:
        yield mail_lab
    finally:
        mail_lab.purge()
        mail_lab.sink.start()


def wait_queued(lab: MailLab, count: int) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + 60
    while True:
        q = queue_by_id(lab)
        if len(q) >= count and all(m["queue_name"] in ("deferred", "hold") for m in q.values()):
            return q
        if time.monotonic() > deadline:
            raise LabError(f"queue: {q}")
        time.sleep(0.2)


def test_contain_holds_exactly_that_users_mail_and_release_undoes_it(
    stuck_queue: MailLab, tmp_path: Path, relayguard: Any
) -> None:
    lab = stuck_queue
    # alice's login sends with forged senders and with her own address
    for sender in ("billing@forged.example", "ceo@bank.example", ALICE):
        lab.send("127.0.0.2", sender, ["x@outside.example"], user=ALICE,
                 password=USERS[ALICE], submission=True)  # fmt: skip
    for _ in range(2):
        lab.send("127.0.0.2", BOB, ["y@outside.example"], user=BOB,
                 password=USERS[BOB], submission=True)  # fmt: skip
    # trusted, unauthenticated, another sender: not alice's
    lab.send("127.0.0.1", "cron@lab.test", ["z@outside.example"])
    before = wait_queued(lab, 6)
    alice_ids = sorted(
        q for q, m in before.items() if m["sender"] in ("billing@forged.example",
                                                        "ceo@bank.example", ALICE)
    )  # fmt: skip
    assert len(alice_ids) == 3
    store = f"sqlite:{tmp_path / 'policy.sqlite'}"
    common = ["--postfix-config", str(lab.config_dir), "--store", store]

    dry = relayguard("contain", ALICE, *common)
    assert dry.code == 0, dry.err
    assert "would hold 3 queued message(s) (3 by SASL login, 0 by sender" in dry.out
    assert "Nothing was changed" in dry.out
    assert all(m["queue_name"] == "deferred" for m in queue_by_id(lab).values())
    assert not (tmp_path / "policy.sqlite").exists()

    done = relayguard("contain", ALICE, *common, "--apply")
    assert done.code == 0, done.err
    assert f"{ALICE}: contained in {store}" in done.out
    review = "'sasl_username=" + ALICE.replace(".", "\\.") + "(,|$)'"
    assert review in done.out  # the runbook's log review
    assert f"--release --apply --store {store} --postfix-config {lab.config_dir}\n" in done.out
    after = queue_by_id(lab)
    held = sorted(q for q, m in after.items() if m["queue_name"] == "hold")
    assert held == alice_ids
    assert len(after) == 6  # nothing deleted
    s = open_store(store)
    try:
        assert [c.key for c in s.contained()] == [ALICE]
    finally:
        s.close()

    again = relayguard("contain", ALICE, *common, "--apply")
    assert "already contained" in again.out
    assert "hold 0 queued message(s)" in again.out and "3 already held" in again.out

    dry_release = relayguard("contain", ALICE, *common, "--release")
    assert dry_release.code == 0, dry_release.err
    lines = dry_release.out.splitlines()
    assert lines[0] == f"{ALICE}: would be released in {store}"
    assert lines[1].startswith("would release 3 held message(s): ")
    assert sorted(lines[1].split(": ")[1].split()) == alice_ids
    assert lines[2:] == ["", "Nothing was changed: run again with --apply."]
    assert all(queue_by_id(lab)[q]["queue_name"] == "hold" for q in alice_ids)

    released = relayguard("contain", ALICE, *common, "--release", "--apply")
    assert released.code == 0, released.err
    assert f"{ALICE}: released" in released.out
    assert all(m["queue_name"] != "hold" for m in queue_by_id(lab).values())
    s = open_store(store)
    try:
        assert s.contained() == []
    finally:
        s.close()


@pytest.mark.parametrize(
    "account",
    ["alice@lab.test; rm -rf /", "bob\nINJECTED", "$(reboot)", "", "a b@lab.test", "\x1b[31mx"],
)
def test_hostile_account_names_are_refused(relayguard: Any, account: str) -> None:
    run = relayguard("contain", account)
    assert run.code == 3
    assert run.err.startswith("relayguard: error: not an account name: ")
    assert run.err.count("\n") == 1
    assert "\x1b" not in run.err and "INJECTED\n" not in run.err


def test_the_runbook_release_command_names_the_store_and_instance_used() -> None:
    lines = runbook("alice@lab.test", "/var/log/mail.log", ["--store", "sqlite:/tmp/a b.sqlite"])
    assert lines[-1] == (
        "  relayguard contain alice@lab.test --release --apply --store 'sqlite:/tmp/a b.sqlite'"
    )
    assert runbook("alice@lab.test", "/var/log/mail.log")[-1] == (
        "  relayguard contain alice@lab.test --release --apply"
    )
