"""What the decision cores ask for (:class:`Query`) and what the I/O shell gives back
(:class:`Answer`). Cores never see a socket: they yield queries and are sent answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

RDTYPES = ("A", "AAAA", "TXT", "MX", "PTR", "CNAME", "NS", "SOA")


class Status(StrEnum):
    NOERROR = "noerror"  # records of the asked type
    NODATA = "nodata"  # the name exists, no records of that type
    NXDOMAIN = "nxdomain"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    ERROR = "error"  # anything else: FORMERR, a CNAME loop, a malformed answer, no route

    @property
    def failed(self) -> bool:
        """No usable answer: the name's state is unknown (never read as "absent")."""
        return self not in (Status.NOERROR, Status.NODATA, Status.NXDOMAIN)


@dataclass(frozen=True, slots=True)
class Query:
    name: str  # absolute, lower-case, trailing dot
    rdtype: str
    # Which rate-limit bucket the query counts against (a block list's zone), or "".
    bucket: str = ""

    def __post_init__(self) -> None:
        if not self.name.endswith(".") or self.rdtype not in RDTYPES:
            raise ValueError(f"bad query {self.name!r} {self.rdtype!r}")

    def __str__(self) -> str:
        return f"{self.name} {self.rdtype}"


@dataclass(frozen=True, slots=True)
class Answer:
    query: Query
    status: Status
    # A/AAAA: addresses; TXT: each record's strings joined without separators (RFC 7208
    # s.3.3, RFC 6376 s.3.6.2.2); PTR/CNAME/NS: absolute lower-case names; MX: "PREF NAME".
    records: tuple[str, ...] = ()
    ttl: int = 0
    # The CNAMEs followed from the query name to the owner of the records, in order.
    cname_chain: tuple[str, ...] = ()
    # Why it failed (for a person), or what was cut (records over the bounds).
    detail: str = ""
    # How many character-strings each TXT record was made of (parallel to ``records``).
    txt_strings: tuple[int, ...] = field(default=())
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is Status.NOERROR

    @property
    def failure(self) -> str:
        """``refused``, ``timeout (no answer from 127.0.0.1:53)``: the status, and the detail
        when it says more than the status (an rcode's name says nothing more)."""
        status, detail = self.status.value, self.detail.strip()
        return f"{status} ({detail})" if detail and detail.lower() != status else status

    @property
    def empty(self) -> bool:
        """An RFC 7208 "void" answer: NXDOMAIN, or NOERROR with no records."""
        return self.status in (Status.NXDOMAIN, Status.NODATA)

    def mx(self) -> list[tuple[int, str]]:
        out = []
        for record in self.records:
            pref, _, name = record.partition(" ")
            out.append((int(pref), name))
        return sorted(out)
