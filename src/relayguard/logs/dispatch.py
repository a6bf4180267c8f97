"""Route an enveloped line to the parser of the MTA that logged it.

The envelope parser has already set ``ev.time/host/program/pid/raw``; :func:`parse_message`
picks the MTA from the program tag (``postfix-out/submission/smtpd`` -> Postfix, daemon
``smtpd``, instance ``postfix-out``, service ``submission``), sets ``ev.mta``, and lets that
MTA's parser set ``ev.type`` and the fields. A line no parser understands keeps the type
``unparsed``. Tag decoding is cached: a log has few distinct tags.
"""

from __future__ import annotations

from collections.abc import Callable

from relayguard.logs import dovecot, exim, postfix, sendmail
from relayguard.logs.events import Event

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

# (mta, handler) where handler(ev, message) fills the event.
Route = tuple[str, Callable[[Event, str], None]] | None

_MAX_CACHED_TAGS = 4096
_route_cache: dict[str, tuple[Route, str | None, str | None]] = {}


def _postfix_handler(daemon: str) -> Callable[[Event, str], None]:
    def handle(ev: Event, message: str) -> None:
        postfix.parse(ev, daemon, message)

    return handle


def _route(program: str) -> tuple[Route, str | None, str | None]:
    """(route, instance, service) for a program tag."""
    parts = program.split("/")
    first, last = parts[0], parts[-1]
    if first.startswith("postfix") or (len(parts) > 1 and last in POSTFIX_DAEMONS):
        service = "/".join(parts[1:-1]) or None
        return ("postfix", _postfix_handler(last)), first, service
    if first in SENDMAIL_PROGRAMS:
        return ("sendmail", sendmail.parse), None, None
    if first in EXIM_PROGRAMS:
        return ("exim", exim.parse), None, None
    if first in DOVECOT_LEVELS or first.lower().startswith(DOVECOT_PREFIXES):
        return ("dovecot", dovecot.parse), None, None
    return None, None, None


def parse_message(ev: Event, message: str) -> None:
    """Fill ``ev`` from the message body of its line; leaves it ``unparsed`` if not understood."""
    cached = _route_cache.get(ev.program)
    if cached is None:
        if len(_route_cache) >= _MAX_CACHED_TAGS:
            _route_cache.clear()
        cached = _route_cache[ev.program] = _route(ev.program)
    route, instance, service = cached
    if route is None:
        return
    ev.mta = route[0]
    if instance is not None:
        ev.instance = instance
    if service is not None:
        ev.service = service
    route[1](ev, message)
