"""One service (address + port) probed end to end: the catalogue over connections, then the
user checks, the trusted-source comparison, the proof and the rate check."""

from __future__ import annotations

from dataclasses import replace

from relayguard.probe import _extras
from relayguard.probe._connection import Connection, OutOfTime
from relayguard.probe._errors import (
    ConnectionLost,
    ProbeTimeout,
    RemoteProtocolError,
    TargetError,
)
from relayguard.probe._session import CHECK_ERRORS, NoTls, Refused, Sessions
from relayguard.probe.catalogue import BY_ID, PLAN, ProbeTest, fill
from relayguard.probe.classify import Outcome, classify_mail, classify_rcpt
from relayguard.probe.dialogue import Reply
from relayguard.probe.result import (
    Phase,
    ServiceResult,
    TestResult,
    Verdict,
    VrfyResult,
    reply_lines,
)
from relayguard.probe.verdict import (
    comparison_source,
    decide,
    deciding_comparison,
    key,
    needs_comparison,
)


class ServiceProbe(Sessions):
    """Probes one address and port; :meth:`run` returns the decided :class:`ServiceResult`."""

    async def run(self) -> ServiceResult:
        s = self.s
        first = Phase.TLS if s.implicit_tls else Phase.PLAIN
        try:
            await self._phase(first)
            if (
                first is Phase.PLAIN
                and self.o.starttls
                and "STARTTLS" in s.extensions.get(Phase.PLAIN, {})
            ):
                await self._phase(Phase.STARTTLS)
            if any(t.code is not None for t in s.tests):
                await self._enumerate(first)
            if needs_comparison(s):
                await self._compare()
            decision = decide(s)
            if decision.verdict is Verdict.OPEN and self.o.prove_to and decision.counted:
                await _extras.prove(self, decision.counted[0])
            if self.o.check_rate_limit:
                await _extras.check_rate(self)
        except OutOfTime as exc:
            s.out_of_time = True
            s.errors.append(str(exc))
        decision = decide(s)
        s.verdict, s.reason, s.why = decision.verdict, decision.reason, decision.why
        s.counted = tuple(f"{r.phase.value}/{r.test}" for r in decision.counted)
        return s

    # -- the catalogue ------------------------------------------------------------------------
    async def _phase(self, phase: Phase) -> None:
        await self._with_retry(phase, list(PLAN), self.s.tests)

    async def _with_retry(
        self,
        phase: Phase,
        tests: list[ProbeTest],
        into: list[TestResult],
        source: str | None = None,
    ) -> None:
        """The tests, then once more after ``retry_delay`` those refused with a 4xx."""
        results = await self._run_tests(phase, [(t, 1) for t in tests], into, source)
        retry = [(BY_ID[r.test], 2) for r in results if r.outcome is Outcome.TEMPORARY]
        if retry and self.o.retry_delay >= 0:
            await self.sleep(self.budget.timeout(self.o.retry_delay))
            await self._run_tests(phase, retry, into, source)

    async def _run_tests(
        self,
        phase: Phase,
        pending: list[tuple[ProbeTest, int]],
        into: list[TestResult],
        source: str | None = None,
    ) -> list[TestResult]:
        """Runs the tests over as many connections as the bounds need, from ``source`` (None:
        the probing address); each result goes to ``into`` and is returned."""
        done: list[TestResult] = []

        def record(result: TestResult) -> None:
            if source is not None:
                result = replace(result, source=source)
            done.append(result)
            into.append(result)

        def stop(outcome: Outcome) -> None:
            for i, (test, attempt) in enumerate(pending):
                record(self._result(test, phase, attempt, outcome if i == 0 else Outcome.NOT_RUN))
            pending.clear()

        conn: Connection | None = None
        throttled = lost = 0
        try:
            while pending:
                test, attempt = pending[0]
                try:
                    if conn is None:
                        if self.s.connections >= self.o.max_connections:
                            self.s.errors.append("connection limit per service reached")
                            stop(Outcome.NOT_RUN)
                            break
                        conn = await self.session(phase, source=source)
                    result = await self._run_test(conn, test, phase, attempt)
                except OutOfTime:
                    raise
                except NoTls:
                    return done
                except Refused as exc:
                    self.s.errors.append(str(exc))
                    conn = None
                    if exc.code == 421 and not throttled:
                        throttled += 1
                        await self.sleep(self.budget.timeout(self.o.backoff))
                        continue
                    stop(Outcome.THROTTLED if exc.code == 421 else Outcome.NOT_RUN)
                    break
                except ProbeTimeout as exc:
                    self.s.errors.append(str(exc))
                    stop(Outcome.NO_REPLY)
                    await self.done(conn)
                    return done
                except ConnectionLost as exc:
                    self.s.errors.append(str(exc))
                    lost += 1
                    if conn is not None:
                        self.account(conn)
                        await conn.close()
                        conn = None
                    if lost >= 2:
                        stop(Outcome.CONNECTION_LOST)
                        break
                    continue
                except (RemoteProtocolError, TargetError) as exc:
                    self.s.errors.append(str(exc))
                    stop(Outcome.NOT_RUN)
                    await self.done(conn)
                    return done
                pending.pop(0)
                record(result)
                if result.outcome is Outcome.THROTTLED or conn.closed:
                    self.account(conn)
                    await conn.close()
                    conn = None
                    if result.outcome is Outcome.THROTTLED:
                        throttled += 1
                        if throttled > 1:
                            stop(Outcome.NOT_RUN)
                            break
                        pending.insert(0, (test, attempt + 1))
                        await self.sleep(self.budget.timeout(self.o.backoff))
                elif (
                    conn.rejects >= self.o.max_rejects
                    or conn.transactions >= self.o.max_transactions
                ):
                    await self.done(conn)
                    conn = None
        except OutOfTime:
            # Also from a back-off sleep: every test left gets a result, none goes missing.
            stop(Outcome.NOT_RUN)
            if conn is not None:
                self.account(conn)
                await conn.close()
            raise
        await self.done(conn)
        return done

    async def _run_test(
        self, conn: Connection, test: ProbeTest, phase: Phase, attempt: int
    ) -> TestResult:
        """One transaction: [EHLO,] MAIL, RCPT, RSET. Never DATA."""
        filled = fill(test, self.variables)
        helo = filled.helo or self.o.helo
        start = len(conn.transcript)
        outcome = Outcome.ACCEPTED
        reply = None
        if conn.helo != helo:
            reply = await conn.command("EHLO", helo)
            if reply.code != 250:
                conn.helo = None
                outcome = Outcome.THROTTLED if reply.code == 421 else classify_mail(reply)
                if outcome is Outcome.SENDER_REJECTED:
                    outcome = Outcome.REJECTED  # the HELO name was refused
            else:
                conn.helo = helo
        if outcome is Outcome.ACCEPTED:
            reply = await conn.command("MAIL", f"FROM:<{filled.sender}>")
            outcome = classify_mail(reply)
        if outcome is Outcome.ACCEPTED:
            reply = await conn.command("RCPT", f"TO:<{filled.recipient}>")
            outcome = classify_rcpt(reply)
            if outcome is not Outcome.THROTTLED and (await conn.command("RSET")).code == 421:
                conn.closed = True
        conn.transactions += 1
        if outcome is not Outcome.ACCEPTED:
            conn.rejects += 1
        if outcome is Outcome.THROTTLED:
            conn.closed = True
        return self._result(
            test, phase, attempt, outcome, helo=helo, filled=(filled.sender, filled.recipient),
            reply=reply, seconds=conn.last_seconds, dialogue=tuple(conn.transcript[start:]),
        )  # fmt: skip

    def _result(
        self,
        test: ProbeTest,
        phase: Phase,
        attempt: int,
        outcome: Outcome,
        *,
        helo: str | None = None,
        filled: tuple[str, str] | None = None,
        reply: Reply | None = None,
        seconds: float = 0.0,
        dialogue: tuple[str, ...] = (),
    ) -> TestResult:
        if filled is None:
            f = fill(test, self.variables)
            filled, helo = (f.sender, f.recipient), helo or f.helo
        code = enhanced = None
        text = ""
        if reply is not None:
            code, enhanced = reply.code, reply.enhanced
            text = " / ".join(line[3:] for line in reply_lines(reply))
        return TestResult(
            test=test.id, kind=test.kind, phase=phase, technique=test.technique,
            helo=helo or self.o.helo, sender=filled[0], recipient=filled[1], outcome=outcome,
            code=code, enhanced=enhanced, reply=text, seconds=seconds, attempt=attempt,
            dialogue=dialogue,
        )  # fmt: skip

    # -- after the catalogue ------------------------------------------------------------------
    async def _enumerate(self, phase: Phase) -> None:
        """VRFY a real and a random user, EXPN postmaster, HELP: one connection."""
        conn = None
        try:
            conn = await self.session(phase)
            start = len(conn.transcript)
            known = (await conn.command("VRFY", "postmaster")).code
            unknown = (await conn.command("VRFY", f"{self.o.token}x")).code
            expn = (await conn.command("EXPN", "postmaster")).code
            help_start = len(conn.transcript)
            await conn.command("HELP")
            self.s.help_lines = tuple(conn.transcript[help_start + 1 :])
            self.s.vrfy = VrfyResult(
                known=known, unknown=unknown, expn=expn, dialogue=tuple(conn.transcript[start:])
            )
        except OutOfTime:
            raise
        except CHECK_ERRORS as exc:
            self.s.errors.append(f"VRFY/EXPN check: {exc}")
        await self.done(conn)

    async def _compare(self) -> None:
        """Repeat every counted acceptance from another source address (trusted-source check),
        phase by phase, over as many connections as the per-connection bounds need."""
        source = comparison_source(self.s, self.o.compare_source)
        counted = decide(self.s).counted
        if source is None or not counted:
            return
        self.s.comparison_chosen = self.o.compare_source is not None
        results: list[TestResult] = []
        noted = len(self.s.errors)
        try:
            for phase in dict.fromkeys(r.phase for r in counted):
                tests = [BY_ID[r.test] for r in counted if r.phase is phase]
                await self._with_retry(phase, tests, results, source)
        finally:
            # A test left without a result (no TLS there, out of time) is an open question,
            # never a silent pass: "all refused" must cover every counted test.
            seen = {key(r) for r in results}
            results += [
                replace(self._result(BY_ID[r.test], r.phase, 1, Outcome.NOT_RUN), source=source)
                for r in counted
                if key(r) not in seen
            ]
            self.s.comparisons = results
            self.s.comparison = deciding_comparison(results)
            self.s.errors[noted:] = [
                f"comparison from {source}: {e}" for e in self.s.errors[noted:]
            ]
