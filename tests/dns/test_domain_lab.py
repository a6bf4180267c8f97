"""``relayguard domain`` against the real NSD lab: SPF, DMARC, DKIM and MX, exact values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.dns.lab import HUGE_SPF, DnsLab

FAST = ("--timeout", "0.5", "--tries", "1")


@pytest.fixture
def domain(relayguard: Any, dns_lab: DnsLab) -> Any:
    def run(name: str, *args: str) -> Any:
        result = relayguard("domain", "--resolver", dns_lab.resolver, *FAST, "--json", name, *args)
        assert result.err == "" or result.code == 3, result.err
        return result

    return run


def indicators(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    return sorted((f["indicator"], f["severity"]) for f in doc["findings"]
                  if f["indicator"].startswith(prefix))  # fmt: skip


def finding(doc: dict[str, Any], indicator: str) -> dict[str, Any]:
    (found,) = [f for f in doc["findings"] if f["indicator"] == indicator]
    return found


def test_sound_domain_passes(domain: Any) -> None:
    run = domain("example.test", "--ip", "192.0.2.25", "--ip", "2001:db8::7")
    doc = run.json
    assert doc["schema"] == "relayguard.domain/1"
    assert (run.code, doc["verdict"]) == (0, "pass")
    # split mid-token over two strings: joined without a separator (checkdmarc PR #36)
    assert doc["spf"]["record"] == "v=spf1 ip4:192.0.2.0/24 include:_spf.example.test mx -all"
    assert (doc["spf"]["result"], doc["spf"]["lookups"], doc["spf"]["void_lookups"]) == (
        "fail", 2, 0)  # fmt: skip
    assert [(o["ip"], o["result"], o["matched"]) for o in doc["spf"]["ips"]] == [
        ("192.0.2.25", "pass", "ip4:192.0.2.0/24"),
        ("2001:db8::7", "pass", "include:_spf.example.test"),
    ]
    assert (doc["dmarc"]["location"], doc["dmarc"]["policy"]) == ("example.test", "reject")
    assert doc["dmarc"]["unauthorized_report_domains"] == []  # reports.test authorizes
    assert [(k["selector"], k["bits"]) for k in doc["dkim"]["keys"]] == [("mail", 2048)]
    assert doc["mx"]["exchanges"][0]["addresses"] == ["192.0.2.25", "2001:db8::25"]
    assert doc["findings"] == []


def test_sending_ip_that_fails_spf(domain: Any) -> None:
    run = domain("example.test", "--ip", "203.0.113.9")
    f = finding(run.json, "spf-ip-not-authorized")
    assert f["severity"] == "high"
    assert f["details"]["publish"] == (
        'example.test. IN TXT "v=spf1 ip4:192.0.2.0/24 include:_spf.example.test mx '
        'ip4:203.0.113.9 -all"'
    )
    assert run.code == 2


def test_plus_all_is_critical(domain: Any) -> None:
    # checkdmarc 6.0.4 reports "v=spf1 +all" as valid, without a warning
    run = domain("plusall.example.test", "--ip", "192.0.2.25")
    f = finding(run.json, "spf-pass-all")
    assert f["severity"] == "critical"
    assert f["details"]["publish"] == 'plusall.example.test. IN TXT "v=spf1 ip4:192.0.2.25 -all"'
    assert run.code == 2


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("twospf", [("spf-multiple", "high")]),
        ("qall", [("spf-neutral-all", "medium")]),
        ("noall", [("spf-no-all", "medium")]),
        ("ptrspf", [("spf-ptr", "low")]),
        ("voids", [("spf-void-lookups", "high")]),
        ("toomany", [("spf-too-many-lookups", "high"), ("spf-void-lookups", "high")]),
        ("loop", [("spf-include-loop", "high")]),
        ("redirloop", [("spf-include-loop", "high")]),
        ("missinginc", [("spf-include-missing", "high")]),
        ("wide", [("spf-wide-range", "high")]),
        ("badsyntax", [("spf-syntax", "high")]),
        ("garbage", [("spf-syntax", "high")]),
        ("leadspace", [("spf-missing", "high")]),
        ("softall", []),  # ~all backed by the inherited p=reject: fine
        ("macro", []),
        ("redir", []),
        ("hugetxt", []),  # 41 TXT records over TCP, one of them SPF
        ("longspf", []),  # 200 ip4 terms in 14 strings
        ("incloop", [("spf-dns-error", "low")]),
        ("mxip", [("spf-missing", "medium")]),
    ],
)
def test_spf_cases(domain: Any, name: str, expected: list[tuple[str, str]]) -> None:
    assert indicators(domain(f"{name}.example.test").json, "spf-") == expected


def test_lookup_and_void_counts_as_rfc_7208_counts_them(domain: Any) -> None:
    doc = domain("toomany.example.test").json
    # 6 includes + 3 x (a, mx) + 3 x a = 15; the MX queries of i1-i3 find nothing: 3 voids
    assert (doc["spf"]["lookups"], doc["spf"]["void_lookups"]) == (15, 3)
    assert doc["spf"]["result"] == "permerror"
    doc = domain("voids.example.test").json
    assert (doc["spf"]["lookups"], doc["spf"]["void_lookups"]) == (3, 3)
    assert finding(doc, "spf-void-lookups")["details"]["publish"] == (
        'voids.example.test. IN TXT "v=spf1 -all"')  # fmt: skip


def test_no_record_to_publish_when_it_would_be_the_same(domain: Any) -> None:
    # the void lookups are in the included records: republishing the top record fixes nothing
    doc = domain("toomany.example.test").json
    assert finding(doc, "spf-void-lookups")["details"] == {}


def test_macro_expanded_with_the_client_address(domain: Any) -> None:
    doc = domain("macro.example.test", "--ip", "192.0.2.25", "--ip", "192.0.2.26").json
    assert [(o["ip"], o["result"]) for o in doc["spf"]["ips"]] == [
        ("192.0.2.25", "pass"), ("192.0.2.26", "fail")]  # fmt: skip
    assert doc["spf"]["notes"] == [
        "%{i}._spf.example.test depends on the client address: not followed"]  # fmt: skip


def test_dmarc_none_and_unauthorized_report_domain(domain: Any) -> None:
    run = domain("nopolicy.example.test")
    doc = run.json
    assert indicators(doc, "dmarc-") == [("dmarc-policy-none", "medium"),
                                         ("dmarc-rua-unauthorized", "medium")]  # fmt: skip
    assert finding(doc, "dmarc-rua-unauthorized")["details"]["publish"] == (
        'nopolicy.example.test._report._dmarc.third-party.test. IN TXT "v=DMARC1"')  # fmt: skip
    assert finding(doc, "dmarc-policy-none")["details"]["publish"] == (
        '_dmarc.nopolicy.example.test. IN TXT "v=DMARC1; p=reject; '
        'rua=mailto:d@third-party.test"')  # fmt: skip
    assert run.code == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("dmarcbad", [("dmarc-invalid", "high")] * 3 + [("dmarc-policy-none", "medium"),
                                                        ("dmarc-unknown-tag", "low")]),
        ("dmarctwo", [("dmarc-multiple", "high")]),
        ("spnone", [("dmarc-subdomain-none", "medium")]),
        ("partial", [("dmarc-partial", "low")]),
        ("wsdmarc", []),  # "v = DMARC1 ; p = reject" is valid ABNF
        ("plusall", [("dmarc-inherited", "info")]),
    ],
)  # fmt: skip
def test_dmarc_cases(domain: Any, name: str, expected: list[tuple[str, str]]) -> None:
    assert indicators(domain(f"{name}.example.test").json, "dmarc-") == expected


def test_dmarc_found_by_the_tree_walk(domain: Any) -> None:
    doc = domain("plusall.example.test").json
    assert (doc["dmarc"]["location"], doc["dmarc"]["policy"]) == ("example.test", "reject")
    doc = domain("bare.test").json
    assert doc["dmarc"]["record"] is None
    assert indicators(doc, "dmarc-") == [("dmarc-missing", "medium")]
    assert finding(doc, "dmarc-missing")["details"]["publish"] == (
        '_dmarc.bare.test. IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@bare.test"')  # fmt: skip


def test_dkim_keys_by_selector(domain: Any) -> None:
    selectors = ["mail", "weak", "tiny", "revoked", "testing", "ed", "badb64", "pkcs1",
                 "mismatch", "alias", "dangling", "twokeys", "nope"]  # fmt: skip
    args = [a for s in selectors for a in ("--dkim-selector", s)]
    doc = domain("dkim.example.test", *args).json
    keys = {k["selector"]: (k["type"], k["bits"], k["revoked"], k["error"])
            for k in doc["dkim"]["keys"]}  # fmt: skip
    assert keys == {
        "mail": ("rsa", 2048, False, None),
        "weak": ("rsa", 1024, False, None),
        "tiny": ("rsa", 512, False, None),
        "revoked": ("rsa", None, True, None),
        "testing": ("rsa", 2048, False, None),
        "ed": ("ed25519", None, False, None),
        "badb64": ("rsa", None, False, "p= is not valid base64"),
        "pkcs1": ("rsa", 1024, False, None),
        "mismatch": ("ed25519", 1024, False, "k=ed25519 but p= holds an rsa key"),
        "alias": ("rsa", 2048, False, None),
        "twokeys": ("rsa", 512, False, None),  # of its 1024- and 512-bit records, the weaker
    }
    assert indicators(doc, "dkim-") == sorted([
        ("dkim-weak-key", "medium"), ("dkim-weak-key", "high"), ("dkim-revoked", "high"),
        ("dkim-testing", "low"), ("dkim-bad-key", "high"), ("dkim-weak-key", "medium"),
        ("dkim-bad-key", "high"), ("dkim-dangling-cname", "high"),
        ("dkim-multiple-records", "medium"), ("dkim-weak-key", "high"),
        ("dkim-selector-missing", "high"),
    ])  # fmt: skip


def test_dkim_guessed_selectors_and_empty_non_terminal(domain: Any) -> None:
    doc = domain("dkim.example.test").json
    assert doc["dkim"]["guessed"] > 30
    assert [k["selector"] for k in doc["dkim"]["keys"]] == ["mail"]
    doc = domain("bare.test").json
    assert doc["dkim"]["no_domainkey"] is True
    assert "_domainkey.bare.test does not exist" in finding(doc, "dkim-missing")["title"]


def test_dkim_selector_from_a_message(domain: Any, tmp_path: Path) -> None:
    message = tmp_path / "signed.eml"
    message.write_text(
        "Received: from x\nDKIM-Signature: v=1; a=rsa-sha256; d=dkim.example.test;\n"
        " s=weak; h=from:to; bh=abc=; b=def=\nFrom: a@dkim.example.test\n\nbody s=mail\n"
    )
    doc = domain("dkim.example.test", "--message", str(message)).json
    assert [(k["selector"], k["origin"]) for k in doc["dkim"]["keys"]] == [("weak", "message")]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nullmx", [("mx-null", "info")]),
        ("mxip", [("mx-ip-literal", "high")]),
        ("mxcname", [("mx-cname", "low")]),
        ("mxdangling", [("mx-unresolvable", "high")]),
        ("bare", [("mx-missing", "medium")]),
    ],
)
def test_mx_cases(domain: Any, name: str, expected: list[tuple[str, str]]) -> None:
    target = "bare.test" if name == "bare" else f"{name}.example.test"
    assert indicators(domain(target).json, "mx-") == expected


def test_cname_loop_is_a_clean_unknown(domain: Any) -> None:
    run = domain("cnameloop.example.test")
    assert run.code == 3
    assert run.json["verdict"] == "unknown"
    assert "CNAME loop" in finding(run.json, "spf-dns-error")["title"]


def test_servfail_domain_is_unknown_with_one_error_per_check(
    relayguard: Any, dns_lab: DnsLab
) -> None:
    run = relayguard("domain", "--resolver", dns_lab.resolver, *FAST, "broken.test")
    assert run.code == 3
    assert run.out.count("-dns-error:") == 4  # spf, dmarc, dkim, mx: no 40 DKIM guesses
    doc = relayguard("domain", "--resolver", dns_lab.resolver, *FAST, "--json", "broken.test").json
    assert doc["dkim"]["errors"] == ["_domainkey.broken.test. TXT: servfail"]  # said once
    assert "What to do" not in run.out  # a failed lookup is not fixed by publishing records


def test_missing_domain_is_a_one_line_error(relayguard: Any, dns_lab: DnsLab) -> None:
    run = relayguard("domain", "--resolver", dns_lab.resolver, *FAST, "nothere.example.test")
    assert run.code == 3
    assert run.err == (f"relayguard: error: nothere.example.test does not exist (NXDOMAIN from "
                       f"{dns_lab.resolver})\n")  # fmt: skip


def test_terminal_report(relayguard: Any, dns_lab: DnsLab) -> None:
    run = relayguard("domain", "--resolver", dns_lab.resolver, *FAST, "plusall.example.test")
    assert run.code == 2
    assert run.out.startswith(" FAIL  plusall.example.test  exit 2")
    assert "critical spf-pass-all" in run.out
    assert 'publish: plusall.example.test. IN TXT "v=spf1 -all"' in run.out


# --- issue 5, a fresh user's pass -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("inclplus", "SPF lets every address on the Internet send as @inclplus.example.test: "
                     "'include:plusall.example.test' matches any address"),
        ("redirplus", "SPF lets every address on the Internet send as @redirplus.example.test: "
                      "it passes anyone"),
        ("existsall", "SPF lets every address on the Internet send as @existsall.example.test: "
                      "'exists:%{i}.wild.example.test' lets 240.0.0.1, an address nobody owns, "
                      "pass"),
    ],
)  # fmt: skip
def test_pass_for_anyone_through_include_redirect_or_exists(
    domain: Any, name: str, title: str
) -> None:
    run = domain(f"{name}.example.test")
    f = finding(run.json, "spf-pass-all")
    assert (f["severity"], f["title"]) == ("critical", title)
    assert (run.code, run.json["verdict"]) == (2, "fail")
    assert run.json["spf"]["result"] == "pass"  # what a forger gets, whatever the top 'all'


def test_probes_of_a_sound_record_fail(domain: Any) -> None:
    doc = domain("example.test").json
    assert doc["spf"]["probes"] == [
        {"ip": "240.0.0.1", "result": "fail", "matched": "-all"},
        {"ip": "100::1", "result": "fail", "matched": "-all"},
    ]


def test_81_txt_records_and_a_10k_spf_record_are_read_whole(domain: Any) -> None:
    many = domain("manytxt.example.test", "--ip", "192.0.2.25")
    assert many.json["spf"]["record"] == "v=spf1 ip4:192.0.2.25 -all"
    assert indicators(many.json, "spf-") == []  # 64 records were read: spf-missing
    huge = domain("hugespf.example.test").json
    assert huge["spf"]["record"] == HUGE_SPF
    assert len(huge["spf"]["record"]) == 10493


def test_lookups_past_the_audit_ceiling_say_over_40(domain: Any) -> None:
    f = finding(domain("over40.example.test").json, "spf-too-many-lookups")
    assert f["title"] == ("the SPF record needs over 40 DNS lookups; RFC 7208 allows 10, so "
                          "receivers get permerror and ignore it")  # fmt: skip


def test_mx_missing_publishes_a_zone_line_and_a_hint(domain: Any) -> None:
    f = finding(domain("bare.test").json, "mx-missing")
    assert f["details"] == {
        "publish": "bare.test. IN MX 0 .",
        "hint": "the null MX (RFC 7505) if it receives no mail; else bare.test. IN MX 10 "
                "<your mail server>.",
    }  # fmt: skip


def test_ignored_dmarc_record_is_fixed_where_it_is(domain: Any) -> None:
    f = finding(domain("d2.example.test").json, "dmarc-ignored-record")
    assert f["details"]["publish"].startswith('_dmarc.d2.example.test. IN TXT "v=DMARC1; p=reject')


def test_revoked_named_selector_says_what_was_named(domain: Any) -> None:
    f = finding(domain("dkim.example.test", "--dkim-selector", "revoked").json, "dkim-missing")
    assert f["title"] == ("no DKIM key found for dkim.example.test: the selector(s) named "
                          "(revoked) hold only revoked keys")  # fmt: skip


def test_servfail_domain_shows_lookup_failed(relayguard: Any, dns_lab: DnsLab) -> None:
    run = relayguard("domain", "--resolver", dns_lab.resolver, *FAST, "broken.test")
    lines = {line.split()[0]: line for line in run.out.splitlines() if line.startswith("  ")
             and line.split() and line.split()[0] in ("SPF", "DMARC", "DKIM", "MX")}  # fmt: skip
    assert lines["MX"].strip() == "MX                    (lookup failed)"
    assert lines["DKIM"].strip() == "DKIM                  (lookup failed)"
    assert lines["DMARC"].strip() == "DMARC                 (lookup failed)"


def test_ipv4_mapped_ip_is_checked_as_ipv4(domain: Any) -> None:
    doc = domain("example.test", "--ip", "::ffff:192.0.2.25").json
    assert [(o["ip"], o["result"]) for o in doc["spf"]["ips"]] == [("192.0.2.25", "pass")]
    assert doc["notes"] == ["--ip ::ffff:c000:219 is IPv4-mapped: checked as 192.0.2.25"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["example.test", "--ip", "fe80::1%25eth0"],
         "--ip 'fe80::1%25eth0': zone ids are link-local: not on block lists"),
        (["192.0.2.25"], "'192.0.2.25' is an address, not a domain: relayguard domain audits a "
                         "mail domain (relayguard dnsbl checks an address)"),
    ],
)  # fmt: skip
def test_bad_domain_input_is_one_line(relayguard: Any, args: list[str], message: str) -> None:
    run = relayguard("domain", "--resolver", "127.0.0.1:9", *args)
    assert (run.code, run.err) == (3, f"relayguard: error: {message}\n")


def test_nan_timeout_and_empty_resolver(relayguard: Any) -> None:
    run = relayguard("domain", "--resolver", "127.0.0.1:9", "--timeout", "nan", "example.test")
    assert run.code == 3
    assert "'nan' is not a finite number." in run.err
    run = relayguard("domain", "--resolver", "", "example.test")
    assert run.code == 3
    assert run.err.startswith("relayguard: usage error: --resolver is empty")


def test_message_selector_with_control_characters(relayguard: Any, tmp_path: Path) -> None:
    message = tmp_path / "m.eml"
    message.write_text("DKIM-Signature: v=1; d=Example.TEST; s=\x1b[31mevil\x07; b=y\n\nbody\n")
    run = relayguard("domain", "--resolver", "127.0.0.1:9", "example.test", "--message",
                     str(message))  # fmt: skip
    assert run.code == 3
    assert run.err == (f"relayguard: error: --message {message}: the signature by example.test "
                       "names s=\\x1b[31mevil\\x07, which is not a selector name\n")
