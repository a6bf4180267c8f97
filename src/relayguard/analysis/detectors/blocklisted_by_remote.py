"""blocklisted-by-remote: remote servers refusing or deferring our mail because our IP is on
a block list ("blocked using zen.spamhaus.org", "listed at b.barracudacentral.org", SpamCop,
"on our block list"). Names the list and the listed IP when the reply says them."""

from __future__ import annotations

import re
from typing import ClassVar

from relayguard.analysis.detectors.base import Context, Detector, Evidence, Span
from relayguard.findings import Finding, Severity, Subject
from relayguard.logs import events as E
from relayguard.logs.events import Event

_HINT = re.compile(
    r"block(?:ed|list|ing)|black ?list|\blisted|spamhaus|barracuda|spamcop|\brbl\b|dnsbl"
    r"|uceprotect|spamrats|abuseat|mailspike|reputation",
    re.IGNORECASE,
)
_ZONE = re.compile(
    r"(?:blocked using|listed (?:at|on|in|by)|\brbl|dnsbl)[: ]+"
    r"(?:https?://)?((?:[a-z0-9-]+\.)+[a-z]{2,})",
    re.IGNORECASE,
)
_KNOWN = (
    ("spamhaus", "Spamhaus"),
    ("barracuda", "Barracuda"),
    ("spamcop", "SpamCop"),
    ("uceprotect", "UCEPROTECT"),
    ("spamrats", "SpamRATS"),
    ("abuseat", "CBL (abuseat)"),
    ("mailspike", "Mailspike"),
    ("sorbs", "SORBS"),
    ("psbl", "PSBL"),
)
_IPV4 = re.compile(r"(?<![\d.])((?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3})")
_STATUSES = frozenset({"deferred", "bounced", "expired", "undeliverable"})


def classify(reply: str) -> tuple[str, str | None] | None:
    """(list name, listed IP) if a remote reply cites a block list, else None."""
    if not _HINT.search(reply):
        return None
    lowered = reply.lower()
    if "greylist" in lowered or "graylist" in lowered:
        return None  # a temporary greylisting deferral names its help page, not a list
    name = None
    zone = _ZONE.search(reply)
    for needle, label in _KNOWN:
        if needle in lowered:
            name = label
            break
    if zone and (name is None or name.lower().split()[0] in zone.group(1).lower()):
        name = zone.group(1).lower() if name is None else f"{name} ({zone.group(1).lower()})"
    if name is None:
        if not re.search(r"block ?list|black ?list|blocked|\brbl\b|dnsbl", lowered):
            return None
        name = "unnamed block list"
    said = lowered.find("said:")
    ip = _IPV4.search(reply, said if said >= 0 else 0)
    return name, ip.group(1) if ip else None


class _State:
    __slots__ = ("evidence", "recipients", "span")

    def __init__(self) -> None:
        self.span = Span()
        self.recipients: set[str] = set()
        self.evidence = Evidence()


class BlocklistedByRemote(Detector):
    indicator = "blocklisted-by-remote"
    events: ClassVar[tuple[str, ...]] = (E.DELIVERY,)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.s = ctx.config.detectors.blocklisted_by_remote
        self.hits: dict[tuple[str, str], _State] = {}

    def on_event(self, ev: Event) -> None:
        if ev.status not in _STATUSES or not ev.reply:
            return
        found = classify(ev.reply)
        if found is None:
            return
        name, ip = found
        key = (name, ip or ev.host)
        st = self.hits.get(key)
        if st is None:
            st = self.hits[key] = _State()
        st.span.add(ev.time)
        st.evidence.add(ev.raw)
        if ev.recipient and len(st.recipients) < 1000:
            st.recipients.add(ev.recipient.rpartition("@")[2].lower())

    def finish(self) -> list[Finding]:
        out = []
        for (name, who), st in self.hits.items():
            if st.span.count < self.s.min_replies:
                continue
            kind = "ip" if _IPV4.fullmatch(who) else "host"
            out.append(
                Finding(
                    indicator=self.indicator,
                    severity=Severity.HIGH,
                    subject=Subject(kind, who),
                    title=(
                        f"remote servers refused our mail {st.span.count} time(s) citing "
                        f"{name} (listed: {who})"
                    ),
                    first_seen=st.span.first,
                    last_seen=st.span.last,
                    count=st.span.count,
                    evidence=st.evidence.lines(),
                    mitigations=["check-blocklists", "request-delisting", "hold-queued-mail"],
                    details={"list": name, "listed": who, "domains": sorted(st.recipients)[:20]},
                )
            )
        return out
