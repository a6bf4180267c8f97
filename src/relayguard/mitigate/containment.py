"""Containment of an account: which queued messages are its own, and what to do next.

Pure: takes ``postqueue -j`` records and ``postcat -e`` output, returns queue ids and text.
A message belongs to the account when the queue file says it was submitted by that SASL
login (``named_attribute: sasl_username=``, which Postfix keeps in the queue file), or when
its envelope sender is the account. The SASL login is what spam with forged senders shares,
so both are needed to catch all of it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from relayguard.errors import InputError

MAX_ACCOUNT = 320
# letters, digits and the characters real logins and addresses use; nothing a shell treats
# specially, no spaces, no control characters
_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+=-]{0,127}(?:@[A-Za-z0-9][A-Za-z0-9.-]{0,252})?")
_ENVELOPE = re.compile(r"\*\*\* ENVELOPE RECORDS (\S+) \*\*\*")
_QUEUE_ID = re.compile(r"[0-9A-Za-z]{6,20}")


def check_account(account: str) -> str:
    """``account`` if it is a plausible SASL login or address; else InputError (one line)."""
    if not _ACCOUNT.fullmatch(account):
        shown = account.encode("unicode_escape").decode("ascii")[:80]  # escaped once, here
        raise InputError(
            f"not an account name: '{shown}' (a SASL login or a mail address, e.g. "
            "alice@example.org)"
        )
    return account


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    queue_id: str
    queue: str
    sender: str


def queued_messages(records: Iterable[object]) -> list[QueuedMessage]:
    """The messages of ``postqueue -j`` records (anything malformed is skipped)."""
    out = []
    for r in records:
        if not isinstance(r, dict):
            continue
        qid, queue, sender = r.get("queue_id"), r.get("queue_name"), r.get("sender", "")
        if isinstance(qid, str) and _QUEUE_ID.fullmatch(qid) and isinstance(queue, str):
            out.append(QueuedMessage(qid, queue, sender if isinstance(sender, str) else ""))
    return out


def sasl_logins(postcat_output: str) -> dict[str, str]:
    """queue id -> the SASL login that submitted it, from ``postcat -e`` output."""
    logins: dict[str, str] = {}
    current: str | None = None
    for line in postcat_output.splitlines():
        m = _ENVELOPE.fullmatch(line.strip())
        if m is not None:
            current = m[1].rpartition("/")[2]
            continue
        if current is not None and line.startswith("named_attribute: sasl_username="):
            logins[current] = line.partition("=")[2].strip()
    return logins


@dataclass(slots=True)
class Selection:
    """The account's messages: to hold (not held yet) and already held."""

    to_hold: list[QueuedMessage] = field(default_factory=list)
    held: list[QueuedMessage] = field(default_factory=list)
    by_login: int = 0
    by_sender: int = 0


def select(account: str, messages: list[QueuedMessage], logins: dict[str, str]) -> Selection:
    want = account.lower()
    sel = Selection()
    for m in messages:
        login = logins.get(m.queue_id, "").lower()
        if login == want:
            sel.by_login += 1
        elif m.sender.lower() == want:
            sel.by_sender += 1
        else:
            continue
        (sel.held if m.queue == "hold" else sel.to_hold).append(m)
    return sel


def runbook(account: str, log: str, options: Sequence[str] = ()) -> list[str]:
    """What is left to do by hand once the account is contained (shell-quoted commands).

    ``options``: the ``--store``/``--postfix-config`` this run used, repeated in the release
    command so that it undoes this containment and not one in the default store.
    """
    a, lg = shlex.quote(account), shlex.quote(log)
    extra = "".join(f" {shlex.quote(o)}" for o in options)
    local, _, domain = account.partition("@")
    return [
        "Reset the account's password, and tell its owner through another channel:",
        f"  saslpasswd2 -c -u {shlex.quote(domain)} {shlex.quote(local)}"
        if domain
        else f"  saslpasswd2 -c {a}",
        "  doveadm pw -s SHA512-CRYPT   # Dovecot: put the new hash in the user database",
        "Revoke its app passwords and API tokens, and sign out its sessions (webmail, IMAP).",
        "Review its recent logins (from where, since when):",
        f"  grep -iE -- {shlex.quote(login_pattern(account))} {lg} "
        "| grep -v 'authentication failed' | tail -n 50",
        f"  relayguard analyze {lg}",
        "Then release it (mail held in the queue is released too):",
        f"  relayguard contain {a} --release --apply{extra}",
    ]


def login_pattern(account: str) -> str:
    """An extended regex for Postfix's ``sasl_username=ACCOUNT`` field and no other login:
    the field ends at a comma (``, sasl_sender=``) or the end of the line, so ``alice`` does
    not match ``alice@example.org``."""
    escaped = "".join(f"\\{ch}" if ch in ".+" else ch for ch in account)  # the rest is literal
    return f"sasl_username={escaped}(,|$)"


def shown_store(spec: str) -> str:
    """``spec`` as it may be printed: a Redis URL without its password (the store reads it
    from ``RELAYGUARD_REDIS_PASSWORD`` when the URL has none)."""
    try:
        parts = urlsplit(spec)
        has_password = parts.password is not None
    except ValueError:
        return spec
    if parts.scheme not in ("redis", "rediss") or not has_password:
        return spec
    user = parts.username
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{user}@{host}" if user else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
