"""Outbound SMTP connections per process and user: ``/proc/net/tcp{,6}`` joined with ``/proc/*/fd``.

Theory of operation
-------------------
:func:`parse_proc_net_tcp` turns the kernel's socket table (text) into :class:`Socket` rows:
addresses are hex in host byte order per 32-bit word, ports hex, the owner's uid and the
socket inode in decimal. Outbound SMTP is a socket connecting or connected
(``SYN_SENT``/``ESTABLISHED``) to a remote port in the SMTP port set. :func:`socket_owners`
walks ``/proc/*/fd`` once and maps the inodes asked for to the processes holding them
(a socket a fork shares is held by several).

A connection to a listener of the MTA on this host (a web application submitting to the
local Postfix on 127.0.0.1:25) is mail going *in*, not out: it is left out. A listener is
the MTA's when a process of an MTA user holds it (Postfix's smtpd processes inherit the
master's listening sockets). Anything else going to an SMTP port from a process whose user
is not an MTA user is an ``egress-smtp`` finding naming the process, its user and command.
"""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from relayguard.findings import Finding, Severity, Subject
from relayguard.report.sanitize import clean

ESTABLISHED, SYN_SENT, LISTEN = "01", "02", "0A"
_OUTBOUND_STATES = frozenset({ESTABLISHED, SYN_SENT})
MAX_CMDLINE = 300
MAX_DESTINATIONS = 10
MAX_GROUPS = 200  # process groups reported per sample (metrics label cardinality)
# root-run programs that are the MTA itself (Postfix's master holds the listening sockets)
MTA_ROOT_PROGRAMS = frozenset({"master", "exim4", "exim", "sendmail"})


@dataclass(frozen=True, slots=True)
class Socket:
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    state: str
    uid: int
    inode: int


def decode_address(text: str) -> tuple[str, int]:
    """``0100007F:0019`` -> ("127.0.0.1", 25); IPv6 takes four little-endian words."""
    addr, _, port = text.partition(":")
    raw = bytes.fromhex(addr)
    # each 32-bit word is in host (little-endian) order
    swapped = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    ip = socket.inet_ntop(family, swapped)
    if ip.startswith("::ffff:") and "." in ip:
        ip = ip[7:]  # an IPv4 peer of an IPv6 socket
    return ip, int(port, 16)


def parse_proc_net_tcp(text: str, ports: frozenset[int] | None = None) -> list[Socket]:
    """The rows of ``/proc/net/tcp`` or ``/proc/net/tcp6``; malformed rows are skipped.

    With ``ports``, only the rows :func:`summarize` looks at: SMTP listeners and outbound
    SMTP sockets (the others are not decoded, which is most of the cost on a busy host).
    """
    out = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10:
            continue
        if ports is not None and not _relevant(parts, ports):
            continue
        try:
            lip, lport = decode_address(parts[1])
            rip, rport = decode_address(parts[2])
            out.append(Socket(lip, lport, rip, rport, parts[3], int(parts[7]), int(parts[9])))
        except (ValueError, OSError):
            continue
    return out


def _relevant(parts: list[str], ports: frozenset[int]) -> bool:
    state = parts[3]
    if state == LISTEN:
        where = parts[1]
    elif state in _OUTBOUND_STATES:
        where = parts[2]
    else:
        return False
    try:
        return int(where[where.rfind(":") + 1 :], 16) in ports
    except ValueError:
        return False


def read_sockets(proc: str = "/proc", ports: frozenset[int] | None = None) -> list[Socket]:
    out: list[Socket] = []
    for name in ("tcp", "tcp6"):
        try:
            with open(f"{proc}/net/{name}", encoding="ascii", errors="replace") as f:
                out.extend(parse_proc_net_tcp(f.read(), ports))
        except OSError:
            continue  # no IPv6 in this kernel
    return out


@dataclass(frozen=True, slots=True)
class Process:
    pid: int
    name: str
    uid: int
    user: str
    cmdline: str


def _user(uid: int, cache: dict[int, str]) -> str:
    name = cache.get(uid)
    if name is None:
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        cache[uid] = name
    return name


def _process(pid: int, proc: str, users: dict[int, str]) -> Process | None:
    base = f"{proc}/{pid}"
    try:
        with open(f"{base}/comm", encoding="utf-8", errors="replace") as f:
            name = f.read().strip()
        with open(f"{base}/cmdline", "rb") as f:
            cmdline = f.read(4 * MAX_CMDLINE).replace(b"\0", b" ").decode("utf-8", "replace")
        uid = os.stat(base).st_uid
    except OSError:
        return None  # gone since
    return Process(pid, name, uid, _user(uid, users), cmdline.strip()[:MAX_CMDLINE])


def socket_owners(inodes: set[int], proc: str = "/proc") -> dict[int, list[Process]]:
    """The processes holding each of ``inodes`` (one scan of every process's fds)."""
    if not inodes:
        return {}
    found: dict[int, list[int]] = {}
    try:
        pids = [int(e) for e in os.listdir(proc) if e.isdigit()]
    except OSError:
        return {}
    for pid in pids:
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in inodes:
                    holders = found.setdefault(inode, [])
                    if pid not in holders:
                        holders.append(pid)
    users: dict[int, str] = {}
    processes: dict[int, Process | None] = {}  # read once per process, not once per socket
    out: dict[int, list[Process]] = {}
    for inode, holders in found.items():
        procs = []
        for pid in holders:
            if pid not in processes:
                processes[pid] = _process(pid, proc, users)
            p = processes[pid]
            if p is not None:
                procs.append(p)
        if procs:
            out[inode] = procs
    return out


@dataclass(slots=True)
class ProcessGroup:
    """The outbound SMTP connections of one program run by one user."""

    user: str
    name: str
    mta: bool
    connections: int = 0
    connecting: int = 0  # SYN_SENT: attempts not answered yet
    pids: set[int] = field(default_factory=set)
    cmdline: str = ""
    destinations: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "process": self.name,
            "mta": self.mta,
            "connections": self.connections,
            "connecting": self.connecting,
            "pids": sorted(self.pids)[:20],
            "cmdline": self.cmdline,
            "destinations": [
                {"value": d, "count": n}
                for d, n in sorted(self.destinations.items(), key=lambda kv: (-kv[1], kv[0]))
            ][:MAX_DESTINATIONS],
        }


@dataclass(slots=True)
class EgressSample:
    groups: list[ProcessGroup] = field(default_factory=list)
    to_local_mta: int = 0  # connections to the MTA's own listeners, left out
    error: str | None = None

    @property
    def connections(self) -> int:
        return sum(g.connections for g in self.groups)

    @property
    def mta_connections(self) -> int:
        return sum(g.connections for g in self.groups if g.mta)

    def to_json(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "mta_connections": self.mta_connections,
            "to_local_mta": self.to_local_mta,
            "by_process": [g.to_json() for g in self.groups],
            "error": self.error,
        }


def summarize(
    sockets: Iterable[Socket],
    owners: dict[int, list[Process]],
    ports: frozenset[int],
    mta_users: frozenset[str],
) -> EgressSample:
    """Group the outbound SMTP sockets by (user, program); see the module docstring."""
    users: dict[int, str] = {}
    rows = list(sockets)
    mta_listeners: set[tuple[str, int]] = set()
    for s in rows:
        if s.state == LISTEN and s.local_port in ports:
            holders = owners.get(s.inode, [])
            if _user(s.uid, users) in mta_users or any(
                p.user in mta_users or (p.user == "root" and p.name in MTA_ROOT_PROGRAMS)
                for p in holders
            ):
                mta_listeners.add((s.local_ip, s.local_port))
    sample = EgressSample()
    groups: dict[tuple[str, str], ProcessGroup] = {}
    for s in rows:
        if s.state not in _OUTBOUND_STATES or s.remote_port not in ports or s.inode == 0:
            continue
        if _is_listener(s.remote_ip, s.remote_port, mta_listeners):
            sample.to_local_mta += 1
            continue
        found = owners.get(s.inode)
        if found:
            p, holders = found[0], found
            user, name, pids, cmdline = p.user, p.name, {h.pid for h in holders}, p.cmdline
        else:  # the process is gone (or hidden): the kernel still says whose socket it is
            user, name, pids, cmdline = _user(s.uid, users), "?", set(), ""
        key = (user, name)
        group = groups.get(key)
        if group is None:
            group = groups[key] = ProcessGroup(user, name, user in mta_users, cmdline=cmdline)
        group.connections += 1
        group.connecting += s.state == SYN_SENT
        group.pids |= pids
        dest = (
            f"{s.remote_ip}:{s.remote_port}"
            if ":" not in s.remote_ip
            else (f"[{s.remote_ip}]:{s.remote_port}")
        )
        if dest in group.destinations or len(group.destinations) < 1000:
            group.destinations[dest] = group.destinations.get(dest, 0) + 1
    ordered = sorted(groups.values(), key=lambda g: (-g.connections, g.user, g.name))
    sample.groups = ordered[:MAX_GROUPS]
    return sample


def _is_listener(ip: str, port: int, listeners: set[tuple[str, int]]) -> bool:
    if (ip, port) in listeners:
        return True
    wildcard = "::" if ":" in ip else "0.0.0.0"
    return (wildcard, port) in listeners or ("::", port) in listeners


def outbound_inodes(sockets: Iterable[Socket], ports: frozenset[int]) -> set[int]:
    """The inodes worth a process lookup: outbound SMTP sockets and SMTP listeners."""
    return {
        s.inode
        for s in sockets
        if s.inode
        and (
            (s.state in _OUTBOUND_STATES and s.remote_port in ports)
            or (s.state == LISTEN and s.local_port in ports)
        )
    }


def sample_egress(
    ports: frozenset[int], mta_users: frozenset[str], proc: str = "/proc"
) -> EgressSample:
    sockets = read_sockets(proc, ports)
    owners = socket_owners(outbound_inodes(sockets, ports), proc)
    return summarize(sockets, owners, ports, mta_users)


def egress_findings(sample: EgressSample, now: float) -> list[Finding]:
    """One ``egress-smtp`` finding per program of a non-MTA user talking to SMTP ports."""
    out = []
    for g in sample.groups:
        if g.mta:
            continue
        dests = sorted(g.destinations.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(d for d, _ in dests[:3]) + (" ..." if len(dests) > 3 else "")
        pids = sorted(g.pids)
        who = f"{clean(g.name, 64)} (user {clean(g.user, 64)}"
        who += f", pid {', '.join(map(str, pids[:5]))})" if pids else ")"
        out.append(
            Finding(
                indicator="egress-smtp",
                severity=Severity.HIGH,
                subject=Subject("process", f"{g.user}/{g.name}"),
                title=(
                    f"{who} has {g.connections} outbound SMTP connection(s) to {shown}, "
                    "bypassing the MTA"
                ),
                first_seen=now,
                last_seen=now,
                count=g.connections,
                evidence=[f"{g.user} {p} {clean(g.cmdline, MAX_CMDLINE)}" for p in pids[:5]],
                mitigations=["block-egress-smtp", "find-spam-script"],
                details={"source": "egress", **g.to_json()},
            )
        )
    return out
