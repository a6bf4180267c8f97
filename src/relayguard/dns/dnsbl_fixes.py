"""The "What to do" of ``relayguard dnsbl``: the catalogue's steps, filled in for this report.

Each fix is filled from the findings that name it, not from all of them: the delisting request
names the listed address even when another address lacks a PTR. Its lookup step asks the lists
that listed, under their own zones (not a fixed pair of Spamhaus and SpamCop), and the
reverse-DNS fix names the ``--helo`` host. Pure.
"""

from __future__ import annotations

from relayguard import mitigations
from relayguard.dns.dnsbl_result import DnsblReport
from relayguard.findings import Finding

DELISTING = "request-delisting"


def dnsbl_actions(report: DnsblReport) -> list[mitigations.Action]:
    helo = next((s.rdns.helo for s in report.subjects if s.rdns and s.rdns.helo), None)
    out = []
    for mid in mitigations.used_by(report.findings):
        entry = mitigations.get(mid)
        if entry is None:
            continue
        named = [f for f in report.findings if mid in f.mitigations]
        filled = mitigations.fill_for(named)
        values = dict(filled.values)
        if helo and mitigations.safe_domain(helo):
            values.setdefault("<mx_host>", helo)
        action = mitigations.action(entry, values, filled.several)
        if mid == DELISTING:
            action = _with_listing_lookups(action, named)
        out.append(action)
    return out


def lookup_step(listed: list[Finding]) -> str:
    """``dig`` of each listing's own query name (an address or a domain, on its list's zone)."""
    queries = dict.fromkeys(
        q for f in listed if isinstance(q := f.details.get("query"), str) and q
    )  # fmt: skip
    lines = ["# each listing, asked again once the cause is fixed (no answer: delisted)"]
    lines += [f"dig +short {query.rstrip('.')}" for query in queries]
    return "\n".join(lines)


def _with_listing_lookups(action: mitigations.Action, listed: list[Finding]) -> mitigations.Action:
    step = lookup_step(listed)
    entry = action.mitigation

    def replace(raw: tuple[str, ...], done: tuple[str, ...]) -> tuple[str, ...]:
        pairs = zip(raw, done, strict=True)
        return tuple(step if "<reversed_server_ip>" in r else d for r, d in pairs)

    return mitigations.Action(
        mitigation=entry, postfix=replace(entry.postfix, action.postfix),
        exim=replace(entry.exim, action.exim),
    )  # fmt: skip
