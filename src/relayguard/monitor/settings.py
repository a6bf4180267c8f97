"""Checks of the ``[watch]`` settings that their types cannot express."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from relayguard.config import WatchSettings
from relayguard.errors import ConfigError
from relayguard.findings import Severity

_ADDRESS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+=-]{0,63}@[A-Za-z0-9][A-Za-z0-9.-]{0,252}")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?")


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
    except ValueError as exc:
        raise ConfigError(f"{name}: not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}: expected an http:// or https:// URL with a host")
    del port
    return url


def validate_watch(w: WatchSettings) -> None:
    _choice("watch.source", w.source, ("file", "journal"))
    _choice("watch.start_at", w.start_at, ("beginning", "end"))
    _choice("watch.mta", w.mta, ("postfix", "exim"))
    _choice("watch.alerts.min_severity", w.alerts.min_severity, tuple(s.label for s in Severity))
    if w.interval <= 0:
        raise ConfigError(f"watch.interval must be greater than 0, not {w.interval}")
    if not w.log:
        raise ConfigError("watch.log must name a file")
    for port in w.smtp_ports:
        if not 0 < port < 65536:
            raise ConfigError(f"watch.smtp_ports: {port} is not a TCP port")
    for user in w.mta_users:
        if not _USER.fullmatch(user):
            raise ConfigError(f"watch.mta_users: {user!r} is not a user name")
    for unit in w.journal_units:
        if not re.fullmatch(r"[A-Za-z0-9:_.@\\-]{1,256}", unit):
            raise ConfigError(f"watch.journal_units: {unit!r} is not a unit name")
    if w.metrics_listen:
        parse_listen(w.metrics_listen)
    if w.alerts.webhook:
        check_webhook(w.alerts.webhook)
    for address in w.alerts.sendmail_to:
        if not _ADDRESS.fullmatch(address):
            raise ConfigError(f"watch.alerts.sendmail_to: {address!r} is not a mail address")
    if w.alerts.webhook_timeout <= 0:
        raise ConfigError("watch.alerts.webhook_timeout must be greater than 0")
