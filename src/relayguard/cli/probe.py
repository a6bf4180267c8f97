"""``relayguard probe``: is this mail server an open relay? A safe test, no message sent."""

from __future__ import annotations

import ipaddress
import socket
import sys

import click

from relayguard.probe import ProbeOptions, run
from relayguard.probe.result import ProbeResult
from relayguard.probe.runner import check_sources
from relayguard.report.console import report_console, silence_stdout

_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
_ADDRESS_BAD = frozenset(' <>()[],;:\\"')


def _ip(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IP address", param=param) from None


def _name(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if not value or len(value) > 253 or not set(value) <= _HOST_CHARS or value.startswith("-"):
        raise click.BadParameter(f"{value!r} is not a domain name", param=param)
    return value


def _mailbox(_ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    local, at, domain = value.partition("@")
    printable = all("!" <= ch <= "~" for ch in value)
    if not (at and local and domain and printable) or _ADDRESS_BAD & set(value) or "@" in domain:
        raise click.BadParameter(f"{value!r} is not a plain mailbox address", param=param)
    return value


def default_helo() -> str:
    """This machine's name when it is a full one (no DNS lookup), else a reserved name."""
    name = socket.gethostname()
    if "." in name and set(name) <= _HOST_CHARS and not name.startswith("localhost"):
        return name
    return "relayguard.invalid"


@click.command("probe")
@click.argument("host")
@click.option(
    "-p",
    "--port",
    "ports",
    type=click.IntRange(1, 65535),
    multiple=True,
    help="Port to test (repeatable). Default 25. 465 speaks implicit TLS.",
)
@click.option("-4", "ipv4", is_flag=True, help="Only the host's IPv4 addresses.")
@click.option("-6", "ipv6", is_flag=True, help="Only the host's IPv6 addresses.")
@click.option(
    "--source-address", callback=_ip, metavar="IP", help="Connect from this local address."
)
@click.option(
    "--compare-source",
    callback=_ip,
    metavar="IP",
    help="A second local address: when relaying is accepted, repeat every accepted test from "
    "it to tell an open relay from a trusted source (all refused there: closed to outsiders). "
    "Default: 127.0.0.253 (127.0.0.254 if that is the source) when --source-address is an "
    "IPv4 loopback address (127.0.0.1 too) and the target is loopback, else none.",
)
@click.option(
    "--domain",
    callback=_name,
    metavar="DOMAIN",
    help="External test domain for recipients and senders (default: RFC 2606 example.net).",
)
@click.option(
    "--local-domain",
    callback=_name,
    metavar="DOMAIN",
    help="A domain the server receives mail for (controls). Default: from its banner name.",
)
@click.option(
    "--helo",
    callback=_name,
    metavar="NAME",
    help="EHLO name. Default: this host's name if it is fully qualified (has a dot), else "
    "relayguard.invalid.",
)
@click.option("--no-starttls", is_flag=True, help="Do not repeat the tests after STARTTLS.")
@click.option(
    "--prove-to",
    callback=_mailbox,
    metavar="ADDRESS",
    help="A canary mailbox you own: if relaying is accepted, send it ONE message (the only "
    "case the probe sends DATA) and report 'proven' when the server takes it.",
)
@click.option(
    "--check-rate-limit",
    is_flag=True,
    help="Also open 30 short connections in a row to see whether the server limits them.",
)
@click.option("--connect-timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True)
@click.option(
    "--timeout",
    "command_timeout",
    type=click.FloatRange(0.1, 600),
    default=30.0,
    show_default=True,
    help="Seconds to wait for each reply.",
)
@click.option(
    "--total-timeout",
    type=click.FloatRange(1, 3600),
    default=300.0,
    show_default=True,
    help="Seconds for the whole probe.",
)
@click.option(
    "--backoff",
    type=click.FloatRange(0, 600),
    default=30.0,
    show_default=True,
    help="Seconds to wait after a 421 before the one reconnection.",
)
@click.option(
    "--retry-delay",
    type=click.FloatRange(-1, 600),
    default=10.0,
    show_default=True,
    help="Seconds before tests refused with a 4xx are run again, once (-1: never).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the relayguard.probe/1 JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show the dialogue of every test.")
def probe(
    host: str,
    ports: tuple[int, ...],
    ipv4: bool,
    ipv6: bool,
    source_address: str | None,
    compare_source: str | None,
    domain: str | None,
    local_domain: str | None,
    helo: str | None,
    no_starttls: bool,
    prove_to: str | None,
    check_rate_limit: bool,
    connect_timeout: float,
    command_timeout: float,
    total_timeout: float,
    backoff: float,
    retry_delay: float,
    as_json: bool,
    verbose: bool,
) -> int:
    """Test whether HOST (a name or an address; nothing else is contacted) relays mail for
    anyone, and report SMTP weaknesses found on the way: AUTH before TLS, no STARTTLS,
    VRFY/EXPN, XCLIENT, accepting unknown users, version banners, tarpits.

    Safe by design: no message is sent (MAIL, RCPT, RSET, never DATA) unless --prove-to names
    a canary mailbox you own. Test addresses are RFC 2606 names unless --domain is given.
    Probe from outside the server's trusted networks: from inside, every relay test passes.

    Exit code: 0 closed, 1 closed with weaknesses, 2 open relay, 3 inconclusive or error.
    """
    if ipv4 and ipv6:
        raise click.UsageError("-4 and -6 are exclusive")
    options = ProbeOptions(
        host=host.strip(),
        ports=tuple(dict.fromkeys(ports)) or (25,),
        family=4 if ipv4 else 6 if ipv6 else None,
        source_address=source_address,
        compare_source=compare_source,
        domain=domain,
        local_domain=local_domain,
        helo=helo or default_helo(),
        starttls=not no_starttls,
        prove_to=prove_to,
        check_rate_limit=check_rate_limit,
        connect_timeout=connect_timeout,
        command_timeout=command_timeout,
        total_timeout=total_timeout,
        backoff=backoff,
        retry_delay=retry_delay,
    )
    check_sources(options)  # a TargetError: one line, exit 3, nothing contacted
    result = run(options)
    try:
        _output(result, as_json=as_json, verbose=verbose)
        sys.stdout.flush()
    except BrokenPipeError:  # `| head`: the reader left, the verdict still stands
        silence_stdout()
    if result.error:
        click.echo(f"relayguard: error: {result.error}", err=True)
    return result.exit_code


def _output(result: ProbeResult, *, as_json: bool, verbose: bool) -> None:
    if as_json:
        import json

        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    from relayguard.probe.render import render

    render(result, report_console(), verbose=verbose)
