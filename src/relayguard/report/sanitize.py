"""Make peer-controlled text safe to print on a terminal.

Senders, HELO names, user names and whole log lines are chosen by whoever talks to the mail
server. Printed raw, an escape sequence in them could recolour, hide or rewrite what the admin
sees (or set the window title, or worse on old terminals). :func:`clean` removes escape
sequences, shows every other non-printable character as an escape (``\\x1b``, ``\\u202e``),
and bounds the length.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), DCS/SOS/PM/APC strings (ESC P/X/^/_ ... ST),
# two-character escapes (ESC + intermediates + final), and the 8-bit CSI (0x9b).
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[PX^_][^\x1b]*\x1b\\"
    r"|\x1b[ -/]*[0-~]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)

# Before escaping, a string is cut to this many times ``limit`` characters: an escape sequence
# can be long, but nothing a person reads needs more, and a 10 MB line costs no more than 4 KB.
_PRESCAN_FACTOR = 8
_PRESCAN_SLACK = 256


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:
        # A byte that was not valid UTF-8, kept by the "surrogateescape" decoder: show the byte.
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def clean(text: str, limit: int = 500) -> str:
    """``text`` without escape sequences or control characters, at most ``limit`` characters.

    Non-printable characters (C0/C1 controls, DEL, newlines, tabs, bidi overrides, lone
    surrogates) are shown as ``\\xNN`` / ``\\uNNNN``; an over-long result ends with ``…``.
    """
    if limit < 1:
        return ""
    if len(text) <= limit and text.isprintable():
        return text
    bound = limit * _PRESCAN_FACTOR + _PRESCAN_SLACK
    cut = len(text) > bound
    if cut:
        text = text[:bound]
    if "\x1b" in text or "\x9b" in text:
        text = _ANSI.sub("", text)
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)
    if cut or len(text) > limit:
        return text[: limit - 1] + ELLIPSIS
    return text
