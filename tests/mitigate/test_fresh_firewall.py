"""firewall ban and egress, as a fresh user met them: IPv4-mapped addresses, addresses that
name no single host, a quiet log in a cron job, a user named twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

LAB = Path(__file__).resolve().parents[1] / "data" / "lab"


def test_an_ipv4_mapped_address_is_banned_as_ipv4_once(relayguard: Any) -> None:
    run = relayguard("firewall", "ban", "::ffff:198.51.100.7", "198.51.100.7")
    assert run.code == 0, run.err
    elements = [x for x in run.out.splitlines() if x.startswith("add element")]
    assert elements == ["add element inet relayguard_ban ban4 { 198.51.100.7 timeout 86400s }"]


def test_an_ipv4_mapped_attacker_in_the_log_is_banned_as_ipv4(
    relayguard: Any, tmp_path: Path
) -> None:
    text = (LAB / "03_auth_bruteforce.log").read_text()
    log = tmp_path / "bf.log"
    log.write_text(text.replace("[127.0.0.66]", "[::ffff:198.51.100.66]"))
    run = relayguard("firewall", "ban", "--log", str(log))
    assert run.code == 0, run.err
    elements = [x for x in run.out.splitlines() if x.startswith("add element")]
    assert elements == ["add element inet relayguard_ban ban4 { 198.51.100.66 timeout 86400s }"]


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("0.0.0.0", "cannot ban '0.0.0.0': the unspecified address is no host"),
        ("::", "cannot ban '::': the unspecified address is no host"),
        ("::ffff:0.0.0.0", "cannot ban '0.0.0.0': the unspecified address is no host"),
        (
            "255.255.255.255",
            "cannot ban '255.255.255.255': the broadcast address is no single host",
        ),
        ("224.0.0.1", "cannot ban '224.0.0.1': a multicast address is no single host"),
        ("ff02::1", "cannot ban 'ff02::1': a multicast address is no single host"),
        (
            "fe80::1%eth0",
            "cannot ban 'fe80::1%eth0': a zone id (%...) names an interface, not a host",
        ),
    ],
)
def test_what_is_no_single_host_is_refused(relayguard: Any, address: str, message: str) -> None:
    run = relayguard("firewall", "ban", address)
    assert (run.code, run.out, run.err) == (3, "", f"relayguard: error: {message}\n")


def test_a_log_without_brute_force_bans_nothing_and_succeeds(
    relayguard: Any, tmp_path: Path
) -> None:
    log = tmp_path / "quiet.log"
    log.write_text("")
    run = relayguard("firewall", "ban", "--log", str(log))
    assert (run.code, run.out) == (0, "")
    assert run.err == f"{log} has no auth-bruteforce findings: nothing to ban\n"


def test_an_mta_user_named_twice_is_one_rule_element(relayguard: Any) -> None:
    run = relayguard("firewall", "egress", "--mta-user", "nobody", "--mta-user", "nobody")
    assert run.code == 0, run.err
    accept = [x for x in run.out.splitlines() if "skuid" in x]
    assert accept == [
        "add rule inet relayguard_egress output tcp dport { 25 } meta skuid { 65534 } accept "
        'comment "the MTA: nobody"'
    ]
