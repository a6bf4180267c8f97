"""compromised-account: a login that followed a password attack, or an unusual login then a burst.

Two ways an account is judged taken over:

1. *After failures.* A successful SASL login for user U from IP X, within ``window`` seconds of
   at least ``min_failures`` failures against U or from X. How bad depends on who failed:
   X itself attacked (failed against several usernames, or failed as often as the brute-force
   threshold) -> critical; X's /24 or /64 did -> critical; other attacking IPs did -> high;
   only a few failures against U from a network U never used before -> medium (maybe the user
   mistyped on a new device). Failures from U's usual networks alone are a user mistyping.
2. *New network, then a burst.* U has a history of ``known_logins`` logins, logs in from a /24
   or /64 never seen for U, and within ``burst_window`` sends to ``new_network_burst`` external
   recipients -> high.

After the takeover every external recipient U mails is counted, so the finding tells the whole
story: the attack, the login, and what was sent since (messages, recipients, domains, forged
sender domains).
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from relayguard.analysis.detectors.base import Context, Detector, Evidence, ranked
from relayguard.analysis.locality import domain_of, network_of
from relayguard.analysis.messages import Message
from relayguard.findings import Finding, Severity, Subject, TimelineEntry
from relayguard.logs import events as E
from relayguard.logs.events import Event, iso_time

_MAX_FAILS_KEPT = 256
_MAX_TRACKED_IPS = 100_000
_MAX_HOURS = 24 * 8
_MAX_IPS_PER_USER = 200
_MAX_NETWORKS = 64
_MAX_USERS_PER_IP = 32
_MAX_DOMAINS = 5000


class _IpFailures:
    __slots__ = ("keep", "times", "total", "users")

    def __init__(self, keep: int) -> None:
        self.keep = keep  # newest failure times kept: enough to reach any threshold
        self.times: list[float] = []
        self.users: set[str] = set()
        self.total = 0

    def add(self, t: float) -> None:
        self.total += 1
        times = self.times
        times.append(t)
        if len(times) > 2 * self.keep:
            del times[: -self.keep]


class _UserAuth:
    __slots__ = ("evidence", "fail_hours", "fail_ips", "fails", "first_fail", "logins", "networks")

    def __init__(self) -> None:
        # the newest failures, enough to judge a login; exact counts are kept below
        self.fails: deque[tuple[float, str]] = deque(maxlen=_MAX_FAILS_KEPT)
        self.fail_hours: dict[int, int] = {}  # hour index -> failures against the account
        self.fail_ips: dict[str, int] = {}  # address -> failures against the account
        self.first_fail: float | None = None
        self.logins = 0
        self.networks: dict[str, int] = {}
        self.evidence = Evidence(6)


class _Takeover:
    __slots__ = (
        "domains",
        "evidence",
        "failing_ips",
        "failures",
        "first_failure",
        "first_message",
        "how",
        "ip",
        "last_failure",
        "last_message",
        "login_line",
        "messages",
        "method",
        "other_logins",
        "recipients",
        "sender_domains",
        "severity",
        "time",
    )

    def __init__(self, time: float, ip: str, how: str, severity: Severity) -> None:
        self.time = time
        self.ip = ip
        self.how = how
        self.severity = severity
        self.method: str | None = None
        self.failures = 0
        self.failing_ips: dict[str, int] = {}
        self.first_failure: float | None = None
        self.last_failure: float | None = None
        self.login_line = ""
        self.messages = 0
        self.recipients = 0
        self.domains: set[str] = set()
        self.sender_domains: dict[str, int] = {}
        self.first_message: float | None = None
        self.last_message: float | None = None
        self.other_logins: dict[str, int] = {}
        self.evidence = Evidence(8)


class _Candidate:
    """A login that is only a takeover if a burst of outside mail follows it."""

    __slots__ = ("ev", "fails", "first_message", "how", "messages", "recipients", "since")

    def __init__(self, ev: Event, how: str, fails: list[tuple[float, str]], since: float) -> None:
        self.ev = ev
        self.how = how
        self.fails = fails
        self.since = since
        self.recipients = 0
        self.messages = 0
        self.first_message: float | None = None


class CompromisedAccount(Detector):
    indicator = "compromised-account"
    events: ClassVar[tuple[str, ...]] = (E.AUTH_FAILURE, E.AUTH_SUCCESS, E.QUEUED)
    wants_external_recipients = True

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.s = ctx.config.detectors.compromised_account
        self.attack_threshold = ctx.config.detectors.auth_bruteforce.min_failures
        self.ip_fails: dict[str, _IpFailures] = {}
        self.keep = max(self.attack_threshold, self.s.min_failures)
        self.users: dict[str, _UserAuth] = {}
        self.takeovers: dict[str, _Takeover] = {}
        self.candidates: dict[str, _Candidate] = {}

    # --- events --------------------------------------------------------------------------
    def on_event(self, ev: Event) -> None:
        t = ev.type
        if t == E.AUTH_FAILURE:
            self._failure(ev)
        elif t == E.AUTH_SUCCESS or (t == E.QUEUED and ev.sasl_username and ev.mta != "postfix"):
            self._success(ev)

    def _failure(self, ev: Event) -> None:
        t = ev.time or 0.0
        ip = ev.client_ip or ""
        user = (ev.sasl_username or "").lower()
        if ip:
            st = self.ip_fails.get(ip)
            if st is None:
                if len(self.ip_fails) >= _MAX_TRACKED_IPS:
                    self._forget_single_failures()
                st = self.ip_fails[ip] = _IpFailures(self.keep)
            st.add(t)
            if user and len(st.users) < _MAX_USERS_PER_IP:
                st.users.add(user)
        if user:
            ua = self._user(user)
            ua.fails.append((t, ip))
            hour = int(t // 3600)
            ua.fail_hours[hour] = ua.fail_hours.get(hour, 0) + 1
            if len(ua.fail_hours) > _MAX_HOURS:
                del ua.fail_hours[min(ua.fail_hours)]
            if ip and (ip in ua.fail_ips or len(ua.fail_ips) < _MAX_IPS_PER_USER):
                ua.fail_ips[ip] = ua.fail_ips.get(ip, 0) + 1
            if ua.first_fail is None:
                ua.first_fail = t
            ua.evidence.add(ev.raw)

    def _forget_single_failures(self) -> None:
        """Bound memory under a botnet: IPs that failed once cannot reach any threshold."""
        self.ip_fails = {ip: st for ip, st in self.ip_fails.items() if st.total > 1}
        if len(self.ip_fails) >= _MAX_TRACKED_IPS:  # still full: keep the busiest half
            busiest = sorted(self.ip_fails.items(), key=lambda kv: -kv[1].total)
            self.ip_fails = dict(busiest[: _MAX_TRACKED_IPS // 2])

    def _user(self, user: str) -> _UserAuth:
        ua = self.users.get(user)
        if ua is None:
            ua = self.users[user] = _UserAuth()
        return ua

    def _is_attacker(self, ip: str, since: float) -> bool:
        st = self.ip_fails.get(ip)
        if st is None:
            return False
        recent = sum(1 for x in st.times if x >= since)
        # a user mistyping the login name then the password touches two usernames: an
        # attacker is one that failed often, or against several accounts repeatedly
        return recent >= self.attack_threshold or (
            len(st.users) >= 2 and recent >= self.s.min_failures
        )

    def _success(self, ev: Event) -> None:
        user = (ev.sasl_username or "").lower()
        ip = ev.client_ip or ""
        t = ev.time or 0.0
        takeover = self.takeovers.get(user)
        if takeover is not None:
            if ip and ip != takeover.ip and len(takeover.other_logins) < 50:
                takeover.other_logins[ip] = takeover.other_logins.get(ip, 0) + 1
            return
        ua = self._user(user)
        since = t - self.s.window
        # most logins follow no failure at all: only look closer when one is recent
        recent_fail = bool(ua.fails) and ua.fails[-1][0] >= since
        fails = [(ft, fip) for ft, fip in ua.fails if ft >= since] if recent_fail else []
        ip_state = self.ip_fails.get(ip) if ip else None
        ip_recent = 0
        if ip_state is not None and ip_state.times and ip_state.times[-1] >= since:
            ip_recent = sum(1 for x in ip_state.times if x >= since)
        net = network_of(ip) if ip else ""
        known_net = net in ua.networks
        verdict = self._judge(user, ip, net, ua, fails, ip_recent, since)
        if verdict is not None:
            how, severity = verdict
            if severity is None:
                if user not in self.candidates:
                    self.candidates[user] = _Candidate(ev, how, fails, since)
            else:
                self._take_over(user, ev, how, severity, fails, since)
        elif (
            ip
            and ua.logins >= self.s.known_logins
            and not known_net
            and user not in self.candidates
        ):
            self.candidates[user] = _Candidate(ev, "a new network", [], since)
        ua.logins += 1
        if net and (known_net or len(ua.networks) < _MAX_NETWORKS):
            ua.networks[net] = ua.networks.get(net, 0) + 1

    def _judge(
        self,
        user: str,
        ip: str,
        net: str,
        ua: _UserAuth,
        fails: list[tuple[float, str]],
        ip_recent: int,
        since: float,
    ) -> tuple[str, Severity | None] | None:
        """(how, severity) when this login looks like a takeover, else None.

        A severity of None means "only if a burst follows": light spraying against many
        accounts is background noise, and a user's second network (home, phone) shows up
        for the first time sooner or later.
        """
        n_user = len(fails)
        if n_user < self.s.min_failures and ip_recent < self.s.min_failures:
            return None
        failing: dict[str, int] = {}
        for _, fip in fails:
            if fip:
                failing[fip] = failing.get(fip, 0) + 1
        massive = n_user >= self.s.targeted_failures
        ip_state = self.ip_fails.get(ip) if ip else None
        if net in ua.networks and (ip_state is None or ip_state.users <= {user}):
            # the owner's usual network, failing against this account only: a phone
            # retrying an old password, not an attacker
            return None
        if ip and (
            self._is_attacker(ip, since)
            or ip_recent >= self.attack_threshold
            or (n_user >= self.attack_threshold and failing.get(ip, 0) >= self.s.min_failures)
        ):
            return self._attacker_how(ip), Severity.CRITICAL
        if net in ua.networks:
            return None  # the owner on a usual network: mistyping, or attacked from elsewhere
        attackers = [fip for fip in failing if self._is_attacker(fip, since)]
        if any(network_of(a) == net for a in attackers):
            return "in an attacking network", Severity.CRITICAL
        if massive:
            # with a login history this network is new; without one we cannot tell
            severity = Severity.HIGH if ua.logins else Severity.MEDIUM
            return "after a targeted attack from other IPs", severity
        if attackers:
            return "after attacks from other IPs", None
        return "a new network after failed logins", None

    def _attacker_how(self, ip: str) -> str:
        st = self.ip_fails.get(ip)
        if st is None:
            return "an attacking IP"
        accounts = f" against {len(st.users)} accounts" if len(st.users) > 1 else ""
        return f"an attacking IP: {st.total} failed logins{accounts}"

    def _take_over(
        self,
        user: str,
        ev: Event,
        how: str,
        severity: Severity,
        fails: list[tuple[float, str]],
        since: float,
    ) -> None:
        ip = ev.client_ip or ""
        tk = _Takeover(ev.time or 0.0, ip, how, severity)
        tk.method = ev.sasl_method
        tk.login_line = ev.raw
        ua = self.users[user]
        first_hour = int(since // 3600)
        tk.failures = sum(n for h, n in ua.fail_hours.items() if h >= first_hour)
        if fails:
            tk.failing_ips = dict(ua.fail_ips)
            first = ua.first_fail
            tk.first_failure = first if first is not None and first >= since else fails[0][0]
            tk.last_failure = fails[-1][0]
        if ip and ip not in tk.failing_ips:
            st = self.ip_fails.get(ip)
            if st is not None:
                recent = [x for x in st.times if x >= since]
                if recent:
                    tk.failing_ips[ip] = len(recent)
                    tk.failures += len(recent)
                    if tk.first_failure is None:
                        tk.first_failure, tk.last_failure = recent[0], recent[-1]
        for line in ua.evidence.lines():
            tk.evidence.add(line)
        tk.evidence.add(ev.raw)
        self.takeovers[user] = tk
        self.candidates.pop(user, None)

    # --- recipients ----------------------------------------------------------------------
    def on_external_recipient(self, msg: Message, ev: Event, domain: str) -> None:
        user = msg.sasl_username
        if not user:
            return
        tk = self.takeovers.get(user)
        if tk is None:
            cand = self.candidates.get(user)
            if cand is None:
                return
            t = ev.time or 0.0
            if t - (cand.ev.time or 0.0) > self.s.burst_window:
                del self.candidates[user]
                return
            cand.recipients += 1
            if msg.external_recipients == 1:
                cand.messages += 1
                if cand.first_message is None:
                    cand.first_message = ev.time
            if cand.recipients < self.s.new_network_burst:
                return
            self._take_over(user, cand.ev, cand.how, Severity.MEDIUM, cand.fails, cand.since)
            tk = self.takeovers[user]
            # everything since the login belongs to the story; this recipient is added below
            tk.recipients = cand.recipients - 1
            tk.messages = cand.messages - (msg.external_recipients == 1)
            tk.first_message = cand.first_message
        if msg.time is not None and msg.time < tk.time:
            return
        tk.recipients += 1
        if (
            tk.severity < Severity.HIGH
            and tk.recipients >= self.s.new_network_burst
            and (ev.time or 0.0) - tk.time <= self.s.burst_window
        ):
            tk.severity = Severity.HIGH
            tk.how += f", then a burst of {tk.recipients} external recipients"
        if len(tk.domains) < _MAX_DOMAINS:
            tk.domains.add(domain)
        if msg.external_recipients == 1:
            tk.messages += 1
            if tk.first_message is None:
                tk.first_message = ev.time
                tk.evidence.add(msg.first_line)
            tk.evidence.add(ev.raw)
            sdom = domain_of(msg.sender)
            if sdom and not self.ctx.local.is_local(sdom) and len(tk.sender_domains) < 1000:
                tk.sender_domains[sdom] = tk.sender_domains.get(sdom, 0) + 1
        tk.last_message = ev.time

    # --- findings ------------------------------------------------------------------------
    def finish(self) -> list[Finding]:
        return [self._finding(user, tk) for user, tk in self.takeovers.items()]

    def _finding(self, user: str, tk: _Takeover) -> Finding:
        severity = tk.severity
        if tk.messages == 0 and tk.failures < self.attack_threshold:
            # a few failures, a login, and nothing sent: worth a look, not an alarm (judged
            # anew each time: mail sent later raises it again)
            severity = min(severity, Severity.MEDIUM)
        n_ips = len(tk.failing_ips)
        attack = (
            f"{tk.failures} failed logins from {n_ips} address(es), then " if tk.failures else ""
        )
        sent = (
            f"; since then {tk.messages} messages to {tk.recipients} external recipients "
            f"in {len(tk.domains)} domains"
            if tk.messages
            else "; no outbound mail seen since"
        )
        forged = ranked(tk.sender_domains)
        if forged:
            sent += f", {len(forged)} sender domain(s) not ours"
        title = f"{user} compromised: {attack}a login from {tk.ip} ({tk.how}){sent}"
        timeline: list[TimelineEntry] = []
        if tk.first_failure is not None:
            timeline.append(
                TimelineEntry(
                    tk.first_failure,
                    f"first of {tk.failures} failed logins ({_top(tk.failing_ips)})",
                )
            )
            if tk.last_failure != tk.first_failure:
                timeline.append(TimelineEntry(tk.last_failure, "last failed login"))
        method = f" (SASL {tk.method})" if tk.method else ""
        timeline.append(TimelineEntry(tk.time, f"successful login as {user} from {tk.ip}{method}"))
        if tk.first_message is not None:
            timeline.append(TimelineEntry(tk.first_message, "first external message"))
            timeline.append(
                TimelineEntry(
                    tk.last_message,
                    f"last external message seen: {tk.messages} messages, {tk.recipients} "
                    f"recipients, {len(tk.domains)} domains so far",
                )
            )
        for ip, n in list(tk.other_logins.items())[:5]:
            timeline.append(TimelineEntry(None, f"also logged in from {ip} ({n}x)"))
        related = [Subject("ip", tk.ip)] if tk.ip else []
        related += [Subject("ip", ip) for ip in tk.failing_ips if ip != tk.ip][:20]
        return Finding(
            indicator=self.indicator,
            severity=severity,
            subject=Subject("sasl_user", user),
            title=title,
            first_seen=tk.first_failure if tk.first_failure is not None else tk.time,
            last_seen=tk.last_message if tk.last_message is not None else tk.time,
            count=tk.messages,
            evidence=tk.evidence.lines(),
            mitigations=[
                "reset-password",
                "hold-queued-mail",
                "review-account-logins",
                "sender-login-maps",
                "rate-limit-outbound",
                "ban-ip",
            ],
            timeline=timeline,
            details={
                "login_ip": tk.ip,
                "login_time": iso_time(tk.time),
                "how": tk.how,
                "failures_before": tk.failures,
                "failing_ips": [{"value": i, "count": c} for i, c in tk.failing_ips.items()],
                "messages_after": tk.messages,
                "external_recipients_after": tk.recipients,
                "recipient_domains_after": len(tk.domains),
                "foreign_sender_domains": [{"value": d, "count": c} for d, c in forged[:20]],
                "other_login_ips": dict(tk.other_logins),
            },
            related=related,
        )


def _top(counts: dict[str, int], n: int = 3) -> str:
    items = ranked(counts)
    text = ", ".join(f"{k} x{v}" for k, v in items[:n])
    if len(items) > n:
        text += f", +{len(items) - n} more"
    return text or "no IP logged"
