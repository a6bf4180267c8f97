"""Typed log events: what one understood log line says.

Theory of operation
-------------------
The envelope parser (``envelope.py``) turns a raw line into an :class:`Event` that knows
only *when*, *where* and *who logged it* (time, host, program, pid, raw line). The MTA
parser chosen for the program (``postfix.py``, ``exim.py``, ``sendmail.py``, ``dovecot.py``)
then sets :attr:`Event.type` and the fields the line carries, or leaves the type as
:data:`UNPARSED` when it does not understand the body.

``Event`` is deliberately a plain class with class-level ``None`` defaults rather than a
frozen slotted dataclass: a busy mail log has millions of lines, and an event only pays for
the handful of fields its line actually sets. Treat events as immutable once a parser has
returned them.

The ``type`` strings and field names are a public interface (``relayguard analyze --events``,
schema ``relayguard.events/1``): add, never rename.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

EVENTS_SCHEMA = "relayguard.events/1"

# --- event types -------------------------------------------------------------------------
UNPARSED = "unparsed"
CONNECT = "connect"  # smtpd/postscreen/exim: a client connected
DISCONNECT = "disconnect"  # smtpd: a client left; carries auth_failed/auth_attempts counters
LOST_CONNECTION = "lost-connection"  # smtpd: "lost connection after X", "too many errors after X"
AUTH_FAILURE = "auth-failure"  # a SASL authentication failed (Postfix, Exim, Sendmail, Dovecot)
AUTH_SUCCESS = (
    "auth-success"  # a SASL login succeeded (Postfix client= with sasl_username, Dovecot Login)
)
CLIENT = "client"  # Postfix smtpd "QID: client=" without SASL: a message started from a client
PICKUP = "pickup"  # Postfix pickup: a locally submitted message (sendmail(1), PHP mail())
MESSAGE_ID = "message-id"  # Postfix cleanup: message-id of a queued message
QUEUED = "queued"  # Postfix qmgr "from=, size=, nrcpt=" / Sendmail "from=" / Exim "<="
REMOVED = "removed"  # Postfix qmgr "removed" / Exim "Completed": the queue file is gone
DELIVERY = "delivery"  # a delivery attempt to one recipient: status sent/deferred/bounced/...
EXPIRED = "expired"  # Postfix qmgr "status=expired, returned to sender"
NDR = "ndr"  # a bounce/delay/delivery notification was created (child_queue_id links it)
REJECT = "reject"  # the server refused a command (NOQUEUE or queued reject)
RELAY_DENIED = "relay-denied"  # a reject whose reason is "relay access denied" and its kin
CONNECT_FAILED = "connect-failed"  # delivery agent could not connect to the next hop
POSTSCREEN = "postscreen"  # postscreen verdicts (PREGREET, DNSBL, PASS NEW, ...)
TLS = "tls"  # a TLS session was established / failed
WARNING = "warning"  # an MTA warning that is not one of the above
DAEMON = "daemon"  # MTA start, stop, reload, statistics and other housekeeping
INFO = "info"  # a recognised MTA line that carries nothing the analysis uses

EVENT_TYPES = (
    CONNECT,
    DISCONNECT,
    LOST_CONNECTION,
    AUTH_FAILURE,
    AUTH_SUCCESS,
    CLIENT,
    PICKUP,
    MESSAGE_ID,
    QUEUED,
    REMOVED,
    DELIVERY,
    EXPIRED,
    NDR,
    REJECT,
    RELAY_DENIED,
    CONNECT_FAILED,
    POSTSCREEN,
    TLS,
    WARNING,
    DAEMON,
    INFO,
)

# Fields an MTA parser may set, in the order ``--events`` prints them.
FIELDS = (
    "mta",
    "instance",
    "service",
    "queue_id",
    "client_ip",
    "client_name",
    "client_port",
    "helo",
    "sasl_method",
    "sasl_username",
    "sender",
    "recipient",
    "orig_recipient",
    "size",
    "nrcpt",
    "relay",
    "dsn",
    "status",
    "reply",
    "command",
    "code",
    "child_queue_id",
    "ndr_kind",
    "auth_failed",
    "auth_attempts",
    "message_id",
    "detail",
)


class Event:
    """One log line, as understood. See the module docstring for why this is not a dataclass."""

    type: str = UNPARSED
    # Envelope, set for every line. ``time`` is POSIX seconds (UTC) or None when the line's
    # timestamp could not be read (the analysis then uses the previous line's time).
    time: float | None = None
    host: str = ""
    program: str = ""
    pid: int | None = None
    raw: str = ""

    mta: str | None = None  # postfix | exim | sendmail | dovecot
    instance: str | None = None  # Postfix syslog_name first component: postfix, postfix-out
    service: str | None = None  # master.cf service when logged: submission, smtps
    queue_id: str | None = None
    client_ip: str | None = None
    client_name: str | None = None
    client_port: int | None = None
    helo: str | None = None
    sasl_method: str | None = None
    sasl_username: str | None = None
    sender: str | None = None  # envelope sender, "" for the null sender <>
    recipient: str | None = None
    orig_recipient: str | None = None
    size: int | None = None
    nrcpt: int | None = None
    relay: str | None = None  # next hop of a delivery: "host[ip]:port", "local", "none"
    dsn: str | None = None  # enhanced status code: 2.0.0, 5.7.1
    status: str | None = None  # sent | deferred | bounced | expired | undeliverable | ...
    reply: str | None = None  # server reply text (our reject, or the remote server's answer)
    command: str | None = None  # SMTP stage of a reject: CONNECT, HELO, MAIL, RCPT, DATA, ...
    code: int | None = None  # SMTP reply code: 554
    child_queue_id: str | None = None  # NDR: queue id of the notification message
    ndr_kind: str | None = None  # non-delivery | delay | delivery-status | postmaster-non-delivery
    auth_failed: int | None = None  # disconnect: failed AUTH commands (auth=0/1 -> 1)
    auth_attempts: int | None = None  # disconnect: AUTH commands issued
    message_id: str | None = None
    detail: str | None = None  # free text: postscreen verdict, warning text, daemon action

    def __init__(
        self, time: float | None, host: str, program: str, pid: int | None, raw: str
    ) -> None:
        self.time = time
        self.host = host
        self.program = program
        self.pid = pid
        self.raw = raw

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.fields().items())
        return f"Event({self.type!r}, {fields})"

    def fields(self) -> dict[str, Any]:
        """The MTA fields this line set (those not None)."""
        return {k: v for k in FIELDS if (v := getattr(self, k)) is not None}

    def to_json(self) -> dict[str, Any]:
        """The ``relayguard.events/1`` object for this event."""
        out: dict[str, Any] = {
            "type": self.type,
            "time": iso_time(self.time),
            "host": self.host,
            "program": self.program,
        }
        if self.pid is not None:
            out["pid"] = self.pid
        out.update(self.fields())
        return out


def iso_time(t: float | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, second precision unless the time has a fraction."""
    if t is None:
        return None
    try:
        dt = datetime.fromtimestamp(t, UTC)
    except (OverflowError, ValueError, OSError):
        return None
    spec = "milliseconds" if t % 1 else "seconds"
    return dt.isoformat(timespec=spec).replace("+00:00", "Z")
