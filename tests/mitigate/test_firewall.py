"""Firewall rules: checked by ``nft -c``, and applied inside network namespaces this test
creates (never the host's firewall), where only the MTA user's connection to port 25 gets out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relayguard.mitigate import rules
from tests.lab.fixtures import on_ci

RELAYGUARD = str(Path(sys.executable).parent / "relayguard")
PYTHON = "/usr/bin/python3"
NEEDED = ("nft", "ip", "setpriv", "iptables-restore", "ipset")
# RFC 5737 documentation addresses, only ever on the veth pair between the test's namespaces
CLIENT_IP, SERVER_IP = "192.0.2.1", "192.0.2.2"


def _gate() -> None:
    missing = [t for t in NEEDED if shutil.which(t, path="/usr/sbin:/sbin:/usr/bin") is None]
    why = ""
    if os.geteuid() != 0:
        why = "network namespaces need root"
    elif missing:
        why = f"needs {', '.join(missing)}: run scripts/install-test-deps"
    if why:
        if on_ci():
            pytest.fail(why, pytrace=False)
        pytest.skip(why)


def sh(*argv: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=60, **kw)


class Pair:
    """Two namespaces joined by a veth pair; a TCP listener on port 25 in the server one."""

    def __init__(self) -> None:
        tag = f"rg{os.getpid()}"
        self.client, self.server = f"{tag}c", f"{tag}s"
        sh("ip", "netns", "add", self.client)
        sh("ip", "netns", "add", self.server)
        sh("ip", "link", "add", f"{tag}a", "netns", self.client, "type", "veth",
           "peer", "name", f"{tag}b", "netns", self.server)  # fmt: skip
        ends = ((self.client, f"{tag}a", CLIENT_IP), (self.server, f"{tag}b", SERVER_IP))
        for ns, dev, ip in ends:
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        code = (
            "import socket, sys\n"
            "s = socket.create_server((sys.argv[1], 25))\n"
            "print('ready', flush=True)\n"
            "while True:\n"
            "    c, _ = s.accept(); c.sendall(b'220 ok\\r\\n'); c.close()\n"
        )
        self.listeners = [
            subprocess.Popen(
                ["ip", "netns", "exec", ns, PYTHON, "-c", code, addr],
                stdout=subprocess.PIPE,
                text=True,
            )
            for ns, addr in ((self.server, SERVER_IP), (self.client, "127.0.0.1"))
        ]
        for p in self.listeners:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"

    def connects(self, user: str, address: str) -> bool:
        """Whether ``user`` in the client namespace gets the 220 of ``address``:25."""
        code = (
            "import socket, sys\n"
            "try:\n"
            "    s = socket.create_connection((sys.argv[1], 25), timeout=3)\n"
            "    print(s.recv(16).decode().strip())\n"
            "except OSError as e:\n"
            "    print('failed', e)\n"
        )
        done = sh("ip", "netns", "exec", self.client, "setpriv", f"--reuid={user}",
                  f"--regid={user if user != 'nobody' else 'nogroup'}", "--clear-groups",
                  PYTHON, "-c", code, address)  # fmt: skip
        return done.stdout.strip() == "220 ok"

    def relayguard(self, *args: str) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.client, RELAYGUARD, *args, check=False)

    def close(self) -> None:
        for p in self.listeners:
            p.kill()
            p.wait()
            if p.stdout is not None:
                p.stdout.close()
        sh("ip", "netns", "del", self.client, check=False)
        sh("ip", "netns", "del", self.server, check=False)


@pytest.fixture
def pair() -> Iterator[Pair]:
    _gate()
    p = Pair()
    yield p
    p.close()


def test_generated_rules_pass_nft_check(tmp_path: Path) -> None:
    _gate()
    ns = f"rg{os.getpid()}chk"
    sh("ip", "netns", "add", ns)
    try:
        for text in (
            rules.nft_egress([("postfix", 102), ("root", 0)], [25, 465, 587]),
            rules.nft_ban(["192.0.2.9", "2001:db8::9"], 3600),
            rules.nft_ban(["192.0.2.9"], 60),
        ):
            done = sh("ip", "netns", "exec", ns, "nft", "-c", "-f", "-", input=text, check=False)
            assert done.returncode == 0, done.stderr
    finally:
        sh("ip", "netns", "del", ns)


def test_only_the_mta_user_gets_out_to_port_25(pair: Pair) -> None:
    assert pair.connects("nobody", SERVER_IP)  # open before
    done = pair.relayguard("firewall", "egress", "--mta-user", "postfix", "--apply")
    assert done.returncode == 0, done.stderr
    assert "checked with nft -c" in done.stdout
    assert pair.connects("postfix", SERVER_IP)
    assert not pair.connects("nobody", SERVER_IP)
    assert not pair.connects("root", SERVER_IP)
    assert pair.connects("nobody", "127.0.0.1")  # local submission to the MTA stays open
    # idempotent: applying again gives the same rules
    listing = sh("ip", "netns", "exec", pair.client, "nft", "list", "table", "inet",
                 rules.EGRESS_TABLE).stdout  # fmt: skip
    assert pair.relayguard("firewall", "egress", "--mta-user", "postfix", "--apply").returncode == 0
    again = sh("ip", "netns", "exec", pair.client, "nft", "list", "table", "inet",
               rules.EGRESS_TABLE).stdout  # fmt: skip
    strip = [line for line in listing.splitlines() if "counter" not in line]
    assert strip == [line for line in again.splitlines() if "counter" not in line]
    assert again.count("drop") == 1


def test_iptables_variant_only_the_mta_user_gets_out(pair: Pair) -> None:
    done = pair.relayguard("firewall", "egress", "--mta-user", "postfix", "--iptables", "--apply")
    assert done.returncode == 0, done.stderr
    assert pair.connects("postfix", SERVER_IP)
    assert not pair.connects("nobody", SERVER_IP)
    assert pair.relayguard("firewall", "egress", "--iptables", "--apply").returncode == 0
    rules_now = sh("ip", "netns", "exec", pair.client, "iptables", "-S").stdout
    assert rules_now.count(f"-A OUTPUT -j {rules.EGRESS_CHAIN}") == 1
    assert rules_now.count("-j DROP") == 1


def test_a_ban_drops_the_address(pair: Pair) -> None:
    # the ban goes into the server's namespace: the client's address is refused there
    done = sh("ip", "netns", "exec", pair.server, RELAYGUARD, "firewall", "ban", CLIENT_IP,
              "--timeout", "600", "--apply", check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not pair.connects("postfix", SERVER_IP)
    listing = sh("ip", "netns", "exec", pair.server, "nft", "list", "set", "inet",
                 rules.BAN_TABLE, "ban4").stdout  # fmt: skip
    assert f"{CLIENT_IP} timeout 10m" in listing


def test_iptables_ban_with_another_timeout_applies_again(pair: Pair) -> None:
    # ipset restore -exist forgives only an identical "create": a second run with another
    # --timeout used to fail with "set with the same name already exists"
    first = sh("ip", "netns", "exec", pair.server, RELAYGUARD, "firewall", "ban", "192.0.2.77",
               "--timeout", "600", "--iptables", "--apply", check=False)  # fmt: skip
    assert first.returncode == 0, first.stderr
    again = sh("ip", "netns", "exec", pair.server, RELAYGUARD, "firewall", "ban", CLIENT_IP,
               "--timeout", "3600", "--iptables", "--apply", check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert not pair.connects("postfix", SERVER_IP)
    members = sh("ip", "netns", "exec", pair.server, "ipset", "list",
                 f"{rules.BAN_SET}-inet").stdout.partition("Members:")[2].split()  # fmt: skip
    assert sorted(members[0::3]) == [CLIENT_IP, "192.0.2.77"]
    timeouts = dict(zip(members[0::3], (int(t) for t in members[2::3]), strict=True))
    assert 600 < timeouts[CLIENT_IP] <= 3600
    assert timeouts["192.0.2.77"] <= 600


def test_ipset_sets_are_created_alike_whatever_the_timeout() -> None:
    def creates(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("create ")]

    assert creates(rules.ipset_ban(["192.0.2.9"], 60)) == creates(
        rules.ipset_ban(["2001:db8::9"], 7 * 86400)
    )
    assert "add relayguard-ban-inet 192.0.2.9 timeout 60" in rules.ipset_ban(["192.0.2.9"], 60)


def test_printed_iptables_ban_says_how_to_hook_it_in(relayguard: Any) -> None:
    run = relayguard("firewall", "ban", "192.0.2.9", "--iptables")
    assert run.code == 0, run.err
    assert f"#   iptables -I INPUT 1 -j {rules.BAN_CHAIN} (and ip6tables)" in run.out


def test_without_apply_nothing_changes(pair: Pair) -> None:
    done = pair.relayguard("firewall", "egress")
    assert done.returncode == 0
    assert done.stdout.startswith("# relayguard firewall egress")
    assert sh("ip", "netns", "exec", pair.client, "nft", "list", "ruleset").stdout == ""
    assert pair.connects("nobody", SERVER_IP)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["egress", "--mta-user", "no-such-user"], "no such user: 'no-such-user'"),
        (["ban", "not-an-ip"], "not an IP address: 'not-an-ip'"),
        (["ban", "127.0.0.1"], "nothing to ban"),
        (["ban", "1.2.3.4;reboot"], "not an IP address: '1.2.3.4;reboot'"),
    ],
)
def test_bad_input_is_one_line_exit_3(relayguard: Any, args: list[str], message: str) -> None:
    run = relayguard("firewall", *args)
    assert run.code == 3
    assert message in run.err
    assert run.err.count("\n") <= 2
