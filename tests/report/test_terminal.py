"""The terminal report and the sanitizer it prints every log-derived string through."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
from rich.console import Console

from relayguard import mitigations
from relayguard.analysis.result import AnalysisResult, Incident, InputStats, TrafficStats
from relayguard.findings import Finding, Severity, Subject, TimelineEntry, Verdict
from relayguard.mitigations import CATALOGUE
from relayguard.report import terminal
from relayguard.report.sanitize import clean


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# Real lines from tests/data/lab/03_auth_bruteforce.log and 04_auth_success_outbound_spam.log.
BRUTE_EVIDENCE = [
    "Dec 03 16:17:46 mail postfix/smtpd[28003]: warning: unknown[127.0.0.66]: SASL PLAIN "
    "authentication failed: authentication failure, sasl_username=alice@lab.test",
    "Dec 03 16:17:46 mail postfix/smtpd[27951]: warning: unknown[127.0.0.66]: SASL PLAIN "
    "authentication failed: authentication failure, sasl_username=info@lab.test",
    "Dec 03 16:17:46 mail postfix/smtpd[28003]: warning: unknown[127.0.0.66]: SASL PLAIN "
    "authentication failed: authentication failure, sasl_username=alice@lab.test",
    "Dec 03 16:18:09 mail postfix/smtpd[27951]: warning: unknown[127.0.0.66]: SASL PLAIN "
    "authentication failed: authentication failure, sasl_username=info@lab.test",
    "Dec 03 16:18:10 mail postfix/smtpd[28003]: warning: unknown[127.0.0.66]: SASL PLAIN "
    "authentication failed: authentication failure, sasl_username=alice@lab.test",
]
SPIKE_EVIDENCE = [
    "Dec 03 16:18:19 mail postfix/smtpd[28003]: 4A2EF212051: client=unknown[127.0.0.66], "
    "sasl_method=LOGIN, sasl_username=alice@lab.test",
]


def compromised() -> AnalysisResult:
    brute = Finding(
        indicator="auth-bruteforce",
        severity=Severity.HIGH,
        subject=Subject("ip", "127.0.0.66"),
        title="312 failed SASL logins from 127.0.0.66 for 2 accounts",
        first_seen=ts("2026-12-03 16:17:46"),
        last_seen=ts("2026-12-03 16:18:10"),
        count=312,
        evidence=list(BRUTE_EVIDENCE),
        mitigations=["limit-auth-attempts", "ban-ip"],
        details={
            "failures": 312,
            "accounts": ["alice@lab.test", "info@lab.test"],
            "per_minute": 780.5,
        },
        related=[Subject("sasl_user", "alice@lab.test")],
    )
    spike = Finding(
        indicator="outbound-spike",
        severity=Severity.CRITICAL,
        subject=Subject("sasl_user", "alice@lab.test"),
        title="alice@lab.test sent 200 messages to 57 domains in 41 seconds",
        first_seen=ts("2026-12-03 16:18:19"),
        last_seen=ts("2026-12-03 16:19:00"),
        count=200,
        evidence=list(SPIKE_EVIDENCE),
        mitigations=[
            "reset-password",
            "hold-queued-mail",
            "rate-limit-outbound",
            "limit-auth-attempts",
        ],
        details={"messages": 200, "recipient_domains": 57},
    )
    incident = Incident(
        id="I1",
        title="Account alice@lab.test was broken into and sends spam",
        severity=Severity.CRITICAL,
        subjects=[Subject("sasl_user", "alice@lab.test"), Subject("ip", "127.0.0.66")],
        findings=[spike, brute],
        timeline=[
            TimelineEntry(ts("2026-12-03 16:17:46"), "first failed login from 127.0.0.66"),
            TimelineEntry(ts("2026-12-03 16:18:19"), "127.0.0.66 logged in as alice@lab.test"),
            TimelineEntry(ts("2026-12-03 16:19:00"), "200 messages sent to 57 domains"),
        ],
        first_seen=ts("2026-12-03 16:17:46"),
        last_seen=ts("2026-12-03 16:19:00"),
    )
    return AnalysisResult(
        verdict=Verdict.ABUSED,
        findings=[brute, spike],
        incidents=[incident],
        input=InputStats(
            sources=["/var/log/mail.log"],
            bytes_read=250_000,
            lines_read=1500,
            lines_parsed=1490,
            lines_unparsed=10,
            lines_bad_timestamp=2,
            unparsed_samples=["Dec 03 16:17:40 mail postfix/anvil[31]: something new"],
            by_mta={"postfix": 1490, "exim": 0},
            first_time=ts("2026-12-03 16:17:40"),
            last_time=ts("2026-12-03 16:19:05"),
        ),
        traffic=TrafficStats(
            messages=200,
            recipients=200,
            external_recipients=200,
            delivered=198,
            deferred=2,
            auth_failures=312,
            auth_successes=200,
            local_domains=["lab.test"],
            local_domains_inferred=True,
            top={
                "sasl_users": [("alice@lab.test", 200)],
                "client_ips": [("127.0.0.66", 512)],
                "recipient_domains": [("mailbox36.example", 9), ("mailbox1.example", 7)],
            },
        ),
    )


def clean_result() -> AnalysisResult:
    return AnalysisResult(
        verdict=Verdict.CLEAN,
        findings=[],
        incidents=[],
        input=InputStats(
            sources=["tests/data/lab/01_startup.log"],
            lines_read=1000,
            lines_parsed=1000,
            first_time=ts("2026-12-03 15:00:00"),
            last_time=ts("2026-12-03 17:30:00"),
        ),
        traffic=TrafficStats(messages=12, recipients=12, delivered=12),
    )


ESC_SENDER = "\x1b[31mevil\x1b[0m@example.com"
MARKUP_HELO = "[bold]x[/bold] [link=http://a]y[/link]"
OSC_TITLE = "\x1b]0;pwned\x07admin"
HUGE = "A" * 10_000


def hostile() -> AnalysisResult:
    finding = Finding(
        indicator="unknown-sender-domain",
        severity=Severity.MEDIUM,
        subject=Subject("sender", ESC_SENDER),
        title=f"sender {ESC_SENDER} via helo {MARKUP_HELO}",
        first_seen=ts("2026-12-03 16:00:00"),
        last_seen=ts("2026-12-03 16:05:00"),
        count=3,
        evidence=[
            f"Dec 03 16:00:00 mail postfix/smtpd[1]: NOQUEUE: helo=<{MARKUP_HELO}>",
            "line one\nline two\r\x00\x9b2J\u202eevil\udcff",
            HUGE,
            OSC_TITLE,
        ],
        mitigations=["no-such-fix", "check-blocklists"],
        details={"helo": MARKUP_HELO, "names": [ESC_SENDER, HUGE], "big": HUGE},
    )
    return AnalysisResult(
        verdict=Verdict.SUSPICIOUS,
        findings=[finding],
        incidents=[],
        input=InputStats(
            sources=[f"/tmp/{OSC_TITLE}"],
            lines_read=4,
            lines_parsed=4,
            unparsed_samples=[ESC_SENDER, HUGE],
        ),
        traffic=TrafficStats(
            top={
                "senders": [(ESC_SENDER, 3), (MARKUP_HELO, 2), (HUGE, 1)],
                "helo_names": [(MARKUP_HELO, 1)],
            }
        ),
    )


def render(result: AnalysisResult, *, width: int = 100, verbose: bool = False, **kw: object) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, **kw)  # type: ignore[arg-type]
    terminal.render(result, console, verbose=verbose)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def lines_of(out: str) -> list[str]:
    return [line.rstrip() for line in out.splitlines()]


# --- sanitize ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("alice@lab.test", 100, "alice@lab.test"),
        ("", 10, ""),
        ("\x1b[31mred\x1b[0m", 100, "\\x1b[31mred\\x1b[0m"),
        ("\x1b[1;38;5;196mbold\x1b[m", 100, "\\x1b[1;38;5;196mbold\\x1b[m"),
        ("\x1b]0;title\x07after", 100, "\\x1b]0;title\\x07after"),
        (
            "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\",
            100,
            "\\x1b]8;;http://x\\x1b\\link\\x1b]8;;\\x1b\\",
        ),
        ("\x1bPq#0;2;0;0;0\x1b\\x", 100, "\\x1bPq#0;2;0;0;0\\x1b\\x"),
        ("a\x1bcb", 100, "a\\x1bcb"),
        ("\x9b2Jcleared", 100, "\\x9b2Jcleared"),
        ("lone \x1b", 100, "lone \\x1b"),
        ("a\nb\rc\td\x00e\x7f", 100, "a\\x0ab\\x0dc\\x09d\\x00e\\x7f"),
        ("c1 \x85 \x90", 100, "c1 \\x85 \\x90"),
        ("bidi \u202eevil\u2066", 100, "bidi \\u202eevil\\u2066"),
        ("byte \udcff\udc80", 100, "byte \\xff\\x80"),
        ("[bold]x[/bold]", 100, "[bold]x[/bold]"),
        ("héllo wörld ✓", 100, "héllo wörld ✓"),
        ("abcdefghij", 10, "abcdefghij"),
        ("abcdefghijk", 10, "abcdefghi…"),
        ("\x00\x00\x00", 6, "\\x00\\…"),
        ("abc", 0, ""),
    ],
)
def test_clean(text: str, limit: int, expected: str) -> None:
    assert clean(text, limit) == expected


def test_clean_bounds_huge_text() -> None:
    assert clean("B" * 10_000_000, 50) == "B" * 49 + "…"
    # Escape sequences are shown escaped, never as the byte, and cut like the rest.
    assert clean("\x1b[31m" * 100_000, 50) == "\\x1b[31m" * 6 + "\\…"


def test_clean_returns_the_same_object_when_nothing_to_do() -> None:
    text = "Dec 03 16:17:46 mail postfix/smtpd[28003]: connect from unknown[127.0.0.66]"
    assert clean(text, 500) is text


# --- formatting helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (ts("2026-12-03 16:18:19"), "2026-12-03 16:18:19Z"),
        (ts("2026-12-03 16:18:19") + 0.75, "2026-12-03 16:18:19Z"),
        (0.0, "1970-01-01 00:00:00Z"),
        (None, "-"),
    ],
)
def test_fmt_time(t: float | None, expected: str) -> None:
    assert terminal.fmt_time(t) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "0s"), (59.9, "59s"), (74, "1m 14s"), (3600, "1h 0m"), (6060, "1h 41m"), (90000, "1d 1h")],
)
def test_fmt_duration(seconds: float, expected: str) -> None:
    assert terminal.fmt_duration(seconds) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "yes"),
        (12345, "12,345"),
        (780.5, "780.5"),
        (2.0, "2"),
        (["a", "b"], "a, b"),
        (list(range(8)), "0, 1, 2, 3, 4 (+3 more)"),
        ({"203.0.113.9", "198.51.100.7"}, "198.51.100.7, 203.0.113.9"),
        ({"sent": 3, "deferred": 1}, "sent=3, deferred=1"),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        (None, "None"),
    ],
)
def test_fmt_value(value: object, expected: str) -> None:
    assert terminal.fmt_value(value) == expected


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        # What the detectors write: ISO strings (iso_time) under the time keys.
        ("start", "2026-12-03T16:18:19Z", "2026-12-03 16:18:19Z"),
        ("login_time", "2026-12-03T16:18:19.250Z", "2026-12-03 16:18:19Z"),
        ("first_seen", 1_796_314_699.5, "2026-12-03 16:18:19Z"),
        ("last_seen", "2026-12-03T17:18:19+01:00", "2026-12-03 16:18:19Z"),
        ("peak_time", 1_796_314_699.0, "2026-12-03 16:18:19Z"),
        # Counts are counts, whatever the key looks like.
        ("deferred_at_end", 100, "100"),
        ("deferred_at_end", 100.0, "100"),
        ("history_windows", 1, "1"),
        ("history_windows", 3600, "3,600"),
        ("recovered_at", 1_796_314_699.0, "1,796,314,699"),
        ("window_end", 60, "60"),
        ("since", 100, "100"),
        ("start", 1_796_314_699, "1,796,314,699"),
        ("start", True, "yes"),
        ("window_seconds", 3600, "3,600"),
        # A time key whose value is no time is shown as it is.
        ("login_time", "yesterday", "yesterday"),
        ("login_time", "2026-12-03T16:18:19", "2026-12-03T16:18:19"),
        ("login_time", None, "None"),
        ("how", "2026-12-03T16:18:19Z", "2026-12-03T16:18:19Z"),
        (
            "spikes",
            [
                {"start": "2026-12-03T16:18:19Z", "messages": 201},
                {"start": "2026-12-03T17:18:19Z", "messages": 5},
            ],
            "start=2026-12-03 16:18:19Z, messages=201; start=2026-12-03 17:18:19Z, messages=5",
        ),
        (
            "sender_domains",
            [{"value": "mailbox12.example", "count": 3}, {"value": "a.example", "count": 1}],
            "mailbox12.example (3); a.example (1)",
        ),
    ],
)
def test_fmt_value_by_key(key: str, value: object, expected: str) -> None:
    assert terminal.fmt_value(value, key) == expected


# --- the report -------------------------------------------------------------------------------


def test_compromised_report_sections_in_order() -> None:
    out = render(compromised())
    order = [
        "ABUSED",
        "Account alice@lab.test was broken into and sends spam",
        "Period",
        "Incidents (1)",
        "I1",
        "What to do",
        "Top SASL users",
        "Traffic",
    ]
    positions = [out.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "Other findings" not in out


def test_compromised_report_exact_lines() -> None:
    lines = lines_of(render(compromised()))
    expected = [
        "│  ABUSED   exit 2" + " " * 81 + "│",
        "│ Account alice@lab.test was broken into and sends spam" + " " * 44 + "│",
        "│ 1 incident, 2 findings (1 critical, 1 high)" + " " * 54 + "│",
        "Period   2026-12-03 16:17:40Z to 2026-12-03 16:19:05Z (1m 25s)",
        "Sources  /var/log/mail.log",
        "Lines    1,500 read, 1,490 parsed, 0 empty, 10 not understood, 2 bad timestamps",
        "By MTA   postfix 1,490",
        "10 lines not understood: shown at the end",
        "2 lines with an unreadable timestamp: given the previous line's time",
        "I1  CRITICAL  Account alice@lab.test was broken into and sends spam",
        "    subjects: sasl_user:alice@lab.test, ip:127.0.0.66",
        "    2026-12-03 16:17:46Z to 2026-12-03 16:19:00Z (1m 14s)",
        "    2026-12-03 16:17:46Z  first failed login from 127.0.0.66",
        "    2026-12-03 16:18:19Z  127.0.0.66 logged in as alice@lab.test",
        "    2026-12-03 16:19:00Z  200 messages sent to 57 domains",
        "   CRITICAL  outbound-spike  sasl_user:alice@lab.test  count 200",
        "      alice@lab.test sent 200 messages to 57 domains in 41 seconds",
        "      2026-12-03 16:18:19Z to 2026-12-03 16:19:00Z (41s)",
        "      messages: 200",
        "      recipient_domains: 57",
        "   HIGH  auth-bruteforce  ip:127.0.0.66  count 312",
        "      312 failed SASL logins from 127.0.0.66 for 2 accounts",
        "      related: sasl_user:alice@lab.test",
        "      failures: 312",
        "      accounts: alice@lab.test, info@lab.test",
        "      per_minute: 780.5",
        "      (+2 more evidence lines: run with --verbose)",
        "Top SASL users   count",
        "alice@lab.test     200",
        "127.0.0.66         512",
        "mailbox36.example           9",
        "messages queued               200",
        "delivered                     198",
        "deferred attempts               2",
        "SASL login failures           312",
        "authenticated submissions     200",
    ]
    for line in expected:
        assert line in lines, line


def test_evidence_first_three_then_all_with_verbose() -> None:
    short = render(compromised(), width=200)
    assert "      | " + BRUTE_EVIDENCE[2] in lines_of(short)
    assert BRUTE_EVIDENCE[3] not in short
    assert "(+2 more evidence lines: run with --verbose)" in short
    full = render(compromised(), width=200, verbose=True)
    for line in BRUTE_EVIDENCE + SPIKE_EVIDENCE:
        assert "      | " + line in lines_of(full)
    assert "more evidence lines" not in full
    # Verbose also shows what was not understood.
    assert "Dec 03 16:17:40 mail postfix/anvil[31]: something new" in full
    assert "something new" not in short


def test_mitigations_once_in_order_of_first_use() -> None:
    out = render(compromised())
    assert "What to do for I1" in out
    assert "What to do for the other findings" not in out
    ids = re.findall(r"^\d+\. .*  \[([a-z0-9-]+)\]$", out, flags=re.M)
    # The incident lists the spike first, then the brute force.
    assert ids == [
        "reset-password",
        "hold-queued-mail",
        "rate-limit-outbound",
        "limit-auth-attempts",
        "ban-ip",
    ]
    assert "4. Slow down and ban password guessing  [limit-auth-attempts]" in lines_of(out)


def _filled_lines(result: AnalysisResult) -> set[str]:
    """Every step line the report may print: the templates and each incident's filled steps."""
    steps = [step for entry in CATALOGUE.values() for step in entry.postfix + entry.exim]
    for incident in result.incidents:
        values = mitigations.fill_for(incident.findings).values
        steps += [mitigations.fill(step, values) for step in list(steps)]
    return {"     " + line for step in steps for line in step.split("\n")}


def test_commands_printed_whole_even_at_80_columns() -> None:
    result = compromised()
    lines = lines_of(render(result, width=80))
    (incident,) = result.incidents
    for action in mitigations.actions(incident.findings):
        if action.mitigation.id in ("rate-limit-outbound", "hold-queued-mail"):
            for step in action.postfix:  # a Postfix log: only the Postfix commands
                for line in step.split("\n"):
                    assert "     " + line in lines, line
    long_lines = [
        "     postconf -e 'anvil_rate_time_unit = 3600s' 'smtpd_client_message_rate_limit = 100' "
        "'smtpd_client_recipient_rate_limit = 300'",
        "     sed -nE 's/.* ([0-9A-Za-z]+): client=.*sasl_username=alice@lab.test(,.*)?$/\\1/p' "
        "/var/log/mail.log | sort -u | postsuper -h -",
    ]
    for line in long_lines:
        assert line in lines, line


def test_width_80_only_commands_overflow() -> None:
    result = compromised()
    lines = lines_of(render(result, width=80))
    steps = _filled_lines(result)
    too_wide = [line for line in lines if len(line) > 80]
    assert too_wide
    assert all(line in steps for line in too_wide), [x for x in too_wide if x not in steps]


def test_clean_report() -> None:
    out = render(clean_result())
    lines = lines_of(out)
    assert "│  CLEAN   exit 0" + " " * 82 + "│" in lines
    assert "│ No sign of relay abuse in 1,000 lines." + " " * 59 + "│" in lines
    assert "Period   2026-12-03 15:00:00Z to 2026-12-03 17:30:00Z (2h 30m)" in lines
    assert "Lines    1,000 read, 1,000 parsed, 0 empty, 0 not understood" in lines
    for absent in (
        "Incidents",
        "Other findings",
        "What to do",
        "Top ",
        "--show-unparsed",
        "timestamp",
        "error",
        "UNKNOWN",
    ):
        assert absent not in out
    assert "messages queued                12" in lines


def test_no_colour_codes_when_not_a_terminal() -> None:
    console = Console(file=io.StringIO(), width=100)
    terminal.render(compromised(), console)
    assert "\x1b" not in console.file.getvalue()  # type: ignore[attr-defined]


def test_hostile_strings_cannot_reach_the_terminal() -> None:
    for verbose in (False, True):
        out = render(hostile(), verbose=verbose)
        assert "\x1b" not in out
        assert "\x9b" not in out
        assert "\x07" not in out
        assert "\x00" not in out
        assert "\r" not in out
        assert "\u202e" not in out
        assert "\udcff" not in out
        assert "\\x1b]0;pwned\\x07admin" in out  # shown for what it is, harmless
        # The 10 KB strings are cut, every time they appear.
        assert "A" * 4001 not in out
        assert len(out) < 40_000


def test_hostile_strings_with_colour_enabled_only_carry_our_sgr_codes() -> None:
    console = Console(file=io.StringIO(), width=100, force_terminal=True, color_system="truecolor")
    terminal.render(hostile(), console, verbose=True)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[" in out
    assert re.sub(r"\x1b\[[0-9;]*m", "", out).count("\x1b") == 0
    assert "\x1b]" not in out
    assert "\x1b[31mevil" not in out


def test_markup_and_newlines_print_literally() -> None:
    out = render(hostile(), width=200)
    lines = lines_of(out)
    assert "[bold]x[/bold] [link=http://a]y[/link]" in out
    assert (
        "   MEDIUM  unknown-sender-domain  sender:\\x1b[31mevil\\x1b[0m@example.com  count 3"
        in lines
    )
    assert (
        "      sender \\x1b[31mevil\\x1b[0m@example.com via helo [bold]x[/bold] [link=http://a]y[/link]"
        in lines
    )
    assert "      | line one\\x0aline two\\x0d\\x00\\x9b2J\\u202eevil\\xff" in lines
    assert "      helo: [bold]x[/bold] [link=http://a]y[/link]" in lines
    assert any(re.fullmatch(r"\[bold\]x\[/bold\] \[link=http://a\]y\[/link\] +2", x) for x in lines)
    assert "Sources  /tmp/\\x1b]0;pwned\\x07admin" in lines
    # Unknown mitigation ids are shown, not dropped, and do not break the catalogue part.
    assert "1. no-such-fix  (no catalogue entry)" in lines
    assert "2. Check whether the server's IP is block-listed  [check-blocklists]" in lines


def test_unknown_top_list_gets_a_title() -> None:
    lines = lines_of(render(hostile(), width=200))
    assert "Top helo names                           count" in lines
    assert "[bold]x[/bold] [link=http://a]y[/link]       1" in lines


def test_findings_outside_incidents_come_after_them() -> None:
    result = compromised()
    probe = Finding(
        indicator="relay-probing",
        severity=Severity.LOW,
        subject=Subject("ip", "203.0.113.9"),
        title="203.0.113.9 tried to relay 14 times",
        count=14,
        mitigations=["block-relay-probers", "ban-ip"],
    )
    result.findings.append(probe)
    out = render(result, width=200)
    lines = lines_of(out)
    order = ["Incidents (1)", "Other findings (1)", "What to do for I1", "What to do for the other"]
    positions = [out.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "   LOW  relay-probing  ip:203.0.113.9  count 14" in lines
    assert "      time unknown" in lines
    other = out[out.index("What to do for the other findings") :]
    ids = re.findall(r"^\d+\. .*  \[([a-z0-9-]+)\]$", other, flags=re.M)
    assert ids == ["block-relay-probers", "ban-ip"]
    # Outside an incident nothing is filled in: the templates are printed.
    assert "     iptables -I INPUT -s <ip> -j DROP" in other.splitlines()
    assert "     iptables -I INPUT -s 127.0.0.66 -j DROP" in lines
    # ban-ip was explained for I1 already.
    assert other.count(CATALOGUE["ban-ip"].why[:40]) == 0
    assert other.count(CATALOGUE["block-relay-probers"].why[:40]) == 1


# --- exit code, errors and the Lines row ------------------------------------------------------

READ_ERROR = "cannot read /var/log/mail.log.2.gz: not a gzip file"


@pytest.mark.parametrize("verdict", [Verdict.CLEAN, Verdict.SUSPICIOUS, Verdict.ABUSED])
def test_errors_make_the_banner_unknown_exit_3(verdict: Verdict) -> None:
    result = compromised()
    result.verdict = verdict
    result.errors = [READ_ERROR]
    assert int(result.exit_code) == 3
    lines = lines_of(render(result, width=120))
    head = f"│  UNKNOWN   exit 3 — could not read all input; the part read looks {verdict.upper()}"
    assert [line for line in lines if line.startswith("│  ")] == [
        head + " " * (119 - len(head)) + "│"
    ]
    assert "│ error: " + READ_ERROR + " " * (110 - len(READ_ERROR)) + "│" in lines
    assert not any(f"exit {code}" in line for line in lines for code in (0, 1, 2))


def test_errors_are_sanitised_and_bounded() -> None:
    result = clean_result()
    result.errors = [f"cannot read /tmp/{OSC_TITLE}\x1b[2J: no such file"] + [
        f"cannot read /var/log/mail.log.{n}: permission denied" for n in range(1, 8)
    ]
    out = render(result, width=120)
    lines = lines_of(out)
    assert "\x1b" not in out and "\x07" not in out
    errors = [line for line in lines if line.startswith("│ error: ")]
    assert [e.rstrip("│ ") for e in errors] == [
        "│ error: cannot read /tmp/\\x1b]0;pwned\\x07admin\\x1b[2J: no such file",
        *[f"│ error: cannot read /var/log/mail.log.{n}: permission denied" for n in range(1, 5)],
    ]
    assert any("(+3 more errors: run with --verbose)" in line for line in lines)
    verbose = lines_of(render(result, width=120, verbose=True))
    assert len([line for line in verbose if line.startswith("│ error: ")]) == 8


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        (
            InputStats(lines_read=7, lines_parsed=6, lines_empty=1, sources=["mail.log"]),
            "Lines    7 read, 6 parsed, 1 empty, 0 not understood",
        ),
        (
            InputStats(
                lines_read=9, lines_parsed=6, lines_empty=1, lines_unparsed=2, sources=["mail.log"]
            ),
            "Lines    9 read, 6 parsed, 1 empty, 2 not understood",
        ),
        (
            InputStats(lines_read=7, lines_parsed=7, lines_bad_timestamp=1, sources=["mail.log"]),
            "Lines    7 read, 7 parsed, 0 empty, 0 not understood, 1 bad timestamp",
        ),
        (
            InputStats(lines_read=1200, lines_parsed=1200, lines_truncated=2, sources=["mail.log"]),
            "Lines    1,200 read, 1,200 parsed, 0 empty, 0 not understood, 2 truncated at 64 KiB",
        ),
    ],
)
def test_lines_row(stats: InputStats, expected: str) -> None:
    result = clean_result()
    result.input = stats
    assert expected in lines_of(render(result, width=120))


# --- what to do, filled in per incident -------------------------------------------------------

HOSTILE_LOGIN = "a';rm -rf /'@x"


def _incident(iid: str, *findings: Finding) -> Incident:
    subjects: list[Subject] = []
    for f in findings:
        for s in (f.subject, *f.related):
            if s not in subjects:
                subjects.append(s)
    return Incident(
        id=iid,
        title=findings[0].title,
        severity=max(f.severity for f in findings),
        subjects=subjects,
        findings=list(findings),
        timeline=[],
    )


def _result(*incidents: Incident) -> AnalysisResult:
    return AnalysisResult(
        verdict=Verdict.ABUSED,
        findings=[f for inc in incidents for f in inc.findings],
        incidents=list(incidents),
        input=InputStats(lines_read=10, lines_parsed=10),
        traffic=TrafficStats(),
    )


def _takeover(login: str, login_ip: str) -> Finding:
    return Finding(
        indicator="compromised-account",
        severity=Severity.CRITICAL,
        subject=Subject("sasl_user", login),
        title="account taken over",
        mitigations=["reset-password", "ban-ip"],
        details={"login_ip": login_ip, "login_time": "2026-12-03T16:18:19Z"},
        related=[Subject("ip", login_ip)],
    )


def _probe(ip: str) -> Finding:
    return Finding(
        indicator="relay-probing",
        severity=Severity.LOW,
        subject=Subject("ip", ip),
        title=f"{ip} tried to relay",
        mitigations=["block-relay-probers", "ban-ip"],
    )


def _commands(out: str) -> list[str]:
    return [line for line in lines_of(out) if line.startswith("     ")]


def test_commands_filled_per_incident_and_explained_once() -> None:
    result = _result(
        _incident("I1", _takeover("alice@lab.test", "127.0.0.66")),
        _incident("I2", _probe("203.0.113.9")),
    )
    out = render(result, width=200)
    lines = lines_of(out)
    i1, i2 = out.index("What to do for I1"), out.index("What to do for I2")
    first, second = out[i1:i2], out[i2:]
    assert (
        "filled in: <login> = alice@lab.test, <localpart> = alice, <domain> = lab.test, "
        "<ip> = 127.0.0.66" in lines
    )
    assert "filled in: <ip> = 203.0.113.9" in lines
    assert "     saslpasswd2 -c -u lab.test alice" in first.splitlines()
    assert "     doveadm kick alice@lab.test" in first.splitlines()
    assert "     iptables -I INPUT -s 127.0.0.66 -j DROP" in first.splitlines()
    assert "     iptables -I INPUT -s 203.0.113.9 -j DROP" in second.splitlines()
    assert "127.0.0.66" not in second
    # Each mitigation once per incident, numbered per incident; its "why" only the first time.
    assert re.findall(r"^\d+\. .*  \[([a-z0-9-]+)\]$", first, flags=re.M) == [
        "reset-password",
        "ban-ip",
    ]
    assert re.findall(r"^\d+\. .*  \[([a-z0-9-]+)\]$", second, flags=re.M) == [
        "block-relay-probers",
        "ban-ip",
    ]
    assert out.count(CATALOGUE["ban-ip"].why[:40]) == 1
    assert "<ip>" not in "\n".join(_commands(out))


def test_hostile_login_is_never_put_into_a_command() -> None:
    result = _result(_incident("I1", _takeover(HOSTILE_LOGIN, "127.0.0.66")))
    out = render(result, width=200)
    commands = _commands(out)
    assert not any("rm -rf" in line or "a';" in line for line in commands)
    assert "     doveadm kick <login>" in commands
    assert "     saslpasswd2 -c -u <domain> <localpart>" in commands
    # The IP is plain, so it is filled in; the login is named as left out.
    assert "     iptables -I INPUT -s 127.0.0.66 -j DROP" in commands
    assert (
        "filled in: <ip> = 127.0.0.66; <login> left as is: the value in the log is not a plain one"
        in lines_of(out)
    )


def test_login_with_escape_sequences_is_left_out_and_shown_clean() -> None:
    result = _result(_incident("I1", _takeover(ESC_SENDER, "1.2.3.4;reboot")))
    out = render(result, width=200)
    assert "\x1b" not in out
    assert "     doveadm kick <login>" in _commands(out)
    assert "     iptables -I INPUT -s <ip> -j DROP" in _commands(out)
    assert "<login> left as is" in out and "<ip> left as is" in out


def test_several_ips_get_one_command_each() -> None:
    brute = [
        Finding(
            indicator="auth-bruteforce",
            severity=Severity.MEDIUM,
            subject=Subject("ip", ip),
            title=f"failed logins from {ip}",
            mitigations=["ban-ip"],
            related=[Subject("sasl_user", "alice@lab.test")],
        )
        for ip in ("127.0.0.66", "127.0.0.67")
    ]
    result = _result(_incident("I1", _takeover("alice@lab.test", "127.0.0.66"), *brute))
    lines = lines_of(render(result, width=200))
    assert (
        "filled in: <login> = alice@lab.test, <localpart> = alice, <domain> = lab.test; "
        "<ip>: one command for each of 127.0.0.66, 127.0.0.67" in lines
    )
    assert "     iptables -I INPUT -s <ip> -j DROP" not in lines
    i = lines.index("     iptables -I INPUT -s 127.0.0.66 -j DROP")
    assert lines[i + 1] == "     iptables -I INPUT -s 127.0.0.67 -j DROP"


def test_what_to_do_for_the_first_incidents_then_a_hint() -> None:
    incidents = [_incident(f"I{n}", _probe(f"203.0.113.{n}")) for n in range(1, 8)]
    out = render(_result(*incidents), width=200)
    assert re.findall(r"What to do for (I\d+) ─", out) == ["I1", "I2", "I3", "I4", "I5"]
    assert "What to do for I6, I7: run with --verbose" in lines_of(out)
    verbose = render(_result(*incidents), width=200, verbose=True)
    assert re.findall(r"What to do for (I\d+) ─", verbose) == [f"I{n}" for n in range(1, 8)]
    assert "     iptables -I INPUT -s 203.0.113.7 -j DROP" in lines_of(verbose)


def test_nothing_understood_is_not_called_clean() -> None:
    result = clean_result()
    result.input.lines_parsed, result.input.lines_unparsed = 0, 1000
    result.errors = ["none of the 1,000 lines read was understood as a mail log"]
    lines = lines_of(render(result, width=120))
    head = "│  UNKNOWN   exit 3 — no mail log lines to judge"
    assert head + " " * (119 - len(head)) + "│" in lines
    assert any("No line of the input was understood as a mail log." in line for line in lines)
    assert not any("CLEAN" in line or "No sign" in line for line in lines)


def test_commands_follow_the_mta_of_the_log() -> None:
    result = compromised()
    assert {k for k, n in result.input.by_mta.items() if n} == {"postfix"}
    assert "   Exim:" not in lines_of(render(result, width=100))
    result.input.by_mta = {"exim": 10}
    lines = lines_of(render(result, width=100))
    assert "   Exim:" in lines and "   Postfix:" not in lines
    result.input.by_mta = {"exim": 10, "postfix": 5}
    lines = lines_of(render(result, width=100))
    assert "   Exim:" in lines and "   Postfix:" in lines
