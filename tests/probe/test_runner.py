"""The runner against servers the tests start on 127.0.0.1 / ::1 (tests/probe/hostile.py)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from typing import Any

import pytest

from relayguard.probe import ProbeOptions, ProbeResult, TargetError, probe
from relayguard.probe.classify import Outcome
from relayguard.probe.result import Phase, Reason, Verdict
from relayguard.probe.runner import resolve
from relayguard.probe.verdict import latest
from tests.probe import hostile
from tests.probe.hostile import Server

TOKEN = "tok123"

# The closed server (hostile.Server) answers every test like this: its own users are
# validated (550 5.1.1 for forms routed to mx.relay.test), everything else is relay denied.
CLOSED_OUTCOMES = """
C1 recipient-rejected  C2 relay-denied  C3 accepted
R01 relay-denied  R02 recipient-rejected  R03 relay-denied  R04 relay-denied
R05 relay-denied  R06 recipient-rejected  R07 relay-denied  R08 recipient-rejected
R09 relay-denied  R10 relay-denied  R11 relay-denied  R12 relay-denied
R13 recipient-rejected  R14 relay-denied  R15 relay-denied  R16a relay-denied
R16b relay-denied  R17a relay-denied  R17b relay-denied
S01 relay-denied  S02 relay-denied  S03 relay-denied  S04 relay-denied  S05 relay-denied
S06 relay-denied  H01 relay-denied  H02 relay-denied  H03 relay-denied  H04 relay-denied
"""


def table(text: str) -> dict[str, str]:
    words = text.split()
    return dict(zip(words[::2], words[1::2], strict=True))


def outcomes(result: ProbeResult, phase: Phase = Phase.PLAIN) -> dict[str, str]:
    final = latest(result.services[0].tests)
    return {r.test: r.outcome.value for r in final.values() if r.phase is phase}


def run(server: Server, sleeps: list[float] | None = None, **overrides: Any) -> ProbeResult:
    async def fake_sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)
        await asyncio.sleep(0)

    async def main() -> ProbeResult:
        async with server:
            options: dict[str, Any] = {
                "host": server.host,
                "ports": (server.port,),
                "helo": "probe.example.com",
                "token": TOKEN,
                "connect_timeout": 2.0,
                "command_timeout": 2.0,
                "total_timeout": 30.0,
                "backoff": 0.5,
                "retry_delay": 0.25,
            }
            options.update(overrides)
            return await probe(ProbeOptions(**options), sleep=fake_sleep)

    return asyncio.run(main())


def assert_polite(server: Server, *, data: int = 0) -> None:
    """The safety rules, checked on what the server received."""
    verbs = server.verbs()
    assert verbs.count("DATA") == data
    assert not {"AUTH", "BDAT"} & set(verbs)
    for session in server.sessions:
        said = [c.split(" ", 1)[0].upper() for c in session.commands]
        for i, verb in enumerate(said):
            if verb == "RCPT" and i + 1 < len(said):
                assert said[i + 1] in ("RSET", "DATA"), said  # one transaction, then RSET
        assert said.count("MAIL") <= 16, said  # transactions per connection


# -- verdicts ---------------------------------------------------------------------------------
def test_closed_server() -> None:
    server = hostile.Server()
    result = run(server)
    service = result.services[0]
    assert (result.verdict, result.reason, result.exit_code) == (Verdict.CLOSED, None, 1)
    assert outcomes(result) == table(CLOSED_OUTCOMES)
    assert service.why == "all 29 relay tests were refused (plain)"
    assert service.host == "mx.relay.test"
    assert [f.indicator for f in result.findings] == ["smtp-no-starttls"]
    assert service.connections == len(server.sessions)
    assert all(s.commands[-1] == "QUIT" for s in server.sessions)
    assert_polite(server)
    r01 = latest(service.tests)["plain/R01"]
    assert (r01.sender, r01.recipient, r01.helo) == (
        "probe@example.org",
        "relaytest@example.net",
        "probe.example.com",
    )
    assert r01.dialogue == (
        "C: MAIL FROM:<probe@example.org>",
        "S: 250 2.1.0 Ok",
        "C: RCPT TO:<relaytest@example.net>",
        "S: 554 5.7.1 <relaytest@example.net>: Relay access denied",
        "C: RSET",
        "S: 250 2.0.0 Ok",
    )
    c1 = latest(service.tests)["plain/C1"]
    assert c1.recipient == f"{TOKEN}@relay.test"


def test_open_server_from_an_outside_loopback_address() -> None:
    server = hostile.OpenServer()
    result = run(server, source_address="127.0.0.2")
    service = result.services[0]
    assert (result.verdict, result.reason, result.exit_code) == (Verdict.OPEN, None, 2)
    assert service.source == "127.0.0.2"
    assert service.comparison is not None
    assert (service.comparison.source, service.comparison.outcome) == (
        "127.0.0.253",
        Outcome.ACCEPTED,
    )
    assert {s.peer for s in server.sessions} == {"127.0.0.2", "127.0.0.253"}
    assert service.counted[:3] == ("plain/R01", "plain/R03", "plain/R04")
    relay = [f for f in result.findings if f.indicator == "open-relay"]
    assert len(relay) == 1
    assert relay[0].details["tests"] == list(service.counted)
    assert relay[0].mitigations == [
        "close-open-relay",
        "narrow-mynetworks",
        "remove-access-ok",
        "test-relay",
    ]
    assert relay[0].evidence[:2] == [
        "C: MAIL FROM:<probe@example.org>",
        "S: 250 2.1.0 Ok",
    ]
    assert_polite(server)


def test_open_server_probed_from_itself_is_trusted_source() -> None:
    server = hostile.OpenServer()
    result = run(server)  # the kernel picks 127.0.0.1: the target's own address
    service = result.services[0]
    assert (result.verdict, result.reason, result.exit_code) == (
        Verdict.INCONCLUSIVE,
        Reason.TRUSTED_SOURCE,
        3,
    )
    assert service.comparison is None
    assert {s.peer for s in server.sessions} == {"127.0.0.1"}
    assert "relay-trusted-source" in [f.indicator for f in result.findings]
    assert "open-relay" not in [f.indicator for f in result.findings]


@pytest.mark.parametrize(
    ("source", "verdict", "reason", "comparison"),
    [
        ("127.0.0.77", Verdict.INCONCLUSIVE, Reason.TRUSTED_SOURCE, Outcome.RELAY_DENIED),
        ("127.0.0.2", Verdict.CLOSED, None, None),
    ],
)
def test_trusting_server(
    source: str, verdict: Verdict, reason: Reason | None, comparison: Outcome | None
) -> None:
    server = hostile.TrustingServer()
    result = run(server, source_address=source)
    service = result.services[0]
    assert (result.verdict, result.reason) == (verdict, reason)
    got = service.comparison.outcome if service.comparison else None
    assert got == comparison


def test_prove_to_sends_exactly_one_message() -> None:
    server = hostile.OpenServer()
    result = run(server, source_address="127.0.0.2", prove_to="canary@canary.example")
    service = result.services[0]
    assert (result.verdict, result.exit_code) == (Verdict.PROVEN, 2)
    assert service.proof is not None
    assert service.proof.accepted
    assert service.proof.message_id == f"<{TOKEN}.proof@relayguard.invalid>"
    assert_polite(server, data=1)
    [session] = [s for s in server.sessions if s.message]
    assert "RCPT TO:<canary@canary.example>" in session.commands
    assert b"Subject: relayguard open-relay proof: 127.0.0.1:" in session.message
    assert b"\r\nMessage-ID: <tok123.proof@relayguard.invalid>\r\n" in session.message
    relay = next(f for f in result.findings if f.indicator == "open-relay")
    assert relay.details["proven"] is True
    assert relay.details["message_id"] == "<tok123.proof@relayguard.invalid>"


@pytest.mark.parametrize("server_class", [hostile.Server, hostile.Catcher])
def test_prove_to_sends_nothing_unless_open(server_class: type[Server]) -> None:
    server = server_class()
    result = run(server, source_address="127.0.0.2", prove_to="canary@canary.example")
    assert result.verdict in (Verdict.CLOSED, Verdict.INCONCLUSIVE)
    assert result.services[0].proof is None
    assert_polite(server, data=0)
    assert not any("canary" in c for c in server.all_commands())


def test_accept_all_catcher() -> None:
    server = hostile.Catcher()
    result = run(server, source_address="127.0.0.2")
    assert (result.verdict, result.reason, result.exit_code) == (
        Verdict.INCONCLUSIVE,
        Reason.ACCEPT_ALL,
        3,
    )
    assert set(outcomes(result).values()) == {"accepted"}
    assert result.services[0].comparison is None  # nothing to compare: acceptance means nothing
    assert [f.indicator for f in result.findings] == ["smtp-no-starttls", "smtp-accept-all"]
    assert_polite(server)


# -- hostile behaviours -----------------------------------------------------------------------
def test_greylisting_is_inconclusive_after_one_retry() -> None:
    server = hostile.Greylister()
    sleeps: list[float] = []
    result = run(server, sleeps)
    tests = result.services[0].tests
    assert (result.verdict, result.reason, result.exit_code) == (
        Verdict.INCONCLUSIVE,
        Reason.GREYLISTED,
        3,
    )
    assert sleeps == [0.25]
    assert [t.attempt for t in tests].count(2) == 32
    assert set(outcomes(result).values()) == {"temporary"}
    assert result.services[0].why == "29 of 29 relay tests got no final answer (temporary)"


def test_postscreen_first_session_450_then_closed() -> None:
    server = hostile.Postscreen()
    sleeps: list[float] = []
    result = run(server, sleeps)
    service = result.services[0]
    assert (result.verdict, result.reason) == (Verdict.CLOSED, None)
    assert outcomes(result) == table(CLOSED_OUTCOMES)
    retried = [t.test for t in service.tests if t.attempt == 2]
    assert retried == ["C1", "C2", "C3", "R01", "R02", "R03", "R04", "R05"]
    first = [t for t in service.tests if t.attempt == 1][:8]
    assert {(t.code, t.enhanced) for t in first} == {(450, "4.3.2")}
    assert service.banner == (f"220-{hostile.HOST} ESMTP", f"220 {hostile.HOST} ESMTP")
    assert sleeps == [0.25]


def test_postscreen_forever_is_greylisted() -> None:
    result = run(hostile.AlwaysPostscreen())
    assert (result.verdict, result.reason) == (Verdict.INCONCLUSIVE, Reason.GREYLISTED)


def test_tarpit_banner() -> None:
    server = hostile.Tarpit()
    started = time.monotonic()
    result = run(server, command_timeout=0.3)
    assert time.monotonic() - started < 3
    service = result.services[0]
    assert (result.verdict, result.reason, result.exit_code) == (
        Verdict.INCONCLUSIVE,
        Reason.TARPIT,
        3,
    )
    assert service.errors[0] == "no reply within 0.3 s (timed out)"
    assert [f.indicator for f in result.findings] == ["smtp-tarpit"]


def test_total_budget_runs_out() -> None:
    server = hostile.SlowServer()
    result = run(server, total_timeout=0.6)
    service = result.services[0]
    assert service.out_of_time
    assert (result.verdict, result.reason) == (Verdict.INCONCLUSIVE, Reason.TARPIT)
    assert service.errors[-1] == "the probe's total time budget ran out"
    assert "not-run" in outcomes(result).values()


def test_replies_split_mid_line_read_like_whole_ones() -> None:
    server = hostile.SplitServer()
    result = run(server)
    assert (result.verdict, result.reason) == (Verdict.CLOSED, None)
    assert outcomes(result) == table(CLOSED_OUTCOMES)
    assert result.services[0].extensions[Phase.PLAIN] == {
        "PIPELINING": "",
        "SIZE": "10240000",
        "8BITMIME": "",
    }


def test_ten_megabyte_banner_is_cut_at_the_line_bound() -> None:
    started = time.monotonic()
    result = run(hostile.HugeBanner())
    assert time.monotonic() - started < 5
    service = result.services[0]
    assert (result.verdict, result.reason, result.exit_code) == (
        Verdict.INCONCLUSIVE,
        Reason.ERROR,
        3,
    )
    assert service.errors == ["reply line longer than 2048 bytes"]
    assert service.why == "reply line longer than 2048 bytes"
    assert {t.outcome for t in service.tests} == {Outcome.NOT_RUN}


def test_421_mid_session_backs_off_and_reconnects_once() -> None:
    server = hostile.Closing421()
    sleeps: list[float] = []
    result = run(server, sleeps)
    service = result.services[0]
    assert (result.verdict, result.reason) == (Verdict.CLOSED, None)
    assert sleeps == [0.5]
    c3 = [t for t in service.tests if t.test == "C3"]
    assert [(t.attempt, t.outcome) for t in c3] == [
        (1, Outcome.THROTTLED),
        (2, Outcome.ACCEPTED),
    ]
    assert server.sessions[0].commands[-1].startswith("RCPT")  # the server hung up there
    assert_polite(server)


def test_421_every_session_stops_throttled() -> None:
    server = hostile.Always421()
    sleeps: list[float] = []
    result = run(server, sleeps)
    assert (result.verdict, result.reason) == (Verdict.INCONCLUSIVE, Reason.THROTTLED)
    assert sleeps == [0.5]
    got = outcomes(result)
    # C3 was the 3rd RCPT of session 1; after the back-off R02 was the 3rd of session 2
    assert (got["C3"], got["R01"], got["R02"]) == ("accepted", "relay-denied", "throttled")
    assert list(got.values()).count("not-run") == 27


def test_connection_reset() -> None:
    server = hostile.Resetter()
    result = run(server)
    service = result.services[0]
    assert (result.verdict, result.reason) == (Verdict.INCONCLUSIVE, Reason.ERROR)
    assert outcomes(result)["C1"] == "connection-lost"
    assert service.errors[:2] == [
        "connection lost: Connection reset by peer",
        "connection lost: Connection reset by peer",
    ]


def test_unsolicited_reply_is_a_protocol_error() -> None:
    result = run(hostile.Chatty())
    service = result.services[0]
    assert (result.verdict, result.reason) == (Verdict.INCONCLUSIVE, Reason.ERROR)
    assert service.errors[0] == "the server sent data nobody asked for"


def test_unreachable_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = asyncio.run(probe(ProbeOptions(host="127.0.0.1", ports=(port,), token=TOKEN)))
    service = result.services[0]
    assert (result.verdict, result.reason, result.exit_code) == (
        Verdict.INCONCLUSIVE,
        Reason.ERROR,
        3,
    )
    assert service.errors == [f"cannot connect to 127.0.0.1 port {port}: Connection refused"]
    assert service.connections == 0


def no_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Replace name resolution: tests send no DNS query; returns the names looked up."""
    asked: list[str] = []

    def fake(host: str, port: object, family: int = 0, type: int = 0, *a: object) -> list[Any]:
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        found = []
        for ip in answers[host]:
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            if family in (0, fam):
                found.append((fam, socket.SOCK_STREAM, 6, "", (ip, 0)))
        return found

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def test_unresolvable_name_contacts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = no_dns(monkeypatch, {})
    result = asyncio.run(probe(ProbeOptions(host="mx.does-not-exist.invalid")))
    assert (result.verdict, result.exit_code, result.services) == (Verdict.INCONCLUSIVE, 3, [])
    assert result.error == (
        "cannot resolve mx.does-not-exist.invalid: [Errno -2] Name or service not known"
    )
    assert asked == ["mx.does-not-exist.invalid"]


# -- weaknesses, TLS, IPv6 --------------------------------------------------------------------
def test_weaknesses_of_a_careless_server() -> None:
    server = hostile.Weak()
    result = run(server)
    found = {f.indicator: f.severity.label for f in result.findings}
    assert found == {
        "smtp-auth-before-tls": "high",
        "smtp-auth-anonymous": "critical",
        "smtp-no-starttls": "medium",
        "smtp-vrfy-enabled": "medium",
        "smtp-expn-enabled": "medium",
        "smtp-xclient-offered": "critical",
        "smtp-xforward-offered": "low",
        "smtp-banner-version": "low",
    }
    assert (result.verdict, result.exit_code) == (Verdict.CLOSED, 1)
    banner = next(f for f in result.findings if f.indicator == "smtp-banner-version")
    assert (banner.details["product"], banner.details["version"]) == ("Exim", "4.96")
    vrfy = result.services[0].vrfy
    assert vrfy is not None
    assert (vrfy.known, vrfy.unknown, vrfy.expn) == (250, 550, 250)
    assert f"VRFY {TOKEN}x" in server.all_commands()


def test_starttls_required_then_closed(server_tls: ssl.SSLContext) -> None:
    server = hostile.TlsOnlyServer()
    server.tls_context = server_tls
    result = run(server)
    service = result.services[0]
    assert (result.verdict, result.reason) == (Verdict.CLOSED, None)
    assert set(outcomes(result, Phase.PLAIN).values()) == {"tls-required"}
    assert outcomes(result, Phase.STARTTLS) == table(CLOSED_OUTCOMES)
    [tls] = service.tls
    assert (tls.phase, tls.version, tls.error) == (Phase.STARTTLS, "TLSv1.3", None)
    assert "STARTTLS" in service.extensions[Phase.PLAIN]
    assert "STARTTLS" not in service.extensions[Phase.STARTTLS]
    assert [f.indicator for f in result.findings] == []
    assert result.exit_code == 0


def test_relay_only_after_starttls(server_tls: ssl.SSLContext) -> None:
    server = hostile.TlsOnlyServer()
    server.tls_context = server_tls
    server.relay_after_tls = True
    result = run(server, source_address="127.0.0.2")
    service = result.services[0]
    assert (result.verdict, result.exit_code) == (Verdict.OPEN, 2)
    assert service.counted[0] == "starttls/R01"
    assert service.comparison is not None
    assert (service.comparison.phase, service.comparison.outcome) == (
        Phase.STARTTLS,
        Outcome.ACCEPTED,
    )


def test_implicit_tls(server_tls: ssl.SSLContext) -> None:
    server = hostile.Server()
    server.tls_context = server_tls
    server.implicit_tls = True

    async def main() -> ProbeResult:
        async with server:
            options = ProbeOptions(
                host="127.0.0.1", ports=(server.port,), implicit_tls_ports=frozenset({server.port}),
                token=TOKEN, command_timeout=2, retry_delay=0.1,
            )  # fmt: skip
            return await probe(options)

    result = asyncio.run(main())
    service = result.services[0]
    assert (result.verdict, result.reason, result.exit_code) == (Verdict.CLOSED, None, 0)
    assert outcomes(result, Phase.TLS) == table(CLOSED_OUTCOMES)
    assert [(t.phase, t.version) for t in service.tls] == [(Phase.TLS, "TLSv1.3")]


def test_implicit_tls_port_without_tls() -> None:
    server = hostile.Server()

    async def main() -> ProbeResult:
        async with server:
            options = ProbeOptions(
                host="127.0.0.1", ports=(server.port,), implicit_tls_ports=frozenset({server.port}),
                token=TOKEN, command_timeout=1, connect_timeout=1,
            )  # fmt: skip
            return await probe(options)

    result = asyncio.run(main())
    service = result.services[0]
    assert result.verdict is Verdict.INCONCLUSIVE
    assert service.tls and service.tls[0].phase is Phase.TLS
    assert service.tls[0].error is not None


def test_ipv6_loopback() -> None:
    server = hostile.Server(host="::1")
    result = run(server)
    service = result.services[0]
    assert (result.verdict, service.name) == (Verdict.CLOSED, f"[::1]:{server.port}")
    r03 = latest(service.tests)["plain/R03"]
    assert r03.recipient == "relaytest%example.net@[IPv6:::1]"


def test_connection_rate_check_is_opt_in() -> None:
    server = hostile.Server()
    result = run(server, check_rate_limit=True, rate_connections=5)
    rate = result.services[0].rate
    assert rate is not None
    assert (rate.attempted, rate.served, rate.refused) == (5, 5, 0)
    assert "smtp-no-connection-limit" in [f.indicator for f in result.findings]
    plain = run(hostile.Server())
    assert plain.services[0].rate is None


@pytest.mark.parametrize(
    ("host", "family", "source", "expected"),
    [
        ("127.0.0.1", None, None, ["127.0.0.1"]),
        ("[::1]", None, None, ["::1"]),
        ("mx.lab.test", None, None, ["127.0.0.1", "::1", "127.0.0.3", "127.0.0.4"]),
        ("mx.lab.test", 4, None, ["127.0.0.1", "127.0.0.3", "127.0.0.4", "127.0.0.5"]),
        ("mx.lab.test", 6, None, ["::1"]),
        ("mx.lab.test", None, "127.0.0.2", ["127.0.0.1", "127.0.0.3", "127.0.0.4", "127.0.0.5"]),
    ],
)
def test_resolve_only_the_named_host(
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    family: int | None,
    source: str | None,
    expected: list[str],
) -> None:
    answers = ["127.0.0.1", "::1", "127.0.0.1", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
    asked = no_dns(monkeypatch, {"mx.lab.test": answers})
    options = ProbeOptions(host=host, family=family, source_address=source)
    assert asyncio.run(resolve(options)) == expected  # each once, at most 4
    assert asked == ([host] if host == "mx.lab.test" else [])


def test_resolve_refuses_a_family_mismatch() -> None:
    with pytest.raises(TargetError, match="does not match the address family"):
        asyncio.run(resolve(ProbeOptions(host="::1", family=4)))


# -- protocol errors end politely -------------------------------------------------------------
@pytest.mark.parametrize(
    ("server", "error", "commands"),
    [
        (hostile.WeirdBanner(), "not an SMTP reply line: 999-weird", ["QUIT"]),
        (hostile.NulReply(), "NUL byte in a reply",
         ["EHLO probe.example.com", "MAIL FROM:<probe@example.org>", "QUIT"]),
        (hostile.LongLine(), "reply line longer than 2048 bytes",
         ["EHLO probe.example.com", "QUIT"]),
    ],
)  # fmt: skip
def test_protocol_error_still_quits(server: Server, error: str, commands: list[str]) -> None:
    result = run(server)
    service = result.services[0]
    assert (result.verdict, result.reason, result.exit_code) == (
        Verdict.INCONCLUSIVE,
        Reason.ERROR,
        3,
    )
    assert service.errors == [error]
    assert service.source == "127.0.0.1"  # the connection was made, from this address
    assert [s.commands for s in server.sessions] == [commands]


def test_timeout_still_quits() -> None:
    server = hostile.Tarpit()
    run(server, command_timeout=0.3)
    assert [s.commands for s in server.sessions] == [["QUIT"]]


# -- a crashing smtpd is not a tarpit -----------------------------------------------------------
@pytest.mark.parametrize(
    ("server", "closed", "why"),
    [
        (hostile.Crashing(), 1,
         "the server closed 1 connection before sending a banner and never greeted: its SMTP "
         "service may be failing (see its logs); nothing was tested"),
        (hostile.ClosesAtOnce(), 2,
         "the server closed 2 connections before sending a banner and never greeted: its SMTP "
         "service may be failing (see its logs); nothing was tested"),
    ],
)  # fmt: skip
def test_connections_closed_before_the_banner_are_an_error(
    server: Server, closed: int, why: str
) -> None:
    result = run(server, command_timeout=0.3)
    service = result.services[0]
    assert (result.verdict, result.reason, result.exit_code) == (
        Verdict.INCONCLUSIVE,
        Reason.ERROR,
        3,
    )
    assert (service.closed_before_banner, service.why) == (closed, why)
    assert "smtp-tarpit" not in [f.indicator for f in result.findings]
    assert service.source == "127.0.0.1"


# -- the comparison from a named address --------------------------------------------------------
@pytest.mark.parametrize(
    ("compare", "verdict", "reason", "exit_code", "chosen"),
    [
        ("127.0.0.2", Verdict.CLOSED, None, 0, True),
        (None, Verdict.INCONCLUSIVE, Reason.TRUSTED_SOURCE, 3, False),  # automatic: only likely
    ],
)
def test_refused_comparison_from_a_named_address_is_closed(
    compare: str | None, verdict: Verdict, reason: Reason | None, exit_code: int, chosen: bool
) -> None:
    server = hostile.TrustingServer()
    server.extensions = ("PIPELINING", "STARTTLS")  # no smtp-no-starttls finding (exit 0)
    result = run(server, source_address="127.0.0.77", compare_source=compare, starttls=False)
    service = result.services[0]
    assert (result.verdict, result.reason, result.exit_code) == (verdict, reason, exit_code)
    assert service.comparison is not None
    assert service.comparison_chosen is chosen
    assert (service.comparison.source, service.comparison.outcome) == (
        compare or "127.0.0.253",
        Outcome.RELAY_DENIED,
    )
    assert "relay-trusted-source" in [f.indicator for f in result.findings]
    if chosen:
        [trusted] = [f for f in result.findings if f.indicator == "relay-trusted-source"]
        assert trusted.title == (
            f"127.0.0.1:{server.port} relayed for 127.0.0.77, which it trusts, and refused the "
            "same tests from 127.0.0.2"
        )
        assert service.why == (
            "relays only for the probing address 127.0.0.77 (trusted): all 24 relay tests "
            "accepted from it were refused from 127.0.0.2 (first: R01, relay-denied 554)"
        )


def test_every_accepted_test_is_repeated_from_the_named_address() -> None:
    """Trusts 127.0.0.77, but relays the percent hack (R02) for anyone: only repeating R01
    from 127.0.0.2 would call it closed."""
    server = hostile.PercentHackForAll()
    result = run(server, source_address="127.0.0.77", compare_source="127.0.0.2", starttls=False)
    service = result.services[0]
    assert (result.verdict, result.reason, result.exit_code) == (Verdict.OPEN, None, 2)
    assert len(service.counted) == 25
    compared = {c.test: c.outcome.value for c in service.comparisons}
    assert list(service.counted) == [f"plain/{t}" for t in compared]
    assert {t: o for t, o in compared.items() if o != "relay-denied"} == {"R02": "accepted"}
    assert {c.source for c in service.comparisons} == {"127.0.0.2"}
    assert service.comparison is not None
    assert (service.comparison.test, service.comparison.outcome) == ("R02", Outcome.ACCEPTED)
    assert service.why == (
        "25 relay tests accepted (first: R01, external recipient); "
        "plain/R02 was accepted from 127.0.0.2 too"
    )
    # 24 refusals from 127.0.0.2, at most 8 per connection
    outsider = [s for s in server.sessions if s.peer == "127.0.0.2"]
    assert [sum(c.startswith("RCPT") for c in s.commands) for s in outsider] == [9, 8, 8]
    assert_polite(server)
    # probing from 127.0.0.2 directly agrees
    direct = run(hostile.PercentHackForAll(), source_address="127.0.0.2", starttls=False)
    assert direct.verdict is Verdict.OPEN
    assert direct.services[0].counted == ("plain/R02",)


@pytest.mark.parametrize(
    ("retry_delay", "verdict", "reason", "sleeps_wanted", "why"),
    [
        (0.25, Verdict.CLOSED, None, [0.25],
         "relays only for the probing address 127.0.0.77 (trusted): all 24 relay tests "
         "accepted from it were refused from 127.0.0.2 (first: R01, relay-denied 554)"),
        (-1, Verdict.INCONCLUSIVE, Reason.GREYLISTED, [],
         "relaying was accepted from 127.0.0.77; from 127.0.0.2, 24 of 24 repeated relay "
         "tests got no final answer (temporary)"),
    ],
)  # fmt: skip
def test_greylisted_comparison_is_retried_once(
    retry_delay: float,
    verdict: Verdict,
    reason: Reason | None,
    sleeps_wanted: list[float],
    why: str,
) -> None:
    server = hostile.GreylistsStrangers()
    sleeps: list[float] = []
    result = run(
        server, sleeps, source_address="127.0.0.77", compare_source="127.0.0.2",
        starttls=False, retry_delay=retry_delay,
    )  # fmt: skip
    service = result.services[0]
    assert (result.verdict, result.reason, service.why) == (verdict, reason, why)
    assert sleeps == sleeps_wanted
    attempts = [(c.attempt, c.outcome.value) for c in service.comparisons]
    retried = 24 if retry_delay >= 0 else 0
    assert attempts.count((1, "temporary")) == 24
    assert len(attempts) == 24 + retried
    assert_polite(server)


@pytest.mark.parametrize(
    ("server", "verdict", "reason", "outcome"),
    [
        (hostile.OpenServer, Verdict.OPEN, None, Outcome.ACCEPTED),
        (hostile.Server, Verdict.CLOSED, None, None),
    ],
)
def test_automatic_comparison_from_the_targets_own_address(
    server: type[Server], verdict: Verdict, reason: Reason | None, outcome: Outcome | None
) -> None:
    """--source-address 127.0.0.1 probing 127.0.0.1: the help promises 127.0.0.253."""
    mx = server()
    result = run(mx, source_address="127.0.0.1", starttls=False)
    service = result.services[0]
    assert (result.verdict, result.reason) == (verdict, reason)
    got = service.comparison.outcome if service.comparison else None
    assert got == outcome
    assert service.comparison_chosen is False
    wanted = {"127.0.0.1", "127.0.0.253"} if outcome else {"127.0.0.1"}
    assert {s.peer for s in mx.sessions} == wanted
