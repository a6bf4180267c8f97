"""``relayguard dnsbl`` against the real NSD lab: each bug class of issue 5 with the right value."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from typing import Any

import pytest

from tests.dns.lab import BENCH_NET, DnsLab, bench_listed

FAST = ("--timeout", "0.5", "--tries", "1", "--rate", "0")
ZEN = {"zone": "zen.dnsbl.test", "like": "spamhaus-zen"}
DBL = {"zone": "dbl.dnsbl.test", "like": "spamhaus-dbl"}


@pytest.fixture
def dnsbl(relayguard: Any, dns_lab: DnsLab, lists_file: Any) -> Any:
    """dnsbl(lists, *args) -> Run with the JSON document parsed."""

    def run(entries: list[dict[str, object]], *args: str) -> Any:
        result = relayguard(
            "dnsbl", "--resolver", dns_lab.resolver, "--lists", lists_file(*entries), *FAST,
            "--json", *args,
        )  # fmt: skip
        assert result.err == "" or result.code == 3, result.err
        return result

    return run


def results(doc: dict[str, Any], subject: str) -> dict[str, dict[str, Any]]:
    (found,) = [s for s in doc["subjects"] if s["subject"] == subject]
    return {r["zone"]: r for r in found["results"]}


def one(doc: dict[str, Any], subject: str, zone: str) -> dict[str, Any]:
    return results(doc, subject)[zone]


def test_multi_code_listing_with_meanings_txt_and_delisting(dnsbl: Any) -> None:
    run = dnsbl([ZEN], "192.0.2.99")
    assert run.code == 2
    doc = run.json
    assert doc["schema"] == "relayguard.dnsbl/1"
    assert doc["verdict"] == "listed"
    r = one(doc, "192.0.2.99", "zen.dnsbl.test")
    assert r["verdict"] == "listed"
    assert r["query"] == "99.2.0.192.zen.dnsbl.test."
    assert r["codes"] == ["127.0.0.3", "127.0.0.4"]
    assert r["meanings"] == [
        "CSS: snowshoe or hijacked sending seen by Spamhaus' automation",
        "XBL: an infected or exploited host (botnet, proxy, CBL)",
    ]
    assert r["txt"] == "https://check.dnsbl.test/query/ip/192.0.2.99"
    assert r["delist_url"] == "https://check.spamhaus.org/"
    (finding,) = [f for f in doc["findings"] if f["indicator"] == "dnsbl-listed"]
    assert finding["severity"] == "high"
    assert finding["subject"] == {"kind": "ip", "value": "192.0.2.99"}
    assert finding["mitigations"] == ["request-delisting"]
    assert doc["lists"][0]["health"]["state"] == "healthy"


def test_not_listed_is_clean_exit_0(dnsbl: Any) -> None:
    run = dnsbl([ZEN], "192.0.2.25")
    assert run.code == 0
    assert run.json["verdict"] == "clean"
    assert one(run.json, "192.0.2.25", "zen.dnsbl.test")["verdict"] == "not-listed"
    assert run.json["subjects"][0]["summary"] == {
        "lists": 1, "listed": 0, "listed_informational": 0, "not_listed": 1, "error": 0,
        "skipped": 0,
    }  # fmt: skip


def test_ipv6_query_name_is_32_reversed_nibbles(dnsbl: Any) -> None:
    # aiodnsbl builds 1.8.b.d.1.0.0.2.zen... and misses this listing (bug B5)
    run = dnsbl([ZEN], "2001:db8::1")
    r = one(run.json, "2001:db8::1", "zen.dnsbl.test")
    nibbles = "1." + "0." * 23 + "8.b.d.0.1.0.0.2"
    assert r["query"] == f"{nibbles}.zen.dnsbl.test."
    assert (r["verdict"], r["codes"]) == ("listed", ["127.0.0.3"])
    assert r["txt"] == "IPv6 listing 2001:db8::1"
    assert run.code == 2


def test_ipv6_skipped_on_a_list_without_ipv6_data(dnsbl: Any) -> None:
    run = dnsbl([{"zone": "l2.dnsbl.test", "like": "uceprotect-2"}], "2001:db8::1")
    r = one(run.json, "2001:db8::1", "l2.dnsbl.test")
    assert (r["verdict"], r["reason"]) == ("skipped", "no-ipv6-data")
    assert run.code == 3  # no list could say anything about it: not "clean"
    assert run.json["why"] == ("2001:db8::1: every list that checks IP addresses skipped it "
                               "(no-ipv6-data), so nothing can be said")  # fmt: skip


def test_address_with_only_domain_lists_is_unknown(dnsbl: Any) -> None:
    run = dnsbl([DBL], "192.0.2.99")
    assert (run.code, run.json["why"]) == (
        3, "192.0.2.99: none of the lists checks IP addresses, so nothing can be said")


@pytest.mark.parametrize(
    ("zone", "reason", "code"),
    [
        # pydnsbl and check_rbl report this one as BLACKLISTED (bug B1)
        ("pubres.dnsbl.test", "resolver-blocked", "127.255.255.254"),
        ("typo.dnsbl.test", "zone-typo", "127.255.255.252"),
        ("ratelimit.dnsbl.test", "rate-limited", "127.255.255.255"),
    ],
)
def test_spamhaus_sentinels_are_errors_never_listings(
    dnsbl: Any, zone: str, reason: str, code: str
) -> None:
    run = dnsbl([{"zone": zone, "like": "spamhaus-zen"}], "192.0.2.1")
    assert run.code == 3
    doc = run.json
    r = one(doc, "192.0.2.1", zone)
    assert (r["verdict"], r["reason"]) == ("error", reason)
    assert doc["lists"][0]["health"] == {"state": "unavailable", "reason": reason,
                                         "detail": f"({code})"}  # fmt: skip
    assert not [f for f in doc["findings"] if f["indicator"] == "dnsbl-listed"]
    assert doc["verdict"] == "unknown"


def test_sentinel_for_one_subject_on_a_healthy_list(dnsbl: Any) -> None:
    run = dnsbl([ZEN], "192.0.2.254", "192.0.2.25")
    r = one(run.json, "192.0.2.254", "zen.dnsbl.test")
    assert (r["verdict"], r["reason"], r["codes"]) == ("error", "resolver-blocked",
                                                       ["127.255.255.254"])  # fmt: skip
    (blocked,) = [f for f in run.json["findings"] if f["indicator"] == "dnsbl-resolver-blocked"]
    assert blocked["mitigations"] == ["use-local-resolver"]
    assert run.code == 3


def test_uribl_refused_127_0_0_1_is_not_a_listing(dnsbl: Any) -> None:
    # bug B2: pydnsbl and check_rbl call every domain listed when URIBL refuses the resolver
    run = dnsbl([{"zone": "uriblrefused.dnsbl.test", "like": "uribl"}], "example.test")
    r = one(run.json, "example.test", "uriblrefused.dnsbl.test")
    assert (r["verdict"], r["reason"]) == ("error", "resolver-blocked")
    assert run.code == 3


def test_127_0_0_1_from_an_undocumented_list_is_an_error(dnsbl: Any) -> None:
    run = dnsbl([{"zone": "uriblrefused.dnsbl.test", "type": "ip"}], "192.0.2.1")
    assert run.json["lists"][0]["health"]["reason"] == "query-refused"
    assert run.code == 3


def test_answer_outside_127_is_bogus(dnsbl: Any) -> None:
    run = dnsbl([{"zone": "bogus.dnsbl.test"}], "192.0.2.1")
    assert run.json["lists"][0]["health"] == {"state": "unavailable", "reason": "bogus-answer",
                                              "detail": "(203.0.113.7)"}  # fmt: skip
    assert run.code == 3


def test_list_that_lists_everything_is_not_trusted(dnsbl: Any) -> None:
    # bug B7: check_rbl and pydnsbl report every address as listed on a squatter's wildcard
    run = dnsbl([ZEN, {"zone": "dead.dnsbl.test"}], "192.0.2.25")
    r = one(run.json, "192.0.2.25", "dead.dnsbl.test")
    assert (r["verdict"], r["reason"]) == ("error", "lists-everything")
    assert run.json["lists"][1]["health"]["detail"] == "1.0.0.127.dead.dnsbl.test. -> 127.0.0.2"
    assert one(run.json, "192.0.2.25", "zen.dnsbl.test")["verdict"] == "not-listed"
    unusable = [f for f in run.json["findings"] if f["indicator"] == "dnsbl-list-unusable"]
    assert [f["subject"]["value"] for f in unusable] == ["dead.dnsbl.test"]
    assert run.code == 3  # 1 of 2 lists unusable is over the 20 % allowed
    assert dnsbl([ZEN, {"zone": "dead.dnsbl.test"}], "192.0.2.25", "--max-errors", "50").code == 0


def test_empty_list_misses_its_test_point(dnsbl: Any) -> None:
    run = dnsbl([{"zone": "empty.dnsbl.test"}], "192.0.2.1")
    assert run.json["lists"][0]["health"]["state"] == "test-point-missing"
    assert one(run.json, "192.0.2.1", "empty.dnsbl.test")["reason"] == "test-point-missing"
    assert run.code == 3


def test_sorbs_is_never_queried(dnsbl: Any, dns_lab: DnsLab) -> None:
    # the lab serves dnsbl.sorbs.net listing everything, as a lapsed domain would
    run = dnsbl([ZEN, {"zone": "dnsbl.sorbs.net"}], "192.0.2.25")
    r = one(run.json, "192.0.2.25", "dnsbl.sorbs.net")
    assert (r["verdict"], r["reason"]) == ("skipped", "dead")
    assert [f["indicator"] for f in run.json["findings"]] == ["dnsbl-dead-list"]
    assert run.code == 0


def test_timeout_is_never_clean(dnsbl: Any, dns_lab: DnsLab) -> None:
    # bug B3: check_rbl says OK and pydnsbl "not blacklisted" when the list never answers
    mirror = {"zone": "down.dnsbl.test", "nameserver": dns_lab.blackhole}
    run = dnsbl([mirror], "192.0.2.1")
    r = one(run.json, "192.0.2.1", "down.dnsbl.test")
    assert (r["verdict"], r["reason"]) == ("error", "timeout")
    assert run.json["subjects"][0]["summary"]["error"] == 1
    assert run.json["subjects"][0]["summary"]["not_listed"] == 0
    assert run.code == 3


def test_resolver_that_never_answers(relayguard: Any, dns_lab: DnsLab) -> None:
    run = relayguard("dnsbl", "--resolver", dns_lab.blackhole, *FAST, "--json", "192.0.2.1")
    assert run.code == 3
    assert run.json["verdict"] == "unknown"
    assert all(r["reason"] == "timeout" for r in run.json["subjects"][0]["results"])


def test_refused_and_servfail_zones_are_errors(dnsbl: Any) -> None:
    run = dnsbl([{"zone": "notserved.invalid"}, {"zone": "broken.test"}], "192.0.2.1")
    states = {x["zone"]: x["health"]["reason"] for x in run.json["lists"]}
    assert states == {"notserved.invalid": "refused", "broken.test": "servfail"}
    assert run.code == 3


def test_undocumented_code_is_reported_not_listed(dnsbl: Any) -> None:
    run = dnsbl([ZEN], "192.0.2.101")
    r = one(run.json, "192.0.2.101", "zen.dnsbl.test")
    assert (r["verdict"], r["reason"], r["codes"]) == ("error", "unknown-code", ["127.0.0.99"])


def test_domain_list_with_test_invalid_pair(dnsbl: Any) -> None:
    run = dnsbl([DBL], "spam-domain.test", "phish-domain.test", "example.test")
    doc = run.json
    assert doc["lists"][0]["health"]["state"] == "healthy"
    assert one(doc, "spam-domain.test", "dbl.dnsbl.test")["codes"] == ["127.0.1.2"]
    assert one(doc, "phish-domain.test", "dbl.dnsbl.test")["meanings"] == ["phishing domain"]
    assert one(doc, "example.test", "dbl.dnsbl.test")["verdict"] == "not-listed"
    assert run.code == 2


def test_ip_queried_on_a_domain_list_is_the_callers_error(dnsbl: Any) -> None:
    run = dnsbl([{"zone": "ipquery.dbl.dnsbl.test", "like": "spamhaus-dbl",
                  "health_check": False}], "x.test")  # fmt: skip
    r = one(run.json, "x.test", "ipquery.dbl.dnsbl.test")
    assert (r["verdict"], r["reason"]) == ("error", "wrong-query-type")


def test_bitmask_list_decoded_bit_by_bit(dnsbl: Any) -> None:
    run = dnsbl([{"zone": "multi.dnsbl.test", "like": "uribl"}], "spam-domain.test")
    r = one(run.json, "spam-domain.test", "multi.dnsbl.test")
    assert (r["codes"], r["meanings"]) == (["127.0.0.6"], ["black", "grey"])


def test_informational_listing_exits_1(dnsbl: Any) -> None:
    run = dnsbl([ZEN, {"zone": "l2.dnsbl.test", "like": "uceprotect-2"}], "192.0.2.50")
    assert run.code == 1
    assert run.json["verdict"] == "listed-informational"
    (f,) = [f for f in run.json["findings"] if f["indicator"] == "dnsbl-listed"]
    assert (f["severity"], f["details"]["informational"], f["mitigations"]) == ("info", True, [])


def test_zone_with_spaces_is_stripped(dnsbl: Any) -> None:
    # bug B6: pydnsbl's 'rhsbl.sorbs.net ' fails on every check
    run = dnsbl([{"zone": " zen.dnsbl.test ", "like": "spamhaus-zen"}], "192.0.2.99")
    assert one(run.json, "192.0.2.99", "zen.dnsbl.test")["verdict"] == "listed"


def test_host_name_checked_by_all_its_addresses(dnsbl: Any) -> None:
    run = dnsbl([ZEN, DBL], "MX1.Example.Test.")
    doc = run.json
    assert doc["targets"][0]["addresses"] == ["192.0.2.25", "2001:db8::25"]
    assert sorted(s["subject"] for s in doc["subjects"]) == [
        "192.0.2.25", "2001:db8::25", "mx1.example.test"]  # fmt: skip
    assert run.code == 0


def test_forward_confirmed_rdns_and_helo(dnsbl: Any) -> None:
    run = dnsbl([ZEN], "192.0.2.25", "192.0.2.100", "192.0.2.10", "--helo", "mx1.example.test")
    doc = run.json
    rdns = {s["subject"]: s["rdns"] for s in doc["subjects"]}
    assert rdns["192.0.2.25"]["fcrdns"] is True
    assert rdns["192.0.2.25"]["ptr"] == ["mx1.example.test"]
    assert rdns["192.0.2.100"]["unconfirmed"] == ["generic-100.example.test"]
    assert rdns["192.0.2.10"]["ptr_status"] == "nxdomain"
    kinds = sorted((f["indicator"], f["subject"]["value"]) for f in doc["findings"])
    assert kinds == [
        ("dnsbl-listed", "192.0.2.100"),  # PBL, 127.0.0.11
        ("helo-mismatch", "192.0.2.10"), ("helo-mismatch", "192.0.2.100"),
        ("rdns-missing", "192.0.2.10"), ("rdns-not-confirmed", "192.0.2.100"),
    ]  # fmt: skip
    assert dnsbl([ZEN], "192.0.2.10", "--helo", "mx1.example.test").code == 0  # not listings


def test_huge_txt_answer_comes_over_tcp_and_is_bounded(dnsbl: Any) -> None:
    run = dnsbl([ZEN], "192.0.2.77")
    r = one(run.json, "192.0.2.77", "zen.dnsbl.test")
    assert r["verdict"] == "listed"
    assert r["txt"] == "x" * 300
    assert run.json["queries"]["tcp"] == 1


def test_cname_loop_target_is_a_clean_error(dnsbl: Any) -> None:
    run = dnsbl([ZEN], "cnameloop.example.test")
    assert run.code == 3
    assert "CNAME loop" in run.json["targets"][0]["error"]


def test_unresolvable_name_is_a_domain_only_check(dnsbl: Any) -> None:
    run = dnsbl([ZEN, DBL], "nothere.example.test")
    assert run.json["targets"][0]["note"].startswith("no A or AAAA record")
    assert run.code == 0


def test_terminal_report_escapes_and_names_the_resolver(
    relayguard: Any, dns_lab: DnsLab, lists_file: Any
) -> None:
    run = relayguard("dnsbl", "--resolver", dns_lab.resolver, "--lists", lists_file(ZEN), *FAST,
                     "192.0.2.99")  # fmt: skip
    assert run.code == 2
    assert run.out.startswith(" LISTED  192.0.2.99  exit 2")
    assert f"resolver {dns_lab.resolver} (from --resolver)" in run.out
    assert "CSS: snowshoe or hijacked sending" in run.out
    assert "delist: Fix the cause first" in run.out
    # the lookup asks the zone that listed it, not a fixed zen.spamhaus.org / bl.spamcop.net
    assert "     dig +short 99.2.0.192.zen.dnsbl.test\n" in run.out
    assert "zen.spamhaus.org\n" not in run.out and "bl.spamcop.net\n" not in run.out


def test_bulk_check_of_1024_addresses_needs_no_retry(
    relayguard: Any, dns_lab: DnsLab, tmp_path: Any
) -> None:
    # bench/dns's bulk run on one list: every listing found, and the lab answers each query
    # the first time (NSD's response rate limiting is off: no drop, no truncated answer)
    targets = tmp_path / "targets.txt"
    targets.write_text("".join(f"{ip}\n" for ip in BENCH_NET))
    lists = dns_lab.lists_file(tmp_path, [{"zone": "bench01.dnsbl.test"}], "bench.toml")
    run = relayguard("dnsbl", "--resolver", dns_lab.resolver, "--lists", str(lists),
                     "--targets-file", str(targets), "--rate", "0", "--timeout", "5",
                     "--tries", "1", "--json")  # fmt: skip
    doc = run.json
    listed = [s["subject"] for s in doc["subjects"] if s["results"][0]["verdict"] == "listed"]
    assert (len(doc["subjects"]), len(listed)) == (1024, 28)
    assert listed[:3] == ["198.18.0.3", "198.18.0.40", "198.18.0.77"]
    assert all(bench_listed(ipaddress.IPv4Address(ip), 1) for ip in listed)
    assert (doc["queries"]["retried"], doc["queries"]["tcp"]) == (0, 0)
    assert run.code == 2
    assert run.out.count("\n") == 1  # over 1,000 subjects: compact JSON, one line


# --- issue 5, a fresh user's pass -------------------------------------------------------------


def test_ipv4_mapped_address_is_checked_as_ipv4(dnsbl: Any) -> None:
    run = dnsbl([ZEN], "::ffff:192.0.2.99")
    assert run.code == 2
    assert one(run.json, "192.0.2.99", "zen.dnsbl.test")["verdict"] == "listed"
    (target,) = run.json["targets"]
    assert (target["target"], target["kind"], target["note"]) == (
        "::ffff:192.0.2.99", "ip", "IPv4-mapped: checked as 192.0.2.99")  # fmt: skip


def test_private_target_is_checked_with_a_note(dnsbl: Any) -> None:
    run = dnsbl([ZEN], "10.0.0.1", "192.0.2.25")
    assert run.code == 0
    notes = {t["target"]: t["note"] for t in run.json["targets"]}
    assert notes == {
        "10.0.0.1": "block lists never see private addresses (checked anyway, for a private "
        "list)",
        "192.0.2.25": None,  # a documentation address is taken as public (the lab's own)
    }
    assert one(run.json, "10.0.0.1", "zen.dnsbl.test")["verdict"] == "not-listed"


def test_name_with_41_addresses_says_16_checked(
    dnsbl: Any, relayguard: Any, dns_lab: DnsLab, lists_file: Any
) -> None:
    run = dnsbl([ZEN], "many.example.test")
    (target,) = run.json["targets"]
    assert target["note"] == "41 addresses, 16 checked"
    assert len(target["addresses"]) == 16
    text = relayguard("dnsbl", "--resolver", dns_lab.resolver, "--lists", lists_file(ZEN), *FAST,
                      "many.example.test")  # fmt: skip
    assert "  many.example.test: 41 addresses, 16 checked\n" in text.out


def test_unresolvable_name_says_its_name_and_status_once(dnsbl: Any) -> None:
    run = dnsbl([ZEN], "mx1.not-served.example")  # outside the lab's zones: REFUSED
    assert run.code == 3
    assert run.json["why"] == "could not check mx1.not-served.example: refused"
    assert run.json["targets"][0]["error"] == "refused"


def test_delisting_for_a_listed_domain_asks_its_list_not_ip_lists(
    relayguard: Any, dns_lab: DnsLab, lists_file: Any
) -> None:
    run = relayguard("dnsbl", "--resolver", dns_lab.resolver, "--lists", lists_file(DBL), *FAST,
                     "spam-domain.test")  # fmt: skip
    assert run.code == 2
    steps = run.out[run.out.index("What to do"):]
    assert "     dig +short spam-domain.test.dbl.dnsbl.test\n" in steps
    assert "reversed_server_ip" not in steps and "octets reversed" not in steps


def test_fixes_are_filled_per_finding_and_with_the_helo_name(
    relayguard: Any, dns_lab: DnsLab, lists_file: Any
) -> None:
    # 192.0.2.99 is listed, 192.0.2.50 has no PTR: each fix names its own address
    run = relayguard("dnsbl", "--resolver", dns_lab.resolver, "--lists", lists_file(ZEN), *FAST,
                     "192.0.2.99", "192.0.2.50", "--helo", "mx99.example.test")  # fmt: skip
    steps = run.out[run.out.index("What to do"):]
    assert "     dig +short -x 192.0.2.50\n" in steps
    assert "     dig +short mx99.example.test\n" in steps
    assert "postconf -e 'smtp_helo_name = mx99.example.test'" in steps
    assert "<server_ip>" not in steps and "<mx_host>" not in steps


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["2001:db8::25%eth0"],
         "'2001:db8::25%eth0': zone ids are link-local: not on block lists"),
        (["fe80::1%25eth0"], "'fe80::1%25eth0': zone ids are link-local: not on block lists"),
        (["192.0.2.256"], "'192.0.2.256' is not a valid IPv4 address"),
        (["0300.0.2.1"], "'0300.0.2.1' is not a valid IPv4 address"),
        (["192.0.2"], "'192.0.2' is not a valid IPv4 address"),
        (["1.2.3.4.5"], "'1.2.3.4.5' is not a valid IPv4 address"),
    ],
)  # fmt: skip
def test_bad_addresses_are_one_line_errors(relayguard: Any, args: list[str], message: str) -> None:
    run = relayguard("dnsbl", "--resolver", "127.0.0.1:9", *args)
    assert (run.code, run.out, run.err) == (3, "", f"relayguard: error: {message}\n")


def test_targets_file_errors_name_the_line(relayguard: Any, tmp_path: Any) -> None:
    targets = tmp_path / "t.txt"
    targets.write_text("192.0.2.25\n# comment\nthis is not$valid\n")
    run = relayguard("dnsbl", "--resolver", "127.0.0.1:9", "--targets-file", str(targets))
    assert (run.code, run.err) == (3, f"relayguard: error: --targets-file {targets} line 3: "
                                      "'this is not$valid' has characters no target can have\n")
    targets.write_text("192.0.2.25\nfe80::1%eth0\n")
    run = relayguard("dnsbl", "--resolver", "127.0.0.1:9", "--targets-file", str(targets))
    assert run.err == (f"relayguard: error: --targets-file {targets} line 2: 'fe80::1%eth0': "
                       "zone ids are link-local: not on block lists\n")  # fmt: skip
    targets.write_text("# only a comment\n\n")
    run = relayguard("dnsbl", "--resolver", "127.0.0.1:9", "--targets-file", str(targets))
    assert (run.code, run.err) == (3, f"relayguard: usage error: --targets-file {targets} holds "
                                      "no target (try 'relayguard dnsbl --help')\n")  # fmt: skip


def test_targets_file_over_16_mib_is_refused_not_cut(relayguard: Any, tmp_path: Any) -> None:
    targets = tmp_path / "big.txt"
    line = b"192.0.2.25\n"
    targets.write_bytes(line * (16 * 1024 * 1024 // len(line)) + b"192.0.2.99\n")
    run = relayguard("dnsbl", "--resolver", "127.0.0.1:9", "--targets-file", str(targets))
    assert (run.code, run.err) == (3, "relayguard: error: --targets-file: over 16 MiB\n")


@pytest.mark.parametrize("option", ["--max-errors", "--timeout", "--rate"])
def test_nan_is_not_a_number_for_range_options(relayguard: Any, option: str) -> None:
    run = relayguard("dnsbl", "--resolver", "127.0.0.1:9", option, "nan", "192.0.2.25")
    assert run.code == 3
    assert run.err.startswith(f"relayguard: usage error: Invalid value for '{option}': 'nan' "
                              "is not a finite number.")  # fmt: skip


def test_empty_resolver_is_a_usage_error(relayguard: Any) -> None:
    run = relayguard("dnsbl", "--resolver", "", "192.0.2.25")
    assert run.code == 3
    assert run.err.startswith("relayguard: usage error: --resolver is empty: name a resolver "
                              "IP[:PORT]")  # fmt: skip


def test_list_file_refuses_duplicate_ids_and_codes_outside_127(
    relayguard: Any, lists_file: Any
) -> None:
    twice = lists_file({"zone": "a.dnsbl.test", "id": "x"}, {"zone": "b.dnsbl.test", "id": "x"})
    run = relayguard("dnsbl", "--resolver", "127.0.0.1:9", "--lists", twice, "192.0.2.25")
    assert (run.code, run.err) == (3, f"relayguard: error: {twice}: the id 'x' is named twice\n")


def test_show_lists_json_and_no_target(relayguard: Any) -> None:
    run = relayguard("dnsbl", "--show-lists", "--json")
    assert run.code == 0
    assert run.json["lists"][0] == {
        "id": "spamhaus-zen", "zone": "zen.spamhaus.org", "name": "Spamhaus ZEN", "type": "ip",
        "ipv6": True, "informational": False, "default": True,
    }  # fmt: skip
    assert run.json["dead_zones"][0]["zone"] == "sorbs.net"
    run = relayguard("dnsbl", "--show-lists", "192.0.2.25")
    assert run.code == 3
    assert run.err.startswith("relayguard: usage error: --show-lists prints the built-in lists: "
                              "it takes no target")  # fmt: skip


def test_json_output_never_imports_rich(dns_lab: DnsLab, tmp_path: Any) -> None:
    lists = dns_lab.lists_file(tmp_path, [ZEN], "l.toml")
    code = (
        "import sys\nfrom relayguard.cli import main\n"
        f"main(['dnsbl', '--resolver', '{dns_lab.resolver}', '--lists', '{lists}', '--json', "
        "'192.0.2.25'])\n"
        "print('RICH', any(m == 'rich' or m.startswith('rich.') for m in sys.modules), "
        "file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.stderr.strip().splitlines()[-1] == "RICH False"
