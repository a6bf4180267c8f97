"""Envelope parsing: one table per FORMATS.md section A variant, exact fields."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from relayguard.logs.envelope import FORMATS, EnvelopeParser


def utc(text: str) -> float:
    """POSIX time of an ISO 8601 UTC stamp, for expected values."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def parse(line: str, fmt: str = "auto", **kw: object) -> tuple[object, ...] | None:
    options: dict[str, object] = {"year": 2024, "tz": UTC}
    options.update(kw)
    p = EnvelopeParser(fmt, **options)  # type: ignore[arg-type]
    r = p.parse(line)
    if r is None:
        return None
    ev, msg = r
    return ev.time, ev.host, ev.program, ev.pid, msg


# (line, (time, host, program, pid, message))
ENVELOPES = [
    # A1: BSD, space-padded day
    (
        "Apr  6 13:05:01 server postfix/smtpd[20589]: NOQUEUE: reject: RCPT from "
        "unknown[192.0.2.116]: 504 5.5.2 <WIN-6A0KEE6QVP5>: Helo command rejected",
        (
            utc("2024-04-06 13:05:01"),
            "server",
            "postfix/smtpd",
            20589,
            "NOQUEUE: reject: RCPT from unknown[192.0.2.116]: 504 5.5.2 <WIN-6A0KEE6QVP5>: "
            "Helo command rejected",
        ),
    ),
    # A2: day not padded
    (
        "Aug 3 15:30:49 ksusha postfix/smtpd[17041]: warning: mail.foldsandwalker.com"
        "[98.191.84.74]: SASL Plain authentication failed:",
        (
            utc("2024-08-03 15:30:49"),
            "ksusha",
            "postfix/smtpd",
            17041,
            "warning: mail.foldsandwalker.com[98.191.84.74]: SASL Plain authentication failed:",
        ),
    ),
    # A3: zero-padded day
    (
        "Jun 04 22:24:28 machine postfix/smtpd[3967801]: NOQUEUE: reject: RCPT from x",
        (
            utc("2024-06-04 22:24:28"),
            "machine",
            "postfix/smtpd",
            3967801,
            "NOQUEUE: reject: RCPT from x",
        ),
    ),
    # A10: Postfix maillog_file, zero-padded, short host
    (
        "Mar 07 10:11:12 mail postfix/smtpd[1234]: connect from unknown[192.0.2.1]",
        (
            utc("2024-03-07 10:11:12"),
            "mail",
            "postfix/smtpd",
            1234,
            "connect from unknown[192.0.2.1]",
        ),
    ),
    # A4: localised month: no time, the rest parsed
    (
        "Απρ 15 12:20:28 mx2 postfix/submission/smtpd[6833]: Anonymous TLS connection "
        "established from  xx[5.5.5.5]",
        (
            None,
            "mx2",
            "postfix/submission/smtpd",
            6833,
            "Anonymous TLS connection established from  xx[5.5.5.5]",
        ),
    ),
    (
        "Mär  1 12:20:28 mx2 postfix/qmgr[1]: ABC: removed",
        (None, "mx2", "postfix/qmgr", 1, "ABC: removed"),
    ),
    # a BSD-shaped stamp with an impossible date: a bad timestamp, not an unparsed line
    (
        "Jan 99 00:00:00 host postfix/smtpd[1]: day 99",
        (None, "host", "postfix/smtpd", 1, "day 99"),
    ),
    # A5: RFC 3339, microseconds and offset
    (
        "2024-08-25T12:31:56.154748+00:00 machine postfix/smtpd[3887453]: NOQUEUE: reject",
        (utc("2024-08-25 12:31:56.154748"), "machine", "postfix/smtpd", 3887453, "NOQUEUE: reject"),
    ),
    (
        "2024-08-25T14:31:56.5+02:00 machine postfix/smtpd[3887453]: NOQUEUE: reject",
        (utc("2024-08-25 12:31:56.5"), "machine", "postfix/smtpd", 3887453, "NOQUEUE: reject"),
    ),
    (
        "2024-08-25T07:31:56-05:00 machine postfix/qmgr[9]: x",
        (utc("2024-08-25 12:31:56"), "machine", "postfix/qmgr", 9, "x"),
    ),
    # A6: milliseconds and Z, FQDN host, service in the tag
    (
        "2021-02-28T11:58:36.591Z zmproxy.fws.fr postfix/smtps/smtpd[4136]: warning: "
        "unknown[192.168.7.5]: SASL LOGIN authentication failed: authentication failure",
        (
            utc("2021-02-28 11:58:36.591"),
            "zmproxy.fws.fr",
            "postfix/smtps/smtpd",
            4136,
            "warning: unknown[192.168.7.5]: SASL LOGIN authentication failed: "
            "authentication failure",
        ),
    ),
    # A9: journalctl short-iso, offset without colon (< v255) and with; -precise fraction
    (
        "2023-09-08T17:20:30+0200 tarta r710_fan_controller.sh[20911]: Highest drive "
        "temperature: 43 Celcius.",
        (
            utc("2023-09-08 15:20:30"),
            "tarta",
            "r710_fan_controller.sh",
            20911,
            "Highest drive temperature: 43 Celcius.",
        ),
    ),
    (
        "2023-09-08T17:20:30+02:00 tarta postfix/smtpd[1]: x",
        (utc("2023-09-08 15:20:30"), "tarta", "postfix/smtpd", 1, "x"),
    ),
    (
        "2023-09-08T17:20:30.250000+0200 tarta postfix/smtpd[1]: x",
        (utc("2023-09-08 15:20:30.25"), "tarta", "postfix/smtpd", 1, "x"),
    ),
    # A7: RFC 5424: PROCID field, NIL MSGID/SD, BOM before MSG, SD with a quoted "]"
    (
        "<22>1 2024-08-25T12:31:56.154748+00:00 machine postfix/smtpd 3887453 - - "
        "NOQUEUE: reject: RCPT from unknown[192.168.1.1]",
        (
            utc("2024-08-25 12:31:56.154748"),
            "machine",
            "postfix/smtpd",
            3887453,
            "NOQUEUE: reject: RCPT from unknown[192.168.1.1]",
        ),
    ),
    (
        '<22>1 2024-08-25T12:31:56Z mx postfix/qmgr 12 ID47 [ex@32473 a="x]y" b="\\"q"]'
        '[meta@1 n="1"] \ufeffABC: removed',
        (utc("2024-08-25 12:31:56"), "mx", "postfix/qmgr", 12, "ABC: removed"),
    ),
    (
        "<22>1 - - - - - -",
        (None, "", "", None, ""),
    ),
    # A7: traditional forward with PRI; fail2ban's textual priority
    (
        "<22>Aug 25 12:31:56 host postfix/smtpd[123]: connect from x[192.0.2.1]",
        (utc("2024-08-25 12:31:56"), "host", "postfix/smtpd", 123, "connect from x[192.0.2.1]"),
    ),
    (
        "<auth.info>Aug 25 12:31:56 host sshd[5]: Accepted",
        (utc("2024-08-25 12:31:56"), "host", "sshd", 5, "Accepted"),
    ),
    # A11: TAI64N (multilog): no host, no pid
    (
        "@400000004c91b044077a9e94 imap-login: Info: Aborted login (auth failed, 1 attempts): "
        "user=<martin@waschbuesch.de>, method=CRAM-MD5, rip=80.187.101.33",
        (
            1284616250 + 0x077A9E94 / 1e9,
            "",
            "imap-login",
            None,
            "Info: Aborted login (auth failed, 1 attempts): user=<martin@waschbuesch.de>, "
            "method=CRAM-MD5, rip=80.187.101.33",
        ),
    ),
    (
        "@400000004c91b044077a9e94 starting",
        (1284616250 + 0x077A9E94 / 1e9, "", "", None, "starting"),
    ),
    # A12: no host
    (
        "Jan 29 09:33:58 pop3-login: Info: Aborted login (auth failed, 1 attempts in 2 secs): "
        "user=<grace>, method=PLAIN, rip=212.9.180.3",
        (
            utc("2024-01-29 09:33:58"),
            "",
            "pop3-login",
            None,
            "Info: Aborted login (auth failed, 1 attempts in 2 secs): user=<grace>, "
            "method=PLAIN, rip=212.9.180.3",
        ),
    ),
    # Dovecot log_path tag that is not name[pid]: program is the name, tag stays in message
    (
        "Aug 30 00:10:57 auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: "
        "Info: sql: Password mismatch (given password: XxxxXXxx123)",
        (
            utc("2024-08-30 00:10:57"),
            "",
            "auth",
            None,
            "auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: "
            "Password mismatch (given password: XxxxXXxx123)",
        ),
    ),
    (
        "Jan 29 05:32:50 mail dovecot: auth-worker(304): pam(username,1.2.3.4): "
        "pam_authenticate() failed",
        (
            utc("2024-01-29 05:32:50"),
            "mail",
            "dovecot",
            None,
            "auth-worker(304): pam(username,1.2.3.4): pam_authenticate() failed",
        ),
    ),
    (
        "Sep 8 07:16:27 canyon dovecot[7508]: imap-login: Disconnected (auth failed)",
        (
            utc("2024-09-08 07:16:27"),
            "canyon",
            "dovecot",
            7508,
            "imap-login: Disconnected (auth failed)",
        ),
    ),
    # B: multi-component Postfix tags are kept whole
    (
        "Mar 11 23:27:54 server postfix-smo/submission/smtpd[22427]: 44JCRG5tYPzCqt2: reject",
        (
            utc("2024-03-11 23:27:54"),
            "server",
            "postfix-smo/submission/smtpd",
            22427,
            "44JCRG5tYPzCqt2: reject",
        ),
    ),
    (
        "Jan 1 00:00:00 hostname postfix/smtpd: no pid",
        (utc("2024-01-01 00:00:00"), "hostname", "postfix/smtpd", None, "no pid"),
    ),
    # a host but no tag: program "" and the rest as message
    (
        "Jan 1 00:00:00 hostname some words",
        (utc("2024-01-01 00:00:00"), "hostname", "", None, "some words"),
    ),
    # tag with empty message
    (
        "Jan 1 00:00:00 hostname postfix/smtpd[1]:",
        (utc("2024-01-01 00:00:00"), "hostname", "postfix/smtpd", 1, ""),
    ),
    # D5/D7: Exim mainlog, optional [pid], .mmm, zone
    (
        "2013-06-10 18:33:32 [10099] H=(yakult.com.tw) [202.132.70.178]:3755 I=[1.2.3.4]:25 "
        "F=menacedsj04@listserv.eurasia.org rejected RCPT dir@ml3.ru: relay not permitted",
        (
            utc("2013-06-10 18:33:32"),
            "",
            "exim",
            10099,
            "H=(yakult.com.tw) [202.132.70.178]:3755 I=[1.2.3.4]:25 "
            "F=menacedsj04@listserv.eurasia.org rejected RCPT dir@ml3.ru: relay not permitted",
        ),
    ),
    (
        "2020-10-29 20:22:59.803 [30056] 1kYERi-0007oc-5P => user@example.com R=x",
        (
            utc("2020-10-29 20:22:59.803"),
            "",
            "exim",
            30056,
            "1kYERi-0007oc-5P => user@example.com R=x",
        ),
    ),
    (
        "2014-12-02 03:00:23 auth_plain authenticator failed for (rom182) [193.254.202.35]:41556",
        (
            utc("2014-12-02 03:00:23"),
            "",
            "exim",
            None,
            "auth_plain authenticator failed for (rom182) [193.254.202.35]:41556",
        ),
    ),
    (
        "2013-06-10 18:33:32 +0100 [77] 1ahr79-0006jK-G9 Completed",
        (utc("2013-06-10 17:33:32"), "", "exim", 77, "1ahr79-0006jK-G9 Completed"),
    ),
    (
        "2013-06-10 18:33:32.001 -0030 1ahr79-0006jK-G9 Completed",
        (utc("2013-06-10 19:03:32.001"), "", "exim", None, "1ahr79-0006jK-G9 Completed"),
    ),
    # D7: Exim through syslog: tag only, inner stamp (used and removed), host first
    (
        "Jun 29 16:04:19 server exim[1234]: dovecot_login authenticator failed for "
        "([1.2.3.5]) [1.2.3.4]:55379: 535 Incorrect authentication data (set_id=abuse@test.com)",
        (
            utc("2024-06-29 16:04:19"),
            "server",
            "exim",
            1234,
            "dovecot_login authenticator failed for ([1.2.3.5]) [1.2.3.4]:55379: 535 Incorrect "
            "authentication data (set_id=abuse@test.com)",
        ),
    ),
    (
        "Jun 29 16:04:19 server exim[1234]: 2021-07-17 23:20:49 [77] plain_server "
        "authenticator failed",
        (utc("2021-07-17 23:20:49"), "server", "exim", 1234, "plain_server authenticator failed"),
    ),
    (
        "mail.example.com exim[3751842]: 2021-07-17 23:20:49 plain_server authenticator failed "
        "for ([192.0.2.17]) [192.0.2.27]: 535 Incorrect authentication data",
        (
            utc("2021-07-17 23:20:49"),
            "mail.example.com",
            "exim",
            3751842,
            "plain_server authenticator failed for ([192.0.2.17]) [192.0.2.27]: 535 Incorrect "
            "authentication data",
        ),
    ),
    # E5: sendmail tags
    (
        "Feb 23 21:36:14 petermurray sm-mta[22248]: s1NLaDQT022248: ruleset=check_rcpt",
        (
            utc("2024-02-23 21:36:14"),
            "petermurray",
            "sm-mta",
            22248,
            "s1NLaDQT022248: ruleset=check_rcpt",
        ),
    ),
]


@pytest.mark.parametrize(("line", "expected"), ENVELOPES)
def test_envelope_variants(line: str, expected: tuple[object, ...]) -> None:
    assert parse(line) == expected


# Lines whose envelope is not recognised: the reader counts them as unparsed.
NOT_ENVELOPES = [
    "# Unsupported or malformed",
    "hello world",
    "   ",
    "2024-13-45T99:99:99Z host postfix/smtpd[1]: month 13",
    "2024-08-25T12:31:56+0x:00 host postfix/smtpd[1]: bad offset",
    "2024-08-25Tab:cd:ef host x: y",
    "2013-06-10 18:33:xx [1] not a time",
    "20130610 nothing",
    "{not json",
    "[1, 2, 3]",
    "@4000zzzz",
    "@400000004c91b044077a9e9",
    "<22",
    "<22><22>",
    "<22>1 2024",
    "\x00\x00\x00binary",
    "\ufffd\ufffd\ufffd",
]


@pytest.mark.parametrize("line", NOT_ENVELOPES)
def test_unrecognised_envelopes_return_none(line: str) -> None:
    assert parse(line) is None


JOURNAL = (
    '{"_COMM":"smtpd","SYSLOG_IDENTIFIER":"postfix/submission/smtpd","_HOSTNAME":"mx1",'
    '"SYSLOG_PID":"4242","_PID":"4243","__REALTIME_TIMESTAMP":"1700000000123456",'
    '"_SYSTEMD_UNIT":"postfix@-.service","PRIORITY":"6",'
    '"MESSAGE":"NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <a@b.example>: '
    'Relay access denied"}'
)


def test_journal_json_record() -> None:
    p = EnvelopeParser("auto", year=2024, tz=UTC)
    r = p.parse(JOURNAL)
    assert r is not None
    ev, msg = r
    assert (ev.time, ev.host, ev.program, ev.pid) == (
        1700000000.123456,
        "mx1",
        "postfix/submission/smtpd",
        4242,
    )
    assert msg == (
        "NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 554 5.7.1 <a@b.example>: "
        "Relay access denied"
    )
    # raw is a readable line rebuilt from the record, not the JSON text
    assert ev.raw == (
        "2023-11-14T22:13:20.123Z mx1 postfix/submission/smtpd[4242]: NOQUEUE: reject: RCPT "
        "from unknown[192.0.2.7]: 554 5.7.1 <a@b.example>: Relay access denied"
    )


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # MESSAGE as a byte array with an invalid UTF-8 byte; _COMM and _PID as fallbacks
        (
            '{"_COMM":"smtpd","_HOSTNAME":"h","_PID":"7","__REALTIME_TIMESTAMP":"1000000",'
            '"MESSAGE":[104,105,255,33]}',
            (1.0, "h", "smtpd", 7, "hi\ufffd!"),
        ),
        # no timestamp, no pid, no host, MESSAGE null (journald's "too large")
        (
            '{"SYSLOG_IDENTIFIER":"postfix/qmgr","MESSAGE":null}',
            (None, "", "postfix/qmgr", None, ""),
        ),
        # a numeric timestamp (not what journalctl writes, but other exporters do)
        (
            '{"SYSLOG_IDENTIFIER":"x","__REALTIME_TIMESTAMP":2500000,"MESSAGE":"m"}',
            (2.5, "", "x", None, "m"),
        ),
        # bytes out of range: message dropped, envelope kept
        ('{"SYSLOG_IDENTIFIER":"x","MESSAGE":[300]}', (None, "", "x", None, "")),
        # exim through the journal: its own stamp is used and removed
        (
            '{"SYSLOG_IDENTIFIER":"exim","__REALTIME_TIMESTAMP":"5000000",'
            '"MESSAGE":"2021-07-17 23:20:49 [12] 1ahr79-0006jK-G9 Completed"}',
            (utc("2021-07-17 23:20:49"), "", "exim", 12, "1ahr79-0006jK-G9 Completed"),
        ),
    ],
)
def test_journal_json_variants(record: str, expected: tuple[object, ...]) -> None:
    assert parse(record) == expected
    assert parse(record, "journal-json") == expected


def test_journal_json_rejects_non_objects_and_bad_identifiers() -> None:
    assert parse('"just a string"') is None
    assert parse('{"SYSLOG_IDENTIFIER":["a"],"MESSAGE":"x"}') is None


def test_mixed_file_bsd_and_rfc3339_lines() -> None:
    p = EnvelopeParser(year=2024, tz=UTC)
    lines = [
        "Aug 25 12:31:55 machine postfix/smtpd[1]: a",
        "2024-08-25T12:31:56.000001+00:00 machine postfix/smtpd[1]: b",
        "Aug 25 12:31:57 machine postfix/smtpd[1]: c",
        "2024-08-25T12:31:58+00:00 machine postfix/smtpd[1]: d",
    ]
    got = []
    for line in lines:
        r = p.parse(line)
        assert r is not None
        got.append((r[0].time, r[1]))
    base = utc("2024-08-25 12:31:55")
    assert got == [(base, "a"), (base + 1.000001, "b"), (base + 2, "c"), (base + 3, "d")]


def test_repeated_stamps_and_tags_use_caches_consistently() -> None:
    p = EnvelopeParser(year=2024, tz=UTC)
    line = "Dec 03 16:17:20 mail postfix/smtpd[27951]: connect from unknown[127.0.0.2]"
    first = p.parse(line)
    second = p.parse(line.replace("connect", "disconnect"))
    assert first is not None and second is not None
    assert (first[0].time, first[0].program, first[0].pid) == (
        utc("2024-12-03 16:17:20"),
        "postfix/smtpd",
        27951,
    )
    assert (second[0].time, second[0].program, second[0].pid, second[1]) == (
        first[0].time,
        "postfix/smtpd",
        27951,
        "disconnect from unknown[127.0.0.2]",
    )
    # a hostless line whose second word equals a cached tag is still hostless
    p.parse("Dec 03 16:17:20 mail Info: x")
    r = p.parse("Dec 03 16:17:20 pop3-login: Info: y")
    assert r is not None
    assert (r[0].host, r[0].program, r[1]) == ("", "pop3-login", "Info: y")


# --- years and time zones ----------------------------------------------------------------


def times(p: EnvelopeParser, stamps: list[str]) -> list[str | None]:
    out: list[str | None] = []
    for stamp in stamps:
        r = p.parse(f"{stamp} mail postfix/smtpd[1]: x")
        assert r is not None
        t = r[0].time
        out.append(None if t is None else datetime.fromtimestamp(t, UTC).isoformat()[:19])
    return out


def test_explicit_year_rolls_over_dec_to_jan() -> None:
    p = EnvelopeParser(year=2025, tz=UTC)
    got = times(
        p,
        [
            "Dec 31 23:59:59",
            "Jan  1 00:00:00",
            "Dec 31 23:59:58",
            "Jan  2 00:00:00",
            "Mar  1 00:00:00",
        ],
    )
    assert got == [
        "2025-12-31T23:59:59",
        "2026-01-01T00:00:00",
        "2025-12-31T23:59:58",  # a straggler after the rollover stays in the old year
        "2026-01-02T00:00:00",
        "2026-03-01T00:00:00",
    ]


def test_year_from_reference_time_with_rollover() -> None:
    mtime = utc("2026-01-02 10:00:00")  # file last written on 2 January
    p = EnvelopeParser(tz=UTC, reference_time=mtime)
    got = times(
        p,
        [
            "Dec 30 08:00:00",
            "Dec 31 23:59:59",
            "Jan  2 10:00:00",
            "Jan  3 09:59:59",
            "Jan  3 10:00:01",
        ],
    )
    assert got == [
        "2025-12-30T08:00:00",  # more than a day after the mtime in 2026 -> 2025
        "2025-12-31T23:59:59",
        "2026-01-02T10:00:00",
        "2026-01-03T09:59:59",  # within a day of the mtime (clock skew) stays
        "2025-01-03T10:00:01",
    ]


def test_start_source_changes_the_reference_year() -> None:
    p = EnvelopeParser(tz=UTC, reference_time=utc("2026-06-01 00:00:00"))
    assert times(p, ["Mar  1 00:00:00"]) == ["2026-03-01T00:00:00"]
    p.start_source(utc("2023-06-01 00:00:00"))
    assert times(p, ["Mar  1 00:00:00"]) == ["2023-03-01T00:00:00"]


def test_local_times_use_the_given_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    p = EnvelopeParser(year=2024, tz=berlin)
    assert times(p, ["Jan 15 12:00:00", "Jul 15 12:00:00"]) == [
        "2024-01-15T11:00:00",  # CET
        "2024-07-15T10:00:00",  # CEST
    ]
    r = p.parse("2024-07-15T12:00:00 host postfix/smtpd[1]: no offset -> local")
    assert r is not None and r[0].time == utc("2024-07-15 10:00:00")
    r = p.parse("2024-07-15T12:00:00Z host postfix/smtpd[1]: explicit Z")
    assert r is not None and r[0].time == utc("2024-07-15 12:00:00")
    r = p.parse("2024-07-15 12:00:00 [1] exim local time")
    assert r is not None and r[0].time == utc("2024-07-15 10:00:00")


def test_feb_29_in_a_year_without_it_is_a_bad_timestamp() -> None:
    p = EnvelopeParser(year=2023, tz=UTC)
    r = p.parse("Feb 29 12:00:00 host postfix/smtpd[1]: x")
    assert r is not None
    assert (r[0].time, r[0].host, r[0].program, r[1]) == (None, "host", "postfix/smtpd", "x")


# --- forced formats ----------------------------------------------------------------------

BSD = "Aug 25 12:31:56 host postfix/smtpd[123]: x"
ISO = "2024-08-25T12:31:56Z host postfix/smtpd[123]: x"
EXIM = "2024-08-25 12:31:56 [123] x"
R5424 = "<22>1 2024-08-25T12:31:56Z host postfix/smtpd 123 - - x"
TAI = "@400000004c91b044077a9e94 postfix/smtpd[123]: x"


@pytest.mark.parametrize(
    ("fmt", "accepted"),
    [
        ("syslog", {BSD, "<22>" + BSD}),
        ("maillog", {BSD, "<22>" + BSD}),
        ("rfc3339", {ISO}),
        ("rfc5424", {R5424}),
        ("exim", {EXIM}),
        ("tai64n", {TAI}),
        ("journal-json", {JOURNAL}),
        ("auto", {BSD, "<22>" + BSD, ISO, EXIM, R5424, TAI, JOURNAL}),
    ],
)
def test_forced_format_accepts_only_its_shape(fmt: str, accepted: set[str]) -> None:
    for line in (BSD, "<22>" + BSD, ISO, EXIM, R5424, TAI, JOURNAL):
        assert (parse(line, fmt) is not None) == (line in accepted), (fmt, line)


def test_format_names_and_bad_arguments() -> None:
    assert FORMATS == (
        "auto",
        "syslog",
        "maillog",
        "rfc3339",
        "rfc5424",
        "journal-json",
        "exim",
        "tai64n",
    )
    with pytest.raises(ValueError, match="unknown log format 'csv'"):
        EnvelopeParser("csv", year=2024)
    with pytest.raises(ValueError, match="give year or reference_time"):
        EnvelopeParser("auto")


def test_iso_time_helper() -> None:
    p = EnvelopeParser(year=2024, tz=UTC)
    assert p.iso_time("2024-02-29T23:59:59.5Z") == utc("2024-02-29 23:59:59.5")
    assert p.iso_time("2024-02-29 23:59:59+0100") == utc("2024-02-29 22:59:59")
    assert p.iso_time("2024-02-29") is None
    assert p.iso_time("2024-02-29T23:59:5") is None
