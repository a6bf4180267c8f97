"""The audit rules: id, indicator slug, why each matters for relay abuse, mitigation ids.

Rule ids and slugs are public (``config-<slug>`` indicators, JSON ``details.rule``): add, never
rename. The checks themselves live in ``_pf_*.py`` and ``rules_exim.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relayguard.findings import Finding, Severity, Subject


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    slug: str
    why: str
    mitigations: tuple[str, ...]

    @property
    def indicator(self) -> str:
        return f"config-{self.slug}"


_R = Rule
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        _R(
            "PF-01",
            "relay-restrictions-open",
            "smtpd_relay_restrictions is the relay gate: a permit an outsider can satisfy before "
            "reject_unauth_destination lets anyone send anywhere through this server.",
            ("close-open-relay", "remove-access-ok", "test-relay"),
        ),
        _R(
            "PF-02",
            "recipient-restrictions-open",
            "With an empty smtpd_relay_restrictions the relay policy lives in "
            "smtpd_recipient_restrictions (pre-2.10 style), where any PERMIT before "
            "reject_unauth_destination opens the relay.",
            ("close-open-relay", "remove-access-ok", "test-relay"),
        ),
        _R(
            "PF-03",
            "relay-check-bypassed",
            "Postfix's own sanity check only wants one reject somewhere; warn_if_reject turns the "
            "relay reject into a log line and soft_bounce turns every 5xx into a retry.",
            ("close-open-relay", "test-relay"),
        ),
        _R(
            "PF-04",
            "mynetworks-too-broad",
            "Every address in mynetworks relays without a password and is exempt from anvil rate "
            "limits; too broad a list is an open relay for that whole range.",
            ("narrow-mynetworks", "test-relay"),
        ),
        _R(
            "PF-05",
            "mynetworks-style-broad",
            "With mynetworks unset, mynetworks_style decides: subnet trusts every host of "
            "the local "
            "subnet (other tenants of a cloud network), class a whole class A/B/C network.",
            ("narrow-mynetworks",),
        ),
        _R(
            "PF-06",
            "proxy-client-collapse",
            "Behind a proxy, NAT or container port mapping smtpd sees the gateway's address "
            "for every "
            "client; with that address in mynetworks the whole Internet relays.",
            ("narrow-mynetworks", "test-relay"),
        ),
        _R(
            "PF-07",
            "relay-domains-broad",
            "Anyone may send to relay_domains; a parent domain or a TLD there (subdomains match by "
            "default) relays for far more than intended.",
            ("close-open-relay",),
        ),
        _R(
            "PF-08",
            "relay-recipients-unchecked",
            "relay_domains without relay_recipient_maps accepts mail for users that do not exist; "
            "the bounces go to forged senders (backscatter).",
            ("stop-backscatter",),
        ),
        _R(
            "PF-09",
            "mx-backup-unrestricted",
            "permit_mx_backup without permit_mx_backup_networks relays for any domain that lists "
            "this host as an MX, which anyone can publish.",
            ("close-open-relay",),
        ),
        _R(
            "PF-10",
            "address-routing-unsafe",
            'Source-routed and quoted address forms (user@remote@site, "user@domain"@backup) are '
            "classic open-relay loopholes when the routing safeguards are turned off.",
            ("close-open-relay",),
        ),
        _R(
            "PF-11",
            "submission-open",
            "The submission/submissions services override the relay lists; an edited override that "
            "never reaches its final reject for unauthenticated clients is an open relay on "
            "587/465.",
            ("require-auth-submission", "test-relay"),
        ),
        _R(
            "PF-12",
            "service-override-weak",
            "A master.cf -o on any smtpd service (port 25 behind postscreen, custom ports) "
            "replaces "
            "the main.cf policy for that port alone.",
            ("close-open-relay", "test-relay"),
        ),
        _R(
            "PF-13",
            "auth-without-tls",
            "AUTH offered before STARTTLS sends passwords in clear text; stolen credentials "
            "are the "
            "main way spammers relay through closed servers.",
            ("harden-smtpd-tls", "require-auth-submission"),
        ),
        _R(
            "PF-14",
            "sasl-anonymous",
            "Without noanonymous the ANONYMOUS mechanism may be offered, and an anonymous login "
            "satisfies permit_sasl_authenticated: an open relay.",
            ("disable-anonymous-auth", "test-relay"),
        ),
        _R(
            "PF-15",
            "auth-on-port-25",
            "An MX does not need AUTH; offering it on port 25 invites password guessing from the "
            "whole Internet.",
            ("require-auth-submission", "limit-auth-attempts"),
        ),
        _R(
            "PF-16",
            "sender-login-unchecked",
            "Without sender login maps any authenticated (or stolen) account can send as anyone.",
            ("sender-login-maps",),
        ),
        _R(
            "PF-17",
            "no-rate-limits",
            "Postfix sets no per-client rate limits by default: a compromised account or client "
            "can send as fast as the server accepts.",
            ("rate-limit-outbound", "limit-auth-attempts"),
        ),
        _R(
            "PF-18",
            "connection-limits",
            "Concurrency and error limits stop one client from hogging smtpd or probing "
            "without end.",
            ("restore-smtpd-limits",),
        ),
        _R(
            "PF-19",
            "helo-not-required",
            "Without smtpd_helo_required, HELO restrictions are skipped by clients that send none.",
            ("block-relay-probers",),
        ),
        _R(
            "PF-20",
            "vrfy-enabled",
            "VRFY tells anyone which addresses exist: spammers harvest them.",
            ("disable-vrfy",),
        ),
        _R(
            "PF-21",
            "unknown-recipients-accepted",
            "Accepting mail for unknown users and bouncing it later sends the bounce to forged "
            "senders (backscatter), which gets the server block-listed.",
            ("stop-backscatter",),
        ),
        _R(
            "PF-22",
            "xclient-broad",
            "Hosts in smtpd_authorized_xclient_hosts may claim any client address, including "
            "one in "
            "mynetworks.",
            ("restrict-xclient",),
        ),
        _R(
            "PF-23",
            "tls-weak",
            "Without STARTTLS, or with obsolete protocols and ciphers, logins and mail travel "
            "readable; submission must require TLS.",
            ("harden-smtpd-tls",),
        ),
        _R(
            "PF-24",
            "banner-leak",
            "A banner naming the software, version or OS tells scanners which exploits to try.",
            ("hide-banner-version",),
        ),
        _R(
            "PF-25",
            "listens-everywhere",
            "A host that only sends mail needs no SMTP listener on public interfaces.",
            ("limit-listening",),
        ),
        _R(
            "PF-26",
            "legacy-compatibility",
            "A low compatibility_level keeps pre-3.0 defaults even on a new Postfix: no "
            "relay list, "
            "mynetworks_style = subnet, relay_domains = $mydestination.",
            ("raise-compatibility-level",),
        ),
        _R(
            "PF-27",
            "smuggling-hardening-off",
            "SMTP smuggling (bare newlines, unauthorised pipelining) lets spammers inject messages "
            "that pass SPF/DMARC as this server.",
            ("enable-smuggling-protection",),
        ),
        _R(
            "PF-28",
            "postscreen-weak",
            "postscreen only tests by default: without enforce actions and DNSBL sites it lets "
            "every bot through, and permit_mynetworks inherits mynetworks' breadth.",
            ("block-relay-probers",),
        ),
        _R(
            "PF-29",
            "postfix-will-not-start",
            "A configuration Postfix refuses (a stray smtpd argument, a $name that expands to "
            "itself) stops the service: no mail is received, and the policy it was meant to set "
            "is not what runs once someone patches it up in a hurry.",
            ("test-relay",),
        ),
        _R(
            "EX-01",
            "exim-relay-hosts-broad",
            "Hosts in relay_from_hosts relay without a password.",
            ("narrow-mynetworks", "test-relay"),
        ),
        _R(
            "EX-02",
            "exim-relay-domains-wildcard",
            "Anyone may send to relay_to_domains; a wildcard there relays for any domain it "
            "matches.",
            ("close-open-relay",),
        ),
        _R(
            "EX-03",
            "exim-rcpt-acl-open",
            "An accept that outsiders can satisfy before the domains check of the RCPT ACL makes "
            "Exim an open relay.",
            ("close-open-relay", "test-relay"),
        ),
        _R(
            "EX-04",
            "exim-local-part-checks-removed",
            "The default ACL refuses local parts with @ % ! / |, which carry source-routing and "
            "percent-hack relay tricks; percent_hack_domains re-enables the percent hack.",
            ("close-open-relay",),
        ),
        _R(
            "EX-05",
            "exim-domain-literals",
            "Domain literals (user@[192.0.2.1]) with an ipliteral router deliver to any IP "
            "address.",
            ("close-open-relay",),
        ),
        _R(
            "EX-06",
            "exim-auth-before-tls",
            "AUTH advertised before TLS sends passwords in clear text.",
            ("harden-smtpd-tls", "require-auth-submission"),
        ),
        _R(
            "EX-07",
            "exim-authenticator-accepts-all",
            "An authenticator whose server_condition is always true accepts any password: every "
            "client is 'authenticated' and may relay.",
            ("exim-real-authenticator", "test-relay"),
        ),
        _R(
            "EX-08",
            "exim-vrfy-expn",
            "A VRFY/EXPN ACL that accepts answers address-existence questions (harvesting).",
            ("disable-vrfy",),
        ),
        _R(
            "EX-09",
            "exim-banner-version",
            "The default banner names Exim and its version, telling scanners which exploits "
            "to try.",
            ("hide-banner-version",),
        ),
        _R(
            "EX-10",
            "exim-no-rate-limits",
            "Without per-host limits and ratelimit conditions a compromised account sends without "
            "bound.",
            ("rate-limit-outbound", "limit-auth-attempts"),
        ),
        _R(
            "EX-11",
            "exim-no-tls",
            "Without TLS, logins and mail travel readable.",
            ("harden-smtpd-tls",),
        ),
    )
}


def make(
    rule_id: str,
    severity: Severity,
    key: str,
    title: str,
    evidence: list[str],
    fix: list[str],
    **details: Any,
) -> Finding:
    """A finding for ``rule_id`` about config key ``key`` (``main.cf:mynetworks``)."""
    rule = RULES[rule_id]
    return Finding(
        indicator=rule.indicator,
        severity=severity,
        subject=Subject("config_key", key),
        title=title,
        count=1,
        evidence=list(evidence),
        mitigations=list(rule.mitigations),
        details={"rule": rule.id, "why": rule.why, "fix": list(fix), **details},
    )
