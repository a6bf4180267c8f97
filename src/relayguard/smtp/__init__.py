"""SMTP syntax shared by every capability that speaks or reads it, with no I/O.

``replies`` assembles server replies from bytes (bounded, strict about the reply syntax);
``commands`` assembles and parses client commands (verbs, ``MAIL FROM``/``RCPT TO`` paths with
quoted local parts, source routes and address literals) and builds them. The probe's client
dialogue and the wire reader's session tracker are both built on these two.
"""

from relayguard.smtp.commands import (
    MAX_COMMAND,
    Command,
    CommandReader,
    CommandSyntaxError,
    Path,
    encode_command,
    parse_command,
    parse_path,
)
from relayguard.smtp.replies import (
    MAX_LINE,
    MAX_REPLY_BYTES,
    MAX_REPLY_LINES,
    Limits,
    Reply,
    ReplyReader,
    ReplySyntaxError,
)

__all__ = [
    "MAX_COMMAND",
    "MAX_LINE",
    "MAX_REPLY_BYTES",
    "MAX_REPLY_LINES",
    "Command",
    "CommandReader",
    "CommandSyntaxError",
    "Limits",
    "Path",
    "Reply",
    "ReplyReader",
    "ReplySyntaxError",
    "encode_command",
    "parse_command",
    "parse_path",
]
