"""Field scanners shared by the Postfix body parsers.

Every function here takes a piece of a Postfix message body and sets :class:`Event` fields,
and bounds every value a remote peer controls: addresses and HELO names to :data:`MAX_ADDR`,
reply texts to :data:`MAX_REPLY`. A regex is used where one ``match`` replaces several
``find``/slice calls (each str method call costs about as much as a short regex match).
"""

from __future__ import annotations

import re

from relayguard.logs.events import Event

# Postfix itself caps an SMTP command line at line_length_limit = 2048 and an address at
# ~1000 bytes in practice; 512 keeps every legitimate address/HELO (RFC 5321: 256-byte paths,
# 255-byte domains) while stopping a peer from bloating the event stream.
MAX_ADDR = 512
# RFC 5321 caps a reply line at 512 bytes; a multi-line reply joined by Postfix into one
# "said:" text is commonly 2-4 lines, so 1000 keeps the useful part (code, reason, list URL).
MAX_REPLY = 1000
MAX_DETAIL = 1000

_DIGITS = "0123456789"

# Short queue ids are upper-case hex (at least 6: 5 for the microseconds, 1+ for the inode);
# long ones (enable_long_queue_ids) are base-51 digits without vowels, a "z", base-51 digits.
_B51 = "[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-y]"
QID_RE = re.compile(rf"([0-9A-F]{{6,24}}|{_B51}{{6,14}}z{_B51}{{1,14}}): ")

# NAME[IP] / NAME[IP]:PORT / [IP]:PORT (postscreen). IPv6 text is at most 45 characters and
# carries no "IPv6:" prefix here; "unknown[unknown]" is logged when the peer vanished early.
CLIENT_RE = re.compile(r"([^\[\s]{0,512})\[([0-9A-Fa-f:.]{2,45}|unknown)\](?::(\d{1,5}))?")


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
    g = CLIENT_RE.match(s, start)
    if g is None:
        return -1
    set_client(ev, *g.groups())
    return g.end()


def set_client(ev: Event, name: str | None, ip: str | None, port: str | None) -> None:
    """Set the client fields from the three groups of :data:`CLIENT_RE`-like patterns."""
    if name:
        ev.client_name = name
    if ip and ip != "unknown":
        ev.client_ip = ip
    if port:
        ev.client_port = int(port)


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


def smtp_reply(ev: Event, s: str) -> str:
    """Set code, dsn and reply from ``554 5.7.1 text``, ``554 text``, ``5.7.1 text`` or ``text``.

    A multi-line reply (``550-5.7.1 ...``) gives the code of its first line. Returns the text
    after the codes, not yet bounded.
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
    if s:
        ev.reply = s[:MAX_REPLY]
    return s


def remote_code(text: str) -> int | None:
    """The remote SMTP code in a delivery text: ``host X said: 554 ...`` or a leading ``250``."""
    if " said: " in text:
        i = text.find(" said: ") + 7
        c = text[i : i + 3]
        sep = text[i + 3 : i + 4]
    else:
        c = text[:3]
        sep = text[3:4]
    if sep in " -" and len(c) == 3 and c.isascii() and c.isdigit():
        return int(c)
    return None


def relay_of(s: str, start: int) -> str:
    """``HOST[IP]`` or ``HOST[IP]:PORT`` at ``s[start:]`` (the next hop of an SMTP client)."""
    e = s.find("]", start)
    if e < 0:
        sp = s.find(" ", start)
        return (s[start:] if sp < 0 else s[start:sp])[:MAX_ADDR]
    e += 1
    n = len(s)
    if s[e : e + 1] == ":":
        q = e + 1
        while q < n and s[q] in _DIGITS:
            q += 1
        if q > e + 1:
            e = q
    return s[start:e][:MAX_ADDR]
