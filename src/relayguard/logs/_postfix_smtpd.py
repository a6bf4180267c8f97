"""Postfix SMTP-session lines without a queue id: smtpd, postscreen, TLS, warnings.

Handlers take ``(ev, daemon, message)`` and set ``ev.type`` only when they recognise the line.
"""

from __future__ import annotations

from relayguard.logs import events as E
from relayguard.logs._postfix_fields import MAX_ADDR, MAX_DETAIL, client
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
    t = m[9:]
    j = t.find(": SASL ")
    if j > 0 and _sasl_failure(ev, t, j):
        return
    ev.detail = t[:MAX_DETAIL]
    ev.type = E.WARNING
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
    if first > 0 and t[first - 1] in "]0123456789" and "[" in t[:first]:
        client(ev, t, 0)
        return
    f = t.find(" from ")
    if f >= 0:
        client(ev, t, f + 6)


def _sasl_failure(ev: Event, t: str, j: int) -> bool:
    """``NAME[IP][:PORT]: SASL LOGIN authentication failed: reason[, sasl_username=U]``."""
    if client(ev, t, 0) < 0:
        return False
    k = t.find(" authentication failed", j + 7)
    if k < 0:
        ev.client_ip = ev.client_name = ev.client_port = None
        return False
    ev.sasl_method = t[j + 7 : k].upper()[:MAX_ADDR]
    reason = t[k + 23 :].lstrip()
    u = reason.rfind(", sasl_username=")
    if u >= 0:
        ev.sasl_username = reason[u + 16 :][:MAX_ADDR]
        reason = reason[:u]
    if reason:
        ev.detail = reason[:MAX_DETAIL]
    ev.type = E.AUTH_FAILURE
    return True


def tls(ev: Event, daemon: str, m: str) -> None:
    """``Anonymous TLS connection established from C: ...``, ``... to HOST[IP]:25: ...``,
    ``SSL_accept error from C: ...``, ``SSL_connect error to R: ...``,
    ``certificate verification failed for R: ...``."""
    i = m.find(" from ")
    if i >= 0 and m.startswith(("SSL_accept error from ", "Anonymous TLS", "Untrusted TLS",
                                "Trusted TLS", "Verified TLS")):
        if client(ev, m, i + 6) < 0:
            return
    else:
        i = m.find(" to ")
        if i < 0 or not m.startswith(("SSL_connect error to ", "Anonymous TLS", "Untrusted TLS",
                                      "Trusted TLS", "Verified TLS")):
            i = m.find(" for ") if m.startswith("certificate verification failed for ") else -1
        if i < 0:
            return
        e = m.find("]", i)
        j = m.find(": ", e if e >= 0 else i)
        ev.relay = (m[i + 4 :] if j < 0 else m[i + 4 : j]).lstrip()[:MAX_ADDR]
    ev.detail = m[:MAX_DETAIL]
    ev.type = E.TLS


def postscreen(ev: Event, daemon: str, m: str) -> None:
    """postscreen verdicts: ``PASS NEW [IP]:PORT``, ``DNSBL rank 3 for [IP]:PORT``, ...

    tlsproxy logs ``CONNECT from``/``DISCONNECT`` too: those are INFO, not verdicts.
    """
    b = m.find("[")
    if b < 2:
        return
    end = client(ev, m, b)
    if end < 0:
        return
    verdict = m[: b - 1]
    for suffix in (" from", " for"):
        if verdict.endswith(suffix):
            verdict = verdict[: -len(suffix)]
    ev.detail = verdict[:MAX_DETAIL]
    if verdict.startswith(("COMMAND", "NON-SMTP", "BARE")):
        a = m.find(" after ", end)
        if a >= 0:
            cmd = m[a + 7 :].partition(":")[0].strip()
            if cmd:
                ev.command = cmd[:_MAX_COMMAND]
    ev.type = E.INFO if daemon == "tlsproxy" else E.POSTSCREEN


__all__ = ["MAX_ADDR", "disconnect", "postscreen", "session_end", "tls", "warning"]
