"""Sendmail parser: the message body of a ``sendmail``/``sm-mta``/``sm-msp-queue`` line.

Bodies are ``QID: text`` (``NOQUEUE: text`` before a queue file exists) or bare ``text``.
Understood: ``from=<s>, size=, class=, nrcpts=, msgid=, proto=, daemon=, relay=name [ip]``
(QUEUED: sender, size, nrcpt, message_id, service from ``daemon=``, client from ``relay=``, with
``(may be forged)``, ``[IPv6:...]`` and malformed addresses tolerated; ``nrcpts=0`` means nothing
was queued and is INFO); ``to=<a>,<b>, ..., relay=, dsn=, stat=`` (DELIVERY: first recipient,
nrcpt, relay, dsn, status sent/deferred/bounced/expired from ``stat=``, reply = stat text);
``ruleset=check_*, arg1=, relay=, reject=550 5.7.1 ...`` (RELAY_DENIED for ``Relaying denied``,
else REJECT with command, code, dsn), ``Milter: ... reject=`` and ``relay=..., reject=``
(REJECT); ``AUTH failure (MECH): reason, user=u, relay=`` (AUTH_FAILURE); ``AUTH=server,
relay=, authid=, mech=`` (AUTH_SUCCESS); ``STARTTLS=...`` (TLS); ``[CHILD: ]DSN: ...``,
``return to sender:``, ``sender notify:``, ``postmaster notify:`` (NDR with child_queue_id);
``lost input channel``, ``timeout waiting for input``, ``collect: ...`` (LOST_CONNECTION);
``did not issue MAIL/EXPN/VRFY/ETRN`` (DISCONNECT); daemon start/stop and alias rebuilds
(DAEMON); ``SYSERR``, ``possible SMTP attack``, ``rejecting connections`` (WARNING).
"""

from __future__ import annotations

from relayguard.logs.events import (
    AUTH_FAILURE,
    AUTH_SUCCESS,
    CONNECT,
    DAEMON,
    DELIVERY,
    DISCONNECT,
    INFO,
    LOST_CONNECTION,
    NDR,
    QUEUED,
    REJECT,
    RELAY_DENIED,
    TLS,
    WARNING,
    Event,
)

MAX_TEXT = 500

_RULESET_COMMANDS = {
    "check_relay": "CONNECT",
    "check_mail": "MAIL",
    "check_rcpt": "RCPT",
    "check_compat": "RCPT",
    "check_data": "DATA",
    "check_eom": "DATA",
    "check_etrn": "ETRN",
    "check_expn": "EXPN",
    "check_vrfy": "VRFY",
}
_DAEMON_STARTS = (
    "starting daemon",
    "stopping daemon",
    "restarting ",
    "daemon invoked",
    "alias database ",
    "started as:",
)
_WARNING_STARTS = ("SYSERR", "rejecting connections on daemon", "Authentication-Warning")


def parse(ev: Event, message: str) -> None:
    """Set ev.type and fields from the message body; leave ev.type unparsed if unknown."""
    c = message.find(": ")
    if 6 < c < 21 and message[:c].isalnum():
        qid = message[:c]
        if _body(ev, message[c + 2 :]) and qid != "NOQUEUE":
            ev.queue_id = qid
    else:
        _body(ev, message)


def _body(ev: Event, b: str) -> bool:
    """Fill ev from a body without its queue id; False when not understood."""
    if b.startswith("from="):
        _from(ev, b)
    elif b.startswith("to="):
        _to(ev, b)
    elif b.startswith("ruleset="):
        _ruleset(ev, b)
    elif b.startswith("AUTH"):
        return _auth(ev, b)
    elif b.startswith("STARTTLS"):
        ev.type = TLS
        relay = _field(b, "relay=")
        if relay is not None and b.startswith("STARTTLS=server"):
            _client(ev, relay)
        elif relay is not None:
            ev.relay = _relay_str(relay)
        ev.detail = b[:MAX_TEXT]
    elif b.startswith(("Milter", "milter=")) or (b.startswith("relay=") and ", reject=" in b):
        return _milter(ev, b)
    else:
        return _other(ev, b)
    return True


def _field(s: str, key: str) -> str | None:
    """Value of ``key=`` in a ``k=v, k=v`` list (the first field may start the string)."""
    if s.startswith(key):
        i = len(key)
    else:
        i = s.find(", " + key)
        if i < 0:
            return None
        i += len(key) + 2
    j = s.find(", ", i)
    return s[i:] if j < 0 else s[i:j]


def _split_relay(v: str) -> tuple[str | None, str | None]:
    """``name [ip] (may be forged)`` / ``[ip]`` / ``[IPv6:...]`` / ``user@localhost``."""
    b = v.find("[")
    if b < 0:
        return (v or None), None
    e = v.find("]", b)
    ip = v[b + 1 :] if e < 0 else v[b + 1 : e]
    if ip.startswith("IPv6:"):
        ip = ip[5:]
    name = v[:b].strip().rstrip(".")
    return (name or None), (ip or None)


def _client(ev: Event, relay: str) -> None:
    name, ip = _split_relay(relay)
    if name is not None:
        ev.client_name = name
    if ip is not None:
        ev.client_ip = ip


def _relay_str(relay: str) -> str | None:
    name, ip = _split_relay(relay)
    if ip is None:
        return name
    return f"{name or ''}[{ip}]"


def _unbracket(a: str) -> str:
    a = a.strip()
    if a.startswith("<") and a.endswith(">"):
        return a[1:-1]
    return a


def _reject_text(ev: Event, text: str) -> None:
    """``550 5.7.1 <x>... Relaying denied``: reply, code and dsn."""
    ev.reply = text[:MAX_TEXT]
    if text[:3].isdigit():
        ev.code = int(text[:3])
        dsn = text[4:].split(" ", 1)[0]
        if dsn.count(".") == 2 and dsn[:1] in ("2", "4", "5"):
            ev.dsn = dsn


def _from(ev: Event, b: str) -> None:
    e = b.find(", ")
    sender = _unbracket(b[5:] if e < 0 else b[5:e])
    ev.sender = sender
    nrcpts = _field(b, "nrcpts=")
    if nrcpts is not None and nrcpts.isdigit():
        ev.nrcpt = int(nrcpts)
    # A "from=" with nrcpts=0 closes an SMTP session whose recipients were all refused.
    ev.type = INFO if ev.nrcpt == 0 else QUEUED
    size = _field(b, "size=")
    if size is not None and size.isdigit():
        ev.size = int(size)
    msgid = _field(b, "msgid=")
    if msgid:
        ev.message_id = _unbracket(msgid)
    daemon = _field(b, "daemon=")
    if daemon:
        ev.service = daemon
    relay = _field(b, "relay=")
    if relay:
        _client(ev, relay)


def _to(ev: Event, b: str) -> None:
    ev.type = DELIVERY
    e = b.find(", ")
    rcpts = (b[3:] if e < 0 else b[3:e]).split(",")
    ev.recipient = _unbracket(rcpts[0])
    ev.nrcpt = len(rcpts)
    relay = _field(b, "relay=")
    if relay:
        ev.relay = _relay_str(relay)
    else:
        ev.relay = _field(b, "mailer=")
    dsn = _field(b, "dsn=")
    if dsn:
        ev.dsn = dsn
    s = b.find(", stat=")
    if s < 0:
        return
    stat = b[s + 7 :]
    ev.reply = stat[:MAX_TEXT]
    if stat.startswith("Sent"):
        ev.status = "sent"
    elif stat.startswith(("Deferred", "queued")):
        ev.status = "deferred"
        if stat.startswith("Deferred: ") and stat[10:13].isdigit():
            ev.code = int(stat[10:13])
    elif stat.startswith("Cannot send message for"):
        ev.status = "expired"
    else:
        ev.status = "bounced"


def _ruleset(ev: Event, b: str) -> None:
    name = _field(b, "ruleset=") or ""
    command = _RULESET_COMMANDS.get(name)
    arg1 = _field(b, "arg1=")
    relay = _field(b, "relay=")
    if relay:
        _client(ev, relay)
    r = b.find(", reject=")
    text = b[r + 9 :] if r >= 0 else None
    ev.type = REJECT if text is not None else WARNING
    if command is not None:
        ev.command = command
    if arg1 is not None:
        if command == "RCPT":
            ev.recipient = _unbracket(arg1)
        elif command == "MAIL":
            ev.sender = _unbracket(arg1)
        elif command == "CONNECT":
            arg2 = _field(b, "arg2=")
            if arg2 and ev.client_ip is None:
                ev.client_ip = arg2
    if text is not None:
        _reject_text(ev, text)
        if command == "RCPT" and "relaying denied" in text.lower():
            ev.type = RELAY_DENIED
    else:
        ev.detail = b[:MAX_TEXT]


def _milter(ev: Event, b: str) -> bool:
    r = b.find(", reject=")
    if r < 0:
        ev.type = INFO
        ev.detail = b[:MAX_TEXT]
        return True
    ev.type = REJECT
    if b.startswith("relay="):
        ev.command = "CONNECT"
        _client(ev, b[6 : b.find(", ")])
    elif (v := _field(b[8:], "from=")) is not None:
        ev.command = "MAIL"
        ev.sender = _unbracket(v)
    elif (v := _field(b[8:], "to=")) is not None:
        ev.command = "RCPT"
        ev.recipient = _unbracket(v)
    else:
        ev.command = "DATA"
    _reject_text(ev, b[r + 9 :])
    return True


def _auth(ev: Event, b: str) -> bool:
    if b.startswith("AUTH failure ("):
        ev.type = AUTH_FAILURE
        e = b.find("): ", 14)
        if e < 0:
            return True
        ev.sasl_method = b[14:e]
        rest = b[e + 3 :]
        u = rest.find(", user=")
        r = rest.find(", relay=")
        end = min(x for x in (u, r, len(rest)) if x >= 0)
        ev.reply = rest[:end][:MAX_TEXT]
        user = _field(rest, "user=")
        if user:
            ev.sasl_username = user
        relay = _field(rest, "relay=")
        if relay:
            _client(ev, relay)
        return True
    if b.startswith("AUTH=server"):
        ev.type = AUTH_SUCCESS
        relay = _field(b, "relay=")
        if relay:
            _client(ev, relay)
        user = _field(b, "authid=")
        if user:
            ev.sasl_username = user
        mech = _field(b, "mech=")
        if mech:
            ev.sasl_method = mech
        return True
    if b.startswith("AUTH=client"):
        ev.type = INFO
        relay = _field(b, "relay=")
        if relay:
            ev.relay = _relay_str(relay)
        return True
    return False


def _ndr(ev: Event, child: str | None, b: str) -> bool:
    if b.startswith("DSN: "):
        text = b[5:]
        kind = (
            "delivery-status"
            if text.startswith("Return receipt")
            else "delay"
            if text.startswith("Warning")
            else "non-delivery"
        )
    elif b.startswith("return to sender: "):
        text, kind = b[18:], "non-delivery"
    elif b.startswith("sender notify: "):
        text = b[15:]
        kind = "delay" if text.startswith("Warning") else "non-delivery"
    elif b.startswith("postmaster notify: "):
        text, kind = b[19:], "postmaster-non-delivery"
    else:
        return False
    ev.type = NDR
    ev.ndr_kind = kind
    ev.detail = text[:MAX_TEXT]
    if child is not None:
        ev.child_queue_id = child
    return True


def _host_between(ev: Event, b: str, start: int, marker: str) -> None:
    """Client ``name [ip] (may be forged)`` from b[start:] up to ``marker`` (or the end)."""
    end = b.find(marker, start)
    _client(ev, b[start:] if end < 0 else b[start:end])


def _other(ev: Event, b: str) -> bool:
    c = b.find(": ")
    if 6 < c < 21 and b[:c].isalnum():  # "CHILDQID: DSN: ..."
        return _ndr(ev, b[:c], b[c + 2 :])
    if _ndr(ev, None, b):
        return True
    if b.startswith("lost input channel from "):
        ev.type = LOST_CONNECTION
        _host_between(ev, b, 24, " to ")
        a = b.find(" after ")
        if a >= 0:
            ev.command = b[a + 7 :].split(" ", 1)[0].upper()
    elif b.startswith("timeout waiting for input from "):
        ev.type = LOST_CONNECTION
        _host_between(ev, b, 31, " during ")
    elif b.startswith("collect: "):
        ev.type = LOST_CONNECTION
        ev.command = "DATA"
        f = b.find(" from ")
        if f >= 0:
            _host_between(ev, b, f + 6, " to ")
        ev.detail = b[9:][:MAX_TEXT]
    elif (d := b.find(" did not issue ")) >= 0:
        ev.type = DISCONNECT
        _client(ev, b[:d])
        ev.detail = b[d + 1 :][:MAX_TEXT]
    elif b.startswith("connect from "):
        ev.type = CONNECT
        _client(ev, b[13:])
    elif b.startswith(_DAEMON_STARTS) or b.endswith(" bytes total"):
        ev.type = DAEMON
        ev.detail = b[:MAX_TEXT]
    elif b.startswith(_WARNING_STARTS):
        ev.type = WARNING
        ev.detail = b[:MAX_TEXT]
    elif (a := b.find(": possible SMTP attack")) >= 0:
        ev.type = WARNING
        _client(ev, b[:a])
        ev.detail = b[a + 2 :][:MAX_TEXT]
    elif b.endswith(" [rejected]"):
        c2 = b.find("]: ")
        if c2 < 0:
            return False
        ev.type = REJECT
        _client(ev, b[: c2 + 1])
        ev.command = b[c2 + 3 :].split(" ", 1)[0]
    elif b.startswith(("clone ", "done; ", "Saved message in")):
        ev.type = INFO
    else:
        return False
    return True
