"""The ``dns_lab`` session fixture: a real NSD on a free loopback port (tests/dns/lab.py).

Outside CI the lab tests skip when NSD or openssl is missing; on CI (``CI=true``) they fail,
so a broken set-up cannot pass as green. Every test here runs with ``$RELAYGUARD_RESOLVER``
pointing at a loopback port where nothing answers, so a test that forgets ``--resolver``
can never reach /etc/resolv.conf's (possibly public) resolver.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dns.lab import DnsLab, missing_commands
from tests.lab.fixtures import on_ci
from tests.ports import free_port


@pytest.fixture(autouse=True)
def no_system_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAYGUARD_RESOLVER", f"127.0.0.1:{DEAD_PORT}")


DEAD_PORT = free_port(udp=True)


@pytest.fixture(scope="session")
def dns_lab() -> Iterator[DnsLab]:
    missing = missing_commands()
    if missing:
        why = f"the DNS lab needs {', '.join(missing)}: run scripts/install-test-deps"
        if on_ci():
            pytest.fail(f"DNS lab unavailable on CI: {why}", pytrace=False)
        pytest.skip(why)
    lab = DnsLab()
    atexit.register(lab.close)
    try:
        lab.start()
        yield lab
    finally:
        lab.close()
        atexit.unregister(lab.close)


@pytest.fixture
def lists_file(dns_lab: DnsLab, tmp_path: Path):  # type: ignore[no-untyped-def]
    """lists_file(entry, ...) -> path of a --lists TOML with those [[list]] tables."""

    def make(*entries: dict[str, object]) -> str:
        return str(dns_lab.lists_file(tmp_path, list(entries), "lists.toml"))

    return make
