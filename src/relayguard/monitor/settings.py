"""Checks of the ``[watch]`` settings that their types cannot express."""

from __future__ import annotations

import ipaddress
import math
import pwd
import re
from urllib.parse import urlsplit

from relayguard.config import WatchSettings
from relayguard.errors import ConfigError
from relayguard.findings import Severity

# a mail address, or a bare local name (``root``) that sendmail delivers locally
_ADDRESS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+=-]{0,63}(@[A-Za-z0-9][A-Za-z0-9.-]{0,252})?")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?")
SPIKE_HISTORY = 360  # samples kept per MTA series (resources.HISTORY)
MAX_INTERVAL = 86400
MAX_WEBHOOK_TIMEOUT = 600.0
MAX_WEBHOOK_RETRIES = 20
# the default mta_users cover Postfix and Exim: on any one host some of them do not exist
BUILTIN_MTA_USERS = frozenset({"postfix", "Debian-exim", "exim"})


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{name} must be one of {allowed}, not {value!r}")


def parse_listen(text: str, name: str = "watch.metrics_listen") -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` as (host, port); ConfigError otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ConfigError(f"{name}: expected HOST:PORT (e.g. 127.0.0.1:9469), not {text!r}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ConfigError(f"{name}: {host!r} is not an IP address") from None
    return host, int(port)


def check_webhook(url: str, name: str = "watch.alerts.webhook") -> str:
    """The URL if it is an absolute http(s) URL with a host, else ConfigError."""
    if not url.isprintable() or any(ch.isspace() for ch in url) or len(url) > 2048:
        raise ConfigError(f"{name}: not a URL (spaces or control characters)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # not the exception's text: it may quote a password
        raise ConfigError(f"{name}: not a URL (a bad host or port)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}: expected an http:// or https:// URL with a host")
    del port
    return url


def _int_range(name: str, value: int, low: int, high: int | None = None) -> None:
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {span}, not {value}")


def _positive_float(name: str, value: float, high: float | None = None) -> None:
    if not math.isfinite(value) or value <= 0 or (high is not None and value > high):
        limit = f" and at most {high:g}" if high is not None else ""
        raise ConfigError(f"{name} must be a number greater than 0{limit}, not {value}")


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def validate_watch(w: WatchSettings) -> None:
    _choice("watch.source", w.source, ("file", "journal"))
    _choice("watch.start_at", w.start_at, ("beginning", "end"))
    _choice("watch.mta", w.mta, ("postfix", "exim"))
    _choice("watch.alerts.min_severity", w.alerts.min_severity, tuple(s.label for s in Severity))
    _int_range("watch.interval", w.interval, 1, MAX_INTERVAL)
    _int_range("watch.queue_threshold", w.queue_threshold, 0)
    _int_range("watch.queue_high", w.queue_high, 0)
    if w.queue_high < w.queue_threshold:
        raise ConfigError(
            f"watch.queue_high ({w.queue_high}) must not be below watch.queue_threshold "
            f"({w.queue_threshold})"
        )
    _int_range("watch.spike_samples", w.spike_samples, 1, SPIKE_HISTORY)
    _positive_float("watch.spike_factor", w.spike_factor)
    _int_range("watch.active_window", w.active_window, 1)
    if not w.log:
        raise ConfigError("watch.log must name a file")
    if not w.state_dir:
        raise ConfigError("watch.state_dir must name a directory (empty is not one)")
    if not w.smtp_ports:
        raise ConfigError("watch.smtp_ports must name at least one port")
    for port in w.smtp_ports:
        if not 0 < port < 65536:
            raise ConfigError(f"watch.smtp_ports: {port} is not a TCP port (1 to 65535)")
    for user in w.mta_users:
        if not _USER.fullmatch(user):
            raise ConfigError(f"watch.mta_users: {user!r} is not a user name")
        if user not in BUILTIN_MTA_USERS and not _user_exists(user):
            raise ConfigError(f"watch.mta_users: no such user: {user!r}")
    if w.source == "journal" and not w.journal_units:
        raise ConfigError("watch.journal_units must name at least one unit with source = 'journal'")
    for unit in w.journal_units:
        if not re.fullmatch(r"[A-Za-z0-9:_.@\\-]{1,256}", unit):
            raise ConfigError(f"watch.journal_units: {unit!r} is not a unit name")
    if w.metrics_listen:
        parse_listen(w.metrics_listen)
    a = w.alerts
    _int_range("watch.alerts.suppress", a.suppress, 0)
    if a.webhook:
        check_webhook(a.webhook)
    for address in a.sendmail_to:
        if not _ADDRESS.fullmatch(address):
            raise ConfigError(f"watch.alerts.sendmail_to: {address!r} is not a mail address")
    _positive_float("watch.alerts.webhook_timeout", a.webhook_timeout, MAX_WEBHOOK_TIMEOUT)
    _int_range("watch.alerts.webhook_retries", a.webhook_retries, 0, MAX_WEBHOOK_RETRIES)
