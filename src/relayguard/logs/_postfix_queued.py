"""Postfix lines that start with a queue id: ``QID: to=<...>, relay=..., status=sent (...)``.

These are the bulk of a busy log (qmgr, cleanup, delivery agents, smtpd ``client=``): the
common shapes are picked by their first four characters and read by one regex each; a line
the regex does not take (odd spacing, overlong fields) goes to the slower ``find``-based
reader, which also bounds what it keeps.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from relayguard.logs import events as E
from relayguard.logs._postfix_actions import parse_action
from relayguard.logs._postfix_fields import (
    MAX_ADDR,
    MAX_DETAIL,
    MAX_REPLY,
    addr,
    client,
    relay_of,
    remote_code,
    set_client,
    smtp_reply,
)
from relayguard.logs.events import Event

# Postfix bounce(8): "<who> <kind> notification: <child qid>" -> ndr_kind.
_NDR_KINDS = {
    "sender non-delivery": "non-delivery",
    "sender delivery status": "delivery-status",
    "sender delay": "delay",
    "postmaster non-delivery": "postmaster-non-delivery",
    "postmaster delivery status": "postmaster-delivery-status",
    "postmaster delay": "postmaster-delay",
}

# postsuper(1) per-message actions -> the action word kept in ``detail``.
_POSTSUPER = {
    "removed": "delete",
    "requeued": "requeue",
    "placed on hold": "hold",
    "released from hold": "release",
}


_DELIVERY_RE = re.compile(
    r"to=<([^>]{0,512})>, (?:orig_to=<([^>]{0,512})>, )?relay=([^,\s]{1,512}), "
    r"(?:conn_use=\d+, )?delay=[^,]*, delays=[^,]*, (?:tls=[^,]*, )?dsn=([0-9.]{5,11}), "
    # The remote SMTP code, when the text is a reply ("250 2.0.0 Ok", "host X said: 554 ..."),
    # is read by a lookahead so that the text group stays whole.
    r"status=([a-z-]{1,40}) \((?:(?=(?:host \S{1,600} said: )?([2-5]\d\d)[ -])|)(.{0,1000})\)\Z",
    re.S,
)
_QUEUED_RE = re.compile(r"from=<([^>]{0,512})>, size=(\d{1,15}), nrcpt=(\d{1,9}) ")
_CLIENT_LINE_RE = re.compile(
    r"client=([^\[\s]{0,512})\[([0-9A-Fa-f:.]{2,45}|unknown)\](?::(\d{1,5}))?"
    r"(?:, sasl_method=([^,\s]{1,64}), sasl_username=(.{0,512}?)(?:, sasl_sender=.*)?)?$"
)


def _fast_delivery(ev: Event, daemon: str, r: str) -> bool:
    g = _DELIVERY_RE.match(r)
    if g is None:
        return False
    ev.recipient, orig, ev.relay, ev.dsn, ev.status, code, ev.reply = g.groups()
    if orig is not None:
        ev.orig_recipient = orig
    if code is not None:
        ev.code = int(code)
    ev.type = E.DELIVERY
    return True


def _fast_queued(ev: Event, daemon: str, r: str) -> bool:
    g = _QUEUED_RE.match(r)
    if g is None:
        return False
    ev.sender, size, nrcpt = g.groups()
    ev.size = int(size)
    ev.nrcpt = int(nrcpt)
    ev.type = E.QUEUED
    return True


def _removed(ev: Event, daemon: str, r: str) -> bool:
    if r != "removed":
        return False
    ev.type = E.REMOVED
    if daemon == "postsuper":
        ev.detail = "delete"
    return True


def _message_id(ev: Event, daemon: str, r: str) -> bool:
    if not r.startswith("message-id="):
        return False
    ev.message_id = addr(r[11:])
    ev.type = E.MESSAGE_ID
    return True


def _fast_client(ev: Event, daemon: str, r: str) -> bool:
    g = _CLIENT_LINE_RE.match(r)
    if g is None:
        return False
    name, ip, port, method, user = g.groups()
    set_client(ev, name, ip, port)
    if user is None:
        ev.type = E.CLIENT
    else:
        ev.sasl_method = method
        ev.sasl_username = user
        ev.type = E.AUTH_SUCCESS
    return True


_FAST: dict[str, Callable[[Event, str, str], bool]] = {
    "to=<": _fast_delivery,
    "from": _fast_queued,
    "remo": _removed,
    "mess": _message_id,
    "clie": _fast_client,
}


def parse_queued(ev: Event, daemon: str, r: str) -> bool:
    """Fill ``ev`` from the text after ``QID: ``; False when the shape is unknown."""
    fast = _FAST.get(r[:4])
    if fast is not None and fast(ev, daemon, r):
        return True
    if r.startswith("to="):
        return _delivery(ev, r)
    if r.startswith("from=<"):
        return _qmgr_from(ev, r)
    if r.startswith("client="):
        return _client_line(ev, r)
    if r.startswith("uid="):
        return _pickup(ev, r)
    c = r.find(": ")
    if c > 0 and parse_action(ev, r[:c], r[c + 2 :]):
        return True
    return _queued_other(ev, daemon, r, c)


def _delivery(ev: Event, r: str) -> bool:
    """``to=<r>, [orig_to=<o>, ]relay=R, [conn_use=N, ]delay=, delays=, dsn=X, status=S (text)``."""
    # An address in angle brackets may hold ", relay=" (quoted local part): skip past it first.
    k = r.find(">, ", 4) if r.startswith("to=<") else 3
    i = r.find(", relay=", max(k, 0))
    if i < 0:
        return False
    head = r[3:i]
    o = head.find(", orig_to=")
    if o >= 0:
        ev.orig_recipient = addr(head[o + 10 :])
        head = head[:o]
    ev.recipient = addr(head)
    return _delivery_status(ev, r, i)


def _delivery_status(ev: Event, r: str, i: int) -> bool:
    """The part from ``, relay=`` (at ``r[i]``) on."""
    j = r.find(", ", i + 8)
    if j < 0:
        return False
    ev.relay = r[i + 8 : j][:MAX_ADDR]
    s = r.find(", status=", j)
    if s < 0:
        return False
    d = r.find(", dsn=", j, s)
    if d >= 0:
        ev.dsn = r[d + 6 : s]
    st = r[s + 9 :]
    sp = st.find(" ")
    if sp < 0:
        ev.status = st
    else:
        ev.status = st[:sp]
        text = st[sp + 1 :]
        if text[:1] == "(":
            text = text[1:-1] if text[-1:] == ")" else text[1:]
        ev.reply = text[:MAX_REPLY]
        ev.code = remote_code(text)
    ev.type = E.DELIVERY
    return True


def _qmgr_from(ev: Event, r: str) -> bool:
    """``from=<s>, size=N, nrcpt=N (queue active)`` or ``from=<s>, status=expired, ...``."""
    k = r.find(">, ", 6)
    if k < 0:
        return False
    ev.sender = r[6:k][:MAX_ADDR]
    t = r[k + 3 :]
    if t.startswith("size="):
        c = t.find(", nrcpt=")
        if c < 0:
            return False
        ev.size = int(t[5:c])
        sp = t.find(" ", c + 8)
        ev.nrcpt = int(t[c + 8 :] if sp < 0 else t[c + 8 : sp])
        ev.type = E.QUEUED
        return True
    if t.startswith("status="):
        c = t.find(",")
        ev.status = t[7:] if c < 0 else t[7:c]
        ev.type = E.EXPIRED if ev.status.endswith("expired") else E.INFO
        return True
    return False


def _client_line(ev: Event, r: str) -> bool:
    """``client=NAME[IP][, orig_queue_id=Q, orig_client=C][, sasl_method=M, sasl_username=U]``.

    A ``, sasl_sender=S`` may follow the user name.
    """
    end = client(ev, r, 7)
    if end < 0:
        return False
    ev.type = E.CLIENT
    if end == len(r):
        return True
    m = r.find(", sasl_method=", end)
    if m >= 0:
        e = r.find(", ", m + 14)
        ev.sasl_method = r[m + 14 :] if e < 0 else r[m + 14 : e]
        u = r.find(", sasl_username=", m)
        if u >= 0:
            e = r.find(", sasl_sender=", u + 16)
            ev.sasl_username = (r[u + 16 :] if e < 0 else r[u + 16 : e])[:MAX_ADDR]
            ev.type = E.AUTH_SUCCESS
    o = r.find(", orig_queue_id=", end)
    if o >= 0:
        # A message re-injected by a content filter: keep its original queue id and client.
        ev.detail = r[o + 2 : m if m >= 0 else len(r)][:MAX_DETAIL]
    return True


def _pickup(ev: Event, r: str) -> bool:
    """``uid=0 from=<root@x>`` (pickup: mail submitted with sendmail(1) on this host)."""
    f = r.find(" from=")
    if f < 0:
        return False
    s = r[f + 6 :]
    if s[:1] == "<":
        e = s.find(">")
        s = s[1:] if e < 0 else s[1:e]
    ev.sender = s[:MAX_ADDR]
    ev.type = E.PICKUP
    return True


def _queued_other(ev: Event, daemon: str, r: str, c: int) -> bool:
    """The rarer queued shapes: bounces, SMTP client trouble, postsuper, cleanup extras."""
    n = r.find(" notification: ")
    if n > 0:
        kind = _NDR_KINDS.get(r[:n])
        if kind is None:
            return False
        ev.type = E.NDR
        ev.ndr_kind = kind
        ev.child_queue_id = r[n + 15 :][:32]
        return True
    if r.startswith("host "):
        # "host X[ip] said: 450 ... (in reply to RCPT TO command)" / "refused to talk to me: 4xx":
        # an answer that did not end the recipient's delivery (the to= line carries that).
        ev.relay = relay_of(r, 5)
        colon = r.find(": ", r.find("]", 5))
        if colon < 0:
            return False
        smtp_reply(ev, r[colon + 2 :])
        ev.type = E.INFO
        return True
    if r.startswith("connect to "):
        return connect_failed(ev, r)
    if r.startswith(("lost connection with ", "conversation with ")):
        ev.relay = relay_of(r, r.find(" with ") + 6)
        ev.detail = r[:MAX_DETAIL]
        ev.type = E.INFO
        return True
    if r.startswith("SASL authentication failed; server "):
        # Our SMTP client failed to log in to a relayhost: not a brute-force on us.
        ev.relay = relay_of(r, 35)
        said = r.find(" said: ")
        if said >= 0:
            smtp_reply(ev, r[said + 7 :])
        ev.detail = "SASL authentication failed"
        ev.type = E.WARNING
        return True
    if r.startswith("resent-message-id="):
        ev.message_id = addr(r[18:])
        ev.detail = "resent-message-id"
        ev.type = E.INFO
        return True
    action = _POSTSUPER.get(r)
    if action is not None:
        ev.detail = action
        ev.type = E.DAEMON
        return True
    if r.startswith("warning: "):
        ev.detail = r[9:][:MAX_DETAIL]
        ev.type = E.WARNING
        return True
    if r.startswith(("enabling PIX workarounds", "skipped, still being delivered")):
        ev.detail = r[:MAX_DETAIL]
        ev.type = E.INFO
        return True
    if ", relay=" in r and ", status=" in r:
        # Delivery line without "to=" (seen from some patched builds): keep what is there.
        i = r.find(", relay=")
        ev.recipient = addr(r[:i])
        return _delivery_status(ev, r, i)
    return False


def connect_failed(ev: Event, r: str) -> bool:
    """``connect to HOST[IP]:25: Connection refused`` (smtp/lmtp could not reach the next hop)."""
    relay = relay_of(r, 11)
    if not r.startswith(": ", 11 + len(relay)):
        return False
    ev.relay = relay
    ev.detail = r[13 + len(relay) :][:MAX_DETAIL]
    ev.type = E.CONNECT_FAILED
    return True
