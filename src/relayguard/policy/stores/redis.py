"""The shared store: Redis, for several mail servers enforcing one set of limits together.

Each batch of checks is one script call (:mod:`._redis_lua`), atomic in Redis, so limits hold
across every server using the same Redis and key prefix. Calls are bounded: a connect or a reply
that takes longer than ``timeout`` raises :class:`StoreError` (no retries: the server's fail mode
answers instead), and the next call reconnects.

The store spec is a URL::

    redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=relayguard:]
    rediss://...?ca=/etc/ssl/redis-ca.pem[&cert=client.pem&key=client.key][&verify_host=no]

``rediss`` is TLS (certificate verified against ``ca``, or the system's CAs). The password may
also come from the ``RELAYGUARD_REDIS_PASSWORD`` environment variable, which keeps it out of
the config file and the process list. Redis Cluster is not supported (the scripts touch keys
that they do not declare).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from relayguard.errors import ConfigError
from relayguard.policy.limiter import Decision, Limit
from relayguard.policy.stores import _redis_lua as lua
from relayguard.policy.stores.base import (
    CONTAIN_PREFIX,
    Charge,
    Check,
    Contained,
    StoreError,
    Verdict,
    is_contain_window,
)

DEFAULT_PREFIX: Final = "relayguard:"
PASSWORD_ENV: Final = "RELAYGUARD_REDIS_PASSWORD"
_OPTIONS: Final = frozenset(("prefix", "ca", "cert", "key", "verify_host"))


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis SCAN pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def _password_hint(url: str) -> str:
    """Where the password came from, for the error that says it was refused."""
    try:
        in_url = urlsplit(url).password is not None
    except ValueError:
        in_url = False
    if in_url:
        return f"(the password is the one in the store URL, which wins over {PASSWORD_ENV})"
    if os.environ.get(PASSWORD_ENV):
        return f"(the password comes from the environment variable {PASSWORD_ENV})"
    return (
        f"(give the password in the URL, redis://:PASSWORD@HOST, or in the environment "
        f"variable {PASSWORD_ENV})"
    )


def redis_options(url: str, timeout: float) -> tuple[dict[str, Any], str]:
    """The ``redis.Redis`` keyword arguments and the key prefix for a store URL."""
    try:
        parts = urlsplit(url)
        port = parts.port or 6379
    except ValueError as exc:
        raise ConfigError(f"bad redis store URL: {exc}") from None
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigError("bad redis store URL: expected redis://HOST[:PORT][/DB]")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - _OPTIONS)
    if unknown:
        raise ConfigError(f"redis store URL: unknown option {unknown[0]!r}")
    option = {name: values[-1] for name, values in query.items()}
    db_text = parts.path.strip("/") or "0"
    if not db_text.isdigit():
        raise ConfigError(f"redis store URL: bad database number {db_text!r}")
    password = unquote(parts.password) if parts.password else os.environ.get(PASSWORD_ENV)
    kwargs: dict[str, Any] = {
        "host": parts.hostname,
        "port": port,
        "db": int(db_text),
        "username": unquote(parts.username) if parts.username else None,
        "password": password or None,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "client_name": "relayguard-policy",
    }
    if parts.scheme == "rediss":
        for name, what in (("ca", "CA file"), ("cert", "certificate"), ("key", "key file")):
            path = option.get(name)
            if path is not None and not os.path.isfile(path):
                raise ConfigError(f"redis store URL: {name}={path}: no such {what}")
        kwargs.update(
            ssl=True,
            ssl_ca_certs=option.get("ca"),
            ssl_certfile=option.get("cert"),
            ssl_keyfile=option.get("key"),
            ssl_check_hostname=option.get("verify_host", "yes").lower() not in ("no", "0"),
        )
    elif {"ca", "cert", "key", "verify_host"} & set(option):
        raise ConfigError("redis store URL: TLS options need rediss://")
    return kwargs, option.get("prefix", DEFAULT_PREFIX)


class RedisStore:
    """Rate-limit state and containment in Redis (see the module doc for the URL)."""

    def __init__(self, url: str, *, timeout: float = 0.5) -> None:
        kwargs, self.prefix = redis_options(url, timeout)
        self._url = url
        self._redis = redis.Redis(**kwargs)
        self._check = self._redis.register_script(lua.CHECK_SCRIPT)
        self._refund = self._redis.register_script(lua.REFUND_SCRIPT)
        self._contained_key = f"{self.prefix}contained"

    def ping(self) -> None:
        """Connect and authenticate now.

        A refused password or a bad database number is a :class:`ConfigError` (no retry will
        fix it); an unreachable server a :class:`StoreError` (the server may come up later).
        """
        try:
            self._redis.ping()
        except (redis.exceptions.AuthenticationError, redis.exceptions.ResponseError) as exc:
            text = str(exc)
            auth = isinstance(exc, redis.exceptions.AuthenticationError) or any(
                word in text for word in ("NOAUTH", "WRONGPASS", "AUTH")
            )
            if auth:
                hint = _password_hint(self._url)
                raise ConfigError(f"redis refused the login: {text} {hint}") from None
            raise ConfigError(f"redis refused the store URL: {text}") from None
        except (redis.exceptions.RedisError, OSError) as exc:
            raise StoreError(f"redis: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._redis.close()

    def allow(self, key: str, windows: Sequence[Limit], now: float, cost: float = 1) -> Decision:
        return self.allow_many(((key, windows, now, cost),))[0]

    def allow_many(self, requests: Sequence[Charge]) -> list[Decision]:
        verdict = self.check_many((Check((), requests),))[0]
        assert not isinstance(verdict, str)
        return verdict

    def check_many(self, checks: Sequence[Check]) -> list[Verdict]:
        reply = self._call(self._check, args=lua.check_args(self.prefix, checks))
        try:
            return lua.parse_verdicts(reply, len(checks))
        except (ValueError, IndexError, TypeError) as exc:
            raise StoreError(f"redis: unexpected script reply: {exc}") from exc

    def refund(self, key: str, windows: Sequence[Limit], now: float, cost: float) -> None:
        self.refund_many(((key, windows, now, cost),))

    def refund_many(self, charges: Sequence[Charge]) -> None:
        if charges:
            self._call(self._refund, args=lua.refund_args(self.prefix, charges))

    def contain(self, key: str, reason: str, now: float) -> bool:
        value = json.dumps({"reason": reason, "since": now})
        return bool(self._call(self._redis.hsetnx, self._contained_key, key, value))

    def release(self, key: str) -> bool:
        rate = f"{self.prefix}rate:"
        pattern = f"{_glob_escape(rate + CONTAIN_PREFIX)}*:{_glob_escape(key)}"
        names = self._call(lambda: list(self._redis.scan_iter(match=pattern, count=1000)))
        stale = [
            n for n in names if is_contain_window(n.decode("utf-8", "replace")[len(rate) :], key)
        ]
        if stale:
            self._call(self._redis.delete, *stale)
        return bool(self._call(self._redis.hdel, self._contained_key, key))

    def is_contained(self, key: str) -> bool:
        return bool(self._call(self._redis.hexists, self._contained_key, key))

    def contained(self) -> list[Contained]:
        rows: Mapping[bytes, bytes] = self._call(self._redis.hgetall, self._contained_key)
        out = []
        for raw_key, raw in rows.items():
            try:
                value = json.loads(raw)
                reason, since = str(value["reason"]), float(value["since"])
            except (ValueError, KeyError, TypeError):
                reason, since = "(unreadable entry)", 0.0
            out.append(Contained(raw_key.decode("utf-8", "replace"), reason, since))
        return sorted(out, key=lambda c: (c.since, c.key))

    def states(self) -> dict[tuple[str, str], float]:
        """The live state rows, by (key, window id): for tests and ``policy show``."""
        rate = f"{self.prefix}rate:"
        out: dict[tuple[str, str], float] = {}
        names = self._call(lambda: list(self._redis.scan_iter(match=f"{rate}*", count=1000)))
        for name in names:
            key = name.decode("utf-8", "replace")[len(rate) :]
            fields: Mapping[bytes, bytes] = self._call(self._redis.hgetall, name)
            for window, tat in fields.items():
                out[key, window.decode()] = float(tat)
        return out

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"redis: {type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"redis: {exc}") from exc
