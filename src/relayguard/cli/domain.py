"""``relayguard domain``: the SPF, DMARC, DKIM and MX audit of a mail domain."""

from __future__ import annotations

import ipaddress
import sys

import click

from relayguard.cli.dnsbl import pick_resolver, resolver_options, write_json
from relayguard.dns._errors import TargetError
from relayguard.dns.dkim import selectors_from_message, valid_selector
from relayguard.dns.io import ResolverOptions, audit_domain
from relayguard.dns.names import IPAddress, looks_like_ip, normalize_domain, target_ip, unmapped
from relayguard.report.sanitize import clean

MAX_MESSAGE = 1024 * 1024  # bytes of --message read: the header block is at the start
MAX_IPS = 20


def _signer(d: str) -> str | None:
    try:
        return normalize_domain(d)
    except TargetError:
        return None


def _selectors(domain: str, named: tuple[str, ...], message: str | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for selector in named:
        if not valid_selector(selector.strip()):
            raise TargetError(f"--dkim-selector {selector[:60]!r} is not a selector name")
        out.append((selector.strip(), "option"))
    if message:
        try:
            with open(message, encoding="utf-8", errors="replace") as handle:
                text = handle.read(MAX_MESSAGE)
        except OSError as exc:
            raise TargetError(f"--message {message}: {exc.strerror or exc}") from None
        found = selectors_from_message(text)
        if not found:
            raise TargetError(f"--message {message}: no DKIM-Signature header with d= and s=")
        bad: list[str] = []
        for d, s in found:
            if _signer(d) != domain:
                continue
            if valid_selector(s):
                out.append((s, "message"))
            else:
                bad.append(s)
        if not any(origin == "message" for _, origin in out):
            if bad:
                raise TargetError(f"--message {message}: the signature by {domain} names "
                                  f"s={clean(bad[0], 60)}, which is not a selector name")
            signers = ", ".join(sorted({_signer(d) or clean(d, 60) for d, _ in found}))[:200]
            raise TargetError(f"--message {message}: signed by {signers}, not by {domain}")
    return out


def _ips(
    values: tuple[str, ...], from_postfix: bool, config: str | None, notes: list[str]
) -> list[IPAddress]:
    out: list[IPAddress] = []
    for value in values:
        ip = target_ip(value, "--ip ")
        if ip is None:
            raise TargetError(f"--ip {value[:60]!r} is not an IP address")
        if unmapped(ip) != ip:
            notes.append(f"--ip {ip} is IPv4-mapped: checked as {unmapped(ip)}")
        out.append(unmapped(ip))
    if from_postfix:
        from relayguard.dns.postfix_addresses import from_postfix as read_postfix

        found = read_postfix(config)
        out += [ipaddress.ip_address(a) for a in found.addresses]
        notes += [f"--from-postfix: skipped {why}" for why in found.skipped]
    unique = list(dict.fromkeys(out))
    if len(unique) > MAX_IPS:
        raise TargetError(f"{len(unique)} sending addresses; at most {MAX_IPS}")
    return unique


@click.command("domain")
@click.argument("domain")
@resolver_options
@click.option("--ip", "ips", multiple=True, metavar="IP",
              help="A sending address of your server: SPF must pass for it (repeatable).")
@click.option("--from-postfix", is_flag=True,
              help="Take the sending addresses from postconf (as relayguard dnsbl does).")
@click.option("--postfix-config", metavar="DIR", help="Postfix config directory (postconf -c).")
@click.option("--dkim-selector", "selectors", multiple=True, metavar="S",
              help="A DKIM selector your signer uses (repeatable). Default: guess common ones.")
@click.option("--message", metavar="FILE",
              help="A message your server signed: its DKIM-Signature s= is checked.")
@click.option("--json", "as_json", is_flag=True, help="Print the relayguard.domain/1 JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show all evidence.")
def domain(
    domain: str, resolver: str | None, timeout: float, tries: int, ips: tuple[str, ...],
    from_postfix: bool, postfix_config: str | None, selectors: tuple[str, ...],
    message: str | None, as_json: bool, verbose: bool,
) -> int:  # fmt: skip
    """Audit DOMAIN's SPF (parsed and evaluated: the 10-lookup and 2-void limits as RFC 7208
    counts them, +all/?all, include loops), DMARC (tree walk, every tag, report
    authorization), DKIM keys (RFC 8301 sizes, revoked, testing) and MX records. Every
    problem is a finding with the record to publish instead.

    Exit code: 0 pass, 1 warnings (medium), 2 fail (high/critical), 3 could not check.
    """
    if postfix_config and not from_postfix:
        raise click.UsageError("--postfix-config goes with --from-postfix")
    if looks_like_ip(domain):
        raise TargetError(f"{domain.strip()[:60]!r} is an address, not a domain: relayguard "
                          "domain audits a mail domain (relayguard dnsbl checks an address)")
    name = normalize_domain(domain)
    notes: list[str] = []
    addresses = _ips(ips, from_postfix, postfix_config, notes)
    chosen = _selectors(name, selectors, message)
    choice = pick_resolver(resolver)
    options = ResolverOptions(timeout=timeout, tries=tries)
    report = audit_domain(name, choice, ips=addresses, selectors=chosen, options=options,
                          notes=notes)  # fmt: skip
    if as_json:
        write_json(report.to_json())
    else:
        from relayguard.dns.render import render_domain
        from relayguard.report.console import report_console, silence_stdout

        try:
            render_domain(report, report_console(), verbose=verbose)
            sys.stdout.flush()
        except BrokenPipeError:
            silence_stdout()
    if report.exit_code == 3 and not as_json:
        click.echo(f"relayguard: {clean(report.why, 300)}", err=True)
    return int(report.exit_code)
