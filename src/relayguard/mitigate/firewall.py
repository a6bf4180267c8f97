"""Applying firewall rules: validate first (``nft -c``, ``iptables-restore --test``), then load.

The thin shell around :mod:`relayguard.mitigate.rules`. The rule text goes to the tools on
stdin; no shell is involved. Applying is idempotent (see ``rules.py``); the iptables variant
also adds the jump from OUTPUT/INPUT to its chain once.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from relayguard.errors import RelayguardError
from relayguard.mitigate import rules
from relayguard.monitor.queue import SEARCH_PATH
from relayguard.report.sanitize import clean

TIMEOUT = 60


class FirewallError(RelayguardError):
    """A firewall tool refused the rules or is missing."""


def _tool(name: str) -> str:
    path = shutil.which(name, path=SEARCH_PATH)
    if path is None:
        package = {"nft": "nftables", "ipset": "ipset"}.get(name, "iptables")
        raise FirewallError(f"{name} not found: apt-get install {package}")
    return path


def _run(argv: Sequence[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise FirewallError(f"{argv[0]} did not finish within {TIMEOUT} s") from None
    except OSError as exc:
        raise FirewallError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None


def _must(argv: Sequence[str], stdin: str, what: str) -> None:
    done = _run(argv, stdin)
    if done.returncode != 0:
        why = clean(" ".join(done.stderr.split()), 400) or f"exit {done.returncode}"
        raise FirewallError(f"{what}: {why}")


def nft_check(text: str) -> None:
    _must([_tool("nft"), "-c", "-f", "-"], text, "nft -c refused the rules")


def nft_apply(text: str) -> None:
    nft_check(text)
    _must([_tool("nft"), "-f", "-"], text, "nft refused the rules")


def _ensure_jump(tool: str, builtin: str, chain: str) -> None:
    path = _tool(tool)
    if _run([path, "-w", "-C", builtin, "-j", chain]).returncode != 0:
        _must([path, "-w", "-I", builtin, "1", "-j", chain], "", f"{tool} -I {builtin}")


def iptables_apply(restore_input: str, builtin: str, chain: str) -> None:
    for family in ("iptables", "ip6tables"):
        restore = _tool(f"{family}-restore")
        _must([restore, "--test", "--noflush"], restore_input, f"{family}-restore --test refused")
        _must([restore, "--noflush"], restore_input, f"{family}-restore refused the rules")
        _ensure_jump(family, builtin, chain)


def iptables_ban_apply(addresses: Sequence[str], timeout: int) -> None:
    _must([_tool("ipset"), "restore", "-exist"], rules.ipset_ban(addresses, timeout), "ipset")
    for family, tool in (("inet", "iptables"), ("inet6", "ip6tables")):
        text = rules.iptables_ban(family)
        restore = _tool(f"{tool}-restore")
        _must([restore, "--test", "--noflush"], text, f"{tool}-restore --test refused")
        _must([restore, "--noflush"], text, f"{tool}-restore refused the rules")
        _ensure_jump(tool, "INPUT", rules.BAN_CHAIN)
