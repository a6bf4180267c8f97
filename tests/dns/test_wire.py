"""The hand-written DNS codec (relayguard.dns.wire) against exact bytes and against dnspython:
the same query bytes, the same reading of a reply, the same refusals."""

from __future__ import annotations

import struct

import dns.flags
import dns.ipv6
import dns.message
import dns.rcode
import dns.rrset
import pytest

from relayguard.dns import _dnspython, wire
from relayguard.dns._events import Query
from relayguard.dns.wire import Reply, RRset, Unusual, WireError

QID = 0x1234


def dnspython_query(name: str, rdtype: str, qid: int = QID) -> dns.message.Message:
    request = _dnspython.make_request(Query(name, rdtype))
    request.id = qid
    return request


# --- queries ------------------------------------------------------------------------------------


def test_query_bytes_exact() -> None:
    question = wire.encode_question("a.b.", "A")
    assert question is not None
    assert wire.encode_query(QID, question).hex() == (
        "1234" "0100" "0001" "0000" "0000" "0001"  # id, RD, 1 question, 1 additional
        "0161" "0162" "00" "0001" "0001"  # a.b. A IN
        "00" "0029" "04d0" "00000000" "0000"  # OPT: root, payload 1232, no flags, no options
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "rdtype"),
    [
        ("example.test.", "A"),
        ("2.0.0.127.zen.dnsbl.test.", "A"),
        ("2.0.0.127.zen.dnsbl.test.", "TXT"),
        ("1.0.18.198.in-addr.arpa.", "PTR"),
        ("_dmarc.example.test.", "TXT"),
        ("sel._domainkey.example.test.", "TXT"),
        ("xn--bcher-kva.example.", "AAAA"),
        ("mail-1.example.test.", "MX"),
        ("example.test.", "NS"),
        ("example.test.", "SOA"),
        ("www.example.test.", "CNAME"),
        (("a" * 63 + ".") * 3 + "b" * 61 + ".", "A"),  # 255 bytes on the wire
    ],
)
def test_query_bytes_are_dnspythons(name: str, rdtype: str) -> None:
    question = wire.encode_question(name, rdtype)
    assert question is not None
    assert wire.encode_query(QID, question) == dnspython_query(name, rdtype).to_wire()


@pytest.mark.parametrize(
    "name",
    [
        "Example.test.",  # upper case: dnspython writes it
        "a b.test.",
        "b\u00fccher.example.",
        "a\\.b.test.",
        "a..b.",
        "relative.name",
        "a" * 64 + ".test.",
        ("a" * 63 + ".") * 3 + "b" * 62 + ".",  # 256 bytes on the wire
        "*.example.test.",
        ".",
    ],
)
def test_names_outside_the_plain_subset_are_left_to_dnspython(name: str) -> None:
    assert wire.encode_question(name, "A") is None


def test_unknown_type_is_left_to_dnspython() -> None:
    assert wire.encode_question("example.test.", "SRV") is None


# --- replies built by dnspython -----------------------------------------------------------------


def response(name: str, rdtype: str, *records: tuple[str, str, int, str],
             authority: tuple[tuple[str, str, int, str], ...] = (),
             additional: tuple[tuple[str, str, int, str], ...] = (),
             rcode: int = 0) -> bytes:  # fmt: skip
    reply = dns.message.make_response(dnspython_query(name, rdtype))
    reply.set_rcode(dns.rcode.Rcode(rcode))
    for section, rows in ((reply.answer, records), (reply.authority, authority),
                          (reply.additional, additional)):  # fmt: skip
        for owner, kind, ttl, text in rows:
            rrset = dns.rrset.from_text(owner, ttl, "IN", kind, text)
            found = next((r for r in section if r.match(rrset.name, 1, rrset.rdtype, 0)), None)
            if found is None:
                section.append(rrset)
            else:
                for rdata in rrset:  # in order: the wire order must not depend on hashing
                    found.add(rdata, ttl)
    return bytes(reply.to_wire(want_shuffle=False))  # dnspython shuffles records by default


def both(data: bytes, name: str, rdtype: str, qid: int = QID) -> tuple[Reply | None, Reply | None]:
    question = wire.encode_question(name, rdtype)
    assert question is not None
    fast = wire.parse_reply(data, qid, question, name)
    slow = _dnspython.read_datagram(data, Query(name, rdtype), qid, None)
    return fast, slow


SOA = ("dnsbl.test.", "SOA", 300, "ns1.dnsbl.test. hostmaster.dnsbl.test. 1 3600 600 86400 60")
LISTED = "2.0.0.127.zen.dnsbl.test."


def test_listing_with_ns_and_glue_read_exactly() -> None:
    data = response(LISTED, "A", (LISTED, "A", 60, "127.0.0.2"), (LISTED, "A", 60, "127.0.0.4"),
                    authority=(("dnsbl.test.", "NS", 60, "ns1.dnsbl.test."),),
                    additional=(("ns1.dnsbl.test.", "A", 60, "127.0.0.1"),))  # fmt: skip
    fast, slow = both(data, LISTED, "A")
    assert fast == Reply(0, 0x8100, (RRset(LISTED, wire.A, 60, ("127.0.0.2", "127.0.0.4")),), None)
    assert fast == slow


def test_nxdomain_with_soa_read_exactly() -> None:
    name = "1.0.18.198.zen.dnsbl.test."
    fast, slow = both(response(name, "A", authority=(SOA,), rcode=3), name, "A")
    assert fast == Reply(3, 0x8103, (), 60)
    assert fast == slow


@pytest.mark.parametrize(
    ("name", "rdtype", "records", "authority"),
    [
        (LISTED, "TXT", [(LISTED, "TXT", 60, '"listed" " see" " https://example.test/?2"')], []),
        (LISTED, "TXT", [(LISTED, "TXT", 60, '"one"'), (LISTED, "TXT", 30, '"two" ""')], []),
        ("1.0.18.198.in-addr.arpa.", "PTR",
         [("1.0.18.198.in-addr.arpa.", "PTR", 3600, "Mail.Example.TEST.")], []),
        ("example.test.", "MX", [("example.test.", "MX", 300, "10 mx1.example.test."),
                                 ("example.test.", "MX", 300, "20 MX2.example.test.")], []),
        ("example.test.", "NS", [("example.test.", "NS", 300, "ns1.example.test.")], []),
        ("example.test.", "AAAA", [("example.test.", "AAAA", 300, "2001:db8::25"),
                                   ("example.test.", "AAAA", 300, "::ffff:192.0.2.1")], []),
        ("www.example.test.", "A", [("www.example.test.", "CNAME", 300, "web.example.test."),
                                    ("web.example.test.", "CNAME", 200, "host.other.test."),
                                    ("host.other.test.", "A", 100, "192.0.2.80")], []),
        ("www.example.test.", "A", [("www.example.test.", "CNAME", 300, "gone.example.test.")],
         [("example.test.", "SOA", 300, "ns. host. 1 2 3 4 5")]),
        ("example.test.", "A", [], [("example.test.", "SOA", 90, "ns. host. 1 2 3 4 500")]),
        ("a-b_c.example.test.", "A", [("a-b_c.example.test.", "A", 0x80000000, "192.0.2.1")], []),
        ("example.test.", "TXT", [("other.test.", "TXT", 60, '"not for us"')], []),
    ],
)
def test_replies_read_like_dnspython(
    name: str, rdtype: str, records: list[tuple[str, str, int, str]],
    authority: list[tuple[str, str, int, str]],
) -> None:  # fmt: skip
    fast, slow = both(response(name, rdtype, *records, authority=tuple(authority)), name, rdtype)
    assert fast is not None
    assert fast == slow


@pytest.mark.parametrize("rcode", [1, 2, 4, 5, 6, 9, 15])
def test_rcodes_read_like_dnspython(rcode: int) -> None:
    fast, slow = both(response("example.test.", "A", rcode=rcode), "example.test.", "A")
    assert fast is not None and fast.rcode == rcode
    assert fast == slow
    assert wire.RCODE_TEXT[rcode] == dns.rcode.to_text(dns.rcode.Rcode.make(rcode))


def test_rcode_names_are_dnspythons() -> None:
    assert list(wire.RCODE_TEXT) == [dns.rcode.to_text(dns.rcode.Rcode.make(i)) for i in range(16)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"),
        ("fe80::", "fe80::"),
        ("::ffff:c000:201", "::ffff:192.0.2.1"),
        ("::c000:201", "::192.0.2.1"),
        ("0:0:0:0:0:1:c000:201", "::1:c000:201"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6"),
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
        ("1:0:0:1:0:0:1:1", "1::1:0:0:1:1"),  # a tie: the first run of zeros
    ],
)
def test_ipv6_text_is_dnspythons(text: str, expected: str) -> None:
    raw = dns.ipv6.inet_aton(text)
    assert wire.ipv6_text(raw) == expected == dns.ipv6.inet_ntoa(raw)


# --- hand-made replies: compression, duplicates, refusals ---------------------------------------


def name_bytes(name: str) -> bytes:
    return b"".join(bytes((len(x),)) + x.encode() for x in name.rstrip(".").split(".")) + b"\0"


def record(owner: bytes, rdtype: int, ttl: int, rdata: bytes, rdclass: int = 1) -> bytes:
    return owner + struct.pack("!HHIH", rdtype, rdclass, ttl, len(rdata)) + rdata


def message(body: bytes, an: int = 0, ns: int = 0, ar: int = 0, qd: int = 1, flags: int = 0x8180,
            qid: int = QID, questions: bytes | None = None) -> bytes:  # fmt: skip
    """A reply: header, ``questions`` (default: ``qd`` times x.example.test. A IN), ``body``."""
    if questions is None:
        questions = (name_bytes("x.example.test.") + struct.pack("!HH", 1, 1)) * qd
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar) + questions + body


Q = "x.example.test."
TO_QUESTION = b"\xc0\x0c"  # a pointer to offset 12: the question's name
TO_EXAMPLE = b"\xc0\x0e"  # offset 14: "example.test." inside the question's name


def test_compressed_names_read_like_dnspython() -> None:
    body = (
        record(TO_QUESTION, wire.CNAME, 300, b"\x03www" + TO_EXAMPLE)
        + record(b"\x03www" + TO_EXAMPLE, wire.A, 60, bytes([192, 0, 2, 1]))
    )
    fast, slow = both(message(body, an=2), Q, "A")
    assert fast == Reply(0, 0x8180, (
        RRset(Q, wire.CNAME, 300, ("www.example.test.",)),
        RRset("www.example.test.", wire.A, 60, ("192.0.2.1",)),
    ), None)  # fmt: skip
    assert fast == slow


def test_duplicate_records_dropped_and_lowest_ttl_kept_like_dnspython() -> None:
    a = bytes([192, 0, 2, 1])
    body = (record(TO_QUESTION, wire.A, 60, a) + record(TO_QUESTION, wire.A, 30, a)
            + record(TO_QUESTION, wire.A, 90, bytes([192, 0, 2, 2])))  # fmt: skip
    fast, slow = both(message(body, an=3), Q, "A")
    assert fast == Reply(0, 0x8180, (RRset(Q, wire.A, 30, ("192.0.2.1", "192.0.2.2")),), None)
    assert fast == slow


def test_two_cnames_for_one_name_keep_the_last_like_dnspython() -> None:
    body = (record(TO_QUESTION, wire.CNAME, 60, name_bytes("a.test."))
            + record(TO_QUESTION, wire.CNAME, 30, name_bytes("b.test.")))  # fmt: skip
    fast, slow = both(message(body, an=2), Q, "A")
    assert fast == Reply(0, 0x8180, (RRset(Q, wire.CNAME, 30, ("b.test.",)),), None)
    assert fast == slow


def test_two_soa_records_keep_the_last_minimum_like_dnspython() -> None:
    soa = name_bytes("ns.test.") + name_bytes("host.test.") + struct.pack("!IIIII", 1, 2, 3, 4, 50)
    soa2 = soa[:-4] + struct.pack("!I", 500)
    body = record(TO_EXAMPLE, wire.SOA, 100, soa) + record(TO_EXAMPLE, wire.SOA, 300, soa2)
    fast, slow = both(message(body, ns=2, flags=0x8183), Q, "A")
    assert fast == Reply(3, 0x8183, (), 100)
    assert fast == slow


def test_question_in_other_case_is_the_same_question() -> None:
    question = name_bytes("X.Example.TEST.") + struct.pack("!HH", 1, 1)
    fast, slow = both(message(b"", questions=question, flags=0x8183), Q, "A")
    assert fast == Reply(3, 0x8183, (), None)
    assert fast == slow


def test_question_repeated_is_accepted_like_dnspython() -> None:
    fast, slow = both(message(b"", qd=2, flags=0x8183), Q, "A")
    assert fast == Reply(3, 0x8183, (), None)
    assert fast == slow


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (message(b"", qid=QID + 1), "another id"),
        (message(b"", flags=0x0180), "not a response (QR clear)"),
        (message(b"", flags=0x8980), "another opcode"),
        (message(b"", questions=name_bytes("y.example.test.") + struct.pack("!HH", 1, 1)),
         "another name"),
        (message(b"", questions=name_bytes("x.example.test.") + struct.pack("!HH", 16, 1)),
         "another type"),
        (message(b"", questions=name_bytes("x.example.test.") + struct.pack("!HH", 1, 3)),
         "another class"),
        (message(b"", qd=0), "no question in a NOERROR"),
        (message(b"", qd=2, questions=name_bytes("x.example.test.") + struct.pack("!HH", 1, 1)
                 + name_bytes("y.example.test.") + struct.pack("!HH", 1, 1)), "a second question"),
    ],
)
def test_replies_to_something_else_are_not_taken(data: bytes, why: str) -> None:
    fast, slow = both(data, Q, "A")
    assert (fast, slow) == (None, None), why


@pytest.mark.parametrize("flags", [0x8181, 0x8182, 0x8184, 0x8185])
def test_error_without_question_is_taken_like_dnspython(flags: int) -> None:
    fast, slow = both(message(b"", qd=0, flags=flags), Q, "A")
    assert fast == Reply(flags & 0xF, flags, (), None)
    assert fast == slow


@pytest.mark.parametrize(
    ("body", "an", "why"),
    [
        # The question ends at offset 32 (0x20), where the first answer record starts.
        (record(b"\xc0\x20", wire.A, 60, b"\x7f\0\0\x02"), 1, "pointer to itself"),
        (record(b"\xc0\x40", wire.A, 60, b"\x7f\0\0\x02"), 1, "pointer forwards"),
        # the first owner points at the second (0x32), which points back at the first
        (record(b"\x01a\xc0\x32", wire.A, 60, b"\x7f\0\0\x02")
         + record(b"\xc0\x20", wire.A, 60, b"\x7f\0\0\x02"), 2, "pointer loop"),
        (record(b"\x01a\xc0\x20", wire.A, 60, b"\x7f\0\0\x02"), 1, "pointer into its own name"),
        (record(b"\x01a\xc0\x0e" + b"\0", wire.A, 60, b"\x7f\0\0\x02"), 1,
         "a label after a pointer"),
        (record(TO_QUESTION, wire.A, 60, b"\x7f\0\0"), 1, "A record of 3 bytes"),
        (record(TO_QUESTION, wire.AAAA, 60, b"\0" * 15), 1, "AAAA record of 15 bytes"),
        (record(TO_QUESTION, wire.TXT, 60, b""), 1, "TXT record without a string"),
        (record(TO_QUESTION, wire.TXT, 60, b"\x05abc"), 1, "TXT string past its record"),
        (record(TO_QUESTION, wire.CNAME, 60, name_bytes("a.test.") + b"\0"), 1,
         "bytes after a CNAME's name"),
        (record(TO_QUESTION, wire.CNAME, 60, b"\x01a"), 1, "a CNAME's name past its record"),
        (record(b"\x80\0", wire.A, 60, b"\x7f\0\0\x02"), 1, "label type 0b10"),
        (record((b"\x3f" + b"a" * 63) * 4 + b"\0", wire.A, 60, b"\x7f\0\0\x02"), 1,
         "name of 257 bytes"),
    ],
)
def test_malformed_replies_are_refused_like_dnspython(body: bytes, an: int, why: str) -> None:
    data = message(body, an=an)
    question = wire.encode_question(Q, "A")
    assert question is not None
    with pytest.raises(WireError):
        wire.parse_reply(data, QID, question, Q)
    assert _dnspython.read_datagram(data, Query(Q, "A"), QID, None) is None, why


def test_soa_cut_short_is_refused_like_dnspython() -> None:
    soa = name_bytes("ns.test.") + name_bytes("host.test.") + b"\0" * 19
    data = message(record(TO_EXAMPLE, wire.SOA, 60, soa), ns=1, flags=0x8183)
    question = wire.encode_question(Q, "A")
    assert question is not None
    with pytest.raises(WireError):
        wire.parse_reply(data, QID, question, Q)
    assert _dnspython.read_datagram(data, Query(Q, "A"), QID, None) is None


def test_a_pointer_chain_longer_than_16_hops_is_refused() -> None:
    # Each name is one label and a pointer to the previous name: 17 hops back to the question.
    body, previous = b"", 12
    for _ in range(17):
        offset = 12 + len(name_bytes(Q)) + 4 + len(body)
        body += record(b"\x01a" + struct.pack("!H", 0xC000 | previous), wire.A, 60, b"\x7f\0\0\x02")
        previous = offset
    data = message(body, an=17)
    with pytest.raises(WireError, match="chain too long"):
        wire.read_name(data, previous, len(data))
    labels, _ = wire.read_name(data, 12 + len(name_bytes(Q)) + 4, len(data))
    assert labels == [b"a", b"x", b"example", b"test"]


def test_every_truncation_of_a_reply_is_refused() -> None:
    data = response(LISTED, "A", (LISTED, "A", 60, "127.0.0.2"), authority=(SOA,))
    question = wire.encode_question(LISTED, "A")
    assert question is not None
    assert wire.parse_reply(data, QID, question, LISTED) is not None
    for size in range(len(data)):
        with pytest.raises(WireError):
            wire.parse_reply(data[:size], QID, question, LISTED)
        assert _dnspython.read_datagram(data[:size], Query(LISTED, "A"), QID, None) is None


def test_trailing_bytes_are_ignored_like_dnspython() -> None:
    data = response(LISTED, "A", (LISTED, "A", 60, "127.0.0.2")) + b"junk"
    fast, slow = both(data, LISTED, "A")
    assert fast is not None and fast == slow


@pytest.mark.parametrize(
    ("body", "an", "ar", "why"),
    [
        (record(TO_QUESTION, 46, 60, b"\0" * 20), 1, 0, "an RRSIG"),
        (record(TO_QUESTION, wire.A, 60, b"\x7f\0\0\x02", rdclass=3), 1, 0, "class CH"),
        (record(b"\0", 41, 1232 << 16, struct.pack("!HH", 10, 8) + b"\0" * 8), 0, 1,
         "an EDNS cookie"),
        (record(b"\0", 41, 1 << 24, b""), 0, 1, "an extended rcode"),
        (record(b"\x03a(b\0", wire.A, 60, b"\x7f\0\0\x02"), 1, 0, "a name dnspython escapes"),
    ],
)
def test_unusual_replies_are_left_to_dnspython(body: bytes, an: int, ar: int, why: str) -> None:
    data = message(body, an=an, ar=ar)
    question = wire.encode_question(Q, "A")
    assert question is not None
    with pytest.raises(Unusual):
        wire.parse_reply(data, QID, question, Q)


def test_extended_dns_error_option_is_read() -> None:
    # NSD answers a zone it does not serve with REFUSED and EDE 20 ("Not Authoritative").
    opt = record(b"\0", 41, 0, struct.pack("!HHH", 15, 2, 20))
    fast, slow = both(message(opt, ar=1, flags=0x8105), Q, "A")
    assert fast == Reply(5, 0x8105, (), None)
    assert fast == slow


def test_extended_dns_error_text_not_utf8_is_refused_like_dnspython() -> None:
    opt = record(b"\0", 41, 0, struct.pack("!HHH", 15, 4, 20) + b"\xff\xfe")
    data = message(opt, ar=1, flags=0x8105)
    question = wire.encode_question(Q, "A")
    assert question is not None
    with pytest.raises(WireError):
        wire.parse_reply(data, QID, question, Q)
    assert _dnspython.read_datagram(data, Query(Q, "A"), QID, None) is None


def test_opt_outside_the_additional_section_is_left_to_dnspython() -> None:
    data = message(record(b"\0", 41, 0, b""), an=1)
    question = wire.encode_question(Q, "A")
    assert question is not None
    with pytest.raises(Unusual):
        wire.parse_reply(data, QID, question, Q)
    assert _dnspython.read_datagram(data, Query(Q, "A"), QID, None) is None
