"""``relayguard pcap``: relay abuse seen in a packet capture."""

from __future__ import annotations

import ipaddress
import sys
from typing import TYPE_CHECKING

import click

from relayguard.errors import InputError, RelayguardError

if TYPE_CHECKING:
    from relayguard.wire.result import PcapResult


def _networks(values: tuple[str, ...], option: str) -> list[str]:
    out = []
    for text in values:
        try:
            out.append(str(ipaddress.ip_network(text.strip(), strict=False)))
        except ValueError:
            raise InputError(f"{option}: not an address or network: {text!r}") from None
    return out


class _Port(click.ParamType[int]):
    name = "port"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        text = str(value).strip()
        if text.isdigit() and 1 <= int(text) <= 65535:
            return int(text)
        self.fail(f"{value!r} is not a port number (1 to 65535)", param, ctx)


_PORT = _Port()
_ROLES = ("--port", "--submission-port", "--tls-port")


def _port_roles(*roles: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """The ports of each role; a port given two roles (defaults included) is an error."""
    seen: dict[int, str] = {}
    for option, ports in zip(_ROLES, roles, strict=True):
        for port in ports:
            other = seen.setdefault(port, option)
            if other != option:
                raise InputError(
                    f"port {port} is given to both {other} and {option}: a port has one role "
                    "(defaults: --port 25, --submission-port 587, --tls-port 465)"
                )
    return roles


@click.command("pcap")
@click.argument("path", metavar="FILE.pcap|FILE.pcapng|-")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config.")
@click.option(
    "--local-domain", "local_domains", multiple=True, metavar="DOMAIN",
    help="A domain your servers receive mail for (repeatable; its subdomains count too).",
)  # fmt: skip
@click.option(
    "--mail-server", "mail_servers", multiple=True, metavar="IP|CIDR",
    help="Your mail server (repeatable). Default: the SMTP servers in your local networks.",
)  # fmt: skip
@click.option(
    "--trusted-network", "trusted_networks", multiple=True, metavar="CIDR",
    help="A network allowed to relay without auth, like mynetworks (repeatable).",
)  # fmt: skip
@click.option(
    "--local-network", "local_networks", multiple=True, metavar="CIDR",
    help="Your own address space (repeatable). Default: private, loopback, link-local.",
)  # fmt: skip
@click.option(
    "--port", "ports", multiple=True, type=_PORT, metavar="PORT",
    help="A server-to-server SMTP port (repeatable; default 25).",
)  # fmt: skip
@click.option(
    "--submission-port", "submission_ports", multiple=True, type=_PORT, metavar="PORT",
    help="A submission port (repeatable; default 587).",
)  # fmt: skip
@click.option(
    "--tls-port", "tls_ports", multiple=True, type=_PORT, metavar="PORT",
    help="An implicit-TLS port, counted but unreadable (repeatable; default 465).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the relayguard.pcap/1 JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show all evidence and incidents.")
def pcap(
    path: str,
    config_path: str | None,
    local_domains: tuple[str, ...],
    mail_servers: tuple[str, ...],
    trusted_networks: tuple[str, ...],
    local_networks: tuple[str, ...],
    ports: tuple[int, ...],
    submission_ports: tuple[int, ...],
    tls_ports: tuple[int, ...],
    as_json: bool,
    verbose: bool,
) -> int:
    """Reassemble the SMTP sessions in a pcap or pcapng capture (also gzip-compressed, or
    from standard input) and report open relay use, AUTH brute force, relay probing,
    outbound spikes, and hosts that are not mail servers sending straight to port 25.

    The capture is FILE, or - for standard input (tcpdump -w - ... | relayguard pcap -).

    Exit code: 0 clean, 1 suspicious, 2 abused, 3 error (nothing could be read).
    """
    # imported here, not at the top: `relayguard pcap --help` needs none of them
    from relayguard import config as config_mod
    from relayguard.report.console import silence_stdout
    from relayguard.wire import WireOptions, analyze_capture

    cfg = config_mod.with_overrides(
        config_mod.load(config_path),
        local_domains=list(local_domains),
        trusted_networks=_networks(trusted_networks, "--trusted-network"),
    )
    roles = _port_roles(ports or (25,), submission_ports or (587,), tls_ports or (465,))
    options = WireOptions(
        mail_servers=_networks(mail_servers, "--mail-server"),
        local_networks=_networks(local_networks, "--local-network"),
        relay_ports=roles[0],
        submission_ports=roles[1],
        tls_ports=roles[2],
    )
    result = analyze_capture(path, cfg, options)
    try:
        _output(result, as_json=as_json, verbose=verbose)
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    except OSError as exc:
        silence_stdout()
        raise RelayguardError(f"cannot write the report: {exc.strerror or exc}") from None
    for error in result.errors:
        click.echo(f"relayguard: error: {error}", err=True)
    return result.exit_code


def _output(result: PcapResult, *, as_json: bool, verbose: bool) -> None:
    if as_json:
        from relayguard.wire.result import dumps

        sys.stdout.write(dumps(result) + "\n")
        return
    from relayguard.report.console import report_console
    from relayguard.wire.render import render

    render(result, report_console(), verbose=verbose)
