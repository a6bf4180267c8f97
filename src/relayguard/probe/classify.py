"""What one reply means for a relay test (RELAY_TESTS.md section 8, "Classification").

Pure: a :class:`Reply` in, an :class:`Outcome` out. The whole multi-line text and the enhanced
status code are read, never a substring of the raw bytes (nmap's unanchored ``530`` match).
"""

from __future__ import annotations

from enum import StrEnum

from relayguard.probe.dialogue import Reply


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    RELAY_DENIED = "relay-denied"  # 5xx with 5.7.x, or "relay ... denied" (also 454)
    AUTH_REQUIRED = "auth-required"  # 530 / 5.7.0 authentication required
    TLS_REQUIRED = "tls-required"  # 530 "Must issue a STARTTLS command first"
    RECIPIENT_REJECTED = "recipient-rejected"  # user/domain validation ran first (5.1.1 ...)
    SENDER_REJECTED = "sender-rejected"  # MAIL FROM refused for good
    FORM_REJECTED = "form-rejected"  # syntax: 501, 553 5.1.3, 5.5.x
    REJECTED = "rejected"  # any other 5xx
    TEMPORARY = "temporary"  # greylisting 450/451/452, postscreen 450 4.3.2
    THROTTLED = "throttled"  # 421: the server is closing the connection
    NO_REPLY = "no-reply"  # the reply did not come in time (tarpit)
    CONNECTION_LOST = "connection-lost"
    NOT_RUN = "not-run"


# The recipient was refused, whatever the reason: nothing was relayed.
REFUSED = frozenset(
    {
        Outcome.RELAY_DENIED,
        Outcome.AUTH_REQUIRED,
        Outcome.TLS_REQUIRED,
        Outcome.RECIPIENT_REJECTED,
        Outcome.SENDER_REJECTED,
        Outcome.FORM_REJECTED,
        Outcome.REJECTED,
    }
)
# The test has no answer: it might have been accepted.
UNANSWERED = frozenset(
    {
        Outcome.TEMPORARY,
        Outcome.THROTTLED,
        Outcome.NO_REPLY,
        Outcome.CONNECTION_LOST,
        Outcome.NOT_RUN,
    }
)

_RELAY_WORDS = ("relay", "not permitted", "not allowed to send", "rcpthosts")
_AUTH_WORDS = (
    "authentication required",
    "auth required",
    "must authenticate",
    "authenticate first",
)


def classify_rcpt(reply: Reply) -> Outcome:
    """The outcome of a relay test from the reply to its RCPT."""
    code, enhanced = reply.code, reply.enhanced or ""
    if 200 <= code < 300:
        return Outcome.ACCEPTED
    if code == 421:
        return Outcome.THROTTLED
    text = _words(reply.text)
    refused = _auth_or_tls(code, enhanced, text)
    if refused is not None:
        return refused
    if any(w in text for w in _RELAY_WORDS) or (code >= 500 and enhanced.startswith("5.7.")):
        return Outcome.RELAY_DENIED
    if code == 556 or enhanced in ("5.1.1", "5.1.2", "5.1.10", "4.1.1", "4.1.2", "5.1.0"):
        return Outcome.RECIPIENT_REJECTED
    if _syntax(code, enhanced):
        return Outcome.FORM_REJECTED
    if code >= 500:
        return Outcome.REJECTED
    return Outcome.TEMPORARY


def classify_mail(reply: Reply) -> Outcome:
    """The outcome when MAIL FROM was not accepted (so no RCPT was sent)."""
    code, enhanced = reply.code, reply.enhanced or ""
    if 200 <= code < 300:
        return Outcome.ACCEPTED
    if code == 421:
        return Outcome.THROTTLED
    refused = _auth_or_tls(code, enhanced, _words(reply.text))
    if refused is not None:
        return refused
    if code < 500:
        return Outcome.TEMPORARY
    return Outcome.FORM_REJECTED if _syntax(code, enhanced) else Outcome.SENDER_REJECTED


def is_greylisting(reply: Reply) -> bool:
    """4xx that means "try again later" (greylisting, postscreen's first-session 450 4.3.2)."""
    if not 400 <= reply.code < 500 or reply.code == 421:
        return False
    text = _words(reply.text)
    return reply.enhanced in ("4.3.2", "4.7.0", "4.2.0", "4.7.1") or any(
        w in text for w in ("greylist", "graylist", "try again", "unavailable", "later")
    )


def _words(text: str) -> str:
    """The reply text in lower case without the ``<address>`` it echoes: the probe's own
    addresses contain "relaytest", which must not read as "Relay access denied"."""
    text = text.lower()
    while "<" in text:
        start = text.find("<")
        end = text.find(">", start)
        if end < 0:
            break
        text = text[:start] + text[end + 1 :]
    return text


def _auth_or_tls(code: int, enhanced: str, text: str) -> Outcome | None:
    if "starttls" in text and (code == 530 or enhanced == "5.7.0"):
        return Outcome.TLS_REQUIRED
    if code == 530 or any(w in text for w in _AUTH_WORDS):
        return Outcome.AUTH_REQUIRED
    return None


def _syntax(code: int, enhanced: str) -> bool:
    return (
        code in (500, 501)
        or enhanced in ("5.1.3", "5.1.7", "5.5.2", "5.5.4")
        or (code == 553 and not enhanced)
    )
