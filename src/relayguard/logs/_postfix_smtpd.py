"""Postfix SMTP-session lines without a queue id: smtpd, postscreen, TLS, warnings.

Handlers take ``(ev, daemon, message)`` and set ``ev.type`` only when they recognise the line.
"""

from __future__ import annotations

import re

from relayguard.logs import events as E
from relayguard.logs._postfix_fields import (
    MAX_ADDR,
    MAX_DETAIL,
    QID_RE,
    client,
    relay_of,
    set_client,
)
from relayguard.logs.events import Event

# A command name in "after CMD" is ours (CONNECT, EHLO, DATA, ...) except in postscreen's
# "BARE NEWLINE ... after <what the client sent>", which is peer data: keep it short.
_MAX_COMMAND = 32

# "<what> after CMD from NAME[IP]" -> detail
_SESSION_ENDS = (
    ("lost connection after ", "lost connection", E.LOST_CONNECTION),
    ("timeout after ", "timeout", E.LOST_CONNECTION),
    ("too many errors after ", "too many errors", E.LOST_CONNECTION),
    ("improper command pipelining after ", "improper command pipelining", E.WARNING),
    ("bare <LF> received after ", "bare <LF> received", E.WARNING),
)


def disconnect(ev: Event, daemon: str, m: str) -> None:
    """``disconnect from NAME[IP] ehlo=1 auth=0/1 quit=1 commands=2/3``.

    ``auth=S/T``: T AUTH commands, S of them succeeded; ``auth=1``: one, which succeeded.
    """
    if not m.startswith("disconnect from "):
        return
    end = client(ev, m, 16)
    if end < 0:
        return
    a = m.find(" auth=", end)
    if a >= 0:
        e = m.find(" ", a + 6)
        ok, slash, total = (m[a + 6 :] if e < 0 else m[a + 6 : e]).partition("/")
        attempts = int(total) if slash else int(ok)
        ev.auth_attempts = attempts
        ev.auth_failed = attempts - int(ok)
    ev.type = E.DISCONNECT


def session_end(ev: Event, daemon: str, m: str) -> None:
    """``lost connection after AUTH from NAME[IP]`` and its kin (see :data:`_SESSION_ENDS`)."""
    for prefix, what, etype in _SESSION_ENDS:  # noqa: B007 (used after the break)
        if m.startswith(prefix):
            break
    else:
        return
    f = m.find(" from ", len(prefix))
    if f < 0:
        return
    cmd = m[len(prefix) : f]
    sp = cmd.find(" ")  # "DATA (7774180 bytes)"
    ev.command = (cmd if sp < 0 else cmd[:sp])[:_MAX_COMMAND]
    if client(ev, m, f + 6) < 0:
        ev.command = None
        return
    ev.detail = what
    ev.type = etype


def warning(ev: Event, daemon: str, m: str) -> None:
    """``warning: ...``: SASL failures become AUTH_FAILURE, the rest WARNING with the text."""
    if not m.startswith("warning: "):
        return
    t = m[9:]
    if ": SASL " in t and _sasl_failure(ev, t):
        return
    ev.detail = t[:MAX_DETAIL]
    ev.type = E.WARNING
    q = QID_RE.match(t)
    if q is not None:  # "warning: 9BECF3F19D: sender_canonical_maps map lookup problem ..."
        ev.queue_id = q.group(1)
        return
    if t.startswith("hostname "):
        # "hostname X does not resolve to address IP[: reason]": IP is the client.
        a = t.find(" does not resolve to address ")
        if a > 0:
            ip = t[a + 29 :]
            c = ip.find(": ")  # IPv6 has ":" but never ": "
            ev.client_ip = (ip if c < 0 else ip[:c])[:45]
        return
    h = t.find(": hostname ")
    if h > 0 and t.endswith(" verification failed", 0, t.find(":", h + 11)):
        ev.client_ip = t[:h][:45]
        return
    first = t.find(": ")
    if first > 0 and t[first - 1] in "]0123456789" and client(ev, t, 0) > 0:
        return
    f = t.find(" from ")
    if f >= 0:
        client(ev, t, f + 6)


_SASL_FAILED_RE = re.compile(
    r"([^\[\s]{0,512})\[([0-9A-Fa-f:.]{2,45}|unknown)\](?::(\d{1,5}))?: "
    r"SASL ([A-Za-z0-9_-]{1,32}) authentication failed:? ?(.*?)(?:, sasl_username=(.*))?\Z",
    re.S,
)


def _sasl_failure(ev: Event, t: str) -> bool:
    """``NAME[IP][:PORT]: SASL LOGIN authentication failed: reason[, sasl_username=U]``.

    The user name is peer data and comes last, so the first ``, sasl_username=`` starts it.
    """
    g = _SASL_FAILED_RE.match(t)
    if g is None:
        return False
    name, ip, port, method, reason, user = g.groups()
    set_client(ev, name, ip, port)
    ev.sasl_method = method.upper()
    if reason:
        ev.detail = reason[:MAX_DETAIL]
    if user is not None:
        ev.sasl_username = user[:MAX_ADDR]
    ev.type = E.AUTH_FAILURE
    return True


_TLS_STATES = ("Anonymous TLS", "Untrusted TLS", "Trusted TLS", "Verified TLS")


def tls(ev: Event, daemon: str, m: str) -> None:
    """TLS session lines: ``<State> TLS connection established from C: ...`` (smtpd) or
    ``... to HOST[IP]:25: ...`` (smtp), ``SSL_accept error from C: ...``,
    ``SSL_connect error to R: ...``, ``certificate verification failed for R: ...``.
    The whole line is kept in ``detail``."""
    if m.startswith(_TLS_STATES):
        i = m.find(" from ")
        if i >= 0:
            if client(ev, m, i + 6) < 0:
                return
        else:
            i = m.find(" to ")
            if i < 0:
                return
            ev.relay = relay_of(m, i + 4)
    elif m.startswith("SSL_accept error from "):
        if client(ev, m, 22) < 0:
            return
    elif m.startswith("SSL_connect error to "):
        ev.relay = relay_of(m, 21)
    elif m.startswith("certificate verification failed for "):
        ev.relay = relay_of(m, 36)
    else:
        return
    ev.detail = m[:MAX_DETAIL]
    ev.type = E.TLS


# "PASS NEW [IP]:PORT", "DNSBL rank 3 for [IP]:PORT", "CONNECT from [IP]:PORT to [IP]:PORT"
_VERDICT_RE = re.compile(r"([^\[]{1,64}?)(?: from| for)? \[([0-9A-Fa-f:.]{2,45})\]:(\d{1,5})")


def postscreen(ev: Event, daemon: str, m: str) -> None:
    """postscreen verdicts: ``PASS NEW [IP]:PORT``, ``DNSBL rank 3 for [IP]:PORT``, ...

    tlsproxy logs ``CONNECT from``/``DISCONNECT`` too: those are INFO, not verdicts.
    """
    g = _VERDICT_RE.match(m)
    if g is None:
        return
    verdict, ip, port = g.groups()
    ev.client_ip = ip
    ev.client_port = int(port)
    ev.detail = verdict
    if verdict.startswith(("COMMAND", "NON-SMTP", "BARE")):
        a = m.find(" after ", g.end())
        if a >= 0:
            cmd = m[a + 7 :].partition(":")[0].strip()
            if cmd:
                ev.command = cmd[:_MAX_COMMAND]
    ev.type = E.INFO if daemon == "tlsproxy" else E.POSTSCREEN


__all__ = ["disconnect", "postscreen", "session_end", "tls", "warning"]
