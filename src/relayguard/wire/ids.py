"""``relayguard ids-rules``: Suricata and Snort rules that get relay detection right.

The classic rule, ``content:"RCPT TO"; pcre:"/RCPT TO:\\s*<[^@]+@(?!yourdomain\\.com)[^>]+>/i"``,
fires on mail to a subdomain (``sub.yourdomain.com`` does not start with ``yourdomain.com``),
misses a look-alike (``yourdomain.com.evil.example`` does), misses ``rcpt to:`` (the content
match is case-sensitive), addresses without angle brackets and source routes, and reads a
quoted local part holding an ``@`` as the domain. The rules here anchor the domain test at the
end of the domain (``>``, a space, or the line end), accept any chain of subdomains of each
local domain, match case-insensitively, allow the optional space and brackets servers accept,
skip quoted local parts and source routes, and treat address literals of the named mail
servers as local. No rule can see inside TLS: after STARTTLS (or on port 465) only the
connection itself is visible, which is why the egress rule also matches the SYN.

Each family of rules has its own sid range (``sid_base`` + 100, + 200, ...) and metadata; the
thresholds come from the same configuration as the log analyzer (AUTH failures per client per
window, relay denials per client, egress sessions per host).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from relayguard.config import Config
from relayguard.errors import InputError

FORMATS = ("suricata", "snort")
DEFAULT_SID_BASE = 1_970_000  # inside the 1,000,000-1,999,999 range kept for local rules
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True, slots=True)
class Rule:
    sid: int
    family: str
    text: str  # the rule, one line
    comment: tuple[str, ...] = ()  # what it catches and what it cannot, shown above it


@dataclass(slots=True)
class RuleSet:
    rules: list[Rule] = field(default_factory=list)

    def render(self, header: list[str]) -> str:
        lines = [f"# {h}" if h else "#" for h in header]
        for rule in self.rules:
            lines.append("")
            lines.extend(f"# {c}" for c in rule.comment)
            lines.append(rule.text)
        return "\n".join(lines) + "\n"


def check_domain(domain: str) -> str:
    """A lower-cased DNS name without trailing dot; InputError for anything else (the name
    goes into a regular expression, so nothing but letters, digits, hyphens and dots)."""
    name = domain.strip().rstrip(".").lower()
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_LABEL.fullmatch(x) for x in labels):
        raise InputError(f"--local-domain: not a domain name: {domain!r}")
    return name


def _pcre_escape(text: str) -> str:
    return re.sub(r"([.\-\[\]:])", r"\\\1", text)


def _literals(mail_servers: list[str]) -> list[str]:
    """Address literals (without brackets) of the single-address mail servers."""
    out = []
    for text in mail_servers:
        net = ipaddress.ip_network(text, strict=False)
        if net.num_addresses == 1:
            addr = net.network_address
            out.append(str(addr) if addr.version == 4 else f"IPv6:{addr}")
    return out


def local_domain_lookahead(domains: list[str], literals: list[str]) -> str:
    """A PCRE group matching one of our domains (or a subdomain, or one of our address
    literals) up to the end of the domain: ``>``, a blank, or the line end."""
    names = "|".join(_pcre_escape(d) for d in domains)
    alts = [f"(?:[a-z0-9-]+\\.)*(?:{names})\\.?"]
    alts += [f"\\[{_pcre_escape(lit)}\\]" for lit in literals]
    return f"(?:{'|'.join(alts)})(?:>|[ \\t]|\\r?$)"


# A local part: a quoted string (with escapes) or an unquoted run without blanks, brackets, @.
_LOCAL = r'(?:"(?:[^"\\\r\n]|\\.)*"|[^\s<>@"]+)'
# A local part that routes: a quoted string holding @ % or !, or an unquoted one with % or !.
_TRICK = r'(?:"[^"\r\n]*[@%!][^"\r\n]*"|[^\s<>@"]*[%!][^\s<>@"]*)@'
# RCPT TO: with optional blanks and angle bracket, then an optional source route.
_RCPT = r"^RCPT[ \t]+TO:[ \t]*<?(?:@[^:>\s]*:)?"
_RELAY_REPLY = (
    r"^5[0-9]{2}[ -][^\r\n]*(?:relay access denied|relaying denied|relay not permitted"
    r"|relaying not permitted|unable to relay|not permitted to relay)"
)


def _quote(pcre: str) -> str:
    """A PCRE inside a rule option: ``"`` and ``;`` end the option for the rule parser, so
    they are written as the escapes ``\\x22`` and ``\\x3b``, which PCRE reads as the same."""
    return pcre.replace('"', "\\x22").replace(";", "\\x3b")


def _ports(ports: tuple[int, ...]) -> str:
    return str(ports[0]) if len(ports) == 1 else f"[{','.join(str(p) for p in ports)}]"


def _nth(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st ..."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _after(n: int, track: str, seconds: int) -> str:
    """Alert from the ``n``-th match on: Suricata and Snort count matches *before* the first
    alert, so ``count`` is one less (no filter at all for n <= 1)."""
    if n <= 1:
        return ""
    return f"detection_filter:track {track}, count {n - 1}, seconds {seconds};"


def build(
    config: Config,
    domains: list[str],
    mail_servers: list[str],
    fmt: str = "suricata",
    sid_base: int = DEFAULT_SID_BASE,
    ports: tuple[int, ...] = (25, 587),
) -> RuleSet:
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}")
    if not domains:
        raise InputError("name at least one --local-domain")
    domains = sorted({check_domain(d) for d in domains})
    servers = f"[{','.join(mail_servers)}]" if mail_servers else "$SMTP_SERVERS"
    others = f"[$HOME_NET,!{servers}]" if mail_servers else "[$HOME_NET,!$SMTP_SERVERS]"
    port_list = _ports(ports)
    # egress: server-to-server ports only (submission with AUTH to a provider is another story)
    egress_ports = _ports(tuple(p for p in ports if p not in (587, 465)) or (25,))
    # Suricata's smtp app-layer finds SMTP on any port and stops at STARTTLS; Snort needs ports.
    suricata = fmt == "suricata"
    to_server = (
        f"alert smtp $EXTERNAL_NET any -> {servers} any"
        if suricata
        else f"alert tcp $EXTERNAL_NET any -> {servers} {port_list}"
    )
    to_client = (
        f"alert smtp {servers} any -> $EXTERNAL_NET any"
        if suricata
        else f"alert tcp {servers} {port_list} -> $EXTERNAL_NET any"
    )
    ours = local_domain_lookahead(domains, _literals(mail_servers))
    auth = config.detectors.auth_bruteforce
    probing = config.detectors.relay_probing
    egress = config.detectors.egress_smtp
    shown = ", ".join(domains)
    relay_attempt = _RCPT + _LOCAL + "@(?!" + ours + r")[^\s>]+"
    denied = f'content:"relay"; nocase; pcre:"/{_quote(_RELAY_REPLY)}/mi";'
    egress_limit = max(1, egress.min_sessions)

    def rule(sid: int, family: str, head: str, msg: str, body: str, comment: list[str],
             classtype: str, severity: str) -> Rule:  # fmt: skip
        meta = f"metadata:relayguard {family}, signature_severity {severity}, created_by relayguard"
        text = (
            f'{head} (msg:"RELAYGUARD {msg}"; {body} classtype:{classtype}; '
            f"sid:{sid}; rev:1; {meta};)"
        )
        return Rule(sid, family, text, tuple(comment))

    rules = [
        rule(
            sid_base + 101, "relay-attempt", to_server,
            "SMTP RCPT TO a domain that is not ours (relay attempt)",
            f'flow:established,to_server; content:"RCPT"; nocase; '
            f'pcre:"/{_quote(relay_attempt)}/mi";',
            [f"relay-attempt: a client outside asks to relay to a domain that is not {shown}",
             "(or a subdomain of one). Case-insensitive; blanks and missing angle brackets,",
             "quoted local parts and source routes handled; IP literals of the named mail",
             "servers are ours. Whether the server accepted it is in the reply: see the",
             "relay-denied rules. Blind after STARTTLS."],
            "policy-violation", "Major",
        ),
        rule(
            sid_base + 102, "relay-trick", to_server,
            "SMTP RCPT TO one of our domains with routing in the local part (relay trick)",
            'flow:established,to_server; content:"RCPT"; nocase; '
            f'pcre:"/{_quote(_RCPT + _TRICK + ours)}/mi";',
            ["relay-trick: user%other@ours, other!user@ours, \"user@other\"@ours: the forms",
             "open-relay scanners try against servers that route on the local part.",
             "Blind after STARTTLS."],
            "attempted-user", "Minor",
        ),
        rule(
            sid_base + 201, "relay-denied", to_client,
            "SMTP server refused to relay",
            f"flow:established,to_client; {denied}",
            ["relay-denied: our server answered 5xx Relay access denied (Postfix), relay not",
             "permitted (Exim), Relaying denied (Sendmail), Unable to relay (Exchange).",
             "About one alert per connection, not one per refusal. Blind after STARTTLS."],
            "misc-activity", "Informational",
        ),
        rule(
            sid_base + 202, "relay-probing", to_client,
            f"SMTP relay probing: relay refused in {probing.min_denials} sessions of one client",
            f"flow:established,to_client; {denied} "
            + _after(probing.min_denials, "by_dst", 3600),
            [f"relay-probing: relay refused in the {_nth(probing.min_denials)} connection of the",
             "same client within an hour (relay_probing.min_denials). The IDS matches a rule once",
             "per connection, so refusals are counted per connection here. Blind after STARTTLS."],
            "attempted-recon", "Minor",
        ),
        rule(
            sid_base + 301, "auth-bruteforce", to_client,
            f"SMTP AUTH brute force: failed logins in {auth.min_failures} sessions of one client",
            'flow:established,to_client; content:"535"; pcre:"/^535[ -]/m"; '
            + _after(auth.min_failures, "by_dst", auth.window),
            [f"auth-bruteforce: a 535 (authentication failed) in connection {auth.min_failures}",
             f"and later ones of the same client within {auth.window} s",
             "(auth_bruteforce.min_failures / window).",
             "The IDS matches once per connection: many guesses in one session count once. AUTH",
             "after STARTTLS (the usual case on 587) is invisible: count those in the mail log."],
            "attempted-user", "Major",
        ),
        rule(
            sid_base + 401, "egress-smtp",
            f"alert tcp {others} any -> $EXTERNAL_NET {egress_ports}",
            "SMTP egress: a host that is not a mail server opens port 25 outside",
            # "both": one alert per host and hour, at its min_sessions-th attempt ("limit"
            # would alert from the first attempt, up to count times)
            "flow:to_server; flags:S,12; "
            f"threshold:type both, track by_src, count {egress_limit}, seconds 3600;",
            ["egress-smtp: a connection attempt to outside port 25 from one of your hosts that",
             f"is not a mail server: one alert per host and hour, at its {_nth(egress_limit)}",
             "attempt (egress_smtp.min_sessions). Matches the SYN, so it sees sessions that go",
             "on to STARTTLS too."],
            "policy-violation", "Major",
        ),
        rule(
            sid_base + 402, "egress-smtp", (
                f"alert smtp {others} any -> $EXTERNAL_NET {egress_ports}" if suricata
                else f"alert tcp {others} any -> $EXTERNAL_NET {egress_ports}"
            ),
            "SMTP egress: a host that is not a mail server sends a message itself",
            'flow:established,to_server; content:"MAIL"; nocase; pcre:"/^MAIL[ \\t]+FROM:/mi"; '
            "threshold:type limit, track by_src, count 1, seconds 3600;",
            ["egress-smtp: MAIL FROM in clear from such a host: it delivers mail itself, past",
             "your MTA (one alert per host and hour). Blind after STARTTLS."],
            "policy-violation", "Major",
        ),
    ]  # fmt: skip
    return RuleSet(rules)


def header(fmt: str, domains: list[str], mail_servers: list[str]) -> list[str]:
    lines = [
        f"relayguard ids-rules: {fmt} rules for {', '.join(sorted(map(check_domain, domains)))}",
        "",
        "Variables: $HOME_NET (your networks), $EXTERNAL_NET (everything else)"
        + ("" if mail_servers else ", $SMTP_SERVERS (your mail servers; must not be $HOME_NET)"),
        "Nothing here can see inside TLS (STARTTLS, port 465): use relayguard analyze on the",
        "mail log for what happens there.",
    ]
    return lines
