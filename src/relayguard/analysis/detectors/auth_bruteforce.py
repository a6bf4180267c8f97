"""auth-bruteforce: SASL failures per client IP, and per username across IPs (password spraying).

Failures come from the explicit failure lines of every MTA. Postfix also counts failed AUTH
commands in its ``disconnect ... auth=0/N`` summary; those are added only for the part not
already explained by failure lines of the same smtpd process, so nothing is counted twice
(a client that aborts AUTH leaves no failure line at all).
"""

from __future__ import annotations

from typing import ClassVar

from relayguard.analysis.detectors.base import Context, Detector, Evidence, Span, ranked
from relayguard.findings import Finding, Severity, Subject
from relayguard.logs import events as E
from relayguard.logs.events import Event

_MAX_SESSIONS = 10_000
_MAX_TRACKED_IPS = 100_000
_MAX_WINDOW_IPS = 100_000
_MAX_USERS_PER_IP = 50
_MAX_IPS_PER_USER = 200


class _IpState:
    __slots__ = ("evidence", "recent", "span", "triggered", "users")

    def __init__(self) -> None:
        self.span = Span()
        self.recent: list[float] = []  # newest failure times, at most min_failures
        # min_failures failures fell inside one window at some point
        self.triggered = False
        self.users: dict[str, int] = {}
        self.evidence = Evidence()


class _UserState:
    __slots__ = ("evidence", "ips", "more_ips", "span")

    def __init__(self) -> None:
        self.span = Span()
        self.ips: dict[str, int] = {}
        self.more_ips = False  # failures came from more addresses than are kept
        self.evidence = Evidence()


class AuthBruteforce(Detector):
    indicator = "auth-bruteforce"
    events: ClassVar[tuple[str, ...]] = (E.AUTH_FAILURE, E.CONNECT, E.DISCONNECT)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.s = ctx.config.detectors.auth_bruteforce
        self.by_ip: dict[str, _IpState] = {}
        self.by_user: dict[str, _UserState] = {}
        self.forgotten = 0  # single-failure IPs dropped to bound memory
        self.server = _ServerWindows()
        self.host = ""
        # failure lines seen per live smtpd process, to reconcile with disconnect counters
        self.sessions: dict[tuple[str, int | None], int] = {}

    def on_event(self, ev: Event) -> None:
        t = ev.type
        if t == E.AUTH_FAILURE:
            self._failure(ev, 1)
            if ev.mta == "postfix":
                key = (ev.host, ev.pid)
                self.sessions[key] = self.sessions.get(key, 0) + 1
        elif t == E.CONNECT:
            if ev.mta == "postfix" and ev.pid is not None:
                if len(self.sessions) >= _MAX_SESSIONS:
                    self.sessions.clear()
                self.sessions[(ev.host, ev.pid)] = 0
        elif ev.auth_failed:
            explained = self.sessions.pop((ev.host, ev.pid), 0)
            if ev.auth_failed > explained:
                self._failure(ev, ev.auth_failed - explained)
        else:
            self.sessions.pop((ev.host, ev.pid), None)

    def _forget_single_failures(self) -> None:
        """Bound memory under a botnet: one failure from an IP reaches no threshold."""
        kept = {ip: st for ip, st in self.by_ip.items() if st.span.count > 1 or st.triggered}
        self.forgotten += len(self.by_ip) - len(kept)
        if len(kept) >= _MAX_TRACKED_IPS:  # still full: keep the busiest half
            busiest = sorted(kept.items(), key=lambda kv: -kv[1].span.count)
            self.forgotten += len(kept) - _MAX_TRACKED_IPS // 2
            kept = dict(busiest[: _MAX_TRACKED_IPS // 2])
        self.by_ip = kept

    def _failure(self, ev: Event, n: int) -> None:
        self.host = self.host or ev.host
        ip = ev.client_ip
        t = ev.time
        if t is not None:
            self.server.add(int(t // self.s.window), t, ip, n, ev.raw)
        if ip:
            st = self.by_ip.get(ip)
            if st is None:
                if len(self.by_ip) >= _MAX_TRACKED_IPS:
                    self._forget_single_failures()
                st = self.by_ip[ip] = _IpState()
            st.span.add(t, n)
            st.evidence.add(ev.raw)
            if not st.triggered:
                stamp = 0.0 if t is None else t
                need = self.s.min_failures
                recent = st.recent
                recent.extend([stamp] * min(n, need))
                if len(recent) > need:
                    del recent[:-need]
                st.triggered = len(recent) == need and stamp - recent[0] <= self.s.window
                if st.triggered:
                    recent.clear()
            user = ev.sasl_username
            if user and (user in st.users or len(st.users) < _MAX_USERS_PER_IP):
                st.users[user] = st.users.get(user, 0) + n
        user = (ev.sasl_username or "").lower()
        if user:
            us = self.by_user.get(user)
            if us is None:
                us = self.by_user[user] = _UserState()
            us.span.add(t, n)
            us.evidence.add(ev.raw)
            if ip and (ip in us.ips or len(us.ips) < _MAX_IPS_PER_USER):
                us.ips[ip] = us.ips.get(ip, 0) + n
            elif ip:
                us.more_ips = True

    def _distributed(self) -> Finding | None:
        w = self.server.peak()
        if w is None or w.failures < self.s.server_min_failures:
            return None
        if len(w.ips) < self.s.server_min_ips:
            return None  # a few busy addresses: their own findings say it
        ips = f"more than {len(w.ips):,}" if len(w.ips) >= _MAX_WINDOW_IPS else f"{len(w.ips):,}"
        return Finding(
            indicator=self.indicator,
            severity=Severity.HIGH,
            subject=Subject("host", self.host or "mail server"),
            title=(
                f"distributed brute force: {w.failures:,} failed SASL logins from {ips} "
                f"addresses within {_duration(self.s.window)}"
            ),
            first_seen=w.first,
            last_seen=w.last,
            count=w.failures,
            evidence=w.evidence.lines(),
            mitigations=["limit-auth-attempts", "ban-ip"],
            details={
                "failures_in_window": w.failures,
                "addresses_in_window": len(w.ips),
                "window_seconds": self.s.window,
                "per_minute": _per_minute(w.failures, w.first, w.last),
            },
        )

    def finish(self) -> list[Finding]:
        out: list[Finding] = []
        distributed = self._distributed()
        if distributed is not None:
            out.append(distributed)
        for ip, st in self.by_ip.items():
            if not st.triggered:
                continue
            n = st.span.count
            severity = Severity.HIGH if n >= self.s.high_failures else Severity.MEDIUM
            users = ranked(st.users)
            rate = _per_minute(n, st.span.first, st.span.last)
            targets = f" against {len(users)} account(s)" if users else ""
            out.append(
                Finding(
                    indicator=self.indicator,
                    severity=severity,
                    subject=Subject("ip", ip),
                    title=f"{n} failed SASL logins from {ip}{targets}",
                    first_seen=st.span.first,
                    last_seen=st.span.last,
                    count=n,
                    evidence=st.evidence.lines(),
                    mitigations=["ban-ip", "limit-auth-attempts"],
                    details={
                        "failures": n,
                        "per_minute": rate,
                        "usernames": [{"value": u, "count": c} for u, c in users[:20]],
                    },
                )
            )
        for user, us in self.by_user.items():
            if len(us.ips) < self.s.spray_min_ips or us.span.count < self.s.spray_min_failures:
                continue
            n = us.span.count
            ips = ranked(us.ips)
            sources = f"more than {len(ips)}" if us.more_ips else str(len(ips))
            severity = Severity.HIGH if n >= self.s.high_failures else Severity.MEDIUM
            out.append(
                Finding(
                    indicator=self.indicator,
                    severity=severity,
                    subject=Subject("sasl_user", user),
                    title=f"{n} failed logins as {user} from {sources} addresses (spraying)",
                    first_seen=us.span.first,
                    last_seen=us.span.last,
                    count=n,
                    evidence=us.evidence.lines(),
                    mitigations=["limit-auth-attempts", "ban-ip", "reset-password"],
                    details={
                        "failures": n,
                        "per_minute": _per_minute(n, us.span.first, us.span.last),
                        "ips": [{"value": i, "count": c} for i, c in ips[:20]],
                        "distinct_ips": len(ips),
                        "distinct_ips_capped": us.more_ips,
                    },
                    related=[Subject("ip", i) for i, _ in ips[:20]],
                )
            )
        return out


class _ServerWindows:
    """Failures on the whole server per window, and the busiest window: a botnet that fails
    once per address never reaches a per-IP threshold, but the server sees all of it."""

    __slots__ = ("best", "current")

    def __init__(self) -> None:
        self.current: _Window | None = None
        self.best: _Window | None = None

    def add(self, index: int, t: float, ip: str | None, n: int, line: str) -> None:
        w = self.current
        if w is None or index != w.index:
            self._close()
            w = self.current = _Window(index, t)
        w.failures += n
        w.last = t
        if ip and len(w.ips) < _MAX_WINDOW_IPS:
            w.ips.add(ip)
        w.evidence.add(line)

    def _close(self) -> None:
        w = self.current
        if w is not None and (self.best is None or w.failures > self.best.failures):
            self.best = w
        self.current = None

    def peak(self) -> _Window | None:
        """The busiest window so far, the open one included (nothing is closed by asking)."""
        w, best = self.current, self.best
        if w is not None and (best is None or w.failures > best.failures):
            return w
        return best


class _Window:
    __slots__ = ("evidence", "failures", "first", "index", "ips", "last")

    def __init__(self, index: int, t: float) -> None:
        self.index = index
        self.first = self.last = t
        self.failures = 0
        self.ips: set[str] = set()
        self.evidence = Evidence()


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "an hour" if hours == 1 else f"{hours} hours"
    return f"{seconds} seconds"


def _per_minute(n: int, first: float | None, last: float | None) -> float:
    if first is None or last is None or last - first < 60:
        return float(n)
    return round(n / ((last - first) / 60), 2)
