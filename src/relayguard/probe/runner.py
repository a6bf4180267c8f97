"""The asyncio shell of ``relayguard probe``: which connections to open, what to send in each.

Decisions are made elsewhere (verdict.py, weaknesses.py); the bytes in dialogue.py. This
module sequences the catalogue over connections, keeping the safety rules of WEAKNESSES.md:

* only the addresses of the host the user named (no MX lookup, nothing else);
* one command at a time; per test MAIL, RCPT, RSET; QUIT at the end of every connection;
* no DATA, except the one canary message of ``--prove-to`` once a relay test was accepted;
* at most ``max_rejects`` refused tests per connection (Postfix starts delaying at 10 errors
  and disconnects at 20) and ``max_transactions`` in all, then a new connection; at most
  ``max_connections`` per service;
* a 421 means back off (``backoff`` seconds) and reconnect once; a second 421 ends the phase;
* tests refused with a 4xx are run once more after ``retry_delay`` (greylisting, postscreen);
* every wait is bounded by its own timeout and by the probe's total budget.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

from relayguard.probe._connection import Budget
from relayguard.probe._errors import TargetError
from relayguard.probe._options import ProbeOptions
from relayguard.probe._service import ServiceProbe
from relayguard.probe._session import Sleep
from relayguard.probe.result import ProbeResult, Verdict
from relayguard.probe.verdict import exit_code, overall
from relayguard.probe.weaknesses import findings_for

__all__ = ["ProbeOptions", "check_sources", "probe", "resolve", "run"]

# getaddrinfo's "the name exists, but not in this family" (absent on some systems).
_NO_ADDRESS = frozenset(
    getattr(socket, name) for name in ("EAI_NODATA", "EAI_ADDRFAMILY") if hasattr(socket, name)
)


def _version(ip: str) -> int:
    return 6 if ":" in ip else 4


def check_sources(options: ProbeOptions) -> None:
    """Refuse, before any connection, local addresses this host cannot use or whose family
    cannot reach the target; raises :class:`TargetError` with a one-line reason."""
    given = [("--source-address", options.source_address),
             ("--compare-source", options.compare_source)]  # fmt: skip
    named = [(flag, ip) for flag, ip in given if ip]
    try:
        literal: int | None = ipaddress.ip_address(options.host.strip("[]")).version
    except ValueError:
        literal = None
    for flag, ip in named:
        version = _version(ip)
        if options.family is not None and options.family != version:
            raise TargetError(f"-{options.family} conflicts with the IPv{version} {flag} {ip}")
        if literal is not None and literal != version:
            raise TargetError(
                f"the source and the target families differ: {flag} {ip} is IPv{version}, "
                f"{options.host} is IPv{literal}"
            )
    if len(named) == 2 and _version(named[0][1]) != _version(named[1][1]):
        raise TargetError("--source-address and --compare-source are of different families")
    for _flag, ip in named:
        _bindable(ip)


def _bindable(ip: str) -> None:
    family = socket.AF_INET6 if _version(ip) == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((ip, 0))
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            raise TargetError(f"{ip} is not an address of this host") from None
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise TargetError(f"cannot use {ip} as a source address: {why}") from None


async def resolve(options: ProbeOptions) -> list[str]:
    """The addresses of the named host, each once (no MX lookup: only what was named)."""
    family = {4: socket.AF_INET, 6: socket.AF_INET6}.get(options.family or 0, socket.AF_UNSPEC)
    if options.source_address:
        family = socket.AF_INET6 if ":" in options.source_address else socket.AF_INET
    try:
        literal = ipaddress.ip_address(options.host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        if family != socket.AF_UNSPEC and (literal.version == 6) != (family == socket.AF_INET6):
            raise TargetError(f"{literal} does not match the address family asked for")
        return [str(literal)]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            options.host, None, family=family, type=socket.SOCK_STREAM
        )
    except (socket.gaierror, UnicodeError) as exc:
        source = options.source_address
        if source and isinstance(exc, socket.gaierror) and exc.errno in _NO_ADDRESS:
            raise TargetError(
                f"the source and the target families differ: {options.host} has no "
                f"IPv{_version(source)} address for --source-address {source}"
            ) from None
        raise TargetError(f"cannot resolve {options.host}: {exc}") from None
    found: dict[str, None] = {}
    for info in infos:
        found.setdefault(str(info[4][0]), None)
    if not found:
        raise TargetError(f"{options.host} has no usable address")
    return list(found)[: options.max_addresses]


async def probe(
    options: ProbeOptions,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> ProbeResult:
    started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    t0 = clock()
    budget = Budget(options.total_timeout, clock)
    try:
        check_sources(options)
        addresses = await resolve(options)
    except TargetError as exc:
        return ProbeResult(
            host=options.host, services=[], verdict=Verdict.INCONCLUSIVE, reason=None,
            findings=[], exit_code=3, started=started, seconds=clock() - t0, error=str(exc),
        )  # fmt: skip
    services = []
    for address in addresses:
        for port in options.ports:
            services.append(await ServiceProbe(options, address, port, budget, sleep).run())
    findings = [f for s in services for f in findings_for(s)]
    findings.sort(key=lambda f: -f.severity)  # worst first; stable within a severity
    verdict, reason = overall(services)
    return ProbeResult(
        host=options.host, services=services, verdict=verdict, reason=reason, findings=findings,
        exit_code=exit_code(verdict, findings), started=started, seconds=clock() - t0,
    )  # fmt: skip


def run(options: ProbeOptions) -> ProbeResult:
    return asyncio.run(probe(options))
