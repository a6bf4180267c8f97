"""Postfix access and content actions: ``reject:``, ``milter-reject:``, ``discard:``, ``hold:`` ...

smtpd (access restrictions, milters, before-queue filters), cleanup (header/body checks,
milters) and postscreen log them in two shapes::

    ACTION: CMD from NAME[IP]: 554 5.7.1 <r>: Relay access denied; from=<s> to=<r> proto=SMTP helo=<h>
    ACTION: header Subject: text from NAME[IP]; from=<s> to=<r> proto=SMTP helo=<h>: optional text

The action becomes ``ev.status`` (``reject``, ``reject_warning``, ``milter-reject``, ``discard``,
``hold``, ``filter``, ...). Actions that stop or quarantine mail are type REJECT (RELAY_DENIED
when the reply is a relay refusal); the ones that let mail through (``filter``, ``redirect``,
``prepend``, ``info``, ...) are INFO, and a header_checks ``warning:`` is WARNING. Note that
``reject_warning`` (``warn_if_reject``) is typed REJECT/RELAY_DENIED like a real reject: the
client did try; consumers that want only refused mail check ``status == "reject"``.
"""

from __future__ import annotations

from relayguard.logs import events as E
from relayguard.logs._postfix_fields import (
    MAX_DETAIL,
    client,
    envelope_tail,
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
    low = reply.lower()
    return any(d in low for d in _RELAY_DENIALS)


def parse_action(ev: Event, action: str, s: str) -> bool:
    """Fill ``ev`` from the text after ``ACTION: ``; False if ``action`` is not an action."""
    etype = ACTION_TYPES.get(action)
    if etype is None:
        return False
    if s.startswith(("header ", "body ")):
        _content_check(ev, s)
    elif action in _CONTENT_ONLY or not _smtp_stage(ev, s):
        return False
    ev.status = action
    if etype == E.REJECT and ev.reply and _is_relay_denial(ev.reply):
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


def _smtp_stage(ev: Event, s: str) -> bool:
    """``CMD from NAME[IP]: REPLY; TAIL`` or ``CMD: REPLY; TAIL`` (before-queue proxy)."""
    sp = s.find(" ")
    if sp <= 0:
        return False
    cmd = s[:sp]
    if cmd[-1] == ":":  # proxy-accept/proxy-reject: "END-OF-MESSAGE: 554 ...; from=..."
        ev.command = cmd[:-1]
        body = sp + 1
    elif s.startswith("from ", sp + 1):
        ev.command = cmd
        end = client(ev, s, sp + 6)
        body = s.find(": ", sp + 6 if end < 0 else end)
        if body < 0:
            return False
        body += 2
    else:
        return False
    t = _tail_start(s, body)
    if t < 0:
        smtp_reply(ev, s[body:])
    else:
        smtp_reply(ev, s[body:t])
        envelope_tail(ev, s[t + 2 :])
    return True


def _content_check(ev: Event, s: str) -> None:
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
            smtp_reply(ev, extra)
