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
import ipaddress
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

__all__ = ["ProbeOptions", "probe", "resolve", "run"]


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
