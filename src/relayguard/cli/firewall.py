"""``relayguard firewall egress|ban``: nftables (or iptables) rules, printed or applied."""

from __future__ import annotations

import ipaddress
import pwd

import click

from relayguard import config as config_mod
from relayguard.analysis.engine import Analyzer
from relayguard.analysis.locality import TrustedNetworks
from relayguard.errors import InputError
from relayguard.logs.reader import LogReader
from relayguard.mitigate import firewall, rules
from relayguard.report.sanitize import clean

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@click.group("firewall")
def firewall_group() -> None:
    """Egress and ban rules (nftables; --iptables for hosts without nft). Printed unless --apply."""


_apply = click.option("--apply", "apply_", is_flag=True, help="Validate and load the rules.")
_iptables = click.option("--iptables", is_flag=True, help="iptables/ip6tables (and ipset) rules.")


def _uids(users: tuple[str, ...]) -> list[tuple[str, int]]:
    out = []
    for user in dict.fromkeys(users):  # each once, in the order given
        try:
            out.append((user, pwd.getpwnam(user).pw_uid))
        except KeyError:
            raise InputError(
                f"no such user: {clean(user, 64)!r} (the MTA's user, e.g. postfix)"
            ) from None
    return out


@firewall_group.command("egress")
@click.option(
    "--mta-user",
    "users",
    multiple=True,
    default=("postfix",),
    show_default=True,
    metavar="USER",
    help="A user allowed to connect out to SMTP ports (repeatable).",
)
@click.option(
    "--port",
    "ports",
    multiple=True,
    type=click.IntRange(1, 65535),
    default=(25,),
    show_default=True,
    help="A remote port only the MTA may use (repeatable; add 465 and 587 to block "
    "submission to outside servers too).",
)
@_iptables
@_apply
def egress(users: tuple[str, ...], ports: tuple[int, ...], iptables: bool, apply_: bool) -> None:
    """Outbound SMTP from the MTA's user only: everything else is logged and dropped."""
    uids = _uids(users)
    if iptables:
        text = rules.iptables_egress(uids, ports)
        if apply_:
            firewall.iptables_apply(text, "OUTPUT", rules.EGRESS_CHAIN)
            click.echo(f"applied: chain {rules.EGRESS_CHAIN} (iptables and ip6tables), from OUTPUT")
            return
        click.echo("# iptables-restore --noflush, ip6tables-restore --noflush; then:")
        click.echo(f"#   iptables -I OUTPUT 1 -j {rules.EGRESS_CHAIN} (and ip6tables)")
        click.echo(text, nl=False)
        return
    text = rules.nft_egress(uids, ports)
    if apply_:
        firewall.nft_apply(text)
        click.echo(f"applied: table inet {rules.EGRESS_TABLE} (checked with nft -c first)")
        return
    click.echo(text, nl=False)


def _from_logs(paths: tuple[str, ...], config_path: str | None) -> list[str]:
    cfg = config_mod.load(config_path)
    reader = LogReader(list(paths))
    errors = reader.preflight()
    if errors:
        raise errors[0]
    analyzer = Analyzer(cfg)
    analyzer.feed_all(reader.events())
    reader.raise_for_failures()
    return [
        f.subject.value
        for f in analyzer.finish().findings
        if f.indicator == "auth-bruteforce" and f.subject.kind == "ip"
    ]


def ban_address(text: str) -> IPAddress:
    """The address to ban for ``text``: an IPv4-mapped IPv6 address is its IPv4 address (the
    kernel sees IPv4 packets); InputError for what is not one host's address."""
    shown = clean(text, 64)
    if "%" in text:
        raise InputError(f"cannot ban {shown!r}: a zone id (%...) names an interface, not a host")
    try:
        ip: IPAddress = ipaddress.ip_address(text.strip())
    except ValueError:
        raise InputError(f"not an IP address: {shown!r}") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        raise InputError(f"cannot ban '{ip}': the unspecified address is no host")
    if ip.is_multicast:
        raise InputError(f"cannot ban '{ip}': a multicast address is no single host")
    if ip == ipaddress.IPv4Address("255.255.255.255"):
        raise InputError(f"cannot ban '{ip}': the broadcast address is no single host")
    return ip


@firewall_group.command("ban")
@click.argument("addresses", nargs=-1, metavar="[IP]...")
@click.option(
    "--log",
    "logs",
    multiple=True,
    metavar="FILE",
    help="Ban the addresses of the auth-bruteforce findings in this log (repeatable).",
)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config.")
@click.option(
    "--timeout",
    type=click.IntRange(60, 365 * 86400),
    default=86400,
    show_default=True,
    help="Seconds each ban lasts.",
)
@_iptables
@_apply
def ban(
    addresses: tuple[str, ...],
    logs: tuple[str, ...],
    config_path: str | None,
    timeout: int,
    iptables: bool,
    apply_: bool,
) -> None:
    """Drop inbound traffic from brute-forcing addresses, for --timeout seconds.

    With only --log and no auth-bruteforce finding in the logs, nothing is banned and the exit
    code is 0 (a quiet day is no failure for a cron job).
    """
    if not addresses and not logs:
        raise click.UsageError("name addresses to ban, or --log FILE with auth-bruteforce findings")
    found = [ban_address(text) for text in addresses]  # a bad argument is an error
    if logs:
        from_logs = _from_logs(logs, config_path)
        if not from_logs and not addresses:
            names = ", ".join(clean(p, 200) for p in logs)
            verb = "has" if len(logs) == 1 else "have"
            click.echo(f"{names} {verb} no auth-bruteforce findings: nothing to ban", err=True)
            return
        for text in from_logs:
            try:
                found.append(ban_address(text))
            except InputError as exc:  # what a log holds is skipped with a note, not fatal
                click.echo(f"# not banned: {exc}", err=True)
    trusted = TrustedNetworks(config_mod.load(config_path).analyze.trusted_networks)
    keep = []
    for ip in dict.fromkeys(found):
        if ip.is_loopback or trusted.contains(str(ip)):
            click.echo(f"# not banned: {ip} is loopback or in the trusted networks", err=True)
            continue
        keep.append(str(ip))
    if not keep:
        raise InputError("nothing to ban: every address is loopback or trusted")
    if iptables:
        if apply_:
            firewall.iptables_ban_apply(keep, timeout)
            click.echo(f"applied: {len(keep)} address(es) in ipset {rules.BAN_SET}-inet/-inet6")
            return
        click.echo("# ipset restore -exist:")
        click.echo(rules.ipset_ban(keep, timeout), nl=False)
        click.echo("# iptables-restore --noflush (ip6tables-restore with the -inet6 set); then:")
        click.echo(f"#   iptables -I INPUT 1 -j {rules.BAN_CHAIN} (and ip6tables)")
        click.echo(rules.iptables_ban("inet"), nl=False)
        return
    text = rules.nft_ban(keep, timeout)
    if apply_:
        firewall.nft_apply(text)
        click.echo(f"applied: {len(keep)} address(es) in table inet {rules.BAN_TABLE}")
        return
    click.echo(text, nl=False)
