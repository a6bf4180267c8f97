"""Dovecot parser: login summaries and passdb results, from a ``dovecot`` tag or a bare process.

The process may be in the message (tag ``dovecot``: ``imap-login: Info: ...``,
``auth-worker(304): pam(u,ip): ...``), be the tag itself when ``log_path`` lines carry no host
or tag (``auth(u,ip,sasl:login)<id>``, ``pop3-login``, ``IMAP(user)``), or follow a leading
log level (Dovecot 1.x ``Info: imap-login: ...``, seen as a tag ``Info``). Understood: login
process summaries ``Login: user=<u>, method=M, rip=ip`` (AUTH_SUCCESS), ``Aborted login`` /
``Disconnected`` / ``Login aborted`` with ``(auth failed, N attempts ...)``, ``(N authentication
attempts)``, ``(tried to use disallowed plaintext auth)`` or ``(proxy dest auth failed)``
(AUTH_FAILURE with sasl_username, sasl_method, client_ip with ``::ffff:`` removed,
auth_attempts/auth_failed = N), other summaries (DISCONNECT, auth_attempts 0 for ``no auth
attempts``); passdb results ``driver(u,ip[,x]): Password mismatch | unknown user |
pam_authenticate() failed ...`` including the ``conn unix:auth-worker ...: auth-worker<n>:``
prefix and the 2.3 ``auth(u,ip,sasl:login)<id>: sql: ...`` form (AUTH_FAILURE; ``sasl:`` marks a
Postfix/Exim SASL request: detail ``sasl``); ``userdb(...)`` lookups and other auth lines (INFO);
``imap(user): Disconnected ...`` (DISCONNECT); ``starting up`` / ``Killed with signal`` (DAEMON);
Fatal/Error/Panic lines (WARNING); anything else from a Dovecot process (INFO). A password that
Dovecot leaked (``(given password: X)``, ``(SHA1 of given password: X)``) is never stored in a
field, and is masked in ``ev.raw``.
"""

from __future__ import annotations

from relayguard.logs.events import (
    AUTH_FAILURE,
    AUTH_SUCCESS,
    DAEMON,
    DISCONNECT,
    INFO,
    WARNING,
    Event,
)

MAX_TEXT = 500

_LEVELS = frozenset({"Info", "Warning", "Warn", "Error", "Fatal", "Panic", "Debug"})
_BAD_LEVELS = frozenset({"Error", "Fatal", "Panic"})
# Process names Dovecot logs under (lower-cased, without "(args)" or "<session>").
_PROCESSES = frozenset(
    {
        "auth",
        "auth-worker",
        "imap-login",
        "pop3-login",
        "submission-login",
        "managesieve-login",
        "lmtp",
        "imap",
        "pop3",
        "submission",
        "managesieve",
        "lda",
        "dovecot-lda",
        "deliver",
        "master",
        "config",
        "log",
        "anvil",
        "stats",
        "indexer",
        "indexer-worker",
        "doveadm",
        "dict",
        "quota-status",
        "replicator",
        "aggregator",
        "director",
        "imap-urlauth",
        "imap-urlauth-login",
        "imap-hibernate",
        "pop3c",
    }
)
_FAILURE_WORDS = (
    "mismatch",
    "unknown user",
    "failed",
    "failure",
    "invalid",
    "not known",
    "expired",
    "disabled",
)
_LOGIN_FAILURES = (
    "(tried to use disallowed plaintext auth)",
    "(tried to use disabled plaintext auth)",
    "(proxy dest auth failed)",
)


def parse(ev: Event, message: str) -> None:
    """Set ev.type and fields from the message body; leave ev.type unparsed if unknown."""
    prog = ev.program
    if prog == "dovecot":
        body = message
    else:
        base = _base(prog)
        if base == "dovecot":
            body = message
        elif base in _LEVELS:  # Dovecot 1.x "Info: imap-login: ...": accept only Dovecot's
            head = message.split(": ", 1)[0]
            if _base(head).lower() not in _PROCESSES and not message.startswith("Dovecot v"):
                return
            body = f"{base}: {message}"
        elif base.lower() in _PROCESSES:
            # The envelope may cut "auth(u,ip)<id>:" down to program "auth" and leave the
            # whole tag at the start of the message.
            if message.startswith(prog) and message[len(prog) : len(prog) + 1] in ("(", "<"):
                body = message
            else:
                body = f"{prog}: {message}"
        else:
            return
    if "given password" in message:
        ev.raw = _mask_password(ev.raw)
    level, body = _level(body)
    if body.startswith("Dovecot v") or body.startswith("master: Dovecot v"):
        ev.type = DAEMON
        ev.detail = body[:MAX_TEXT]
        return
    c = body.find(": ")
    proc = body[:c] if c > 0 else ""
    if " " in proc:  # "Auth process died too early - shutting down": no process prefix
        proc = ""
    text = body[c + 2 :] if proc else body
    lv2, text = _level(text)
    level = level or lv2
    name = _base(proc).lower()
    if name.endswith("-login"):
        _login(ev, text)
    elif name in ("auth", "auth-worker"):
        _auth(ev, proc, text)
    elif name in ("imap", "pop3", "submission", "managesieve") and text.startswith(
        ("Disconnected", "Connection closed", "Logged out")
    ):
        ev.type = DISCONNECT
        args = _args(proc)
        if args and args[0]:
            ev.sasl_username = args[0]
        ev.detail = text[:MAX_TEXT]
    elif "starting up" in text or text.startswith("Killed with signal"):
        ev.type = DAEMON
        ev.detail = text[:MAX_TEXT]
    else:
        ev.type = INFO
        ev.detail = _redact(text)[:MAX_TEXT]
    if level in _BAD_LEVELS and ev.type == INFO:
        ev.type = WARNING


def _base(prog: str) -> str:
    """``auth-worker(304)`` / ``auth(u,ip)<id>`` / ``dovecot[12]`` -> the bare process name."""
    cut = len(prog)
    for ch in "([<":
        k = prog.find(ch)
        if 0 <= k < cut:
            cut = k
    return prog[:cut]


def _level(s: str) -> tuple[str | None, str]:
    """Split a leading ``Info: `` / ``Fatal: `` ... level off s."""
    c = s.find(": ")
    if 3 < c < 8 and s[:c] in _LEVELS:
        return s[:c], s[c + 2 :]
    return None, s


def _args(proc: str) -> list[str]:
    """``auth(u,ip,sasl:login)<id>`` -> ["u", "ip", "sasl:login"]."""
    o = proc.find("(")
    if o < 0:
        return []
    e = proc.find(")", o)
    inner = proc[o + 1 :] if e < 0 else proc[o + 1 : e]
    return inner.split(",")


def _ip(v: str) -> str:
    return v[7:] if v.startswith("::ffff:") and "." in v else v


def _redact(text: str) -> str:
    """Text without Dovecot's ``(given password: ...)`` / ``(SHA1 of given password: ...)``."""
    g = text.find("given password")
    if g < 0:
        return text
    p = text.rfind(" (", 0, g)
    return text[:p] if p >= 0 else text[:g].rstrip(" (")


def _mask_password(raw: str) -> str:
    g = raw.find("given password: ")
    if g < 0:
        return raw
    return raw[: g + 16] + "***)"


def _kv(text: str, key: str, end: str = ",") -> str | None:
    i = text.find(key)
    if i < 0:
        return None
    i += len(key)
    j = text.find(end, i)
    return text[i:] if j < 0 else text[i:j]


def _login(ev: Event, text: str) -> None:
    """``Login:`` / ``Aborted login (...)`` / ``Disconnected (...)`` summaries."""
    u = text.find("user=<")
    r = text.find("rip=")
    cut = min(u if u >= 0 else len(text), r if r >= 0 else len(text))
    head = text[:cut]
    if text.startswith("Login: "):
        ev.type = AUTH_SUCCESS
    elif (a := head.find("(auth failed, ")) >= 0:
        ev.type = AUTH_FAILURE
        n = head[a + 14 :].split(" ", 1)[0]
        if n.isdigit():
            ev.auth_attempts = ev.auth_failed = int(n)
    elif (a := head.find(" authentication attempts)")) >= 0:
        ev.type = AUTH_FAILURE
        n = head[head.rfind("(", 0, a) + 1 : a]
        if n.isdigit():
            ev.auth_attempts = ev.auth_failed = int(n)
    elif any(f in head for f in _LOGIN_FAILURES):
        ev.type = AUTH_FAILURE
    elif text.startswith(("Disconnected", "Aborted login", "Login aborted")):
        ev.type = DISCONNECT
        if "(no auth attempts" in head:
            ev.auth_attempts = 0
    elif text.startswith("Maximum number of connections"):
        ev.type = WARNING
    else:
        ev.type = INFO
    if ev.type != AUTH_SUCCESS:
        ev.detail = head.rstrip(": ")[:MAX_TEXT] or None
    if u >= 0:
        user = _kv(text, "user=<", ">")
        if user:
            ev.sasl_username = user
    method = _kv(text, "method=")
    if method:
        ev.sasl_method = method
    rip = _kv(text, "rip=")
    if rip:
        ev.client_ip = _ip(rip.strip())


def _auth(ev: Event, proc: str, text: str) -> None:
    """passdb/userdb results from the auth and auth-worker processes."""
    if text.startswith("conn "):  # "conn unix:auth-worker (pid=..,uid=..): auth-worker<6>: ..."
        c = text.find("): ")
        if c >= 0:
            text = text[c + 3 :]
            if text.startswith("auth-worker<"):
                c = text.find(": ")
                text = text[c + 2 :] if c >= 0 else text
            _, text = _level(text)
    o = text.find("(")
    c = text.find("): ")
    proc_args = _args(proc)
    if 0 < o < c and " " not in text[:o]:
        driver = text[:o]
        args = _args(text[: c + 1])
        result = text[c + 3 :]
    elif len(proc_args) >= 2:  # 2.3: "auth(u,ip,sasl:login)<id>: sql: Password mismatch"
        args = proc_args
        d = text.find(": ")
        driver = text[:d] if 0 < d < 20 and " " not in text[:d] else ""
        result = text[d + 2 :] if driver else text
    else:
        ev.type = INFO
        ev.detail = _redact(text)[:MAX_TEXT]
        return
    result = _redact(result)
    lowered = result.lower()
    if driver != "userdb" and any(w in lowered for w in _FAILURE_WORDS):
        ev.type = AUTH_FAILURE
        ev.reply = result[:MAX_TEXT]
    else:
        ev.type = INFO
        ev.detail = result[:MAX_TEXT]
    if args and args[0]:
        ev.sasl_username = args[0]
    if len(args) > 1 and args[1]:
        ev.client_ip = _ip(args[1])
    for extra in (*args[2:], *proc_args[2:]):
        if extra.startswith("sasl:"):
            ev.detail = "sasl"
            if extra[5:]:
                ev.sasl_method = extra[5:]
