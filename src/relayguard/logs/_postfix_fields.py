"""Field scanners shared by the Postfix body parsers.

Every function here takes a piece of a Postfix message body and sets :class:`Event` fields.
They use ``str.find``/slicing only (no regex), and bound every value a remote peer controls:
addresses and HELO names to :data:`MAX_ADDR`, reply texts to :data:`MAX_REPLY`.
"""

from __future__ import annotations

from relayguard.logs.events import Event

# Postfix itself caps an SMTP command line at line_length_limit = 2048 and an address at
# ~1000 bytes in practice; 512 keeps every legitimate address/HELO (RFC 5321: 256-byte paths,
# 255-byte domains) while stopping a peer from bloating the event stream.
MAX_ADDR = 512
# RFC 5321 caps a reply line at 512 bytes; a multi-line reply joined by Postfix into one
# "said:" text is commonly 2-4 lines, so 1000 keeps the useful part (code, reason, list URL).
MAX_REPLY = 1000
MAX_DETAIL = 1000
# Longest IPv6 text form is 45 chars; anything longer between brackets is not an address.
_MAX_IP = 45

_DIGITS = "0123456789"


def addr(s: str) -> str:
    """An address as logged, without its angle brackets; ``<>`` is the null sender ""."""
    if s[:1] == "<" and s[-1:] == ">":
        s = s[1:-1]
    return s[:MAX_ADDR]


def client(ev: Event, s: str, start: int = 0) -> int:
    """Read ``NAME[IP]`` or ``NAME[IP]:PORT`` at ``s[start:]``; return the index after it.

    Returns -1 (setting nothing) when there is no bracketed address right there. The name
    part is what Postfix logs: a verified hostname or ``unknown`` (postscreen logs none).
    """
    b = s.find("[", start)
    if b < 0:
        return -1
    e = s.find("]", b)
    if e < 0 or e - b - 1 > _MAX_IP or " " in s[start:b]:
        return -1
    ip = s[b + 1 : e]
    if ip != "unknown":
        if "." not in ip and ":" not in ip:
            return -1
        ev.client_ip = ip
    if b > start:
        ev.client_name = s[start:b][:MAX_ADDR]
    end = e + 1
    if s[end : end + 1] == ":":
        p = end + 1
        q = p
        n = len(s)
        while q < n and s[q] in _DIGITS:
            q += 1
        if q > p and q - p <= 5:
            ev.client_port = int(s[p:q])
            end = q
    return end


def envelope_tail(ev: Event, s: str) -> str:
    """Read ``from=<S> to=<R> proto=P helo=<H>`` (smtpd: space separated; postscreen: ", ").

    Any of the four may be missing (VRFY has no from=, CONNECT rejects only proto=).
    Returns the text after the HELO name when the line goes on (header_checks add
    ``: optional text``), else "".
    """
    if s.startswith("from=<"):
        j = s.find(">", 6)
        if j < 0:
            ev.sender = s[6:][:MAX_ADDR]
            return ""
        ev.sender = s[6:j][:MAX_ADDR]
        s = s[j + 1 :].lstrip(", ")
    if s.startswith("to=<"):
        j = s.find(">", 4)
        if j < 0:
            ev.recipient = s[4:][:MAX_ADDR]
            return ""
        ev.recipient = s[4:j][:MAX_ADDR]
        s = s[j + 1 :].lstrip(", ")
    if s.startswith("proto="):
        j = s.find(" ")
        if j < 0:
            return ""
        s = s[j + 1 :].lstrip(", ")
    if s.startswith("helo=<"):
        j = s.find(">: ", 6)
        if j >= 0:
            ev.helo = s[6:j][:MAX_ADDR]
            return s[j + 3 :]
        ev.helo = (s[6:-1] if s.endswith(">") else s[6:])[:MAX_ADDR]
    elif s.startswith("helo="):
        ev.helo = s[5:][:MAX_ADDR]
    return ""


def smtp_reply(ev: Event, s: str) -> None:
    """Set code, dsn and reply from ``554 5.7.1 text``, ``554 text``, ``5.7.1 text`` or ``text``.

    A multi-line reply (``550-5.7.1 ...``) gives the code of its first line.
    """
    if len(s) > 4 and s[3] in " -" and s[:3].isascii() and s[:3].isdigit():
        ev.code = int(s[:3])
        s = s[4:]
    if s[:1] in "245" and s[1:2] == ".":
        sp = s.find(" ")
        d = s if sp < 0 else s[:sp]
        if 4 < len(d) <= 11 and d.replace(".", "").isdigit():
            ev.dsn = d
            s = "" if sp < 0 else s[sp + 1 :]
    ev.reply = s[:MAX_REPLY]


def remote_code(text: str) -> int | None:
    """The remote SMTP code in a delivery text: ``host X said: 554 ...`` or a leading ``250``."""
    i = text.find(" said: ")
    j = i + 7 if i >= 0 else 0
    c = text[j : j + 3]
    if len(c) == 3 and c.isascii() and c.isdigit() and text[j + 3 : j + 4] in " -":
        return int(c)
    return None


def relay_of(s: str, start: int) -> str:
    """``HOST[IP]:PORT`` at ``s[start:]`` up to the ``: `` that ends it (or the end)."""
    e = s.find("]", start)
    j = s.find(": ", e if e >= 0 else start)
    return (s[start:] if j < 0 else s[start:j])[:MAX_ADDR]
