"""DMARC (RFC 7489, and the DMARCbis tree walk): find the policy record, check every tag, and
check that each report address agreed to receive reports. A generator core, like spf.py.

Discovery: ``_dmarc.<domain>``; when it has no record, each parent up to the TLD (the tree
walk of DMARCbis; RFC 7489's organizational domain is one of them) — asked in one batch, the
closest record wins. A record found at a parent governs the domain through ``sp`` (``np``).
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass, field

from relayguard.dns._events import Answer, Query
from relayguard.dns.names import is_subdomain

MAX_WALK = 8  # names asked in the tree walk (DMARCbis bounds the walk the same way)
MAX_URIS = 10  # report URIs checked per tag
POLICIES = ("none", "quarantine", "reject")
_VERSION = re.compile(r"v[ \t]*=[ \t]*DMARC1[ \t]*(;|$)")
_MAILTO = re.compile(r"mailto:([^@\s!,;]+)@([A-Za-z0-9.-]+\.[A-Za-z0-9-]+)(?:!\d+[kmgt]?)?", re.I)

Steps = Generator[list[Query], list[Answer], "DmarcResult"]


@dataclass(slots=True)
class Issue:
    code: str  # the finding is dmarc-<code>
    text: str
    tag: str | None = None  # the tag at fault, left out of the record to publish


@dataclass(slots=True)
class DmarcResult:
    domain: str
    location: str | None = None  # the domain whose _dmarc record applies
    record: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    policy: str | None = None  # the effective policy for ``domain``
    issues: list[Issue] = field(default_factory=list)
    unauthorized: list[str] = field(default_factory=list)  # report domains without consent
    error: str | None = None  # DNS trouble: the answer is unknown


def is_dmarc(txt: str) -> bool:
    return _VERSION.match(txt) is not None


def parse_tags(text: str) -> tuple[dict[str, str], list[Issue]]:
    tags: dict[str, str] = {}
    issues: list[Issue] = []
    for n, part in enumerate(text.split(";")):
        part = part.strip(" \t")
        if not part:
            continue
        name, eq, value = part.partition("=")
        name, value = name.strip(" \t").lower(), value.strip(" \t")
        if not eq or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            issues.append(Issue("invalid", f"{part[:60]!r} is not a tag=value pair"))
            continue
        if name in tags:
            issues.append(Issue("invalid", f"the tag {name} appears twice"))
            continue
        if n == 1 and name != "p":
            issues.append(Issue("invalid", "p= must come right after v=DMARC1 (RFC 7489 s.6.3)"))
        tags[name] = value
    return tags, issues


def _check(tags: dict[str, str], issues: list[Issue]) -> None:
    def bad(tag: str, want: str) -> None:
        issues.append(Issue("invalid", f"{tag}={tags[tag][:40]!r}: must be {want}", tag))

    if "p" not in tags:
        issues.append(Issue("invalid", "no p= tag: receivers treat the record as p=none or "
                            "ignore it"))  # fmt: skip
    for tag in ("p", "sp", "np"):
        if tag in tags and tags[tag].lower() not in POLICIES:
            bad(tag, "none, quarantine or reject")
    for tag in ("adkim", "aspf"):
        if tag in tags and tags[tag].lower() not in ("r", "s"):
            bad(tag, "r or s")
    if "pct" in tags and not (tags["pct"].isdigit() and 0 <= int(tags["pct"]) <= 100):
        bad("pct", "a whole number from 0 to 100")
    if "fo" in tags and not all(x.strip() in ("0", "1", "d", "s") for x in tags["fo"].split(":")):
        bad("fo", "0, 1, d or s, separated by ':'")
    if "ri" in tags and not (tags["ri"].isdigit() and int(tags["ri"]) < 2**32):
        bad("ri", "a number of seconds")
    if "psd" in tags and tags["psd"].lower() not in ("y", "n", "u"):
        bad("psd", "y, n or u")
    if "t" in tags and tags["t"].lower() not in ("y", "n"):
        bad("t", "y or n")
    for tag in ("rua", "ruf"):
        for uri in (u.strip() for u in tags.get(tag, "").split(",") if u.strip()):
            if not _MAILTO.fullmatch(uri):
                issues.append(Issue("invalid", f"{tag}: {uri[:60]!r} is not a mailto: address",
                                    tag))  # fmt: skip
    known = {"v", "p", "sp", "np", "adkim", "aspf", "pct", "fo", "rf", "ri", "rua", "ruf",
             "psd", "t"}  # fmt: skip
    for tag in tags:
        if tag not in known:
            issues.append(Issue("unknown-tag", f"unknown tag {tag}= (ignored by receivers)", tag))


def report_domains(tags: dict[str, str]) -> list[str]:
    out: dict[str, None] = {}
    for tag in ("rua", "ruf"):
        for uri in tags.get(tag, "").split(",")[:MAX_URIS]:
            match = _MAILTO.fullmatch(uri.strip())
            if match:
                out[match.group(2).lower().rstrip(".")] = None
    return list(out)


def walk(domain: str) -> list[str]:
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))][:MAX_WALK]


def check(domain: str) -> Steps:
    result = DmarcResult(domain)
    names = walk(domain)
    answers = yield [Query(f"_dmarc.{name}.", "TXT") for name in names]
    for name, answer in zip(names, answers, strict=True):
        if answer.status.failed:
            result.error = f"{answer.query}: {answer.failure}"
            return result
        records = [r for r in answer.records if is_dmarc(r)]
        if not records:
            others = [r for r in answer.records if r.strip()]
            if others and name == domain:
                result.issues.append(Issue("ignored-record", f"_dmarc.{name} holds "
                                           f"{others[0][:60]!r}, not a DMARC record"))  # fmt: skip
            continue
        result.location, result.record = name, records[0]
        if len(records) > 1:
            result.issues.append(Issue("multiple", f"_dmarc.{name} has {len(records)} DMARC "
                                       "records: receivers ignore them all (RFC 7489 s.6.6.3)"))
        break
    if result.record is None:
        return result
    tags, issues = parse_tags(result.record)
    _check(tags, issues)
    result.tags, result.issues = tags, result.issues + issues
    own = result.location == domain
    policy = tags.get("p", "none").lower()
    if not own:
        policy = tags.get("sp", policy).lower()
    result.policy = policy if policy in POLICIES else "none"
    if any(i.code in ("invalid", "multiple") for i in result.issues) and (
        tags.get("p", "").lower() not in POLICIES
    ):
        result.policy = "none"
    yield from _authorizations(result)
    return result


def _authorizations(result: DmarcResult) -> Generator[list[Query], list[Answer], None]:
    """RFC 7489 s.7.1: a report domain outside the policy's domain must publish consent."""
    assert result.location is not None
    outside = [
        d for d in report_domains(result.tags)
        if not (is_subdomain(d, result.location) or is_subdomain(result.location, d))
    ]  # fmt: skip
    if not outside:
        return
    answers = yield [Query(f"{result.location}._report._dmarc.{d}.", "TXT") for d in outside]
    for dest, answer in zip(outside, answers, strict=True):
        if answer.status.failed:
            continue  # unknown, not refused
        if not any(is_dmarc(r) for r in answer.records):
            result.unauthorized.append(dest)
