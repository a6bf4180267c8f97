"""End to end: the real Postfix lab wired to a real ``relayguard policy serve`` process.

The wiring is done by running, as printed, the commands of ``relayguard policy wiring``
against the lab's own configuration: that is what an admin would do.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from relayguard.policy.stores import SqliteStore
from tests.lab.client import Transcript
from tests.lab.postfix import MailLab
from tests.policy.serve import Served, write_config

ALICE = ("alice@lab.test", "S3cret-pass")
BOB = ("bob@lab.test", "Bob-pass-42")
RULES = """
local_domains = ["lab.test"]

[[policy.rules]]
name = "user-msgs"
key = "sasl_username"
count = "messages"
windows = ["3/hour"]
action = "DEFER"
text = "450 4.7.1 Sending limit reached, try again later"

[[policy.rules]]
name = "compromise"
key = "sasl_username"
count = "external_domains"
windows = ["4/hour"]
action = "CONTAIN"
"""


@pytest.fixture
def wired(
    mail_lab: MailLab, tmp_path: Path, relayguard: object
) -> Iterator[tuple[MailLab, Served]]:
    mail_lab.set_mode("closed")
    config = write_config(tmp_path / "policy.toml", f"sqlite:{tmp_path / 'policy.db'}", RULES)
    served = Served(config)
    try:
        run = relayguard  # the in-process CLI
        out = run(  # type: ignore[operator]
            "policy",
            "wiring",
            "--listen",
            f"127.0.0.1:{served.port}",
            "--postfix-config",
            str(mail_lab.config_dir),
        )
        assert out.code == 0, out.err
        mark = mail_lab.mark()
        env_path = "/usr/sbin:/usr/bin:/sbin:/bin"
        subprocess.run(
            ["bash", "-euo", "pipefail", "-c", out.out],
            check=True,
            capture_output=True,
            env={"PATH": env_path},
            timeout=120,
        )
        mail_lab.wait_for_log(r"postfix/master\[\d+\]: reload -- ", timeout=30, since=mark)
        mail_lab.check_banner(mail_lab.submission_port, since=mark)
        yield mail_lab, served
    finally:
        served.stop()
        mail_lab.purge()
        mail_lab.reload()  # the lab's own configuration again


def _submit(lab: MailLab, who: tuple[str, str], recipients: list[str], subject: str) -> Transcript:
    user, password = who
    return lab.send(
        "127.0.0.1",
        sender=user,
        recipients=recipients,
        user=user,
        password=password,
        submission=True,
        subject=subject,
    )


def _wait_held(lab: MailLab, queue_id: str) -> dict[str, object]:
    """The message's ``postqueue -j`` entry once it is in the hold queue."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        entry = {m["queue_id"]: m for m in lab.queue()}.get(queue_id)
        if entry is not None and entry["queue_name"] == "hold":
            return entry
        time.sleep(0.05)
    raise AssertionError(f"{queue_id} not in the hold queue: {lab.queue()}\n{lab.tail()}")


def test_wiring_commands_put_the_check_first_in_both_lists(
    wired: tuple[MailLab, Served],
) -> None:
    lab, served = wired
    main = lab.postconf("-h", "relayguard_policy", "smtpd_end_of_data_restrictions").splitlines()
    assert main == [
        f"check_policy_service {{ inet:127.0.0.1:{served.port}, timeout=5s, "
        "default_action=DUNNO }",
        "$relayguard_policy",
    ]
    service = f"127.0.0.1:{lab.submission_port}/inet/smtpd_recipient_restrictions"
    assert lab.postconf("-P", service).strip() == (
        f"{service} = $relayguard_policy,permit_sasl_authenticated,reject"
    )


def test_user_over_the_limit_gets_the_4xx_at_the_fourth_message(
    wired: tuple[MailLab, Served],
) -> None:
    lab, served = wired
    transcripts = [
        _submit(lab, ALICE, ["someone@external.example"], f"limit {n}") for n in range(1, 5)
    ]
    data = [t.data for t in transcripts]
    assert [r.code if r else None for r in data] == [250, 250, 250, 450]
    assert data[3] is not None
    assert data[3].text == (
        "4.7.1 <END-OF-MESSAGE>: End-of-data rejected: Sending limit reached, try again later"
    )
    limited = served.of("policy_decision")
    assert [(e["decision"], e["rule"], e["sasl_username"]) for e in limited] == [
        ("limited", "user-msgs", "alice@lab.test")
    ]
    assert limited[0]["protocol_state"] == "END-OF-MESSAGE"


def test_contained_account_is_held_and_release_lets_it_go(
    wired: tuple[MailLab, Served], tmp_path: Path
) -> None:
    lab, served = wired
    with SqliteStore(tmp_path / "policy.db") as store:
        assert store.contain("bob@lab.test", "password phished", 0.0) is True
    held = _submit(lab, BOB, ["friend@external.example"], "while contained")
    assert held.accepted
    (queue_id,) = held.queue_ids
    entry = _wait_held(lab, queue_id)
    recipients = entry["recipients"]
    assert isinstance(recipients, list)
    assert [r["address"] for r in recipients] == ["friend@external.example"]
    lab.wait_for_log(
        r"NOQUEUE: hold: RCPT from .*: <friend@external.example>: Recipient address held for "
        r"review: the sending account is contained by relayguard; from=<bob@lab.test>"
    )

    with SqliteStore(tmp_path / "policy.db") as store:
        assert store.release("bob@lab.test") is True
    sent = _submit(lab, BOB, ["friend@external.example"], "after release")
    (new_id,) = sent.queue_ids
    lab.run("postsuper", "-H", queue_id)  # the held one, released by the admin
    lab.wait_removed([new_id, queue_id])
    wanted = ("while contained", "after release")
    subjects = sorted(m.subject for m in lab.sink_messages() if m.subject in wanted)
    assert subjects == ["after release", "while contained"]
    contained = [e for e in served.of("policy_decision") if e["decision"] == "contained"]
    # asked at RCPT and again at the end of data, HOLD both times
    assert [(e["key"], e["protocol_state"]) for e in contained] == [
        ("bob@lab.test", "RCPT"),
        ("bob@lab.test", "END-OF-MESSAGE"),
    ]


def test_compromise_rule_contains_the_account_and_raises_an_alert(
    wired: tuple[MailLab, Served], tmp_path: Path
) -> None:
    lab, served = wired
    spray = [f"x@spam{n}.example" for n in range(6)]
    burst = _submit(lab, BOB, spray, "spray")
    # RCPT 1-4 pass; the fifth new domain overflows 4/hour: HOLD, and bob is contained
    assert [r.code for r in burst.rcpt] == [250] * 6
    (queue_id,) = burst.queue_ids
    _wait_held(lab, queue_id)
    (alert,) = served.of("alert")
    assert (alert["indicator"], alert["key"], alert["severity"]) == (
        "compromised-account",
        "bob@lab.test",
        "critical",
    )
    assert alert["reason"] == (
        "rule 'compromise': over 4 per hour external_domains of one sasl_username"
    )
    with SqliteStore(tmp_path / "policy.db") as store:
        assert [c.key for c in store.contained()] == ["bob@lab.test"]
    # every further message is held, whatever it is
    later = _submit(lab, BOB, ["alice@lab.test"], "later")
    assert later.accepted, later.replies
    (later_id,) = later.queue_ids
    _wait_held(lab, later_id)
