"""The ``[policy]`` table of the TOML config: listen address, store, rules and bounds."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from relayguard.errors import ConfigError
from relayguard.policy.rules import RuleSet, parse_rules

DEFAULT_LISTEN: Final = "127.0.0.1:10040"
DEFAULT_STORE: Final = "sqlite:/var/lib/relayguard/policy.sqlite"
DEFAULT_LISTEN_MODE: Final = 0o666
"""Like Postfix's own sockets in private/: anyone who can reach the directory may connect, so
the directory is what restricts access (the unit's UMask would leave smtpd locked out)."""

_SETTINGS: Final = frozenset(
    (
        "listen",
        "listen_mode",
        "listen_group",
        "store",
        "store_timeout",
        "store_retry",
        "fail_mode",
        "local_domains",
        "rules",
        "idle_timeout",
        "max_connections",
        "metrics_listen",
        "workers",
    )
)
MAX_WORKERS: Final = 64


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    rules: RuleSet
    listen: str = DEFAULT_LISTEN
    listen_mode: int = DEFAULT_LISTEN_MODE
    """Permissions of a ``unix:`` socket."""
    listen_group: str = ""
    """Group of a ``unix:`` socket; empty: the server's own group."""
    store: str = DEFAULT_STORE
    store_timeout: float = 0.2
    """Longest wait for the store before the fail action is answered."""
    store_retry: float = 1.0
    """After a store failure, requests get the fail action at once for this long, then the store
    is tried again: a dead store costs one timeout per ``store_retry``, not one per request."""
    fail_closed: bool = False
    idle_timeout: float = 600.0
    """Postfix closes idle policy connections after ``smtpd_policy_service_max_idle`` (300 s);
    the server waits longer so that it is never the side that drops a healthy connection."""
    max_connections: int = 1000
    metrics_listen: str = ""
    """``HOST:PORT`` for Prometheus ``/metrics``; empty: no metrics endpoint."""
    workers: int = 1
    """Server processes sharing the listening socket and the store (one per core is the most
    that helps); above 1 the store must be shared (SQLite or Redis, not memory)."""
    raw: Mapping[str, object] = field(default_factory=dict, repr=False)


def _number(table: Mapping[str, object], name: str, default: float, low: float) -> float:
    value = table.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > low:
        raise ConfigError(f"policy.{name} must be a number above {low}")
    return float(value)


def _string(table: Mapping[str, object], name: str, default: str) -> str:
    value = table.get(name, default)
    if not isinstance(value, str):
        raise ConfigError(f"policy.{name} must be a string")
    return value


def _mode(table: Mapping[str, object]) -> int:
    value = table.get("listen_mode", f"{DEFAULT_LISTEN_MODE:04o}")
    if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3}", value):
        raise ConfigError(
            f'policy.listen_mode must be octal permissions in a string, such as "0660", '
            f"not {value!r}"
        )
    return int(value, 8)


def parse_config(document: Mapping[str, object]) -> PolicyConfig:
    """The ``[policy]`` table of a loaded TOML document."""
    table = document.get("policy")
    if not isinstance(table, dict):
        raise ConfigError("the config has no [policy] table")
    unknown = sorted(str(k) for k in table if k not in _SETTINGS)
    if unknown:
        raise ConfigError(f"policy: unknown setting {unknown[0]!r}")
    rule_config = {k: table[k] for k in ("rules", "local_domains") if k in table}
    analyze = document.get("analyze")
    # one file for every command: without its own, policy takes analyze's local domains
    if (
        "local_domains" not in rule_config
        and isinstance(analyze, dict)
        and "local_domains" in analyze
    ):
        rule_config["local_domains"] = analyze["local_domains"]
    rules = parse_rules(rule_config)
    fail_mode = table.get("fail_mode", "open")
    if fail_mode not in ("open", "closed"):
        raise ConfigError("policy.fail_mode must be 'open' or 'closed'")
    listen = _string(table, "listen", DEFAULT_LISTEN)
    parse_listen(listen)
    metrics_listen = _string(table, "metrics_listen", "")
    if metrics_listen and isinstance(parse_listen(metrics_listen), str):
        raise ConfigError("policy.metrics_listen must be HOST:PORT")
    store = _string(table, "store", DEFAULT_STORE)
    from relayguard.policy.stores import check_store_spec

    check_store_spec(store)
    workers = parse_workers(table.get("workers", 1), "policy.workers")
    if workers > 1 and store.startswith("memory"):
        raise ConfigError("policy.workers above 1 needs a shared store (sqlite: or redis://)")
    return PolicyConfig(
        rules=rules,
        listen=listen,
        listen_mode=_mode(table),
        listen_group=_string(table, "listen_group", "").strip(),
        store=store,
        store_timeout=_number(table, "store_timeout", 0.2, 0),
        store_retry=_number(table, "store_retry", 1.0, 0),
        fail_closed=fail_mode == "closed",
        idle_timeout=_number(table, "idle_timeout", 600.0, 0),
        max_connections=int(_number(table, "max_connections", 1000, 0)),
        metrics_listen=metrics_listen,
        workers=workers,
        raw=table,
    )


def parse_workers(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WORKERS:
        raise ConfigError(f"{where} must be a whole number from 1 to {MAX_WORKERS}")
    return value


def load_config(path: str | os.PathLike[str]) -> PolicyConfig:
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read {os.fspath(path)!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{os.fspath(path)!r}: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{os.fspath(path)!r} is not UTF-8 text") from None
    return parse_config(document)


def parse_listen(listen: str) -> tuple[str, int] | str:
    """``HOST:PORT`` (``[v6]:PORT``) as (host, port), or ``unix:/path`` as the path."""
    if listen.startswith("unix:"):
        path = listen[5:]
        if not path:
            raise ConfigError("listen unix: needs a path")
        return path
    host, sep, port = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ConfigError(f"bad listen address {listen!r}: expected HOST:PORT or unix:/path")
    if not _valid_host(host):
        raise ConfigError(f"bad listen address {listen!r}: {host!r} is not an address or host")
    return host, int(port)


_HOST_NAME: Final = re.compile(
    r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?"
)


def _valid_host(host: str) -> bool:
    """An IPv4 or IPv6 address, or a host name (all digits and dots must be an IPv4 address)."""
    if ":" in host or re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        return True
    return _HOST_NAME.fullmatch(host) is not None
