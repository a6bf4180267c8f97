"""``relayguard policy list|show|contain|release`` on a SQLite store file."""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from relayguard.cli import main
from relayguard.cli.policy import policy, window_text
from relayguard.policy.limiter import Limit
from relayguard.policy.rules import parse_window
from relayguard.policy.stores import SqliteStore
from tests.ports import free_port

cli_policy = importlib.import_module("relayguard.cli.policy")  # the module, not the group
FAR = 4_102_444_800.0  # 2100-01-01T00:00:00Z: a state that is live whenever the test runs


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(policy, list(args))
    return result.exit_code, result.stdout


def test_round_trip(tmp_path: Path) -> None:
    spec = f"sqlite:{tmp_path / 'p.db'}"
    SqliteStore(tmp_path / "p.db").close()
    empty = CliRunner().invoke(policy, ["list", "--store", spec])
    assert (empty.exit_code, empty.stdout, empty.stderr) == (0, "", "no key is contained\n")
    assert _run("contain", "alice", "--reason", "phished", "--store", spec) == (
        0,
        "alice: contained\n",
    )
    assert _run("contain", "alice", "--store", spec) == (0, "alice: already contained\n")
    assert _run("contain", "bob@example.org", "--store", spec) == (
        0,
        "bob@example.org: contained\n",
    )
    with SqliteStore(tmp_path / "p.db") as store:
        store.allow("user-msgs:alice", (Limit(2, 3600, 2),), FAR, 1)
        since = {c.key: c.since for c in store.contained()}
    stamps = {k: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(v)) for k, v in since.items()}
    code, out = _run("list", "--store", spec)
    assert code == 0
    assert out.splitlines() == [
        f"alice\t{stamps['alice']}\tphished",
        f"bob@example.org\t{stamps['bob@example.org']}\tcontained by an administrator",
    ]
    assert _run("show", "alice", "--store", spec) == (
        0,
        f"alice: contained since {stamps['alice']}: phished\n"
        "  rule user-msgs: 2/hour: 0 of 2 left now, all back at 2100-01-01T00:30:00Z\n",
    )
    result = CliRunner().invoke(policy, ["release", "alice", "--store", spec])
    assert (result.exit_code, result.stdout) == (
        0,
        "alice: released (its CONTAIN rule windows are cleared)\n",
    )
    assert "postsuper -H QUEUE_ID" in result.stderr
    assert _run("release", "alice", "--store", spec) == (0, "alice: was not contained\n")
    assert _run("show", "alice", "--store", spec)[1].splitlines()[0] == "alice: not contained"
    code, out = _run("list", "--store", spec)
    assert out.splitlines() == [
        f"bob@example.org\t{stamps['bob@example.org']}\tcontained by an administrator"
    ]


def test_store_from_config(tmp_path: Path) -> None:
    config = tmp_path / "relayguard.toml"
    config.write_text(f'[policy]\nstore = "sqlite:{tmp_path / "c.db"}"\n')
    assert _run("contain", "carol", "--config", str(config)) == (0, "carol: contained\n")
    assert _run("show", "carol", "--store", f"sqlite:{tmp_path / 'c.db'}")[1].startswith(
        "carol: contained since "
    )


def test_show_marks_windows_the_config_no_longer_has(tmp_path: Path) -> None:
    """The limit was 2/hour when alice was charged and is 5/hour now: that state is not enforced."""
    db = tmp_path / "p.db"
    config = tmp_path / "relayguard.toml"
    config.write_text(
        f'[policy]\nstore = "sqlite:{db}"\n\n[[policy.rules]]\nname = "user-msgs"\n'
        'key = "sasl_username"\ncount = "messages"\nwindows = ["5/hour"]\naction = "DEFER"\n'
    )
    with SqliteStore(db) as store:
        store.allow("user-msgs:alice", (Limit(2, 3600, 2),), FAR, 1)
        store.allow("user-msgs:alice", (Limit(5, 3600, 5),), FAR, 1)
        store.allow("gone:alice", (Limit(9, 60, 9),), FAR, 1)
    assert _run("show", "alice", "--config", str(config)) == (
        0,
        "alice: not contained\n"
        "  rule gone: 9/min: 0 of 9 left now, all back at 2100-01-01T00:00:06Z"
        " (not in the config now: not enforced)\n"
        "  rule user-msgs: 2/hour: 0 of 2 left now, all back at 2100-01-01T00:30:00Z"
        " (not in the config now: not enforced)\n"
        "  rule user-msgs: 5/hour: 0 of 5 left now, all back at 2100-01-01T00:12:00Z\n",
    )


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["policy", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_without_store_or_config_the_default_store_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_policy.DEFAULT_STORE == "sqlite:/var/lib/relayguard/policy.sqlite"
    spec = f"sqlite:{tmp_path / 'default.sqlite'}"
    monkeypatch.setattr(cli_policy, "DEFAULT_STORE", spec)
    assert _main(capsys, "contain", "Eve@Example.org") == (0, "eve@example.org: contained\n", "")
    code, out, _ = _main(capsys, "list")
    assert (code, out.split("\t")[0]) == (0, "eve@example.org")
    assert _main(capsys, "release", "eve@example.org")[:2] == (
        0,
        "eve@example.org: released (its CONTAIN rule windows are cleared)\n",
    )


def test_read_only_commands_never_create_a_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "p.sqlite"
    for command in (["list"], ["show", "alice"], ["release", "alice"]):
        assert _main(capsys, *command, "--store", f"sqlite:{missing}") == (
            3,
            "",
            f"relayguard: error: no policy store at '{missing}' (nothing was ever stored there)\n",
        )
    assert not (tmp_path / "nonexistent").exists()


def test_a_file_that_is_not_a_store_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.txt"
    text.write_bytes(b"not a database at all, just some text that is long enough\n" * 20)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    db.close()
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    cases = [
        (text, "not an SQLite database"),
        (other, "it has tables ['invoices']"),
        (empty, "an empty database"),
    ]
    for path, why in cases:
        for command in (["list"], ["contain", "alice"]):
            if path == empty and command == ["contain", "alice"]:
                continue  # an empty file may become a store
            assert _main(capsys, *command, "--store", f"sqlite:{path}") == (
                3,
                "",
                f"relayguard: error: '{path}' is not a relayguard policy store ({why})\n",
            )
    with sqlite3.connect(other) as db:
        tables = [n for (n,) in db.execute("SELECT name FROM sqlite_master")]
    db.close()
    assert tables == ["invoices"]
    assert text.read_bytes().startswith(b"not a database")


def test_contain_from_a_clean_report_contains_nobody(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "clean.json"
    report.write_text(json.dumps({"schema": "relayguard.analyze/1", "findings": []}))
    spec = f"sqlite:{tmp_path / 'p.sqlite'}"
    assert _main(capsys, "contain", "--from-analyze", str(report), "--store", spec) == (
        0,
        "no compromised account in the report: nothing to contain\n",
        "",
    )


def test_keys_are_spelled_as_the_server_spells_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = f"sqlite:{tmp_path / 'p.sqlite'}"
    assert _main(capsys, "contain", "2001:DB8:0:0::2", "::FFFF:192.0.2.7", "--store", spec) == (
        0,
        "2001:db8::2: contained\n192.0.2.7: contained\n",
        "",
    )
    assert _main(capsys, "contain", "Alice@Example.ORG", "--store", spec)[1] == (
        "alice@example.org: contained\n"
    )
    assert _main(capsys, "show", "2001:db8::2", "--store", spec)[1].startswith(
        "2001:db8::2: contained since "
    )
    assert _main(capsys, "release", "ALICE@example.org", "--store", spec)[1] == (
        "alice@example.org: released (its CONTAIN rule windows are cleared)\n"
    )


def test_show_names_each_window_as_the_config_writes_it(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "p.db") as store:
        store.allow("msgs:bob", (Limit(5, 3600, 5),), FAR - 1800, 3)
        store.allow("slow:bob", (Limit(10, 300, 2),), FAR - 10, 1)
        store.allow("contain:domains:bob", (Limit(50, 86400, 50),), FAR - 3600, 1)
    code, out = _run("show", "bob", "--store", f"sqlite:{tmp_path / 'p.db'}")
    assert code == 0
    # FAR is ahead of the clock: every window reads as used up to its state
    assert out.splitlines() == [
        "bob: not contained",
        "  rule domains: CONTAIN 50/day: 0 of 50 left now, all back at 2099-12-31T23:28:48Z",
        "  rule msgs: 5/hour: 0 of 5 left now, all back at 2100-01-01T00:06:00Z",
        "  rule slow: 10/5min burst 2: 0 of 2 left now, all back at 2100-01-01T00:00:20Z",
    ]


@pytest.mark.parametrize(
    ("limit", "text"),
    [
        (Limit(5, 3600, 5), "5/hour"),
        (Limit(10, 300, 10), "10/5min"),
        (Limit(100, 7200, 10), "100/2hours burst 10"),
        (Limit(3, 45, 3), "3/45s"),
        (Limit(1000, 86400, 1000), "1000/day"),
        (Limit(7, 1209600, 7), "7/2weeks"),
    ],
)
def test_window_text_parses_back(limit: Limit, text: str) -> None:
    assert window_text(limit) == text
    assert parse_window(text) == limit


def test_remaining_allowance_is_shown(tmp_path: Path) -> None:
    now = time.time()
    with SqliteStore(tmp_path / "p.db") as store:
        # 2 of 5 used a moment ago: 3 left now
        store.allow("msgs:carl", (Limit(5, 3600, 5),), now, 2)
    code, out = _run("show", "carl", "--store", f"sqlite:{tmp_path / 'p.db'}")
    assert code == 0
    assert out.splitlines()[1].startswith("  rule msgs: 5/hour: 3 of 5 left now, all back at ")


def test_serve_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "relayguard.toml"
    config.write_text(
        "[policy]\n"
        f'store = "sqlite:{tmp_path / "s.db"}"\n'
        "[[policy.rules]]\n"
        'key = "sasl_username"\ncount = "messages"\nwindows = ["1/hour"]\naction = "REJECT"\n'
    )
    port = free_port()
    code = "import sys; from relayguard.cli.policy import policy; policy(sys.argv[1:])"
    args = ["serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        listening = json.loads(proc.stderr.readline())
        assert listening["event"] == "listening"
        assert listening["event_loop"] == "uvloop"  # a dependency on Linux
        request = (
            b"request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n"
            b"sasl_username=zoe\ninstance=Z%d\n\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(request % 1 + request % 2)
            got = b""
            while got.count(b"\n\n") < 2:
                got += s.recv(4096)
        assert got == b"action=DUNNO\n\naction=554 5.7.1 Rate limit exceeded\n\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        lines = proc.stderr.read().decode().splitlines()
        assert '"decision":"limited"' in lines[0]
        assert lines[-1].endswith('"event":"stopped","requests":2}')
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _config(tmp_path: Path, **settings: object) -> Path:
    config = tmp_path / "relayguard.toml"
    store = f"sqlite:{tmp_path / 's.db'}"
    lines = ["[policy]", f"store = {json.dumps(store)}"]
    lines += [f"{name} = {json.dumps(value)}" for name, value in settings.items()]
    config.write_text("\n".join(lines) + "\n")
    return config


def test_serve_on_an_address_in_use_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = _main(
            capsys, "serve", "--config", str(_config(tmp_path)), "--listen", f"127.0.0.1:{port}"
        )
    assert (code, out, err) == (
        3,
        "",
        f"relayguard: error: cannot listen on 127.0.0.1:{port}: the address is already in use "
        "(another server is listening there?)\n",
    )


@pytest.mark.parametrize(
    ("listen", "error"),
    [
        # TEST-NET-1: never one of this host's addresses; binding sends nothing
        (
            "192.0.2.1:10040",
            "cannot listen on 192.0.2.1:10040: the address is not one of this host's",
        ),
        (
            "unix:{tmp}/missing/dir/p.sock",
            "cannot listen on unix:{tmp}/missing/dir/p.sock: No such file or directory",
        ),
        (
            "256.1.1.1:10040",
            "bad listen address '256.1.1.1:10040': '256.1.1.1' is not an address or host",
        ),
        ("[::g]:10040", "bad listen address '[::g]:10040': '::g' is not an address or host"),
        ("bad_host:1", "bad listen address 'bad_host:1': 'bad_host' is not an address or host"),
    ],
)
def test_serve_on_an_unusable_address_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], listen: str, error: str
) -> None:
    listen, error = listen.format(tmp=tmp_path), error.format(tmp=tmp_path)
    code, out, err = _main(capsys, "serve", "--config", str(_config(tmp_path)), "--listen", listen)
    assert (code, out, err) == (3, "", f"relayguard: error: {error}\n")
    # the same in the config file
    config = _config(tmp_path, listen=listen)
    if "bad listen" in error:
        assert _main(capsys, "serve", "--config", str(config)) == (
            3,
            "",
            f"relayguard: error: {error}\n",
        )


def test_unresolvable_host_reason() -> None:
    from relayguard.policy.server import _os_reason

    assert _os_reason(socket.gaierror(-2, "Name or service not known")) == (
        "cannot resolve the host (Name or service not known)"
    )


@pytest.mark.parametrize("command", [["serve"], ["list"], ["wiring"]])
def test_a_config_that_is_not_utf8_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    config = tmp_path / "latin1.toml"
    config.write_bytes('[policy]\n# caf\xe9\nlocal_domains = ["example.org"]\n'.encode("latin-1"))
    assert _main(capsys, *command, "--config", str(config)) == (
        3,
        "",
        f"relayguard: error: '{config}' is not UTF-8 text\n",
    )


def test_a_regular_file_at_the_socket_path_is_never_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    code, out, err = _main(
        capsys, "serve", "--config", str(_config(tmp_path)), "--listen", f"unix:{precious}"
    )
    assert (code, out, err) == (
        3,
        "",
        f"relayguard: error: {precious} exists and is not a socket: not removed, "
        "choose another path\n",
    )
    assert precious.read_text() == "keep me\n"


@pytest.mark.parametrize(
    "timeout", ["abc } x", "-5s", "", "0", "0s", "5 s", "5x", "1.5s", "1234567s"]
)
def test_wiring_refuses_a_timeout_postfix_would_not_take(
    capsys: pytest.CaptureFixture[str], timeout: str
) -> None:
    code, out, err = _main(capsys, "wiring", "--timeout", timeout)
    assert (code, out) == (3, "")
    assert err.startswith(
        f"relayguard: usage error: Invalid value for --timeout: {timeout!r} is not a Postfix "
        "time: a number above 0 with an optional unit s, m, h, d or w (e.g. 5s, 1m, 10)"
    )


@pytest.mark.parametrize("timeout", ["10s", "1m", "10", "2h"])
def test_wiring_takes_postfix_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], timeout: str
) -> None:
    (tmp_path / "main.cf").write_text("")
    (tmp_path / "master.cf").write_text("")
    code, out, err = _main(
        capsys, "wiring", "--timeout", timeout, "--postfix-config", str(tmp_path)
    )
    assert (code, err) == (0, "")
    assert (
        "postconf -c "
        f"{tmp_path} -e 'relayguard_policy = check_policy_service {{ inet:127.0.0.1:10040, "
        f"timeout={timeout}, default_action=DUNNO }}'"
    ) in out.splitlines()
