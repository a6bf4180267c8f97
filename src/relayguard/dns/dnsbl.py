"""The block-list check as a decision core: it says which queries it needs, and is given answers.

Theory of operation. :class:`DnsblCheck` keeps a queue of queries it wants and, per query, what
to do with the answer. At the start it asks for every list's RFC 5782 test points (127.0.0.2
must be listed, 127.0.0.1 must not; TEST / INVALID for domain lists; ::FFFF:7F00:2 / :1 for
IPv6 lists when an IPv6 address is checked), the A/AAAA of every name target and the PTR of
every address. A subject's query on a list is only sent once that list proved healthy; a list
that lists everything, misses its test entry, or refuses the resolver is never trusted and never
asked about the subjects. The I/O shell (``resolver.drive_incremental``) sends what
:meth:`next_queries` returns and hands each answer to :meth:`receive`. No sockets, no clock.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from relayguard.dns._events import Answer, Query, Status
from relayguard.dns.classify import ERROR, LISTED, NOT_LISTED, classify
from relayguard.dns.dnsbl_result import (
    DEAD,
    HEALTHY,
    LISTS_EVERYTHING,
    NOT_CHECKED,
    SKIPPED,
    TEST_POINT_MISSING,
    UNAVAILABLE,
    Health,
    ListResult,
    Rdns,
    Subject,
    TargetState,
)
from relayguard.dns.lists import ListSpec, dead_reason
from relayguard.dns.names import IPAddress, dnsbl_name, ptr_name

MAX_PTR_NAMES = 10  # PTR records followed per address (RFC 7208 s.4.6.4 uses the same bound)
MAX_ADDRESSES_PER_NAME = 16  # A/AAAA of a name target checked on the lists
MAX_TXT_REASON = 300  # characters of a list's TXT explanation kept
NO_IPV6_DATA = "no-ipv6-data"

Handler = Callable[[Answer], None]


@dataclass(frozen=True, slots=True)
class Target:
    text: str
    ip: IPAddress | None = None
    name: str | None = None  # normalized (IDNA, lower-case), without the trailing dot
    note: str | None = None  # what the report says about it (an IPv4-mapped or private address)


def _family(ip: IPAddress) -> str:
    return "6" if ip.version == 6 else "4"


_TEST_POINTS = {
    "4": ("127.0.0.2", "127.0.0.1"),
    "6": ("::ffff:7f00:2", "::ffff:7f00:1"),
    "d": ("test", "invalid"),
}


class DnsblCheck:
    def __init__(
        self, targets: list[Target], lists: list[ListSpec], *, helo: str | None = None
    ) -> None:
        self.lists = lists
        self.helo = helo
        self.targets = [TargetState(t.text, "ip" if t.ip else "name", note=t.note)
                        for t in targets]  # fmt: skip
        self.subjects: list[Subject] = []
        self.health: dict[tuple[str, str], Health] = {}
        self._queue: list[Query] = []
        self._handlers: dict[Query, list[Handler]] = {}
        self._waiting: dict[tuple[str, str], list[tuple[Subject, ListResult]]] = {}
        self._subject_keys: set[tuple[str, str]] = set()
        self._helo_answers: list[Answer] = []
        for spec in lists:
            if dead_reason(spec.zone):
                fam = "d" if spec.kind == "domain" else "4"
                self.health[(spec.zone, fam)] = Health(DEAD, "dead", dead_reason(spec.zone) or "")
        for target, state in zip(targets, self.targets, strict=True):
            if target.ip is not None:
                state.addresses.append(str(target.ip))
                self._add_ip(target.ip, target.text)
            elif target.name is not None:
                self._resolve_name(target.name, state)
                self._add_domain(target.name, target.text)
        if helo:
            for rdtype in ("A", "AAAA"):
                self._ask(Query(f"{helo}.", rdtype), self._helo_answers.append)

    # --- the interface the shell drives ------------------------------------------------------

    def next_queries(self) -> list[Query]:
        out, self._queue = self._queue, []
        return out

    def receive(self, query: Query, answer: Answer) -> None:
        for handler in self._handlers.pop(query, []):
            handler(answer)

    @property
    def done(self) -> bool:
        return not self._handlers and not self._queue

    def _ask(self, query: Query, handler: Handler) -> None:
        handlers = self._handlers.get(query)
        if handlers is None:
            self._handlers[query] = [handler]
            self._queue.append(query)
        else:
            handlers.append(handler)

    # --- targets ------------------------------------------------------------------------------

    def _resolve_name(self, name: str, state: TargetState) -> None:
        answers: list[Answer] = []

        def got(answer: Answer) -> None:
            answers.append(answer)
            if len(answers) < 2:
                return
            failed = [a for a in answers if a.status.failed]
            found = [r for a in answers if a.ok for r in a.records]
            addresses = found[:MAX_ADDRESSES_PER_NAME]
            if failed and not addresses:
                a = failed[0]
                state.error = a.failure
            elif not addresses:
                state.note = "no A or AAAA record: checked on the domain lists only"
            elif len(found) > len(addresses):
                state.note = f"{len(found)} addresses, {len(addresses)} checked"
            for text in addresses:
                ip = ipaddress.ip_address(text)
                state.addresses.append(str(ip))
                self._add_ip(ip, state.text)

        for rdtype in ("A", "AAAA"):
            self._ask(Query(f"{name}.", rdtype), got)

    def _add_ip(self, ip: IPAddress, target: str) -> None:
        key = ("ip", str(ip))
        if key in self._subject_keys:
            return
        self._subject_keys.add(key)
        subject = Subject(str(ip), "ip", target, rdns=Rdns(helo=self.helo))
        self.subjects.append(subject)
        fam = _family(ip)
        for spec in self.lists:
            if spec.kind != "ip":
                continue
            result = ListResult(spec, SKIPPED, query=dnsbl_name(ip, spec.zone))
            subject.results.append(result)
            if fam == "6" and not spec.ipv6:
                result.reason = NO_IPV6_DATA
                continue
            self._when_healthy(spec, fam, subject, result)
        self._ask(Query(ptr_name(ip), "PTR"), lambda a: self._got_ptr(ip, subject, a))

    def _add_domain(self, name: str, target: str) -> None:
        key = ("domain", name)
        if key in self._subject_keys:
            return
        self._subject_keys.add(key)
        subject = Subject(name, "domain", target)
        self.subjects.append(subject)
        for spec in self.lists:
            if spec.kind == "domain":
                result = ListResult(spec, SKIPPED, query=f"{name}.{spec.zone}.")
                subject.results.append(result)
                self._when_healthy(spec, "d", subject, result)

    # --- list health --------------------------------------------------------------------------

    def _when_healthy(self, spec: ListSpec, fam: str, subject: Subject, result: ListResult) -> None:
        key = (spec.zone, fam)
        health = self.health.get(key)
        if health is None and not spec.health_check:
            health = self.health[key] = Health(NOT_CHECKED)
        if health is not None:
            self._query_subject(spec, health, result)
            return
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = self._waiting[key] = []
            self._check_health(spec, fam)
        waiting.append((subject, result))

    def _test_query(self, spec: ListSpec, fam: str, point: str) -> Query:
        if fam == "d":
            return Query(f"{point}.{spec.zone}.", "A", spec.zone)
        return Query(dnsbl_name(ipaddress.ip_address(point), spec.zone), "A", spec.zone)

    def _check_health(self, spec: ListSpec, fam: str) -> None:
        listed, unlisted = _TEST_POINTS[fam]
        if fam == "4" and spec.test_listed:
            listed = spec.test_listed
        if fam == "d" and spec.test_listed:
            listed = spec.test_listed
        if fam in ("4", "d") and spec.test_unlisted:
            unlisted = spec.test_unlisted
        answers: dict[str, Answer] = {}

        def got(which: str) -> Handler:
            def store(answer: Answer) -> None:
                answers[which] = answer
                if len(answers) == 2:
                    self._health_known(spec, fam, answers["listed"], answers["unlisted"])

            return store

        self._ask(self._test_query(spec, fam, listed), got("listed"))
        self._ask(self._test_query(spec, fam, unlisted), got("unlisted"))

    def _health_known(self, spec: ListSpec, fam: str, listed: Answer, unlisted: Answer) -> None:
        must, never = classify(spec, listed), classify(spec, unlisted)
        if never.listed:
            codes = ", ".join(never.codes)
            health = Health(LISTS_EVERYTHING, None, f"{unlisted.query.name} -> {codes}")
        elif must.listed and never.verdict == NOT_LISTED:
            health = Health(HEALTHY)
        elif must.verdict == ERROR or never.verdict == ERROR:
            bad, answer = (must, listed) if must.verdict == ERROR else (never, unlisted)
            codes = f" ({', '.join(bad.codes)})" if bad.codes else ""
            health = Health(UNAVAILABLE, bad.reason, f"{answer.detail}{codes}".strip())
        else:
            health = Health(TEST_POINT_MISSING, None, f"{listed.query.name} -> NXDOMAIN")
        key = (spec.zone, fam)
        self.health[key] = health
        for _subject, result in self._waiting.pop(key, []):
            self._query_subject(spec, health, result)

    # --- per subject --------------------------------------------------------------------------

    def _query_subject(self, spec: ListSpec, health: Health, result: ListResult) -> None:
        if health.state == DEAD:
            result.verdict, result.reason = SKIPPED, DEAD
            return
        if not health.usable:
            result.verdict = ERROR
            result.reason = health.reason if health.state == UNAVAILABLE else health.state
            return
        query = Query(result.query, "A", spec.zone)
        self._ask(query, lambda answer: self._got_listing(spec, result, answer))

    def _got_listing(self, spec: ListSpec, result: ListResult, answer: Answer) -> None:
        outcome = classify(spec, answer)
        result.verdict, result.reason = outcome.verdict, outcome.reason
        result.codes, result.meanings = outcome.codes, outcome.meanings
        result.ttl, result.elapsed = answer.ttl, answer.elapsed
        if outcome.verdict == LISTED:

            def got_txt(txt: Answer) -> None:
                if txt.ok and txt.records:
                    result.txt = " | ".join(txt.records)[:MAX_TXT_REASON]

            self._ask(Query(result.query, "TXT", spec.zone), got_txt)

    def _got_ptr(self, ip: IPAddress, subject: Subject, answer: Answer) -> None:
        rdns = subject.rdns
        assert rdns is not None
        rdns.ptr_status = answer.status.value
        names = tuple(n.rstrip(".") for n in answer.records[:MAX_PTR_NAMES]) if answer.ok else ()
        rdns.ptr = names
        rdtype = "AAAA" if ip.version == 6 else "A"
        for name in names:
            if not name:
                continue

            def forward(a: Answer, name: str = name) -> None:
                if a.ok and any(ipaddress.ip_address(r) == ip for r in a.records):
                    rdns.confirmed += (name,)
                else:
                    rdns.unconfirmed += (name,)

            self._ask(Query(f"{name}.", rdtype), forward)

    def finish(self) -> None:
        """Fill in what only the whole picture tells (the HELO name's addresses)."""
        addresses = tuple(r for a in self._helo_answers if a.ok for r in a.records)
        failed = [a for a in self._helo_answers if a.status.failed]
        status = failed[0].status if failed and not addresses else Status.NOERROR
        if self._helo_answers and not addresses and not failed:
            status = self._helo_answers[0].status
        for subject in self.subjects:
            if subject.rdns is not None and self.helo:
                subject.rdns.helo_addresses = addresses
                subject.rdns.helo_status = status.value
