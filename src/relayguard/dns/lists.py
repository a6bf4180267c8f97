"""The block lists relayguard knows: zones, what each answer code means, how to get delisted.

Facts from ../shared/reference/DNSBL.md (sections 1-3). A list is a :class:`ListSpec`; the
built-in default set is :data:`DEFAULT_IDS`. Zones that are dead or "list the world" are in
:data:`DEAD_ZONES` and are never queried, even when a --lists file names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from relayguard.dns._errors import ListFileError
from relayguard.dns.names import is_subdomain
from relayguard.dns.transport import Server
from relayguard.findings import Severity

# Error reasons (public identifiers, JSON ``reason``).
RESOLVER_BLOCKED = "resolver-blocked"
RATE_LIMITED = "rate-limited"
ZONE_TYPO = "zone-typo"
BAD_KEY = "bad-key"
WRONG_QUERY_TYPE = "wrong-query-type"
LIST_ERROR = "list-error"

_SPAMHAUS_ERRORS = {
    "127.255.255.252": ZONE_TYPO,
    "127.255.255.254": RESOLVER_BLOCKED,
    "127.255.255.255": RATE_LIMITED,
    "127.255.255.250": BAD_KEY,
    "127.255.255.251": BAD_KEY,
}
# Spamhaus reserves the whole of 127.255.255.0/24 for errors ("not implying a listed response").
_SPAMHAUS_ERROR_NET = ("127.255.255.0/24",)


@dataclass(frozen=True, slots=True, kw_only=True)
class ListSpec:
    id: str
    name: str
    zone: str  # without the trailing dot
    kind: str = "ip"  # "ip" (reversed address) or "domain" (RHSBL / URI list)
    ipv6: bool = False  # the list publishes IPv6 data: IPv6 targets are queried on it
    # Exact answers that mean "listed", with the list's meaning. None: any 127/8 answer
    # except 127.0.0.1 is a listing (a list nobody documented).
    codes: dict[str, str] | None = None
    # Lists that sum categories in the last octet (SURBL, URIBL): bit -> category.
    bitmask: dict[int, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # sentinel answer -> error reason
    error_nets: tuple[str, ...] = ()  # networks of sentinel answers (reason list-error)
    informational: bool = False  # it lists the provider (UCEPROTECT L2/L3), not the host
    severity: Severity = Severity.MEDIUM  # of a listing
    delist: str = ""
    delist_url: str = ""
    health_check: bool = True  # RFC 5782 s.5 test points queried before answers are trusted
    test_listed: str = ""  # overrides of the RFC 5782 test points (name or address)
    test_unlisted: str = ""
    nameserver: Server | None = None  # ask this server instead of the resolver (a mirror)
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("ip", "domain"):
            raise ValueError(f"list kind {self.kind!r}")


_ZEN_CODES = {
    "127.0.0.2": "SBL: a spam source or spam operation (Spamhaus Block List)",
    "127.0.0.3": "CSS: snowshoe or hijacked sending seen by Spamhaus' automation",
    "127.0.0.4": "XBL: an infected or exploited host (botnet, proxy, CBL)",
    "127.0.0.5": "XBL: an infected or exploited host",
    "127.0.0.6": "XBL: an infected or exploited host",
    "127.0.0.7": "XBL: an infected or exploited host",
    "127.0.0.9": "DROP: a hijacked or criminal network (always with SBL)",
    "127.0.0.10": "PBL (ISP): a range its ISP says should not send mail directly",
    "127.0.0.11": "PBL (Spamhaus): a range that should not send mail directly",
    "127.0.0.30": "BCL: a botnet controller",
}
_ZEN_DELIST = (
    "Fix the cause first (stop the spam, clean the infected host, give the address a proper "
    "PTR and HELO name), then look it up at https://check.spamhaus.org/ . XBL and CSS: the "
    "self-service removal there. PBL: remove it there if this is a real mail server with "
    "its own rDNS (127.0.0.11), or ask the ISP (127.0.0.10). SBL: a ticket, often through "
    "the ISP."
)
_DBL_CODES = {
    "127.0.1.2": "spam domain (low reputation)",
    "127.0.1.4": "phishing domain",
    "127.0.1.5": "malware domain",
    "127.0.1.6": "botnet C&C domain",
    "127.0.1.102": "abused legitimate domain: spam",
    "127.0.1.103": "abused legitimate domain: spammed redirector",
    "127.0.1.104": "abused legitimate domain: phishing",
    "127.0.1.105": "abused legitimate domain: malware",
    "127.0.1.106": "abused legitimate domain: botnet C&C",
}
_DRONEBL_CODES = {
    "127.0.0.3": "IRC drone", "127.0.0.5": "bottler", "127.0.0.6": "unknown spambot or drone",
    "127.0.0.7": "DDoS drone", "127.0.0.8": "SOCKS proxy", "127.0.0.9": "HTTP proxy",
    "127.0.0.10": "proxy chain", "127.0.0.11": "web page proxy",
    "127.0.0.12": "open DNS resolver", "127.0.0.13": "brute-force attacker",
    "127.0.0.14": "open WinGate proxy", "127.0.0.15": "compromised router or gateway",
    "127.0.0.16": "autorooting worm", "127.0.0.17": "auto-detected botnet IP",
    "127.0.0.18": "DNS/MX hostname seen on IRC", "127.0.0.19": "abused VPN service",
    "127.0.0.2": "sample", "127.0.0.255": "uncategorised",
}  # fmt: skip

BUILTIN: dict[str, ListSpec] = {
    spec.id: spec
    for spec in (
        ListSpec(
            id="spamhaus-zen", name="Spamhaus ZEN", zone="zen.spamhaus.org", ipv6=True,
            codes=_ZEN_CODES, errors=_SPAMHAUS_ERRORS, error_nets=_SPAMHAUS_ERROR_NET,
            severity=Severity.HIGH, delist=_ZEN_DELIST, delist_url="https://check.spamhaus.org/",
            note="refuses public resolvers: use a local resolver or a DQS key (--dqs-key)",
        ),
        ListSpec(
            id="spamhaus-dbl", name="Spamhaus DBL", zone="dbl.spamhaus.org", kind="domain",
            codes=_DBL_CODES, errors={**_SPAMHAUS_ERRORS, "127.0.1.255": WRONG_QUERY_TYPE},
            error_nets=_SPAMHAUS_ERROR_NET, severity=Severity.HIGH,
            delist="Clean up what got the domain listed (compromised site, spammed links), "
            "then look it up and request removal at https://check.spamhaus.org/ .",
            delist_url="https://check.spamhaus.org/",
        ),
        ListSpec(
            id="spamcop", name="SpamCop", zone="bl.spamcop.net",
            codes={"127.0.0.2": "spam reported by SpamCop users"}, severity=Severity.HIGH,
            delist="No removal by hand: the listing expires about 24 hours after the last "
            "report. Stop the spam; check the state at https://www.spamcop.net/bl.shtml .",
            delist_url="https://www.spamcop.net/bl.shtml",
        ),
        ListSpec(
            id="uceprotect-1", name="UCEPROTECT Level 1", zone="dnsbl-1.uceprotect.net",
            codes={"127.0.0.2": "this address hit UCEPROTECT spam traps"},
            delist="Expires by itself 7 days after the last spam-trap hit once the spam "
            "stops (the paid express delisting is not needed).",
            delist_url="https://www.uceprotect.net/en/rblcheck.php",
        ),
        ListSpec(
            id="uceprotect-2", name="UCEPROTECT Level 2", zone="dnsbl-2.uceprotect.net",
            codes={"127.0.0.2": "the provider's address range has too many Level 1 listings"},
            informational=True, severity=Severity.INFO,
            delist="Lists your provider's range, not you: no delisting; it expires when the "
            "range is clean. Tell your provider.",
            delist_url="https://www.uceprotect.net/en/rblcheck.php",
        ),
        ListSpec(
            id="uceprotect-3", name="UCEPROTECT Level 3", zone="dnsbl-3.uceprotect.net",
            codes={"127.0.0.2": "the provider's whole network (ASN) is listed"},
            informational=True, severity=Severity.INFO,
            delist="Lists your provider's whole network, not you: no delisting; it clears "
            "when the network's abuse ratio drops.",
            delist_url="https://www.uceprotect.net/en/rblcheck.php",
        ),
        ListSpec(
            id="psbl", name="PSBL (Passive Spam Block List)", zone="psbl.surriel.com",
            codes={"127.0.0.2": "sent mail to PSBL spam traps"},
            delist="Self-service removal at https://psbl.org/ once the spam stopped.",
            delist_url="https://psbl.org/",
        ),
        ListSpec(
            id="mailspike", name="Mailspike", zone="bl.mailspike.net",
            codes={
                "127.0.0.2": "zombie: a compromised host", "127.0.0.10": "worst reputation",
                "127.0.0.11": "very bad reputation", "127.0.0.12": "bad reputation",
            },
            delist="Self-service removal on https://mailspike.io/ (processed in 6 to 36 "
            "hours) after the cause is fixed.",
            delist_url="https://mailspike.io/",
        ),
        ListSpec(
            id="dronebl", name="DroneBL", zone="dnsbl.dronebl.org", ipv6=True,
            codes=_DRONEBL_CODES,
            delist="Clean the host, then remove the listing at https://dronebl.org/lookup "
            "(only the primary user of the address may).",
            delist_url="https://dronebl.org/lookup",
        ),
        ListSpec(
            id="s5h", name="s5h.net", zone="all.s5h.net", ipv6=True,
            codes={"127.0.0.2": "listed by s5h.net"},
            delist="Removal form on https://www.s5h.net/ after the cause is fixed.",
            delist_url="https://www.s5h.net/",
        ),
        ListSpec(
            id="surbl", name="SURBL multi", zone="multi.surbl.org", kind="domain",
            bitmask={8: "PH: phishing", 16: "MW: malware", 64: "ABUSE: spam", 128: "CR: cracked"},
            test_listed="test.surbl.org",
            delist="Clean the compromised site first, then use the lookup and removal form "
            "on https://www.surbl.org/ .",
            delist_url="https://www.surbl.org/",
        ),
        ListSpec(
            id="uribl", name="URIBL multi", zone="multi.uribl.com", kind="domain",
            bitmask={2: "black", 4: "grey", 8: "red"},
            errors={"127.0.0.1": RESOLVER_BLOCKED}, test_listed="test.uribl.com",
            delist="Request removal at https://admin.uribl.com/ (an account is needed).",
            delist_url="https://admin.uribl.com/",
        ),
        ListSpec(
            id="barracuda", name="Barracuda BRBL", zone="b.barracudacentral.org",
            codes={"127.0.0.2": "poor sending reputation"}, severity=Severity.HIGH,
            delist="Manual removal request at "
            "https://www.barracudacentral.org/rbl/removal-request (usually within 24 hours).",
            delist_url="https://www.barracudacentral.org/rbl/removal-request",
            note="answers only resolvers whose address is registered at barracudacentral.org",
        ),
    )
}  # fmt: skip

# The default set (DNSBL.md s.1 "suggested default set"); Barracuda only when asked for,
# since it answers nothing to an unregistered resolver.
DEFAULT_IDS = (
    "spamhaus-zen", "spamhaus-dbl", "spamcop", "uceprotect-1", "uceprotect-2", "uceprotect-3",
    "psbl", "mailspike", "dronebl", "s5h", "surbl", "uribl",
)  # fmt: skip

# Zones (and everything under them) that are dead, empty, or answer "listed" for everything.
DEAD_ZONES: dict[str, str] = {
    "sorbs.net": "SORBS was shut down by Proofpoint on 2024-06-05; its zones hold no data",
    "njabl.org": "NJABL closed in 2013; a squatter's wildcard has listed everything since 2024",
    "ahbl.org": "AHBL closed in 2014 and has answered 'listed' for every query since 2015",
    "spamcannibal.org": "SpamCannibal's domain expired in 2018; a wildcard lists everything",
    "megarbl.net": "MegaRBL's domain expired; a wildcard lists everything since 2019",
    "emailbasura.org": "Email Basura's domain expired; a wildcard lists everything",
    "msrbl.net": "MSRBL's domain expired twice and answered 'listed' for everything",
    "ix.dnsbl.manitu.net": "NiX Spam emptied its zone on 2025-01-17",
    "abuse.ch": "abuse.ch's DNS lists are down (SERVFAIL) since about 2019",
    "unsubscore.com": "LashBack UBL is unavailable",
    "lashback.com": "LashBack UBL is unavailable",
    "dsbl.org": "DSBL stopped in 2008",
    "dnsbl.inps.de": "dnsbl.inps.de shut down on 2020-05-25",
    "dnsbl.madavi.de": "dnsbl.madavi.de shut down in 2025-03",
    "dnsbl.anonmails.de": "anonmails.de gives bogus answers since 2024-11",
    "spamdown.org": "spamdown.org is gone and gives bogus answers",
    "cbl.abuseat.org": "the CBL moved into Spamhaus XBL: query zen.spamhaus.org instead",
    "bl.score.senderscore.com": "removed from common checkers in 2024 as not working",
    "cidr.bl.mcafee.com": "removed from common checkers in 2024 as not working",
}


def dead_reason(zone: str) -> str | None:
    for dead, why in DEAD_ZONES.items():
        if is_subdomain(zone, dead):
            return why
    return None


def with_dqs_key(specs: list[ListSpec], key: str) -> list[ListSpec]:
    """Spamhaus public mirrors replaced by the Data Query Service zones of ``key``, plus the
    DQS-only AuthBL and ZRD lists."""
    if not (len(key) == 26 and key.isalnum()):
        raise ListFileError("a Spamhaus DQS key is 26 letters and digits")
    key = key.lower()
    out = []
    for spec in specs:
        if spec.zone.endswith(".spamhaus.org"):
            name = spec.zone.removesuffix(".spamhaus.org")
            spec = replace(spec, zone=f"{key}.{name}.dq.spamhaus.net", note="")
        out.append(spec)
    out.append(ListSpec(
        id="spamhaus-authbl", name="Spamhaus AuthBL", zone=f"{key}.authbl.dq.spamhaus.net",
        ipv6=True, codes={"127.0.0.20": "bot that logs in with stolen credentials"},
        errors=_SPAMHAUS_ERRORS, error_nets=_SPAMHAUS_ERROR_NET, severity=Severity.HIGH,
        delist=_ZEN_DELIST, delist_url="https://check.spamhaus.org/",
    ))  # fmt: skip
    out.append(ListSpec(
        id="spamhaus-zrd", name="Spamhaus ZRD", zone=f"{key}.zrd.dq.spamhaus.net", kind="domain",
        codes={f"127.0.2.{n}": f"domain first seen {n} hours ago" for n in range(2, 25)},
        errors=_SPAMHAUS_ERRORS, error_nets=_SPAMHAUS_ERROR_NET, severity=Severity.LOW,
        delist="Expires by itself 24 hours after the domain was first seen.",
    ))  # fmt: skip
    return out


def defaults() -> list[ListSpec]:
    return [BUILTIN[i] for i in DEFAULT_IDS]
