"""Exim parser: the body of a mainlog line, or of an Exim line wrapped by syslog.

``message`` is what follows the mainlog timestamp. A leading ``[pid] `` and, for syslog-wrapped
Exim (``exim[1234]: 2021-07-17 23:20:49 ...``), Exim's own timestamp are skipped here too.
Lines with a message id (old ``1ahr79-0006jK-G9`` or Exim >= 4.97 ``10HmaX-000000005vi-0000``):
``<=`` arrival (QUEUED: sender, ``H=name (helo) [ip]:port``, ``A=authenticator:user`` ->
sasl_method/sasl_username, ``S=``, ``id=``, ``for`` list -> nrcpt, recipient and detail; a
notification ``<= <> R=parent`` gets ndr_kind ``non-delivery``, or ``delay`` when its subject is
Exim's ``Warning: message ... delayed``, and ``R=parent`` in detail), ``=>``/``->`` (DELIVERY
sent), ``*>`` (suppressed), ``**`` (bounced), ``==`` (deferred) with recipient, ``<orig>``, relay,
``C="..."`` or the error text as reply and the remote code; ``Completed`` (REMOVED); frozen,
``removed by``, ``H=host [ip] Connection refused`` (CONNECT_FAILED) and ``rejected after DATA`` /
``rejected by non-SMTP ACL`` (REJECT). Lines without an id: ``H=... [F=<s>] [temporarily]
rejected RCPT|MAIL|EHLO or HELO|connection|after DATA ...`` (REJECT, or RELAY_DENIED for
``relay not permitted`` and its kin), ``sender verify fail`` and ``H=... Warning:`` (WARNING),
``X authenticator failed for ...: 535 ... (set_id=u)`` (AUTH_FAILURE), ``SMTP connection from``
(CONNECT, DISCONNECT on ``closed by QUIT``, LOST_CONNECTION on ``lost``), ``SMTP call from ...
dropped``, command/data timeouts and ``unexpected disconnection`` (LOST_CONNECTION), SMTP
synchronization/syntax/protocol errors and ``Connection from [ip] refused`` (REJECT), queue runs
and daemon starts (DAEMON), TLS errors (TLS) and a few housekeeping lines (INFO).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from relayguard.logs.events import (
    AUTH_FAILURE,
    CONNECT,
    CONNECT_FAILED,
    DAEMON,
    DELIVERY,
    DISCONNECT,
    INFO,
    LOST_CONNECTION,
    QUEUED,
    REJECT,
    RELAY_DENIED,
    REMOVED,
    TLS,
    WARNING,
    Event,
)

MAX_TEXT = 500  # bound on reply/detail text taken from a line (a peer controls most of it)

# Lower-cased starts of an Exim RCPT reject reason that mean "we are not your relay".
_RELAY_REASONS = (
    "relay not permitted",
    "relaying not permitted",
    "relay access denied",
    "relaying denied",
    "relaying to",
    "relay denied",
)
_CONNECT_ERRORS = (
    "Connection refused",
    "Connection timed out",
    "Network Error",
    "Network is unreachable",
    "No route to host",
    "Connection reset",
)

# name, (helo), [ip], :port -- every part optional; a trailing "*" or ":PORT_S" is left over.
_HOST = re.compile(r"([^\s(\[]\S*)?(?: ?\(([^)]*)\))?(?: ?\[([^\]]*)\](?::(\d+))?)?")
Host = re.Match[str]


def parse(ev: Event, message: str) -> None:
    """Set ev.type and fields from the message body; leave ev.type unparsed if unknown."""
    m = _strip_prefix(message)
    n = len(m)
    if n > 17 and m[6] == "-":
        if m[13] == "-" and m[16] == " ":
            qid_end = 16
        elif n > 24 and m[18] == "-" and m[23] == " ":
            qid_end = 23
        else:
            qid_end = 0
        if qid_end and m[:6].isalnum():
            qid = m[:qid_end]
            rest = m[qid_end + 1 :]
            handler = _FLAGS.get(rest[:3])
            if handler is not None:
                handler(ev, qid, rest[3:])
            else:
                _with_id(ev, qid, rest)
            return
    _without_id(ev, m)


def _strip_prefix(m: str) -> str:
    """Drop Exim's own ``YYYY-MM-DD HH:MM:SS[.mmm] [+zone]`` and ``[pid]`` when still present."""
    if len(m) > 20 and m[4] == "-" and m[10] == " " and m[13] == ":" and m[:4].isdigit():
        i = m.find(" ", 19)  # also skips a ".mmm" fraction
        if i < 0:
            return ""
        m = m[i + 1 :]
        if m[:1] in ("+", "-") and m[1:5].isdigit() and m[5:6] == " ":
            m = m[6:]
    if m[:1] == "[":
        j = m.find("] ")
        if 1 < j < 12 and m[1:j].isdigit():
            m = m[j + 2 :]
    return m


def _word(s: str, key: str) -> str | None:
    """The value of `` key`` (e.g. `` S=``) up to the next space, or None."""
    i = s.find(key)
    if i < 0:
        return None
    i += len(key)
    j = s.find(" ", i)
    return s[i:] if j < 0 else s[i:j]


def _host(s: str, i: int) -> Host:
    """Match an Exim host spec at s[i:]: ``name (helo) [ip]:port`` and its shorter forms."""
    m = _HOST.match(s, i)
    assert m is not None  # every group is optional: the pattern always matches
    return m


def _set_client(ev: Event, h: Host) -> None:
    name, helo, ip, port = h.groups()
    if name is not None:
        ev.client_name = name
    if helo is not None:
        ev.helo = helo
    if ip is not None:
        ev.client_ip = ip
    if port is not None:
        ev.client_port = int(port)


def _relay(h: Host) -> str | None:
    name, _, ip, port = h.groups()
    if ip is None:
        return name.rstrip(":*") if name else None
    relay = f"{name or ''}[{ip}]"
    return f"{relay}:{port}" if port is not None else relay


def _remote_code(ev: Event, text: str) -> None:
    """Set code (and dsn) from ``... after RCPT TO:<x>: 550 5.1.1 ...`` or a ``250 ...`` reply."""
    i = text.find(" after ")
    if i >= 0:
        j = text.find(": ", i)
        if j < 0:
            return
        text = text[j + 2 :]
    if len(text) >= 3 and text[:3].isdigit() and text[3:4] in ("", " ", "-"):
        ev.code = int(text[:3])
        dsn = text[4:].split(" ", 1)[0]
        if len(dsn) >= 5 and dsn[1] == "." and dsn[0] in "245" and dsn.count(".") == 2:
            ev.dsn = dsn


def _address(ev: Event, part: str) -> None:
    """``recipient [<orig>] [F=<sender>]`` of a delivery line."""
    f = part.find(" F=<")
    if f >= 0:
        ev.sender = part[f + 4 :].split(">", 1)[0]
        part = part[:f]
    if part.endswith(">"):
        j = part.find(" <")
        if j >= 0:
            ev.orig_recipient = part[j + 2 : -1]
            part = part[:j]
    ev.recipient = part


# --- lines with a message id ----------------------------------------------------------------


def _arrival(ev: Event, qid: str, s: str) -> None:
    ev.type = QUEUED
    ev.queue_id = qid
    sp = s.find(" ")
    sender = s if sp < 0 else s[:sp]
    ev.sender = "" if sender == "<>" else sender
    head = s
    extra: list[str] = []
    f = s.rfind(" for ")
    if f >= 0 and '"' not in s[f:]:
        rcpts = s[f + 5 :].split()
        head = s[:f]
        if rcpts:
            ev.nrcpt = len(rcpts)
            ev.recipient = rcpts[0]
            extra.append("for " + " ".join(rcpts))
    t = head.find(' T="')
    subject = head[t + 4 :] if t >= 0 else ""
    if t >= 0:
        head = head[:t]
    if sender == "<>" and head.startswith(" R=", sp):
        parent = _word(head, " R=")
        if parent:
            extra.insert(0, "R=" + parent)
            ev.ndr_kind = "delay" if subject.startswith("Warning: message ") else "non-delivery"
    h = head.find(" H=")
    if h >= 0:
        _set_client(ev, _host(head, h + 3))
    auth = _word(head, " A=")
    if auth:
        method, _, user = auth.partition(":")
        ev.sasl_method = method
        if user:
            ev.sasl_username = user
    size = _word(head, " S=")
    if size and size.isdigit():
        ev.size = int(size)
    mid = _word(head, " id=")
    if mid:
        ev.message_id = mid
    if extra:
        ev.detail = " ".join(extra)[:MAX_TEXT]


def _delivered(ev: Event, qid: str, s: str, status: str) -> None:
    ev.type = DELIVERY
    ev.queue_id = qid
    ev.status = status
    r = s.find(" R=")
    if r < 0:
        _address(ev, s)
        return
    _address(ev, s[:r])
    tail = s[r:]
    h = tail.find(" H=")
    if h >= 0:
        ev.relay = _relay(_host(tail, h + 3))
    else:
        ev.relay = _word(tail, " T=")
    c = tail.find(' C="')
    if c >= 0:
        e = tail.find('"', c + 4)
        reply = tail[c + 4 :] if e < 0 else tail[c + 4 : e]
        ev.reply = reply[:MAX_TEXT]
        _remote_code(ev, reply)


def _sent(ev: Event, qid: str, s: str) -> None:
    _delivered(ev, qid, s, "sent")


def _suppressed(ev: Event, qid: str, s: str) -> None:
    _delivered(ev, qid, s, "suppressed")


def _failed(ev: Event, qid: str, s: str) -> None:
    """``** addr [<orig>] [R=.. T=.. H=..] : reason``."""
    ev.type = DELIVERY
    ev.queue_id = qid
    ev.status = "bounced"
    c = s.find(" : ")
    if c < 0:
        c = s.find(": ")
        reason = s[c + 2 :] if c >= 0 else ""
    else:
        reason = s[c + 3 :]
    head = s if c < 0 else s[:c]
    r = head.find(" R=")
    _address(ev, head if r < 0 else head[:r])
    if r >= 0:
        h = head.find(" H=", r)
        ev.relay = _relay(_host(head, h + 3)) if h >= 0 else _word(head, " T=")
    if reason:
        ev.reply = reason[:MAX_TEXT]
        _remote_code(ev, reason)


def _deferred(ev: Event, qid: str, s: str) -> None:
    """``== addr [<orig>] R=router [T=transport] defer (errno) [H=..]: reason``."""
    ev.type = DELIVERY
    ev.queue_id = qid
    ev.status = "deferred"
    d = s.find(" defer (")
    if d < 0:
        c = s.find(": ")
        _address(ev, s if c < 0 else s[:c])
        if c >= 0:
            ev.reply = s[c + 2 :][:MAX_TEXT]
        return
    head = s[:d]
    r = head.find(" R=")
    if r >= 0:
        _address(ev, head[:r])
        ev.relay = _word(head, " T=")
    else:
        _address(ev, head.removesuffix(" routing"))
    close = s.find(")", d)
    tail = s[close + 1 :] if close >= 0 else ""
    c = tail.find(": ")
    h = tail.find(" H=")
    if h >= 0 and (c < 0 or h < c):
        ev.relay = _relay(_host(tail, h + 3))
    if c >= 0:
        reason = tail[c + 2 :]
        ev.reply = reason[:MAX_TEXT]
        _remote_code(ev, reason)


def _completed(ev: Event, qid: str, s: str) -> None:
    # Keyed "Com" in _FLAGS so the one 3-character lookup also finds "Completed".
    if s.startswith("pleted"):
        ev.type = REMOVED
        ev.queue_id = qid
    else:
        _with_id(ev, qid, "Com" + s)


_FLAGS: dict[str, Callable[[Event, str, str], None]] = {
    "<= ": _arrival,
    "=> ": _sent,
    "-> ": _sent,
    "*> ": _suppressed,
    "** ": _failed,
    "== ": _deferred,
    "Com": _completed,
}


def _with_id(ev: Event, qid: str, s: str) -> None:
    """Other lines that carry a message id."""
    if s.startswith("H="):
        _host_line(ev, s, qid)
        return
    kind: str | None = None
    if s.startswith(("Frozen", "Message is frozen", "no recipients found", "Warning: ")):
        kind = WARNING
    elif (
        s.startswith(("Unfrozen", "removed by ", "Spool file is locked", "cancelled by"))
        or s.endswith((": error ignored", "retry time not reached"))
        or "blackholed" in s
    ):
        kind = INFO
    elif s.startswith("F=<") or " rejected " in s:
        _rejected(ev, s, qid)
        return
    if kind is not None:
        ev.type = kind
        ev.queue_id = qid
        ev.detail = s[:MAX_TEXT]


# --- lines without a message id -------------------------------------------------------------


def _without_id(ev: Event, m: str) -> None:
    if m.startswith("H="):
        _host_line(ev, m, None)
    elif m.startswith("SMTP "):
        _smtp_line(ev, m)
    elif " authenticator failed for " in m:
        _auth_failed(ev, m)
    elif m.startswith(("Start queue run", "End queue run")) or " daemon started" in m:
        ev.type = DAEMON
        ev.detail = m.split(":", 1)[0][:MAX_TEXT]
    elif m.startswith("pid ") and "SIGHUP" in m:
        ev.type = DAEMON
        ev.detail = "SIGHUP"
    elif m.startswith("Connection from ") and " refused" in m:
        ev.type = REJECT
        ev.command = "CONNECT"
        _set_client(ev, _host(m, 16))
        c = m.find(": ")
        if c >= 0:
            ev.reply = m[c + 2 :][:MAX_TEXT]
    elif m.startswith("unexpected disconnection while reading SMTP command from "):
        ev.type = LOST_CONNECTION
        _set_client(ev, _host(m, 57))
    elif m.startswith("no MAIL in SMTP connection from "):
        ev.type = DISCONNECT
        _set_client(ev, _host(m, 32))
    elif m.startswith("TLS error on connection from "):
        ev.type = TLS
        _set_client(ev, _host(m, 29))
        c = m.find("): ")
        ev.detail = m[c + 3 :][:MAX_TEXT] if c >= 0 else None
    elif m.startswith(("no host name found for IP address", "no IP address found for host")):
        ev.type = INFO
        ev.detail = m[:MAX_TEXT]
    elif m.startswith('ACL "'):  # a configuration problem found while running an ACL
        ev.type = WARNING
        ev.detail = m[:MAX_TEXT]
    elif m.startswith("ignoring AUTH="):
        ev.type = INFO
        h = m.find(" from H=")
        if h >= 0:
            _set_client(ev, _host(m, h + 8))
    elif m.startswith(("rejected ", "U=", "F=<")) and "rejected " in m:
        _rejected(ev, m, None)


def _host_line(ev: Event, s: str, qid: str | None) -> None:
    """``H=host ... rejected|Warning|sender verify fail ...`` and, with an id, delivery errors."""
    h = _host(s, 2)
    rest = s[h.end() :]
    r = rest.find("rejected ")
    w = rest.find(" Warning: ")
    if r >= 0 and (w < 0 or r < w):
        _set_client(ev, h)
        _rejected(ev, rest, qid)
        return
    k = rest.find(" sender verify ")
    if k >= 0:
        # Logged before the RCPT reject it causes (and also under warn/defer_ok ACLs), so it is
        # a warning here: counting it as a reject would count one refusal twice.
        ev.type = WARNING
        _set_client(ev, h)
        tail = rest[k + 1 :]
        b = tail.find(" <")
        if b >= 0:
            ev.sender = tail[b + 2 :].split(">", 1)[0]
        ev.detail = tail[:MAX_TEXT]
    elif w >= 0:
        ev.type = WARNING
        _set_client(ev, h)
        ev.detail = rest[w + 10 :][:MAX_TEXT]
    elif qid is not None:
        # H= first on a line with an id: Exim talking to the next hop.
        text = rest.lstrip(":* ")
        if text.startswith(_CONNECT_ERRORS):
            ev.type = CONNECT_FAILED
        elif text.startswith("SMTP error from remote"):
            ev.type = INFO
            _remote_code(ev, text)
        else:
            return
        ev.relay = _relay(h)
        ev.reply = text[:MAX_TEXT]
    else:
        return
    if qid is not None:
        ev.queue_id = qid


def _rejected(ev: Event, s: str, qid: str | None) -> None:
    """``[U=..] [F=<sender>] [temporarily] rejected VERB [<addr>][: reason]``."""
    k = s.find("rejected ")
    if k < 0:
        return
    pre, post = s[:k], s[k + 9 :]
    f = pre.find("F=<")
    if f >= 0:
        sender = pre[f + 3 :].split(">", 1)[0]
        ev.sender = sender
    verb, _, after = post.partition(" ")
    reason: str | None = None
    if verb in ("RCPT", "MAIL", "VRFY", "EXPN", "ETRN"):
        command = verb
        if after.startswith("<"):
            e = after.find(">")
            addr = after[1:e] if e >= 0 else after[1:]
            if verb == "RCPT":
                ev.recipient = addr
            elif verb == "MAIL":
                ev.sender = addr
        c = after.find(": ")
        reason = after[c + 2 :] if c >= 0 else None
    elif verb in ("EHLO", "HELO"):
        command = "EHLO"
        c = after.find(": ")
        reason = after[c + 2 :] if c >= 0 else None
        if after.startswith("from "):
            _set_client(ev, _host(after, 5))
    elif verb.startswith("connection"):
        command = "CONNECT"
        c = post.find(": ")
        reason = post[c + 2 :] if c >= 0 else None
    elif verb == "after":
        command = after.split(" ", 1)[0].rstrip(":").upper()
        c = after.find(": ")
        reason = after[c + 2 :] if c >= 0 else None
    elif verb == "by":  # "rejected by non-SMTP ACL: reason" (local submission)
        command = None
        c = after.find(": ")
        reason = after[c + 2 :] if c >= 0 else None
    elif verb.startswith("from"):  # "rejected from <sender> H=...: reason" (after DATA)
        command = "DATA"
        c = after.find(": ")
        reason = after[c + 2 :] if c >= 0 else None
        h = after.find("H=")
        if h >= 0:
            _set_client(ev, _host(after, h + 2))
    else:
        return
    ev.type = REJECT
    if command is not None:
        ev.command = command
    if reason is not None:
        ev.reply = reason[:MAX_TEXT]
        if command == "RCPT" and reason.lower().startswith(_RELAY_REASONS):
            ev.type = RELAY_DENIED
    if qid is not None:
        ev.queue_id = qid


def _auth_failed(ev: Event, m: str) -> None:
    """``NAME authenticator failed for [H=]host: 535 text (set_id=user)[: more]``."""
    k = m.find(" authenticator failed for ")
    method = m[:k]
    if not method or " " in method:
        return
    ev.type = AUTH_FAILURE
    ev.sasl_method = method
    i = k + 26
    if m.startswith("H=", i):
        i += 2
    h = _host(m, i)
    _set_client(ev, h)
    c = m.find(": ", h.end())
    if c < 0:
        return
    text = m[c + 2 :]
    s = text.find(" (set_id=")
    if s >= 0:
        e = text.find(")", s)
        if e < 0:
            e = len(text)
        ev.sasl_username = text[s + 9 : e]
        text = text[:s] + text[e + 1 :]
    ev.reply = text[:MAX_TEXT]
    if text[:3].isdigit():
        ev.code = int(text[:3])


def _smtp_line(ev: Event, m: str) -> None:
    if m.startswith("SMTP connection from "):
        h = _host(m, 21)
        tail = m[h.end() :]
        if " lost" in tail:
            ev.type = LOST_CONNECTION
        elif " closed by " in tail:
            ev.type = DISCONNECT
        elif "connection count" in tail:
            ev.type = CONNECT
        else:
            ev.type = INFO
        _set_client(ev, h)
    elif m.startswith("SMTP call from "):
        h = _host(m, 15)
        d = m.find(" dropped: ", h.end())
        ev.type = LOST_CONNECTION if d >= 0 else INFO
        _set_client(ev, h)
        if d >= 0:
            ev.reply = m[d + 10 :][:MAX_TEXT]
    elif m.startswith(("SMTP command timeout on ", "SMTP data timeout ")):
        ev.type = LOST_CONNECTION
        if m.startswith("SMTP data"):
            ev.command = "DATA"
        f = m.find(" connection from ")
        if f >= 0:
            i = f + 17
            if m.startswith("H=", i):
                i += 2
            _set_client(ev, _host(m, i))
    elif m.startswith(
        ("SMTP protocol synchronization error", "SMTP syntax error in ", "SMTP protocol error in ")
    ):
        ev.type = REJECT
        at = m.find(" H=")
        host = _host(m, at + 3) if at >= 0 else None
        if host is not None:
            _set_client(ev, host)
        q = m.find('"')
        if "rejected connection" in m:
            ev.command = "CONNECT"
        elif q >= 0:
            ev.command = m[q + 1 :].split(" ", 1)[0].rstrip('"').upper() or None
        if m.startswith("SMTP protocol synchronization"):
            e = m.find("): ")
            ev.reply = m[: e + 1] if e >= 0 else m[:MAX_TEXT]
        elif host is not None:
            ev.reply = m[host.end() :].strip()[:MAX_TEXT] or None
