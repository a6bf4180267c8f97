"""Postfix message bodies -> typed events.

Theory of operation
-------------------
:func:`parse` gets the daemon (last component of the syslog tag: ``smtpd``, ``qmgr``, ...) and
the body after ``tag[pid]: ``. A body either starts with a queue id (``5270320179: ``, long
``48rT2v1hQrz1J0N: ``) and is read by :mod:`._postfix_queued`, or its first word picks a
handler from :data:`_HANDLERS` (``connect``, ``NOQUEUE:``, ``warning:``, ``PASS``, ...).
Shapes are matched with ``str`` methods, not regexes: this runs once per log line.

Typing rules worth knowing (the analysis relies on them):

* ``warning: SASL authentication failure: ...`` (the Cyrus line without a client) is a
  WARNING: the ``NAME[IP]: SASL X authentication failed`` line after it is the one failure.
* Reject-family actions keep the action in ``status`` (see :mod:`._postfix_actions`).
* postscreen verdicts are POSTSCREEN with ``detail`` = the verdict up to the client
  (``PASS NEW``, ``DNSBL rank 3``, ``PREGREET 14 after 0.08``); its CONNECT is not a CONNECT
  event, so that a client passed on to smtpd is not counted twice.
* ``warning:`` lines keep the text after ``warning: `` in ``detail``; ``fatal:``/``panic:``/
  ``error:`` lines are WARNING with the whole body (prefix included) in ``detail``.
* postsuper actions are DAEMON with ``detail`` = ``delete|requeue|hold|release`` and, for
  the summary lines, the count (``hold 67``); ``QID: removed`` stays REMOVED.

A body that is not understood leaves the event ``unparsed`` with no MTA field set.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from relayguard.logs import events as E
from relayguard.logs._postfix_actions import parse_action
from relayguard.logs._postfix_fields import MAX_DETAIL, QID_RE, client
from relayguard.logs._postfix_queued import connect_failed, parse_queued
from relayguard.logs._postfix_smtpd import (
    disconnect,
    postscreen,
    session_end,
    tls,
    warning,
)
from relayguard.logs.events import FIELDS, UNPARSED, Event

_QUEUED_LINE = re.compile(QID_RE.pattern + "(.*)", re.S)
_KEEP = frozenset({"mta", "instance", "service"})  # set by dispatch, not by us

Handler = Callable[[Event, str, str], None]


def parse(ev: Event, daemon: str, message: str) -> None:
    """Set ev.type and fields from a Postfix message body; leave ev.type unparsed if unknown."""
    try:
        q = _QUEUED_LINE.match(message)
        if q is not None:
            qid, rest = q.groups()
            if parse_queued(ev, daemon, rest):
                ev.queue_id = qid
        else:
            # Handlers are picked by the first four characters and check the rest of the prefix.
            h = _HANDLERS.get(message[:4])
            if h is not None:
                h(ev, daemon, message)
            elif daemon == "postfix-script":
                _daemon(ev, daemon, message)
    except (ValueError, IndexError):  # a malformed number or a cut line: not understood
        ev.type = UNPARSED
    if ev.type is UNPARSED:
        _clear(ev)


def _clear(ev: Event) -> None:
    d = ev.__dict__
    for k in FIELDS:
        if k in d and k not in _KEEP:
            del d[k]


# --- first-word handlers ------------------------------------------------------------------


def _connect(ev: Event, daemon: str, m: str) -> None:
    if m.startswith("connect from "):
        if client(ev, m, 13) > 0:
            ev.type = E.CONNECT
    elif m.startswith("connect to "):
        connect_failed(ev, m)


def _noqueue(ev: Event, daemon: str, m: str) -> None:
    c = m.find(": ", 9)
    if c > 0:
        parse_action(ev, m[9:c], m[c + 2 :])


def _proxy(ev: Event, daemon: str, m: str) -> None:
    c = m.find(": ")
    parse_action(ev, m[:c], m[c + 2 :])


def _severe(ev: Event, daemon: str, m: str) -> None:
    if not m.startswith(("fatal: ", "panic: ", "error: ")):
        return
    ev.detail = m[:MAX_DETAIL]
    ev.type = E.WARNING


def _daemon(ev: Event, daemon: str, m: str) -> None:
    ev.detail = m[:MAX_DETAIL]
    ev.type = E.DAEMON


def _master(ev: Event, daemon: str, m: str) -> None:
    if m.startswith(("daemon started -- ", "reload -- ", "terminating on signal ")):
        _daemon(ev, daemon, m)


def _statistics(ev: Event, daemon: str, m: str) -> None:
    if not m.startswith("statistics: "):
        return
    ev.detail = m[12:][:MAX_DETAIL]
    ev.type = E.DAEMON


def _table(ev: Event, daemon: str, m: str) -> None:
    if m.endswith(" has changed -- restarting"):
        _daemon(ev, daemon, m)


def _cache(ev: Event, daemon: str, m: str) -> None:
    if " cleanup: retained=" in m:
        _daemon(ev, daemon, m)


def _info(ev: Event, daemon: str, m: str) -> None:
    ev.detail = m[:MAX_DETAIL]
    ev.type = E.INFO


def _disc(ev: Event, daemon: str, m: str) -> None:
    if m.startswith("disconnect from "):
        disconnect(ev, daemon, m)
    elif m.startswith("discarding EHLO keywords: "):
        _info(ev, daemon, m)


def _dnsblog(ev: Event, daemon: str, m: str) -> None:
    # "addr 61.238.241.86 listed by domain psbl.surriel.com as 127.0.0.2"
    i = m.find(" listed by domain ", 5)
    if i > 5 and m.startswith("addr "):
        ev.client_ip = m[5:i][:45]
        ev.detail = m[i + 1 :][:MAX_DETAIL]
        ev.type = E.POSTSCREEN


_POSTSUPER_SUMMARY = {
    "Deleted:": "delete",
    "Requeued:": "requeue",
    "Placed on hold:": "hold",
    "Released from hold:": "release",
}


def _postsuper(ev: Event, daemon: str, m: str) -> None:
    # "Placed on hold: 67 messages" -> detail "hold 67"
    c = m.find(": ")
    action = _POSTSUPER_SUMMARY.get(m[: c + 1])
    if action is not None:
        n = m[c + 2 :].split(" ", 1)[0]
        if n.isdigit():
            ev.detail = f"{action} {n}"
            ev.type = E.DAEMON


def _host_said(ev: Event, daemon: str, m: str) -> None:
    if " said: " in m or " refused to talk to me: " in m:
        parse_queued(ev, daemon, m)


def _lost(ev: Event, daemon: str, m: str) -> None:
    if m.startswith("lost connection after "):
        session_end(ev, daemon, m)
    elif m.startswith("lost connection with "):
        parse_queued(ev, daemon, m)


_HANDLERS: dict[str, Handler] = {
    "conn": _connect,  # connect from (smtpd), connect to (smtp)
    "disc": _disc,  # disconnect from, discarding EHLO keywords
    "lost": _lost,  # lost connection after (smtpd), lost connection with (smtp)
    "time": session_end,  # timeout after
    "too ": session_end,  # too many errors after
    "impr": session_end,  # improper command pipelining after
    "bare": session_end,  # bare <LF> received after
    "NOQU": _noqueue,  # NOQUEUE: reject: ...
    "prox": _proxy,  # proxy-accept:, proxy-reject:
    "warn": warning,
    "fata": _severe,
    "pani": _severe,
    "erro": _severe,
    "Anon": tls,  # Anonymous/Untrusted/Trusted/Verified TLS connection established
    "Untr": tls,
    "Trus": tls,
    "Veri": tls,
    "SSL_": tls,  # SSL_accept error from, SSL_connect error to
    "cert": tls,  # certificate verification failed for
    "host": _host_said,
    "daem": _master,  # daemon started
    "relo": _master,  # reload
    "term": _master,  # terminating on signal
    "stat": _statistics,  # anvil, scache
    "tabl": _table,
    "cach": _cache,  # postscreen, verify
    "addr": _dnsblog,
    "Dele": _postsuper,  # Deleted: N messages
    "Requ": _postsuper,
    "Plac": _postsuper,
    "Rele": _postsuper,
}
_POSTSCREEN_WORDS = (
    "CONNECT",
    "PASS",
    "PREGREET",
    "DNSBL",
    "HANGUP",
    "DISCONNECT",
    "BARE",
    "NON-SMTP",
    "COMMAND",
    "DATA",
    "BDAT",
    "DENYLISTED",
    "BLACKLISTED",
    "ALLOWLISTED",
    "WHITELISTED",
    "WHITELIST",
    "ALLOWLIST",
)
_HANDLERS.update((w[:4], postscreen) for w in _POSTSCREEN_WORDS)
