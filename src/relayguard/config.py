"""One TOML configuration file: local domains, trusted networks and every detector threshold.

Each setting is a dataclass field whose ``metadata["doc"]`` explains it; ``relayguard config
defaults`` prints the whole file with those comments, so the documentation cannot drift from
the code. Unknown keys are an error (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from relayguard.errors import ConfigError

HOUR = 3600
DAY = 86400


def _doc(default: Any, doc: str) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True, slots=True)
class AnalyzeSettings:
    local_domains: list[str] = _doc(
        [],
        "Domains this server receives mail for. Empty: inferred from the log "
        "(local deliveries, SASL user domains, 'User unknown in local recipient table').",
    )
    trusted_networks: list[str] = _doc(
        ["127.0.0.1/32", "::1/128"],
        "Client networks allowed to relay without authentication: your mynetworks. "
        "Unauthenticated clients outside them that relay to external domains are reported.",
    )
    max_open_messages: int = _doc(
        200_000, "Queue ids kept in memory while waiting for their 'removed' line."
    )
    message_max_age: int = _doc(
        6 * DAY, "Seconds a queue id may stay open before it is evicted as incomplete."
    )


@dataclass(frozen=True, slots=True)
class AuthBruteforceSettings:
    window: int = _doc(
        HOUR,
        "Seconds over which SASL failures from one IP, and on the whole server, are counted "
        "(spraying against one username is judged over the whole input).",
    )
    min_failures: int = _doc(10, "Failures from one client IP within the window to report it.")
    high_failures: int = _doc(100, "Failures from one IP at which the finding becomes high.")
    spray_min_ips: int = _doc(3, "Distinct IPs failing against one username to call it spraying.")
    spray_min_failures: int = _doc(10, "Failures against one username to call it spraying.")
    server_min_failures: int = _doc(
        300,
        "Failures on the whole server within one window, from at least server_min_ips "
        "addresses, that make a distributed brute force (each address may fail only once).",
    )
    server_min_ips: int = _doc(20, "Distinct addresses needed for a distributed brute force.")


@dataclass(frozen=True, slots=True)
class CompromisedAccountSettings:
    window: int = _doc(
        DAY, "A login within this many seconds after failures against the account counts."
    )
    min_failures: int = _doc(3, "Failures against the account (or from the login's IP) needed.")
    targeted_failures: int = _doc(
        50,
        "Failures against one account within the window that make it a targeted attack: "
        "a login from a new network after that is a takeover even without a burst "
        "(background spraying leaves a few failures per account a day).",
    )
    known_logins: int = _doc(
        20, "Logins an account needs before a login from a new network is unusual."
    )
    new_network_burst: int = _doc(
        100,
        "External recipients within burst_window after a login from a new network "
        "that make that login a compromise.",
    )
    burst_window: int = _doc(HOUR, "Seconds after a new-network login watched for a burst.")


@dataclass(frozen=True, slots=True)
class OutboundSpikeSettings:
    window: int = _doc(HOUR, "Length in seconds of the windows volumes are counted in.")
    ceiling_messages: int = _doc(200, "Messages per window judged a spike without history.")
    ceiling_recipients: int = _doc(
        500, "External recipients per window judged a spike without history."
    )
    ceiling_domains: int = _doc(
        100, "Distinct external recipient domains per window judged a spike without history."
    )
    baseline_windows: int = _doc(
        12, "Earlier active windows an entity needs before its own baseline is used."
    )
    baseline_mads: float = _doc(
        8.0, "Median absolute deviations above the median that make a window a spike."
    )
    baseline_factor: float = _doc(4.0, "A spike must also exceed this multiple of the median.")
    floor: int = _doc(50, "Windows with fewer external recipients are never a spike.")
    history: int = _doc(168, "Active windows of history kept per entity.")


@dataclass(frozen=True, slots=True)
class UnknownSenderDomainSettings:
    min_messages: int = _doc(
        3, "Messages from one authenticated user with sender domains it does not own."
    )


@dataclass(frozen=True, slots=True)
class OpenRelayUseSettings:
    min_messages: int = _doc(
        1, "External-to-external messages from an untrusted unauthenticated client."
    )


@dataclass(frozen=True, slots=True)
class EgressSmtpSettings:
    min_sessions: int = _doc(
        1,
        "Port-25 sessions from one of your hosts that is not a mail server, straight to an "
        "outside server, needed to report it (relayguard pcap).",
    )
    high_messages: int = _doc(
        1, "Messages such a host delivered itself at which the finding becomes high."
    )


@dataclass(frozen=True, slots=True)
class RelayProbingSettings:
    min_denials: int = _doc(5, "'Relay access denied' answers to one client to report it.")


@dataclass(frozen=True, slots=True)
class NdrFloodSettings:
    min_ndrs: int = _doc(3, "Bounce notifications (NDRs) needed before the ratio matters.")
    ratio: float = _doc(0.1, "NDRs per queued message at which NDR volume is reported.")
    backscatter_min: int = _doc(
        3, "NDRs sent to external addresses for unauthenticated mail (backscatter)."
    )


@dataclass(frozen=True, slots=True)
class QueueBuildupSettings:
    min_deferred: int = _doc(50, "Messages deferred at the same time to report a build-up.")
    high_deferred: int = _doc(
        2000, "Messages deferred at the same time at which the build-up is high."
    )


@dataclass(frozen=True, slots=True)
class BlocklistedSettings:
    min_replies: int = _doc(1, "Remote rejections citing a block list needed to report it.")


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    auth_bruteforce: AuthBruteforceSettings = field(default_factory=AuthBruteforceSettings)
    compromised_account: CompromisedAccountSettings = field(
        default_factory=CompromisedAccountSettings
    )
    outbound_spike: OutboundSpikeSettings = field(default_factory=OutboundSpikeSettings)
    unknown_sender_domain: UnknownSenderDomainSettings = field(
        default_factory=UnknownSenderDomainSettings
    )
    open_relay_use: OpenRelayUseSettings = field(default_factory=OpenRelayUseSettings)
    relay_probing: RelayProbingSettings = field(default_factory=RelayProbingSettings)
    ndr_flood: NdrFloodSettings = field(default_factory=NdrFloodSettings)
    queue_buildup: QueueBuildupSettings = field(default_factory=QueueBuildupSettings)
    blocklisted_by_remote: BlocklistedSettings = field(default_factory=BlocklistedSettings)
    egress_smtp: EgressSmtpSettings = field(default_factory=EgressSmtpSettings)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    min_severity: str = _doc("medium", "Findings below this severity raise no alert.")
    suppress: int = _doc(
        HOUR,
        "Seconds a repeated alert about the same finding is suppressed (a rise in severity "
        "is always alerted).",
    )
    stdout: bool = _doc(True, "Print each alert as one JSON line (relayguard.alert/1) on stdout.")
    syslog: bool = _doc(False, "Send each alert to syslog (facility mail).")
    syslog_socket: str = _doc("/dev/log", "The syslog daemon's socket.")
    webhook: str = _doc("", "POST each alert as JSON to this http(s) URL; empty: off.")
    webhook_timeout: float = _doc(5.0, "Seconds one webhook request may take.")
    webhook_retries: int = _doc(3, "Further tries of a failed webhook request, with backoff.")
    sendmail_to: list[str] = _doc([], "Mail each alert to these addresses with sendmail.")
    sendmail: str = _doc("/usr/sbin/sendmail", "The sendmail program used for mailed alerts.")


@dataclass(frozen=True, slots=True)
class WatchSettings:
    log: str = _doc("/var/log/mail.log", "The mail log followed by relayguard watch.")
    source: str = _doc("file", "'file' (follow the log) or 'journal' (follow journalctl).")
    journal_units: list[str] = _doc(
        ["postfix.service", "postfix@-.service", "exim4.service"],
        "Units read with source = 'journal'.",
    )
    start_at: str = _doc(
        "beginning",
        "Where a first run starts in the log: 'beginning' (learn from what is there) or "
        "'end' (only new lines). Later runs go on where the last one stopped.",
    )
    state_dir: str = _doc(
        "/var/lib/relayguard-watch",
        "Where watch keeps its state (detectors, log position); not the policy server's.",
    )
    interval: int = _doc(10, "Seconds between samples of the queue, connections and MTA.")
    mta: str = _doc("postfix", "The MTA whose queue is sampled: 'postfix' or 'exim'.")
    postfix_config: str = _doc(
        "", "Postfix configuration directory (postqueue -c); empty: the default instance."
    )
    queue_threshold: int = _doc(500, "Queued messages (not counting hold) that raise an alert.")
    queue_high: int = _doc(5000, "Queued messages at which the queue alert is high.")
    smtp_ports: list[int] = _doc([25, 465, 587], "Remote ports of outbound SMTP connections.")
    mta_users: list[str] = _doc(
        ["postfix", "Debian-exim", "exim"],
        "Users allowed to connect out to SMTP ports; anyone else is an egress-smtp finding.",
    )
    spike_factor: float = _doc(
        4.0, "MTA CPU, I/O or connections this many times their own median are a spike."
    )
    spike_samples: int = _doc(30, "Samples of history needed before spikes are judged.")
    active_window: int = _doc(
        DAY,
        "Log findings with no evidence for this many seconds no longer count (verdict, "
        "alerts, metrics; the daemon and --once alike).",
    )
    metrics_listen: str = _doc("", "HOST:PORT to serve Prometheus /metrics on; empty: off.")
    alerts: AlertSettings = field(default_factory=AlertSettings)


@dataclass(frozen=True, slots=True)
class Config:
    analyze: AnalyzeSettings = field(default_factory=AnalyzeSettings)
    detectors: DetectorSettings = field(default_factory=DetectorSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)


# Top-level tables that other commands read from the same file (each checks its own).
OTHER_TABLES = frozenset({"policy"})


def _build(cls: type[Any], data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if not where and key in OTHER_TABLES:
            continue
        f = known.get(key)
        if f is None:
            raise ConfigError(f"unknown setting {where}{key}")
        default = getattr(cls(), key)
        if is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{key} must be a table")
            values[key] = _build(type(default), value, f"{where}{key}.")
            continue
        values[key] = _check_type(value, default, f"{where}{key}")
    return cls(**values)


def _check_type(value: Any, default: Any, name: str) -> Any:
    # [watch] checks the range of each of its numbers itself (monitor/settings.py), so that a
    # negative value and 0 get the same message there
    floor = float("-inf") if name.startswith("watch.") else 0
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= floor
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and (value >= floor or name.startswith("watch."))  # nan too
        value = float(value) if ok else value
    elif isinstance(default, list) and default and isinstance(default[0], int):
        ok = isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        if isinstance(default, list) and default and isinstance(default[0], int):
            kind = "a list of whole numbers"
        elif isinstance(default, list):
            kind = "a list of strings"
        elif isinstance(default, bool):
            kind = "true or false"
        elif isinstance(default, int):
            kind = "a whole number >= 0"
        else:
            kind = "a number >= 0"
        raise ConfigError(f"{name} must be {kind}, not {value!r}")
    return value


def load(path: str | Path | None) -> Config:
    """The configuration in ``path``, or the defaults when path is None."""
    if path is None:
        return Config()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {path} is not valid TOML: {exc}") from None
    cfg: Config = _build(Config, data, "")
    _validate(cfg)
    return cfg


_DOMAIN_LABEL = re.compile(r"[^\W_](?:[\w-]{0,61}[^\W_])?|_[\w-]{1,62}")


def check_domain_name(text: str, where: str) -> str:
    """``text`` as a lower-case domain name without trailing dot; ConfigError when it cannot be one
    (a blank, an ``@``, a slash: a typo that would otherwise silently match nothing)."""
    name = text.strip().rstrip(".").lower()
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_DOMAIN_LABEL.fullmatch(x) for x in labels):
        raise ConfigError(f"{where}: not a domain name: {text!r}")
    return name


def _validate(cfg: Config) -> None:
    """Checks no type can express: networks that parse, windows that are not zero."""
    for text in cfg.analyze.local_domains:
        check_domain_name(text, "analyze.local_domains")
    for text in cfg.analyze.trusted_networks:
        try:
            ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"analyze.trusted_networks: not a network: {text!r} (want e.g. 192.0.2.0/24)"
            ) from None
    d = cfg.detectors
    windows = {
        "detectors.auth_bruteforce.window": d.auth_bruteforce.window,
        "detectors.compromised_account.window": d.compromised_account.window,
        "detectors.compromised_account.burst_window": d.compromised_account.burst_window,
        "detectors.outbound_spike.window": d.outbound_spike.window,
        "detectors.outbound_spike.history": d.outbound_spike.history,
        "analyze.max_open_messages": cfg.analyze.max_open_messages,
    }
    for name, value in windows.items():
        if value <= 0:
            raise ConfigError(f"{name} must be greater than 0, not {value}")
    from relayguard.monitor.settings import validate_watch  # the watch part is its own

    validate_watch(cfg.watch)


def with_overrides(
    config: Config, *, local_domains: list[str], trusted_networks: list[str]
) -> Config:
    """Command-line values replace (not extend) the file's lists when given."""
    analyze = config.analyze
    if local_domains:
        for text in local_domains:
            check_domain_name(text, "--local-domain")
        analyze = replace(analyze, local_domains=list(local_domains))
    if trusted_networks:
        analyze = replace(analyze, trusted_networks=list(trusted_networks))
    return replace(config, analyze=analyze)


def render_defaults() -> str:
    """The default configuration as a commented TOML file."""
    lines = [
        "# relayguard configuration (TOML). Every setting is shown with its default.",
        "# Use with: relayguard analyze --config relayguard.toml ...",
        "",
    ]
    _render(Config(), "", lines)
    return "\n".join(lines).rstrip() + "\n"


def _render(obj: Any, prefix: str, lines: list[str]) -> None:
    scalars = [f for f in fields(obj) if not is_dataclass(getattr(obj, f.name))]
    if scalars and prefix:
        lines.append(f"[{prefix}]")
    for f in scalars:
        lines.append(f"# {f.metadata.get('doc', '')}")
        lines.append(f"{f.name} = {_toml_value(getattr(obj, f.name))}")
    if scalars:
        lines.append("")
    for f in fields(obj):
        value = getattr(obj, f.name)
        if is_dataclass(value):
            _render(value, f"{prefix}.{f.name}" if prefix else f.name, lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) if isinstance(v, int) else f'"{v}"' for v in value) + "]"
    return repr(value)
