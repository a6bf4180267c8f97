"""Postfix access and content actions: ``reject:``, ``milter-reject:``, ``discard:``, ``hold:`` ...

smtpd (access restrictions, milters, before-queue filters), cleanup (header/body checks,
milters) and postscreen log them in two shapes::

    ACTION: CMD from NAME[IP]: 554 5.7.1 <r>: Relay access denied; from=<s> to=<r> proto=P helo=<h>
    ACTION: header Subject: text from NAME[IP]; from=<s> to=<r> proto=P helo=<h>: optional text

The action becomes ``ev.status`` (``reject``, ``reject_warning``, ``milter-reject``, ``discard``,
``hold``, ``filter``, ...). Actions that stop or quarantine mail are type REJECT (RELAY_DENIED
when the reply is a relay refusal); the ones that let mail through (``filter``, ``redirect``,
``prepend``, ``info``, ...) are INFO, and a header_checks ``warning:`` is WARNING. Note that
``reject_warning`` (``warn_if_reject``) is typed REJECT/RELAY_DENIED like a real reject: the
client did try; consumers that want only refused mail check ``status == "reject"``.
"""

from __future__ import annotations

import re

from relayguard.logs import events as E
from relayguard.logs._postfix_fields import (
    MAX_DETAIL,
    MAX_REPLY,
    client,
    envelope_tail,
    set_client,
    smtp_reply,
)
from relayguard.logs.events import Event

ACTION_TYPES: dict[str, str] = {
    "reject": E.REJECT,
    "reject_warning": E.REJECT,
    "milter-reject": E.REJECT,
    "proxy-reject": E.REJECT,
    "discard": E.REJECT,
    "milter-discard": E.REJECT,
    "hold": E.REJECT,
    "milter-hold": E.REJECT,
    "filter": E.INFO,
    "redirect": E.INFO,
    "milter-redirect": E.INFO,
    "milter-header-redirect": E.INFO,
    "prepend": E.INFO,
    "replace": E.INFO,
    "milter-replace": E.INFO,
    "info": E.INFO,
    "proxy-accept": E.INFO,
    "warning": E.WARNING,
}

# header_checks/body_checks-only actions: never followed by an SMTP stage.
_CONTENT_ONLY = frozenset({"warning", "info", "prepend", "replace"})

# Reply fragments that mean "you may not relay through me" (Postfix reject_unauth_destination /
# defer_unauth_destination, and the wording of common policy services), lower-cased.
_RELAY_DENIALS = ("relay access denied", "relaying denied", "relay not permitted")


def _is_relay_denial(reply: str) -> bool:
    if "Relay access denied" in reply:  # the Postfix wording: skip lower-casing
        return True
    low = reply.lower()
    return any(d in low for d in _RELAY_DENIALS)


def parse_action(ev: Event, action: str, s: str) -> bool:
    """Fill ``ev`` from the text after ``ACTION: ``; False if ``action`` is not an action."""
    etype = ACTION_TYPES.get(action)
    if etype is None:
        return False
    if s.startswith(("header ", "body ")):
        reply = _content_check(ev, s)
    elif action in _CONTENT_ONLY:
        return False
    else:
        stage = _smtp_stage(ev, s)
        if stage is None:
            return False
        reply = stage
    ev.status = action
    # Judged on the whole reply: ev.reply may be cut at MAX_REPLY before the telling words.
    if etype == E.REJECT and reply and _is_relay_denial(reply):
        etype = E.RELAY_DENIED
    ev.type = etype
    return True


def _tail_start(s: str, start: int) -> int:
    """Index of the ``; from=``/``; to=``/``; proto=`` that starts the envelope tail, or -1.

    Searched from the right: the reply text before it may itself contain ``; `` (DNSBL
    replies do), the tail never contains ``; from=<`` unless a HELO name is forged to.
    """
    for key in ("; from=<", "; to=<", "; proto="):
        i = s.rfind(key, start)
        if i >= 0:
            return i
    return -1


# The common complete shape in one match. The greedy reply group backtracks to the LAST
# "; from=<" (a DNSBL reply text has "; " in it). postscreen separates the tail with ", ".
_STAGE_RE = re.compile(
    r"([A-Z][A-Z-]{1,20}) from ([^\[\s]{0,512})\[([0-9A-Fa-f:.]{2,45}|unknown)\](?::(\d{1,5}))?: "
    r"(?:([245]\d\d) )?(?:([245]\.\d{1,3}\.\d{1,3}) )?(.*); from=<([^>]{0,512})>,? "
    r"to=<([^>]{0,512})>,? proto=[A-Z]{0,16},? helo=<([^>]{0,512})>\Z",
    re.S,
)


def _smtp_stage(ev: Event, s: str) -> str | None:
    """``CMD from NAME[IP]: REPLY; TAIL`` or ``CMD: REPLY; TAIL`` (before-queue proxy).

    Returns the whole reply text (before bounding), or None when the shape is not this.
    """
    g = _STAGE_RE.match(s)
    if g is not None:
        cmd, name, ip, port, code, dsn, reply, ev.sender, ev.recipient, ev.helo = g.groups()
        ev.command = cmd
        set_client(ev, name, ip, port)
        if code is not None:
            ev.code = int(code)
        if dsn is not None:
            ev.dsn = dsn
        if reply:
            ev.reply = reply[:MAX_REPLY]
        return reply
    sp = s.find(" ")
    if sp <= 0:
        return None
    cmd = s[:sp]
    if cmd[-1] == ":":  # proxy-accept/proxy-reject: "END-OF-MESSAGE: 554 ...; from=..."
        ev.command = cmd[:-1]
        body = sp + 1
    elif s.startswith("from ", sp + 1):
        ev.command = cmd
        end = client(ev, s, sp + 6)
        body = s.find(": ", sp + 6 if end < 0 else end)
        if body < 0:
            return None
        body += 2
    else:
        return None
    t = _tail_start(s, body)
    if t < 0:
        return smtp_reply(ev, s[body:])
    envelope_tail(ev, s[t + 2 :])
    return smtp_reply(ev, s[body:t])


def _content_check(ev: Event, s: str) -> str:
    """``header NAME: text from CLIENT; TAIL[: text]`` (cleanup header/body checks)."""
    t = _tail_start(s, 0)
    what = s if t < 0 else s[:t]
    ev.command = s[: s.find(" ")]
    f = what.rfind(" from ")
    if f >= 0:
        if what.endswith(" from local"):
            ev.client_name = "local"
        else:
            client(ev, what, f + 6)
        what = what[:f]
    ev.detail = what[:MAX_DETAIL]
    if t >= 0:
        extra = envelope_tail(ev, s[t + 2 :])
        if extra:
            return smtp_reply(ev, extra)
    return ""
