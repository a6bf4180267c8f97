"""Run the anchors of bench/dns (pydnsbl, aiodnsbl, checkdmarc) against the DNS lab only.

Run by bench/dns with the interpreter of its own venv (bench/out/dns/anchors-venv), never
imported by relayguard. Reads one job as JSON on stdin, prints one JSON document on stdout::

    {"tool": "pydnsbl" | "aiodnsbl", "server": "127.0.0.1", "port": 5300, "timeout": 2,
     "tries": 2, "zones": [{"zone": "zen.dnsbl.test", "type": "ip"}], "targets": ["192.0.2.1"],
     "detail": true}
    {"tool": "checkdmarc", "server": "127.0.0.1", "port": 5300, "timeout": 2,
     "domains": ["example.test"]}
    {"tool": "versions"}

None of the anchors has a "nameserver and port" setting that covers everything it does, so
this script makes sure no query can leave loopback: every aiodns resolver the DNSBL checkers
build is replaced by one whose c-ares channel has only the lab server, port and a resolv.conf
naming only the lab; checkdmarc gets dnspython ``Do53Nameserver`` objects for the lab; and the
Python socket layer refuses any connect, sendto or name lookup to a non-loopback address (the
refusals are reported as ``blocked``).
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import json
import socket
import sys
import tempfile
import time
from importlib import metadata
from typing import Any

BLOCKED: list[str] = []


def _loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def _check(address: Any) -> None:
    if isinstance(address, tuple) and address and not _loopback(address[0]):
        BLOCKED.append(str(address[0]))
        raise OSError(f"bench/dns: refused to reach {address[0]} (loopback only)")


def guard_network() -> None:
    """Refuse, in this process, every socket operation that names a non-loopback address."""
    cls = socket.socket
    connect, connect_ex, sendto = cls.connect, cls.connect_ex, cls.sendto
    real_getaddrinfo = socket.getaddrinfo

    def guarded_connect(self: socket.socket, address: Any) -> None:
        _check(address)
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        _check(address)
        return connect_ex(self, address)

    def guarded_sendto(self: socket.socket, data: Any, *args: Any) -> int:
        _check(args[-1])
        return sendto(self, data, *args)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _loopback(host):
            BLOCKED.append(str(host))
            raise socket.gaierror(socket.EAI_NONAME, f"bench/dns: no lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    cls.connect = guarded_connect  # type: ignore[method-assign, assignment]
    cls.connect_ex = guarded_connect_ex  # type: ignore[method-assign, assignment]
    cls.sendto = guarded_sendto  # type: ignore[assignment]
    socket.getaddrinfo = guarded_getaddrinfo


def pin_aiodns(server: str, port: int) -> None:
    """Every aiodns.DNSResolver built from now on asks only ``server``:``port``."""
    aiodns: Any = importlib.import_module("aiodns")
    conf = tempfile.NamedTemporaryFile("w", suffix=".resolv.conf", delete=False)  # noqa: SIM115
    conf.write(f"nameserver {server}\n")
    conf.close()
    base = aiodns.DNSResolver

    class LabResolver(base):  # type: ignore[misc, valid-type]
        def __init__(self, nameservers: Any = None, loop: Any = None, **kwargs: Any) -> None:
            kwargs.update(servers=[server], udp_port=port, tcp_port=port,
                          resolvconf_path=conf.name)  # fmt: skip
            super().__init__(nameservers=[server], loop=loop, **kwargs)
            servers = list(self.nameservers)
            if not servers or not all(_loopback(s.rsplit(":", 1)[0]) for s in servers):
                raise SystemExit(f"bench/dns: c-ares would ask {servers}, not loopback")

    aiodns.DNSResolver = LabResolver


def _codes(answers: Any) -> list[str]:
    return sorted(str(a.host) for a in answers or [])


def _outcome(error: Any, answers: Any) -> dict[str, Any]:
    if error is not None:
        return {"outcome": "error", "detail": str(error)}
    if answers:
        return {"outcome": "listed", "codes": _codes(answers)}
    return {"outcome": "not listed"}


def run_pydnsbl(job: dict[str, Any]) -> dict[str, Any]:
    pydnsbl = importlib.import_module("pydnsbl")
    providers = importlib.import_module("pydnsbl.providers")
    out: dict[str, Any] = {}
    for kind, checker_class in (("ip", pydnsbl.DNSBLIpChecker),
                                ("domain", pydnsbl.DNSBLDomainChecker)):  # fmt: skip
        zones = [z["zone"] for z in job["zones"] if z["type"] == kind]
        targets = [t for t in job["targets"] if _is_ip(t) == (kind == "ip")]
        if not zones or not targets:
            continue
        checker = checker_class(providers=[providers.Provider(z) for z in zones],
                                timeout=job["timeout"], tries=job["tries"])  # fmt: skip
        started = time.perf_counter()
        results = checker.bulk_check(targets)
        out.setdefault("elapsed", 0.0)
        out["elapsed"] += time.perf_counter() - started
        for result in results:
            for response in result._results:
                out.setdefault("results", {}).setdefault(result.addr, {})[
                    response.provider.host
                ] = _outcome(response.error, response.response)
            out.setdefault("listed", {})[result.addr] = bool(result.blacklisted)
    return out


def run_aiodnsbl(job: dict[str, Any]) -> dict[str, Any]:
    aiodnsbl = importlib.import_module("aiodnsbl")
    provider = importlib.import_module("aiodnsbl.providers").Provider
    providers = [provider(host=z["zone"], support_type=z["type"]) for z in job["zones"]]

    async def check() -> tuple[float, list[Any]]:
        checker = aiodnsbl.DNSBLChecker(providers=providers, timeout=job["timeout"],
                                        tries=job["tries"])  # fmt: skip
        started = time.perf_counter()
        results = await checker.bulk_check(job["targets"])
        return time.perf_counter() - started, results

    elapsed, results = asyncio.run(check())
    out: dict[str, Any] = {"elapsed": elapsed, "results": {}, "listed": {}}
    for result in results:
        for response in result.responses:
            out["results"].setdefault(result.address, {})[response.provider.host] = _outcome(
                response.error, response.results
            )
        out["listed"][result.address] = bool(result.blacklisted)
    return out


def run_checkdmarc(job: dict[str, Any]) -> dict[str, Any]:
    checkdmarc = importlib.import_module("checkdmarc")
    nameserver = importlib.import_module("dns.nameserver")
    lab = [nameserver.Do53Nameserver(job["server"], job["port"])]
    out: dict[str, Any] = {"results": {}}
    started = time.perf_counter()
    for domain in job["domains"]:
        result = checkdmarc.check_domains([domain], nameservers=lab, timeout=job["timeout"],
                                          retries=0)  # fmt: skip
        out["results"][domain] = json.loads(json.dumps(result, default=str))
    out["elapsed"] = time.perf_counter() - started
    return out


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def versions() -> dict[str, Any]:
    names = ("pydnsbl", "aiodnsbl", "checkdmarc", "aiodns", "pycares", "dnspython")
    found = {name: metadata.version(name) for name in names}
    pycares = importlib.import_module("pycares")
    found["c-ares"] = str(getattr(pycares, "ARES_VERSION", "?"))
    found["python"] = sys.version.split()[0]
    return found


def main() -> int:
    job = json.loads(sys.stdin.read())
    if job["tool"] == "versions":
        print(json.dumps(versions()))
        return 0
    if not _loopback(job["server"]):
        raise SystemExit(f"bench/dns: {job['server']} is not a loopback address")
    guard_network()
    pin_aiodns(job["server"], int(job["port"]))
    runners = {"pydnsbl": run_pydnsbl, "aiodnsbl": run_aiodnsbl, "checkdmarc": run_checkdmarc}
    out = runners[job["tool"]](job)
    if not job.get("detail", True):
        out.pop("results", None)
    out["blocked"] = sorted(set(BLOCKED))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
