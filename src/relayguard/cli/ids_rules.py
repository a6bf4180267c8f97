"""``relayguard ids-rules``: Suricata/Snort rules for relay abuse on the wire."""

from __future__ import annotations

import sys

import click

from relayguard import config as config_mod
from relayguard.cli.pcap import _PORT, _networks
from relayguard.errors import InputError, RelayguardError
from relayguard.report.console import silence_stdout
from relayguard.wire import ids


@click.command("ids-rules")
@click.option(
    "--local-domain", "local_domains", multiple=True, metavar="DOMAIN",
    help="A domain your servers receive mail for (repeatable, required; subdomains count).",
)  # fmt: skip
@click.option(
    "--mail-server", "mail_servers", multiple=True, metavar="IP|CIDR",
    help="Your mail server (repeatable). Default: the $SMTP_SERVERS variable.",
)  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(ids.FORMATS), default="suricata", show_default=True,
    help="Rule dialect: Suricata 6/7, or Snort 2.9 (Snort 3 reads it through snort2lua).",
)  # fmt: skip
@click.option(
    "--port", "ports", multiple=True, type=_PORT, metavar="PORT",
    help="An SMTP port (repeatable; default 25, 587): your servers' in Snort rules; "
    "all but 587/465 in the egress rules.",
)  # fmt: skip
@click.option(
    "--sid-base", type=click.IntRange(1_000_000, 1_999_000), default=ids.DEFAULT_SID_BASE,
    show_default=True, help="Rules get sids base+101 ... base+402 (local range).",
)  # fmt: skip
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config.")
def ids_rules(
    local_domains: tuple[str, ...],
    mail_servers: tuple[str, ...],
    fmt: str,
    ports: tuple[int, ...],
    sid_base: int,
    config_path: str | None,
) -> int:
    """Print IDS rules for relay attempts against your domains (exact domain and subdomain
    matching, any case, optional space and brackets, quoted local parts, address literals),
    relay tricks, relay refusals and probing, AUTH brute force (thresholded), and port 25
    traffic from hosts that are not mail servers. Thresholds come from --config.
    """
    cfg = config_mod.load(config_path)
    domains = list(local_domains) or list(cfg.analyze.local_domains)
    servers = _networks(mail_servers, "--mail-server")
    for net in servers:
        if net.endswith("/0"):
            # the egress rules say [$HOME_NET,!servers]: Suricata refuses to load a rule
            # that negates the complete address space
            raise InputError(
                f"--mail-server {net}: the whole address space cannot be your mail servers "
                "(name the servers themselves)"
            )
    rules = ids.build(cfg, domains, servers, fmt, sid_base, ports or (25, 587))
    text = rules.render(ids.header(fmt, domains, servers))
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    except OSError as exc:
        silence_stdout()
        raise RelayguardError(f"cannot write the rules: {exc.strerror or exc}") from None
    return 0
