"""``--from-postfix``: the sending addresses and HELO name read with the real ``postconf``."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.dns.lab import DnsLab
from tests.lab.fixtures import on_ci

FAST = ("--timeout", "0.5", "--tries", "1", "--rate", "0")


@pytest.fixture
def config_dir(tmp_path: Path) -> Any:
    if shutil.which("postconf") is None and not Path("/usr/sbin/postconf").exists():
        if on_ci():
            pytest.fail("postconf missing on CI: run scripts/install-test-deps", pytrace=False)
        pytest.skip("postconf (Postfix) is not installed")

    def make(main_cf: str) -> str:
        # a myhostname of its own: else postconf asks the system resolver for this host's name
        (tmp_path / "main.cf").write_text("myhostname = mx1.example.test\n" + main_cf)
        (tmp_path / "master.cf").write_text("smtp inet n - y - - smtpd\n")
        for name in ("main.cf", "master.cf"):  # postconf waits for a file younger than 1 s
            os.utime(tmp_path / name, (time.time() - 60, time.time() - 60))
        return str(tmp_path)

    return make


def test_public_address_behind_nat_and_helo(
    relayguard: Any, dns_lab: DnsLab, lists_file: Any, config_dir: Any
) -> None:
    folder = config_dir("mydomain = example.test\ninet_interfaces = loopback-only\n"
                        "proxy_interfaces = 192.0.2.25, 10.0.0.1\n"
                        "smtp_helo_name = mx1.$mydomain\n")  # fmt: skip
    run = relayguard("dnsbl", "--from-postfix", "--postfix-config", folder, "--resolver",
                     dns_lab.resolver, "--lists", lists_file({"zone": "zen.dnsbl.test",
                     "like": "spamhaus-zen"}), *FAST, "--json")  # fmt: skip
    assert run.code == 0, run.err
    (subject,) = run.json["subjects"]
    assert subject["subject"] == "192.0.2.25"  # 10.0.0.1 never reaches a block list
    assert subject["rdns"]["helo"] == "mx1.example.test"
    assert subject["rdns"]["fcrdns"] is True
    assert run.json["findings"] == []


def test_loopback_only_server_is_a_one_line_error(relayguard: Any, config_dir: Any) -> None:
    folder = config_dir("inet_interfaces = loopback-only\n")
    run = relayguard("dnsbl", "--from-postfix", "--postfix-config", folder)
    assert run.code == 3
    assert run.err == (
        "relayguard: error: --from-postfix: no public address (inet_interfaces = loopback-only,"
        " no proxy_interfaces or smtp_bind_address); name the address: relayguard dnsbl IP\n"
    )


def test_domain_checks_spf_for_the_postfix_addresses(
    relayguard: Any, dns_lab: DnsLab, config_dir: Any
) -> None:
    folder = config_dir("inet_interfaces = loopback-only\nsmtp_bind_address = 203.0.113.9\n")
    run = relayguard("domain", "example.test", "--from-postfix", "--postfix-config", folder,
                     "--resolver", dns_lab.resolver, *FAST[:4], "--json")  # fmt: skip
    assert [(o["ip"], o["result"]) for o in run.json["spf"]["ips"]] == [("203.0.113.9", "fail")]
    assert run.code == 2


def test_zone_id_address_is_skipped_with_a_note(
    relayguard: Any, dns_lab: DnsLab, lists_file: Any, config_dir: Any
) -> None:
    folder = config_dir("inet_interfaces = loopback-only\nsmtp_bind_address = 192.0.2.25\n"
                        "smtp_bind_address6 = 2001:db8::25%eth0\n")  # fmt: skip
    run = relayguard("dnsbl", "--from-postfix", "--postfix-config", folder, "--resolver",
                     dns_lab.resolver, "--lists", lists_file({"zone": "zen.dnsbl.test",
                     "like": "spamhaus-zen"}), *FAST, "--json")  # fmt: skip
    assert run.code == 0, run.err
    assert [s["subject"] for s in run.json["subjects"]] == ["192.0.2.25"]
    assert run.json["notes"] == [
        "--from-postfix: skipped 2001:db8::25%eth0: zone ids are link-local: not on block lists"
    ]


def test_bind_address_that_is_no_address_is_a_one_line_error(
    relayguard: Any, config_dir: Any
) -> None:
    folder = config_dir("inet_interfaces = loopback-only\nsmtp_bind_address = garbage\n")
    run = relayguard("dnsbl", "--from-postfix", "--postfix-config", folder)
    assert (run.code, run.err) == (3, "relayguard: error: --from-postfix: smtp_bind_address = "
                                      "'garbage' is not an IP address\n")  # fmt: skip


def test_address_left_out_by_inet_protocols_is_named(relayguard: Any, config_dir: Any) -> None:
    folder = config_dir("inet_interfaces = loopback-only\ninet_protocols = ipv6\n"
                        "proxy_interfaces = 192.0.2.25\n")  # fmt: skip
    run = relayguard("dnsbl", "--from-postfix", "--postfix-config", folder)
    assert (run.code, run.err) == (3, "relayguard: error: --from-postfix: no public address: "
                                      "inet_protocols = ipv6 leaves out 192.0.2.25; name the "
                                      "address: relayguard dnsbl IP\n")  # fmt: skip
