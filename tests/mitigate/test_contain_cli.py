"""``relayguard contain`` with stand-in Postfix queue commands: which store it uses (``--store``,
else ``[policy] store`` of ``--config``, SQLite or Redis), what it prints, what it runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relayguard.mitigate import postfix_queue
from relayguard.mitigate.containment import shown_store
from relayguard.policy.stores import open_store
from tests.lab.fixtures import on_ci
from tests.policy.redis_server import PASSWORD, RedisServer, redis_missing

ALICE = "alice@example.org"
QUEUE = [
    {"queue_id": "AAA111", "queue_name": "deferred", "sender": "ceo@bank.example"},
    {"queue_id": "BBB222", "queue_name": "deferred", "sender": ALICE},
    {"queue_id": "CCC333", "queue_name": "hold", "sender": "x@forged.example"},
    {"queue_id": "DDD444", "queue_name": "deferred", "sender": "bob@example.org"},
]
LOGINS = {"AAA111": ALICE, "CCC333": ALICE, "DDD444": "bob@example.org"}


class FakePostfix:
    """postqueue -j, postcat -e -q and postsuper that serve QUEUE and record what is asked."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        bin_dir = tmp / "sbin"
        bin_dir.mkdir()
        self.calls = tmp / "postsuper.calls"
        queue = "\n".join(json.dumps(r) for r in QUEUE)
        logins = tmp / "logins"
        logins.write_text("".join(f"{qid} {login}\n" for qid, login in LOGINS.items()))
        scripts = {
            "postqueue": f"#!/bin/sh\ncat <<'EOF'\n{queue}\nEOF\n",
            "postcat": (
                '#!/bin/sh\nfor id in "$@"; do\n'
                f"  login=$(awk -v id=\"$id\" '$1 == id {{print $2}}' {logins})\n"
                '  [ -n "$login" ] && printf \'*** ENVELOPE RECORDS deferred/%s ***\\n'
                'named_attribute: sasl_username=%s\\n\' "$id" "$login"\n'
                "done\nexit 0\n"
            ),
            "postsuper": f'#!/bin/sh\n{{ echo "$@"; cat; }} >> {self.calls}\n',
        }
        for name, text in scripts.items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        monkeypatch.setattr(postfix_queue, "SEARCH_PATH", str(bin_dir))

    def postsuper(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


@pytest.fixture
def postfix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePostfix:
    return FakePostfix(tmp_path, monkeypatch)


def policy_config(tmp: Path, store: str) -> Path:
    path = tmp / "relayguard.toml"
    path.write_text(f'[analyze]\nlocal_domains = ["example.org"]\n\n[policy]\nstore = "{store}"\n')
    return path


def contained(store: str) -> list[str]:
    s = open_store(store)
    try:
        return [c.key for c in s.contained()]
    finally:
        s.close()


def test_the_store_comes_from_the_policy_config(
    relayguard: Any, postfix: FakePostfix, tmp_path: Path
) -> None:
    store = f"sqlite:{tmp_path / 'policy.sqlite'}"
    config = policy_config(tmp_path, store)

    dry = relayguard("contain", ALICE, "--config", str(config))
    assert dry.code == 0, dry.err
    lines = dry.out.splitlines()
    assert lines[:2] == [
        f"{ALICE}: would be contained in {store} (relayguard policy HOLDs its mail)",
        "would hold 2 queued message(s) (2 by SASL login, 1 by sender; 1 already held): AAA111 "
        "BBB222",
    ]
    assert f"  relayguard contain {ALICE} --release --apply --config {config}" in lines
    assert lines[-1] == "Nothing was changed: run again with --apply."
    assert not (tmp_path / "policy.sqlite").exists()
    assert postfix.postsuper() == []

    done = relayguard("contain", ALICE, "--config", str(config), "--apply")
    assert done.code == 0, done.err
    assert done.out.splitlines()[0] == f"{ALICE}: contained in {store}"
    assert contained(store) == [ALICE]
    assert postfix.postsuper() == ["-h -", "AAA111", "BBB222"]


def test_store_overrides_the_config(relayguard: Any, postfix: FakePostfix, tmp_path: Path) -> None:
    from_config = f"sqlite:{tmp_path / 'config.sqlite'}"
    given = f"sqlite:{tmp_path / 'given.sqlite'}"
    config = policy_config(tmp_path, from_config)
    done = relayguard("contain", ALICE, "--config", str(config), "--store", given, "--apply")
    assert done.code == 0, done.err
    assert done.out.splitlines()[0] == f"{ALICE}: contained in {given}"
    assert f"  relayguard contain {ALICE} --release --apply --store {given}" in done.out
    assert contained(given) == [ALICE]
    assert not (tmp_path / "config.sqlite").exists()


def test_a_config_without_a_policy_table_is_one_line_error(
    relayguard: Any, postfix: FakePostfix, tmp_path: Path
) -> None:
    config = tmp_path / "watch.toml"
    config.write_text('[watch]\nlog = "/var/log/mail.log"\n')
    run = relayguard("contain", ALICE, "--config", str(config))
    assert (run.code, run.out) == (3, "")
    assert run.err == "relayguard: error: the config has no [policy] table\n"


def test_release_dry_run_says_nothing_was_changed(
    relayguard: Any, postfix: FakePostfix, tmp_path: Path
) -> None:
    store = f"sqlite:{tmp_path / 'policy.sqlite'}"
    run = relayguard("contain", ALICE, "--release", "--store", store)
    assert run.code == 0, run.err
    assert run.out.splitlines() == [
        f"{ALICE}: would be released in {store}",
        "would release 1 held message(s): CCC333",
        "",
        "Nothing was changed: run again with --apply.",
    ]
    assert postfix.postsuper() == []


def test_redis_urls_are_shown_without_their_password() -> None:
    assert shown_store("redis://:pw@10.0.0.5:6379/0") == "redis://10.0.0.5:6379/0"
    assert shown_store("rediss://u:pw@r.example:6380/2?ca=/ca.pem") == (
        "rediss://u@r.example:6380/2?ca=/ca.pem"
    )
    assert shown_store("redis://10.0.0.5/1") == "redis://10.0.0.5/1"
    assert shown_store("sqlite:/var/lib/relayguard/policy.sqlite") == (
        "sqlite:/var/lib/relayguard/policy.sqlite"
    )


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    missing = redis_missing()
    if missing:
        why = f"the Redis tests need {', '.join(missing)}: run scripts/install-test-deps"
        if on_ci():
            pytest.fail(f"Redis unavailable on CI: {why}", pytrace=False)
        pytest.skip(why)
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()


def test_contain_and_release_in_redis(
    relayguard: Any, postfix: FakePostfix, tmp_path: Path, redis: RedisServer
) -> None:
    redis.flush()
    config = policy_config(tmp_path, redis.url)
    shown = f"redis://127.0.0.1:{redis.port}/0"

    done = relayguard("contain", ALICE, "--config", str(config), "--apply")
    assert done.code == 0, done.err
    assert done.out.splitlines()[0] == f"{ALICE}: contained in {shown}"
    assert PASSWORD not in done.out
    assert contained(redis.url) == [ALICE]

    # --store with the password in it: the release command printed works with the password
    # in the environment
    dry = relayguard("contain", ALICE, "--store", redis.url)
    assert PASSWORD not in dry.out
    assert (
        f"  relayguard contain {ALICE} --release --apply --store {shown}\n"
        "  (with the store's password in RELAYGUARD_REDIS_PASSWORD)\n"
    ) in dry.out

    released = relayguard("contain", ALICE, "--config", str(config), "--release", "--apply")
    assert released.code == 0, released.err
    assert released.out.splitlines() == [
        f"{ALICE}: released in {shown}",
        "release 1 held message(s): CCC333",
    ]
    assert contained(redis.url) == []
    assert postfix.postsuper() == ["-h -", "AAA111", "BBB222", "-H -", "CCC333"]


def test_a_redis_store_that_is_down_changes_nothing(
    relayguard: Any, postfix: FakePostfix, tmp_path: Path, redis: RedisServer
) -> None:
    redis.kill()
    try:
        run = relayguard("contain", ALICE, "--store", redis.url, "--apply")
    finally:
        redis.start()
    assert run.code == 3
    assert run.err.startswith("relayguard: error: redis: ConnectionError: ")
    assert run.err.count("\n") == 1 and PASSWORD not in run.err
    assert postfix.postsuper() == []


def test_the_store_is_contained_even_when_the_queue_cannot_be_read(
    relayguard: Any, postfix: FakePostfix, tmp_path: Path
) -> None:
    """New mail is stopped first; a broken postqueue costs the queue step only, and says so."""
    (tmp_path / "sbin" / "postqueue").write_text(
        "#!/bin/sh\necho 'postqueue: fatal: open /etc/postfix/main.cf: No such file' >&2\nexit 69\n"
    )
    store = f"sqlite:{tmp_path / 'policy.sqlite'}"
    why = "postqueue exited 69: postqueue: fatal: open /etc/postfix/main.cf: No such file"

    dry = relayguard("contain", ALICE, "--store", store)
    assert dry.code == 3
    assert dry.out.splitlines()[:2] == [
        f"{ALICE}: would be contained in {store} (relayguard policy HOLDs its mail)",
        f"queue: {why}: its queued mail was not held",
    ]
    assert dry.out.splitlines()[-1] == "Nothing was changed: run again with --apply."
    assert dry.err == f"relayguard: error: the account's queued mail was not held: {why}\n"

    done = relayguard("contain", ALICE, "--store", store, "--apply")
    assert done.code == 3
    assert done.out.splitlines()[0] == f"{ALICE}: contained in {store}"
    assert contained(store) == [ALICE]
    assert postfix.postsuper() == []

    back = relayguard("contain", ALICE, "--store", store, "--release", "--apply")
    assert back.code == 3
    assert back.out.splitlines() == [
        f"{ALICE}: released in {store}",
        f"queue: {why}: its queued mail was not released",
    ]
    assert contained(store) == []


def test_the_account_is_spelled_as_the_policy_server_spells_it(
    relayguard: Any, postfix: FakePostfix, tmp_path: Path
) -> None:
    store = f"sqlite:{tmp_path / 'policy.sqlite'}"
    done = relayguard("contain", ALICE.upper(), "--store", store, "--apply")
    assert done.code == 0, done.err
    assert contained(store) == [ALICE.lower()]
    assert postfix.postsuper() == ["-h -", "AAA111", "BBB222"]
