"""Connections to one service: banner, EHLO, STARTTLS or implicit TLS, and what they showed."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from relayguard.probe._connection import Budget, Connection, client_tls_context
from relayguard.probe._errors import (
    ConnectionLost,
    ProbeTimeout,
    RemoteProtocolError,
    TargetError,
)
from relayguard.probe._options import ProbeOptions
from relayguard.probe.catalogue import Variables, make_variables
from relayguard.probe.greeting import banner_host, extensions
from relayguard.probe.result import Phase, ServiceResult, TlsInfo, reply_lines

Sleep = Callable[[float], Awaitable[None]]


class Refused(Exception):
    def __init__(self, code: int, what: str) -> None:
        super().__init__(f"{what} answered {code}")
        self.code = code


class NoTls(Exception):
    pass


# What ends an optional check quietly (noted in the service's errors). Running out of the
# whole budget (OutOfTime, a ProbeTimeout) is caught before these by every caller.
CHECK_ERRORS = (Refused, NoTls, ProbeTimeout, ConnectionLost, RemoteProtocolError, TargetError)


class Sessions:
    """Opens connections to one service, ready for transactions (banner, EHLO, TLS)."""

    def __init__(
        self, options: ProbeOptions, address: str, port: int, budget: Budget, sleep: Sleep
    ) -> None:
        self.o = options
        self.budget = budget
        self.sleep = sleep
        self.s = ServiceResult(
            address=address,
            port=port,
            implicit_tls=port in options.implicit_tls_ports,
            source_chosen=options.source_address is not None,
        )
        self.tls = client_tls_context()
        self.sni = None if _is_ip(options.host) else options.host
        self._variables: Variables | None = None
        self._greeted: set[Phase] = set()

    @property
    def variables(self) -> Variables:
        if self._variables is None:
            self._variables = make_variables(
                target_ip=self.s.address, host=self.s.host, token=self.o.token,
                domain=self.o.domain, local_domain=self.o.local_domain,
            )  # fmt: skip
        return self._variables

    async def session(
        self, phase: Phase, *, source: str | None = None, allow_data: bool = False
    ) -> Connection:
        """A connection ready for transactions: banner, EHLO, and TLS for the phase."""
        s = self.s
        try:
            conn = await Connection.open(
                s.address, s.port, source=source or self.o.source_address, budget=self.budget,
                connect_timeout=self.o.connect_timeout, command_timeout=self.o.command_timeout,
                tls=self.tls if phase is Phase.TLS else None, allow_data=allow_data,
                limits=self.o.limits,
            )  # fmt: skip
        except ConnectionLost as exc:
            if phase is Phase.TLS and not s.tls:
                s.tls.append(TlsInfo(phase=Phase.TLS, error=str(exc)))
            raise
        s.connections += 1
        if s.source is None and source is None:
            s.source = conn.local_address  # known even when no banner comes
        try:
            await self.greet(conn, phase)
        except ConnectionLost:
            if conn.dialogue.awaiting == "CONNECT":
                s.closed_before_banner += 1
            self.account(conn)
            await conn.close()
            raise
        except Exception:
            self.account(conn)
            await conn.quit()
            raise
        except BaseException:
            self.account(conn)
            await conn.close()
            raise
        if phase not in self._greeted:
            self._greeted.add(phase)
            s.greeting.extend(conn.transcript)
        return conn

    async def greet(self, conn: Connection, phase: Phase) -> None:
        s = self.s
        banner = await conn.read_reply()
        if s.banner_code is None:
            s.banner_code = banner.code
            s.banner = tuple(line[3:] for line in reply_lines(banner))
            s.host = banner_host(banner)
            s.source = conn.local_address
        if banner.code != 220:
            raise Refused(banner.code, "the banner")
        ext = await self.ehlo(conn, self.o.helo)
        if s.host is None and self._variables is None:
            s.host = ext.pop("", None)
        ext.pop("", None)
        if phase is Phase.TLS:
            self.record_tls(conn, Phase.TLS)
        s.extensions.setdefault(Phase.TLS if phase is Phase.TLS else Phase.PLAIN, ext)
        if phase is not Phase.STARTTLS:
            return
        if "STARTTLS" not in ext:
            raise NoTls("STARTTLS is not offered")
        reply = await conn.command("STARTTLS")
        if reply.code != 220:
            self.tls_error(f"STARTTLS answered {reply.code}")
            raise NoTls()
        try:
            await conn.starttls(self.tls, self.sni)
        except ConnectionLost as exc:
            self.tls_error(str(exc))
            raise NoTls() from None
        self.record_tls(conn, Phase.STARTTLS)
        after = await self.ehlo(conn, self.o.helo)
        after.pop("", None)
        s.extensions.setdefault(Phase.STARTTLS, after)

    async def ehlo(self, conn: Connection, helo: str) -> dict[str, str]:
        """EHLO (HELO when EHLO is refused); the extensions, plus the greeting host at ""."""
        reply = await conn.command("EHLO", helo)
        if reply.code == 250:
            conn.helo = helo
            ext = extensions(reply)
            host = banner_host(reply)
            if host:
                ext[""] = host
            return ext
        if reply.code == 421:
            raise Refused(421, "EHLO")
        reply = await conn.command("HELO", helo)
        if reply.code != 250:
            raise Refused(reply.code, "HELO")
        conn.helo = helo
        return {}

    def record_tls(self, conn: Connection, phase: Phase) -> None:
        if not any(t.phase is phase for t in self.s.tls):
            version, cipher = conn.tls_version()
            self.s.tls.append(TlsInfo(phase=phase, version=version, cipher=cipher))

    def tls_error(self, why: str) -> None:
        if not any(t.phase is Phase.STARTTLS for t in self.s.tls):
            self.s.tls.append(TlsInfo(phase=Phase.STARTTLS, error=why))

    def account(self, conn: Connection) -> None:
        self.s.slowest_reply = max(self.s.slowest_reply, conn.slowest)
        self.s.slow_replies += conn.slow

    async def done(self, conn: Connection | None) -> None:
        if conn is not None:
            self.account(conn)
            await conn.quit()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
