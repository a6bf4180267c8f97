"""Route an enveloped line to the parser of the MTA that logged it.

The envelope parser has already set ``ev.time/host/program/pid/raw``; :func:`parse_message`
picks the MTA from the program tag (``postfix-out/submission/smtpd`` -> Postfix, daemon
``smtpd``, instance ``postfix-out``, service ``submission``), sets ``ev.mta``, and lets that
MTA's parser set ``ev.type`` and the fields. A line no parser understands keeps the type
``unparsed``. Tag decoding is cached: a log has few distinct tags.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from relayguard.logs import dovecot, exim, sendmail
from relayguard.logs.events import Event
from relayguard.logs.postfix import parse as postfix_parse

POSTFIX_DAEMONS = frozenset(
    {
        "anvil",
        "bounce",
        "cleanup",
        "discard",
        "dnsblog",
        "error",
        "flush",
        "lmtp",
        "local",
        "master",
        "oqmgr",
        "pickup",
        "pipe",
        "postalias",
        "postcat",
        "postconf",
        "postdrop",
        "postfix",
        "postfix-script",
        "postkick",
        "postlock",
        "postlog",
        "postlogd",
        "postmap",
        "postmulti",
        "postqueue",
        "postscreen",
        "postsuper",
        "proxymap",
        "qmgr",
        "qmqpd",
        "relay",
        "retry",
        "scache",
        "sendmail",
        "showq",
        "smtp",
        "smtpd",
        "spawn",
        "tlsmgr",
        "tlsproxy",
        "trace",
        "trivial-rewrite",
        "verify",
        "virtual",
        "defer",
    }
)
SENDMAIL_PROGRAMS = frozenset({"sendmail", "sm-mta", "sm-msp-queue", "sm-acceptingconnections"})
EXIM_PROGRAMS = frozenset({"exim", "exim4", "exim-4"})
DOVECOT_PREFIXES = (
    "dovecot",
    "auth",
    "imap-login",
    "pop3-login",
    "submission-login",
    "managesieve-login",
    "lmtp",
    "imap",
    "pop3",
    "deliver",
)
# Dovecot 1.x log_path lines start with the level where a tag would be: "Info: imap-login: ..."
DOVECOT_LEVELS = frozenset({"Info", "Warn", "Warning", "Error", "Fatal", "Panic", "Debug"})

_MAX_CACHED_TAGS = 4096


class _Route(NamedTuple):
    mta: str | None  # None: no parser for this program
    daemon: str | None  # Postfix daemon (last tag component); None for other MTAs
    instance: str | None
    service: str | None
    parse: Callable[[Event, str], None] | None  # non-Postfix parsers


_NO_ROUTE = _Route(None, None, None, None, None)
_route_cache: dict[str, _Route] = {}


def _route(program: str) -> _Route:
    parts = program.split("/")
    first, last = parts[0], parts[-1]
    if first.startswith("postfix") or (len(parts) > 1 and last in POSTFIX_DAEMONS):
        service = "/".join(parts[1:-1]) or None
        return _Route("postfix", last, first, service, None)
    if first in SENDMAIL_PROGRAMS:
        return _Route("sendmail", None, None, None, sendmail.parse)
    if first in EXIM_PROGRAMS:
        return _Route("exim", None, None, None, exim.parse)
    if first in DOVECOT_LEVELS or first.lower().startswith(DOVECOT_PREFIXES):
        return _Route("dovecot", None, None, None, dovecot.parse)
    return _NO_ROUTE


def parse_message(ev: Event, message: str) -> None:
    """Fill ``ev`` from the message body of its line; leaves it ``unparsed`` if not understood."""
    route = _route_cache.get(ev.program)
    if route is None:
        if len(_route_cache) >= _MAX_CACHED_TAGS:
            _route_cache.clear()
        route = _route_cache[ev.program] = _route(ev.program)
    mta, daemon, instance, service, parse = route
    if mta is None:
        return
    ev.mta = mta
    if instance is not None:
        ev.instance = instance
    if service is not None:
        ev.service = service
    if daemon is not None:
        postfix_parse(ev, daemon, message)
    elif parse is not None:
        parse(ev, message)
