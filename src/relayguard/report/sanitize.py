"""Make peer-controlled text safe to print on a terminal.

Senders, HELO names, user names and whole log lines are chosen by whoever talks to the mail
server. Printed raw, an escape sequence in them could recolour, hide or rewrite what the admin
sees (or set the window title, or worse on old terminals). :func:`clean` shows every
non-printable character as an escape (``\\x1b``, ``\\u202e``), so an escape sequence reads
``\\x1b[2J`` instead of acting: the admin sees what was sent, as the JSON report has it, and
nothing is silently removed. It also bounds the length.
"""

from __future__ import annotations

ELLIPSIS = "…"

# Before escaping, a string is cut to this many times ``limit`` characters: an escaped character
# is 4 to 10 long, nothing a person reads needs more, and a 10 MB line costs no more than 4 KB.
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
    """``text`` with no control character left raw, at most ``limit`` characters.

    Non-printable characters (C0/C1 controls, DEL, newlines, tabs, bidi overrides, lone
    surrogates) are shown as ``\\xNN`` / ``\\uNNNN`` (an escape sequence as ``\\x1b[31m``); an
    over-long result ends with ``…``.
    """
    if limit < 1:
        return ""
    if len(text) <= limit and text.isprintable():
        return text
    bound = limit * _PRESCAN_FACTOR + _PRESCAN_SLACK
    cut = len(text) > bound
    if cut:
        text = text[:bound]
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else _escape_char(ch) for ch in text)
    if cut or len(text) > limit:
        return text[: limit - 1] + ELLIPSIS
    return text
