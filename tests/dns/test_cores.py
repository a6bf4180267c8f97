"""The pure cores, fed tables of inputs: no sockets (names, classification, SPF terms and
macros, DMARC tags, DKIM keys, list files, resolver addresses, Postfix addresses)."""

from __future__ import annotations

import base64
import ipaddress
import re
from typing import Any

import pytest

from relayguard.dns import dkim, dmarc, listfile
from relayguard.dns._errors import ListFileError, ResolverConfigError, TargetError
from relayguard.dns._events import Answer, Query, Status
from relayguard.dns.classify import classify
from relayguard.dns.io import parse_targets
from relayguard.dns.lists import BUILTIN, ListSpec, dead_reason, with_dqs_key
from relayguard.dns.names import dnsbl_name, normalize_domain
from relayguard.dns.postfix_addresses import choose, is_public
from relayguard.dns.resolver import choose_resolver, parse_server
from relayguard.dns.spf_parse import (
    MacroContext,
    MacroNeedsClient,
    SpfSyntaxError,
    expand,
    is_spf,
    parse_record,
)

# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "name"),
    [
        ("192.0.2.1", "1.2.0.192.zen.example."),
        ("2001:db8::1", "1." + "0." * 23 + "8.b.d.0.1.0.0.2.zen.example."),
        ("::ffff:127.0.0.2", "2.0.0.0.0.0.f.7.f.f.f.f." + "0." * 20 + "zen.example."),
    ],
)
def test_dnsbl_query_names(ip: str, name: str) -> None:
    assert dnsbl_name(ipaddress.ip_address(ip), "zen.example") == name


@pytest.mark.parametrize(
    ("text", "name"),
    [("Bücher.Example.", "xn--bcher-kva.example"), (" MX1.Example.Test ", "mx1.example.test"),
     ("_dmarc.example.test", "_dmarc.example.test")],
)  # fmt: skip
def test_domains_normalized(text: str, name: str) -> None:
    assert normalize_domain(text) == name


@pytest.mark.parametrize("text", ["a..b", "-x.example", "a b.example", "x" * 64 + ".example",
                                  "ex\\065.test", "", "a.b/24", "1.2.3.4.5:x:y"])  # fmt: skip
def test_bad_targets_are_one_line_errors(text: str) -> None:
    with pytest.raises(TargetError, match=r"is not an IP address or a domain name|no target"):
        parse_targets([text])


def test_targets_deduplicated_and_kept_in_order() -> None:
    targets = parse_targets(["192.0.2.1", "Example.TEST", "example.test.", "2001:DB8::1"])
    assert [(t.ip and str(t.ip), t.name) for t in targets] == [
        ("192.0.2.1", None), (None, "example.test"), ("2001:db8::1", None)]  # fmt: skip


# --- classification (DNSBL.md s.2: the sentinel matrix) ---------------------------------------

ZEN = BUILTIN["spamhaus-zen"]
URIBL = BUILTIN["uribl"]
GENERIC = ListSpec(id="x", name="x", zone="x.test")


def _answer(status: Status, *records: str) -> Answer:
    return Answer(Query("2.0.0.127.x.test.", "A"), status, records)


@pytest.mark.parametrize(
    ("spec", "status", "records", "verdict", "reason"),
    [
        (ZEN, Status.NXDOMAIN, (), "not-listed", None),
        (ZEN, Status.NOERROR, ("127.0.0.4",), "listed", None),
        (ZEN, Status.NOERROR, ("127.255.255.254",), "error", "resolver-blocked"),
        (ZEN, Status.NOERROR, ("127.255.255.252",), "error", "zone-typo"),
        (ZEN, Status.NOERROR, ("127.255.255.255",), "error", "rate-limited"),
        (ZEN, Status.NOERROR, ("127.255.255.250",), "error", "bad-key"),
        (ZEN, Status.NOERROR, ("127.255.255.17",), "error", "list-error"),
        (ZEN, Status.NOERROR, ("127.0.0.2", "127.255.255.254"), "error", "resolver-blocked"),
        (ZEN, Status.NOERROR, ("127.0.0.99",), "error", "unknown-code"),
        (ZEN, Status.NOERROR, ("203.0.113.7",), "error", "bogus-answer"),
        (ZEN, Status.NOERROR, ("0.0.0.0",), "error", "bogus-answer"),
        (ZEN, Status.NOERROR, ("127.0.0.1",), "error", "query-refused"),
        (ZEN, Status.TIMEOUT, (), "error", "timeout"),
        (ZEN, Status.SERVFAIL, (), "error", "servfail"),
        (ZEN, Status.REFUSED, (), "error", "refused"),
        (ZEN, Status.NODATA, (), "error", "nodata"),
        (URIBL, Status.NOERROR, ("127.0.0.1",), "error", "resolver-blocked"),
        (URIBL, Status.NOERROR, ("127.0.0.2",), "listed", None),
        (URIBL, Status.NOERROR, ("127.0.0.16",), "error", "unknown-code"),
        (BUILTIN["spamhaus-dbl"], Status.NOERROR, ("127.0.1.255",), "error", "wrong-query-type"),
        (GENERIC, Status.NOERROR, ("127.0.0.2",), "listed", None),
        (GENERIC, Status.NOERROR, ("127.0.0.1",), "error", "query-refused"),
    ],
)
def test_classification(
    spec: ListSpec, status: Status, records: tuple[str, ...], verdict: str, reason: str | None
) -> None:
    outcome = classify(spec, _answer(status, *records))
    assert (outcome.verdict, outcome.reason) == (verdict, reason)


def test_bitmask_meanings() -> None:
    outcome = classify(BUILTIN["surbl"], _answer(Status.NOERROR, "127.0.0.88"))
    assert outcome.meanings == ("PH: phishing", "MW: malware", "ABUSE: spam")


def test_dead_zones_and_dqs() -> None:
    assert dead_reason("dnsbl.sorbs.net") is not None
    assert dead_reason("rhsbl.sorbs.net") is not None
    assert dead_reason("zen.spamhaus.org") is None
    specs = with_dqs_key([ZEN], "A" * 26)
    assert [s.zone for s in specs] == [
        "a" * 26 + ".zen.dq.spamhaus.net", "a" * 26 + ".authbl.dq.spamhaus.net",
        "a" * 26 + ".zrd.dq.spamhaus.net"]  # fmt: skip
    with pytest.raises(ListFileError):
        with_dqs_key([ZEN], "short")


# --- list files -------------------------------------------------------------------------------


def test_list_file_entries() -> None:
    specs = listfile.parse({
        "builtin": ["barracuda"],
        "list": [{"zone": " Zen.Mirror.Example ", "like": "spamhaus-zen",
                  "nameserver": "127.0.0.1:5353"},
                 {"zone": "bits.example", "type": "domain", "bitmask": {"2": "black"}}],
    })  # fmt: skip
    assert [s.zone for s in specs] == ["b.barracudacentral.org", "zen.mirror.example",
                                       "bits.example"]  # fmt: skip
    assert specs[1].codes == ZEN.codes and str(specs[1].nameserver) == "127.0.0.1:5353"
    assert (specs[2].kind, specs[2].bitmask) == ("domain", {2: "black"})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"lists": []}, "unknown key 'lists'"),
        ({"list": [{"zone": "a.example", "typo": 1}]}, "unknown key 'typo'"),
        ({"list": [{"like": "spamhaus-zen"}]}, "'zone' \\(a string\\) is required"),
        ({"list": [{"zone": "a.example", "like": "nope"}]}, "names no built-in list"),
        ({"list": [{"zone": "a.example", "codes": {"x": "y"}}]}, "is not an IPv4 address"),
        ({"list": [{"zone": "a.example", "bitmask": {"3": "y"}}]}, "not a single bit"),
        ({"list": [{"zone": "bad zone"}]}, "is not a zone name"),
        ({"list": [{"zone": "a.example"}, {"zone": "A.example."}]}, "named twice"),
        ({"list": [{"zone": "a.example", "id": "x"}, {"zone": "b.example", "id": "x"}]},
         "the id 'x' is named twice"),
        ({"list": [{"zone": "a.example", "codes": {"10.0.0.2": "y"}}]},
         "codes: '10.0.0.2' is outside 127.0.0.0/8"),
        ({"list": [{"zone": "a.example", "errors": {"192.0.2.1": "y"}}]},
         "errors: '192.0.2.1' is outside 127.0.0.0/8"),
        ({}, "no lists"),
        ({"list": [{"zone": "a.example", "test_listed": "test.example"}]},
         "test_listed: 'test.example' is not an IPv4 address"),
        ({"list": [{"zone": "a.example", "like": "surbl", "type": "ip"}]},
         "test_listed: 'test.surbl.org' is not an IPv4 address"),
        ({"list": [{"zone": "a.example", "type": "domain", "test_unlisted": "bad name!"}]},
         "test_unlisted: 'bad name!' is not a domain name"),
    ],
)
def test_list_file_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ListFileError, match=message):
        listfile.parse(data)


# --- resolver addresses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [("127.0.0.1", "127.0.0.1:53"), ("127.0.0.1:5300", "127.0.0.1:5300"), ("::1", "[::1]:53"),
     ("[::1]:5300", "[::1]:5300")],
)  # fmt: skip
def test_resolver_addresses(text: str, shown: str) -> None:
    assert str(parse_server(text)) == shown


@pytest.mark.parametrize(
    ("text", "why"),
    [("dns.google", "is not an IP address"), ("127.0.0.1:0", "the port must be 1 to 65535"),
     ("127.0.0.1:99999", "the port must be 1 to 65535"), ("[::1", "want IP, IP:PORT"),
     ("1.2.3", "is not an IP address"), ("0.0.0.0", "not an address a resolver can have"),
     ("[::]:53", "not an address a resolver can have"),
     ("224.0.0.251", "not an address a resolver can have")],
)  # fmt: skip
def test_bad_resolver_addresses(text: str, why: str) -> None:
    with pytest.raises(ResolverConfigError, match=re.escape(why)):
        parse_server(text)


def test_resolver_choice_order() -> None:
    assert choose_resolver("127.0.0.2", {"RELAYGUARD_RESOLVER": "127.0.0.3"}).source == "--resolver"
    env = choose_resolver(None, {"RELAYGUARD_RESOLVER": "127.0.0.3:5300"})
    assert (str(env.server), env.source) == ("127.0.0.3:5300", "$RELAYGUARD_RESOLVER")
    assert choose_resolver("8.8.8.8").public is True


# --- SPF terms and macros ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spf"),
    [("v=spf1 -all", True), ("v=spf1", True), ("V=SPF1 mx", True), (" v=spf1 -all", False),
     ("v=spf1mx -all", False), ("v=spf10", False)],
)  # fmt: skip
def test_which_txt_is_spf(text: str, spf: bool) -> None:
    assert is_spf(text) is spf


@pytest.mark.parametrize(
    "record",
    ["v=spf1 ip4:192.0.2.1~all", "v=spf1 ip4:192.0.2.0/33 -all", "v=spf1 include -all",
     "v=spf1 include=foo.example -all", "v=spf1 a:/24", "v=spf1 foo:bar", "v=spf1 all:x",
     "v=spf1 redirect=a.example redirect=b.example", "v=spf1 a:%{q}.example", "v=spf1 a:50%",
     "v=spf1 ip6:192.0.2.1", "v=spf1 exists:foo"],
)  # fmt: skip
def test_spf_syntax_errors(record: str) -> None:
    with pytest.raises(SpfSyntaxError):
        parse_record(record)


def test_spf_terms() -> None:
    record = parse_record("v=spf1 a:mail.example.com/24//64 mx ~ip6:2001:db8::/32 "
                          "exists:%{ir}.%{v}._spf.%{d2} redirect=_spf.example.com x-foo=bar")
    assert [(m.qualifier, m.name, m.domain, m.cidr4, m.cidr6) for m in record.mechanisms] == [
        ("+", "a", "mail.example.com", 24, 64), ("+", "mx", None, None, None),
        ("~", "ip6", "2001:db8::", None, 32), ("+", "exists", "%{ir}.%{v}._spf.%{d2}", None, None),
    ]  # fmt: skip
    assert (record.redirect, record.unknown_modifiers) == ("_spf.example.com", ("x-foo=bar",))


def test_macro_expansion_rfc_7208_examples() -> None:
    # RFC 7208 s.7.4, with sender strong-bad@email.example.com and 192.0.2.3
    ctx = MacroContext("strong-bad@email.example.com", "email.example.com",
                       ipaddress.ip_address("192.0.2.3"), "mx.example.org")  # fmt: skip
    assert expand("%{s}", ctx) == "strong-bad@email.example.com"
    assert expand("%{d4}", ctx) == "email.example.com"
    assert expand("%{d2}", ctx) == "example.com"
    assert expand("%{dr}", ctx) == "com.example.email"
    assert expand("%{l-}", ctx) == "strong.bad"
    assert expand("%{lr-}", ctx) == "bad.strong"
    assert expand("%{ir}.%{v}._spf.%{d2}", ctx) == "3.2.0.192.in-addr._spf.example.com"
    assert expand("%{l1r-}.lp._spf.%{d2}", ctx) == "strong.lp._spf.example.com"
    v6 = MacroContext("a@b.example", "b.example", ipaddress.ip_address("2001:db8::cb01"), "h")
    assert expand("%{ir}.%{v}._spf.%{d2}", v6) == (
        "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.b.example")
    with pytest.raises(MacroNeedsClient):
        expand("%{i}.x.example", MacroContext("a@b.example", "b.example", None, "h"))


# --- DMARC tags -------------------------------------------------------------------------------


def test_dmarc_tags() -> None:
    tags, issues = dmarc.parse_tags("v=DMARC1; p=quarantine; rua=mailto:a@x.example,mailto:b@y."
                                    "example!10m; adkim = s ;")  # fmt: skip
    assert tags == {"v": "DMARC1", "p": "quarantine", "adkim": "s",
                    "rua": "mailto:a@x.example,mailto:b@y.example!10m"}  # fmt: skip
    assert issues == []
    assert dmarc.report_domains(tags) == ["x.example", "y.example"]
    assert dmarc.is_dmarc("v = DMARC1 ; p = reject")
    assert not dmarc.is_dmarc("v=DMARC2; p=reject")
    assert dmarc.walk("a.b.example.test") == ["a.b.example.test", "b.example.test",
                                              "example.test", "test"]  # fmt: skip


# --- DKIM keys --------------------------------------------------------------------------------


def _der_len(n: int) -> bytes:
    return bytes([n]) if n < 128 else b"\x82" + n.to_bytes(2, "big")


def _rsa_spki(bits: int) -> str:
    modulus = (1 << (bits - 1)) | 1
    integer = b"\x02" + _der_len(bits // 8 + 1) + b"\x00" + modulus.to_bytes(bits // 8, "big")
    exponent = b"\x02\x03\x01\x00\x01"
    pkcs1 = b"\x30" + _der_len(len(integer) + 5) + integer + exponent
    algorithm = bytes.fromhex("300d06092a864886f70d0101010500")
    bitstring = b"\x03" + _der_len(len(pkcs1) + 1) + b"\x00" + pkcs1
    body = algorithm + bitstring
    return base64.b64encode(b"\x30" + _der_len(len(body)) + body).decode()


@pytest.mark.parametrize("bits", [512, 1024, 2048, 4096, 8192])
def test_rsa_key_sizes(bits: int) -> None:
    assert dkim.key_info(_rsa_spki(bits), "rsa") == ("rsa", bits)


@pytest.mark.parametrize(
    ("record", "error"),
    [("v=DKIM1; p=!!", "p= is not valid base64"),
     ("v=DKIM1; k=rsa; p=AAAA", "p= is not a DER public key"),
     ("k=rsa; v=DKIM1; p=", "v= must be first and DKIM1 (RFC 6376 s.3.6.1)"),
     ("v=DKIM1", "no p= tag: not a DKIM key record"), ("v=DKIM1; k=dsa; p=AAAA", "k=dsa: not "
      "a key type verifiers know (rsa, ed25519)")],
)  # fmt: skip
def test_broken_key_records(record: str, error: str) -> None:
    assert dkim.parse_key("s", record, "option").error == error


def test_key_record_whitespace_and_flags() -> None:
    key = dkim.parse_key("s", f"v=DKIM1; t=y:s; h=sha1; p={_rsa_spki(2048)[:20]} "
                         f"{_rsa_spki(2048)[20:]}", "guess")  # fmt: skip
    assert (key.bits, key.testing, key.tags["h"], key.error) == (2048, True, "sha1", None)


def test_selectors_from_message_headers() -> None:
    text = ("DKIM-Signature: v=1; a=rsa-sha256; d=Example.ORG;\r\n\ts=mail2026; b=x\r\n"
            "Subject: s=nope\r\n\r\nDKIM-Signature: d=body.example; s=body\r\n")  # fmt: skip
    assert dkim.selectors_from_message(text) == [("example.org", "mail2026")]


# --- Postfix addresses ------------------------------------------------------------------------


def test_postfix_public_addresses() -> None:
    found = choose({"inet_interfaces": "all", "inet_protocols": "ipv4",
                    "smtp_helo_name": "mx.example.org."},
                   ["127.0.0.1", "10.0.0.5", "192.0.2.10", "2001:db8::10", "fe80::1"])  # fmt: skip
    assert (found.addresses, found.helo) == (["192.0.2.10"], "mx.example.org")
    nat = choose({"inet_interfaces": "10.0.0.5", "proxy_interfaces": "198.51.100.7"}, [])
    assert nat.addresses == ["198.51.100.7"]
    bound = choose({"smtp_bind_address": "203.0.113.4", "smtp_bind_address6": "2001:db8::4"}, [])
    assert bound.addresses == ["203.0.113.4", "2001:db8::4"]
    assert choose({"inet_interfaces": "loopback-only"}, []).addresses == []
    assert [is_public(a) for a in ("100.64.0.1", "fd00::1", "::ffff:10.0.0.1", "8.8.8.8")] == [
        False, False, False, True]  # fmt: skip
