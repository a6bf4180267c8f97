"""SPF evaluation (RFC 7208 check_host) as a generator core: it yields queries, is sent answers.

Two uses, one evaluator:

* ``ip`` given: RFC 7208 check_host() for that client address, to tell whether the server's own
  sending addresses pass. The limits end the evaluation as the RFC says (permerror).
* ``ip=None``, the audit: the evaluation a forger's address gets, one that matches no ``ip4``,
  ``a``, ``mx`` or ``ptr``. Every term up to ``all`` is evaluated, every include and redirect is
  followed, and the DNS lookups are counted the way s.4.6.4 counts them: ``include``, ``a``,
  ``mx``, ``ptr``, ``exists`` and ``redirect`` count one each (the address lookups of an ``mx``
  or ``ptr`` do not count, but at most 10 per term); a "void" lookup is an NXDOMAIN or an empty
  answer. An audit keeps counting past the limits (up to :data:`AUDIT_CEILING`) so it can say
  how far over a record is, and records each problem instead of stopping at the first.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Generator
from dataclasses import dataclass, field

from relayguard.dns._events import Answer, Query, Status
from relayguard.dns.names import IPAddress, ptr_name
from relayguard.dns.spf_parse import (
    MacroContext,
    MacroNeedsClient,
    Mechanism,
    Record,
    SpfSyntaxError,
    expand,
    is_spf,
    looks_like_spf,
    parse_record,
)

LOOKUP_LIMIT = 10  # s.4.6.4
VOID_LIMIT = 2  # s.4.6.4
PER_TERM_ADDRESSES = 10  # s.4.6.4: names of one mx or ptr term looked up
AUDIT_CEILING = 40  # an audit stops counting here (a bound on the queries a record causes)
MAX_DEPTH = 12  # nested include/redirect

Steps = Generator[list[Query], list[Answer], "Outcome"]


class _Abort(Exception):
    def __init__(self, result: str, problem: str, text: str) -> None:
        super().__init__(text)
        self.result, self.problem, self.text = result, problem, text


@dataclass(slots=True)
class Problem:
    code: str  # pass-all, include-loop, too-many-lookups, ... (the finding is spf-<code>)
    text: str
    domain: str


@dataclass(slots=True)
class Outcome:
    result: str  # pass fail softfail neutral none permerror temperror
    domain: str
    ip: str | None
    record: str | None = None  # the top-level record
    lookups: int = 0
    voids: int = 0
    problems: list[Problem] = field(default_factory=list)
    records: dict[str, str] = field(default_factory=dict)  # every domain's record read
    void_terms: list[tuple[str, str]] = field(default_factory=list)  # (domain, term) found nothing
    matched: str | None = None  # the term that decided
    explanation: str | None = None
    notes: list[str] = field(default_factory=list)


class _Evaluation:
    def __init__(self, ip: IPAddress | None, sender: str, helo: str, timestamp: int) -> None:
        self.ip = ip
        self.sender = sender
        self.helo = helo
        self.timestamp = timestamp
        self.audit = ip is None
        self.out = Outcome("none", "", str(ip) if ip else None)
        self.stack: list[str] = []
        self.term = ""  # the term being evaluated

    def problem(self, code: str, text: str, domain: str) -> None:
        if not any(p.code == code and p.domain == domain for p in self.out.problems):
            self.out.problems.append(Problem(code, text, domain))

    def fail(self, result: str, code: str, text: str, domain: str) -> None:
        """A permerror / temperror: the end of an evaluation, or in an audit a note."""
        self.problem(code, text, domain)
        if not self.audit:
            raise _Abort(result, code, text)

    def count_lookup(self, term: str, domain: str) -> None:
        self.out.lookups += 1
        if self.out.lookups == LOOKUP_LIMIT + 1:
            text = f"more than {LOOKUP_LIMIT} DNS lookups (RFC 7208 s.4.6.4)"
            self.fail("permerror", "too-many-lookups", text, domain)
        if self.out.lookups > AUDIT_CEILING:
            raise _Abort("permerror", "too-many-lookups", f"over {AUDIT_CEILING} DNS lookups")

    def count_void(self, query: Query, domain: str) -> None:
        self.out.voids += 1
        self.out.void_terms.append((domain, self.term))
        if self.out.voids == VOID_LIMIT + 1:
            text = (f"more than {VOID_LIMIT} lookups found nothing (RFC 7208 s.4.6.4 void "
                    f"lookups; the third was {query.name})")  # fmt: skip
            self.fail("permerror", "void-lookups", text, domain)

    def ctx(self, domain: str) -> MacroContext:
        return MacroContext(self.sender, domain, self.ip, self.helo, self.timestamp)

    def target(self, spec: str | None, domain: str) -> str | None:
        """The domain a term names after macro expansion (None: it needs the client IP)."""
        if spec is None:
            return domain
        try:
            return expand(spec, self.ctx(domain))
        except MacroNeedsClient:
            self.out.notes.append(f"{spec} depends on the client address: not followed")
            return None
        except SpfSyntaxError as exc:
            self.fail("permerror", "syntax", f"{spec}: {exc}", domain)
            return None

    # --- DNS -----------------------------------------------------------------------------------

    def ask(self, queries: list[Query]) -> Generator[list[Query], list[Answer], list[Answer]]:
        answers = yield queries
        return answers

    def failed(self, answer: Answer, domain: str) -> None:
        text = f"{answer.query}: {answer.failure}"
        self.fail("temperror", "dns-error", text, domain)

    # --- check_host ----------------------------------------------------------------------------

    def record_of(self, domain: str) -> Generator[list[Query], list[Answer], Record | str]:
        """The domain's parsed record, or why there is none: none, temperror, permerror."""
        (answer,) = yield from self.ask([Query(f"{domain}.", "TXT")])
        if answer.status.failed:
            self.failed(answer, domain)
            return "temperror"
        texts = [t for t in answer.records if is_spf(t)]
        if not texts:
            near = [t for t in answer.records if looks_like_spf(t)]
            if near:
                self.problem("not-spf", f"{near[0][:80]!r} is not an SPF record: it must begin "
                             f"with exactly 'v=spf1 '", domain)  # fmt: skip
            return "none"
        self.out.records.setdefault(domain, texts[0])
        if len(texts) > 1:
            self.fail("permerror", "multiple", f"{len(texts)} SPF records (RFC 7208 s.4.5 "
                      f"allows one)", domain)  # fmt: skip
            return "permerror"
        try:
            return parse_record(texts[0])
        except SpfSyntaxError as exc:
            self.fail("permerror", "syntax", str(exc), domain)
            return "permerror"

    def check_host(self, domain: str) -> Generator[list[Query], list[Answer], str]:
        """The result for ``domain`` (s.4). Errors raise, except in an audit, which notes them
        and goes on (then the result can be ``permerror`` / ``temperror``)."""
        if domain in self.stack:
            chain = " -> ".join([*self.stack[self.stack.index(domain):], domain])
            self.fail("permerror", "include-loop", f"include/redirect loop: {chain}", domain)
            return "permerror"
        if len(self.stack) >= MAX_DEPTH:
            self.fail("permerror", "include-loop", f"includes nested over {MAX_DEPTH} deep", domain)
            return "permerror"
        self.stack.append(domain)
        try:
            record = yield from self.record_of(domain)
            if isinstance(record, str):
                return record
            for mech in record.mechanisms:
                matched = yield from self.mechanism(mech, domain)
                if matched:
                    if len(self.stack) == 1:
                        self.out.matched = mech.text
                    return mech.result
            if record.redirect and record.all is None:
                self.count_lookup("redirect", domain)
                target = self.target(record.redirect, domain)
                if target is None:
                    return "neutral"
                result = yield from self.check_host(target)
                if result == "none":
                    self.fail("permerror", "redirect-missing",
                              f"redirect={target} has no SPF record", domain)  # fmt: skip
                return result
            return "neutral"  # s.4.7: no match, no redirect
        finally:
            self.stack.pop()

    def mechanism(self, mech: Mechanism, domain: str) -> Generator[list[Query], list[Answer], bool]:
        ip = self.ip
        self.term = mech.text
        if mech.name == "all":
            return True
        if mech.name in ("ip4", "ip6"):
            assert mech.domain is not None
            bits = mech.cidr4 if mech.name == "ip4" else mech.cidr6
            network = ipaddress.ip_network(f"{mech.domain}/{bits}", strict=False)
            if network.num_addresses >= 2 ** (network.max_prefixlen - 8) and mech.result == "pass":
                self.problem("wide-range", f"{mech.text} authorizes {network.num_addresses:,} "
                             f"addresses", domain)  # fmt: skip
            return ip is not None and ip.version == network.version and ip in network
        self.count_lookup(mech.name, domain)
        target = self.target(mech.domain, domain)
        if target is None:
            return False
        if mech.name == "include":
            result = yield from self.check_host(target)
            if result == "temperror" and not self.audit:
                raise _Abort("temperror", "dns-error", f"include:{target}")
            if result == "none":
                self.fail("permerror", "include-missing",
                          f"include:{target} has no SPF record", domain)  # fmt: skip
            return result == "pass"
        if mech.name == "exists":
            (answer,) = yield from self.ask([Query(f"{target}.", "A")])
            return self.addresses(answer, domain) != []
        if mech.name == "a":
            return (yield from self.a(target, mech, domain))
        if mech.name == "mx":
            return (yield from self.mx(target, mech, domain))
        return (yield from self.ptr(target, domain))

    def addresses(self, answer: Answer, domain: str) -> list[str]:
        if answer.status.failed:
            self.failed(answer, domain)
            return []
        if answer.empty:
            self.count_void(answer.query, domain)
        return list(answer.records)

    def _family(self) -> str:
        return "AAAA" if self.ip is not None and self.ip.version == 6 else "A"

    def _in(self, records: list[str], mech: Mechanism) -> bool:
        if self.ip is None:
            return False
        bits = mech.cidr6 if self.ip.version == 6 else mech.cidr4
        for record in records:
            address = ipaddress.ip_address(record)
            if address.version != self.ip.version:
                continue
            prefix = address.max_prefixlen if bits is None else bits
            if self.ip in ipaddress.ip_network(f"{address}/{prefix}", strict=False):
                return True
        return False

    def a(self, target: str, mech: Mechanism, domain: str) -> Generator[list[Query], list[Answer], bool]:  # noqa: E501
        (answer,) = yield from self.ask([Query(f"{target}.", self._family())])
        return self._in(self.addresses(answer, domain), mech)

    def mx(self, target: str, mech: Mechanism, domain: str) -> Generator[list[Query], list[Answer], bool]:  # noqa: E501
        (answer,) = yield from self.ask([Query(f"{target}.", "MX")])
        if answer.status.failed:
            self.failed(answer, domain)
            return False
        if answer.empty:
            self.count_void(answer.query, domain)
            return False
        names = [name for _, name in answer.mx() if name and name != "."]
        if len(names) > PER_TERM_ADDRESSES:
            self.fail("permerror", "too-many-mx", f"mx:{target} has {len(names)} MX hosts (RFC "
                      f"7208 s.4.6.4 allows {PER_TERM_ADDRESSES})", domain)  # fmt: skip
            names = names[:PER_TERM_ADDRESSES]
        if self.ip is None or not names:
            return False
        answers = yield from self.ask([Query(_absolute(n), self._family()) for n in names])
        for a in answers:
            if a.status.failed:
                self.failed(a, domain)
        return any(self._in(list(a.records), mech) for a in answers if a.ok)

    def ptr(self, target: str, domain: str) -> Generator[list[Query], list[Answer], bool]:
        self.problem("ptr", "the ptr mechanism is slow and unreliable; RFC 7208 s.5.5 says do not "
                     "use it", domain)  # fmt: skip
        if self.ip is None:
            return False
        (answer,) = yield from self.ask([Query(ptr_name(self.ip), "PTR")])
        if answer.status.failed or answer.empty:
            if answer.empty:
                self.count_void(answer.query, domain)
            return False  # s.5.5: a failed PTR lookup is simply no match
        names = [n.rstrip(".") for n in answer.records[:PER_TERM_ADDRESSES]]
        answers = yield from self.ask([Query(f"{n}.", self._family()) for n in names])
        for name, a in zip(names, answers, strict=True):
            forward = a.ok and any(ipaddress.ip_address(r) == self.ip for r in a.records)
            if forward and (name == target or name.endswith("." + target)):
                return True
        return False

    def explain(self, exp: str, domain: str) -> Generator[list[Query], list[Answer], None]:
        target = self.target(exp, domain)
        if target is None:
            return
        (answer,) = yield from self.ask([Query(f"{target}.", "TXT")])
        if answer.ok and len(answer.records) == 1:
            try:
                self.out.explanation = expand(answer.records[0], self.ctx(domain), exp=True)[:300]
            except (SpfSyntaxError, MacroNeedsClient):
                self.out.explanation = None


def _absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."


def evaluate(
    domain: str, ip: IPAddress | None = None, *, sender: str | None = None,
    helo: str | None = None, timestamp: int = 0,
) -> Steps:  # fmt: skip
    """check_host(ip, domain, sender) for one client; ``ip=None`` audits the record."""
    ev = _Evaluation(ip, sender or f"postmaster@{domain}", helo or domain, timestamp)
    ev.out.domain = domain
    try:
        result = yield from ev.check_host(domain)
        ev.out.result = result
        if result == "fail" and ip is not None:
            record = ev.out.records.get(domain)
            if record:
                try:
                    exp = parse_record(record).exp
                except SpfSyntaxError:
                    exp = None
                if exp:
                    yield from ev.explain(exp, domain)
    except _Abort as stop:
        ev.out.result = stop.result
    if ev.audit and any(p.code in _PERMANENT for p in ev.out.problems):
        ev.out.result = "permerror"
    elif ev.audit and any(p.code == "dns-error" for p in ev.out.problems):
        ev.out.result = "temperror"
    ev.out.record = ev.out.records.get(domain)
    return ev.out


_PERMANENT = frozenset({
    "too-many-lookups", "void-lookups", "multiple", "syntax", "include-loop", "include-missing",
    "redirect-missing", "too-many-mx",
})  # fmt: skip

__all__ = ["LOOKUP_LIMIT", "VOID_LIMIT", "Outcome", "Problem", "Status", "evaluate"]
