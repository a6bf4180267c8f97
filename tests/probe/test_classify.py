"""Reply -> outcome, on real server texts (Postfix smtpd_check.c, Exim, qmail, Exchange,
postgrey)."""

from __future__ import annotations

import pytest

from relayguard.probe.classify import Outcome, classify_mail, classify_rcpt, is_greylisting
from relayguard.probe.dialogue import Reply


def r(code: int, *lines: str) -> Reply:
    return Reply(code, lines)


RCPT = [
    (r(250, "2.1.5 Ok"), Outcome.ACCEPTED),
    (r(251, "2.1.5 User not local; will forward"), Outcome.ACCEPTED),
    (r(554, "5.7.1 <relaytest@example.net>: Relay access denied"), Outcome.RELAY_DENIED),
    (r(454, "4.7.1 <relaytest@example.net>: Relay access denied"), Outcome.RELAY_DENIED),
    (r(550, "relay not permitted"), Outcome.RELAY_DENIED),  # Exim's default ACL text
    (r(553, "sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"),
     Outcome.RELAY_DENIED),  # qmail
    (r(550, "5.7.54 SMTP; Unable to relay recipient in non-accepted domain"),
     Outcome.RELAY_DENIED),  # Exchange
    (r(554, "5.7.1 <postmaster@lab.test>: Recipient address rejected: Access denied"),
     Outcome.RELAY_DENIED),  # a submission port's final reject
    (r(530, "5.7.0 Authentication required"), Outcome.AUTH_REQUIRED),
    (r(530, "5.7.0 Must issue a STARTTLS command first"), Outcome.TLS_REQUIRED),
    (r(550, "5.1.1 <relaytest@lab.test>: Recipient address rejected: User unknown in local "
            "recipient table"), Outcome.RECIPIENT_REJECTED),
    (r(450, "4.1.2 <relaytest@example.invalid>: Recipient address rejected: Domain not found"),
     Outcome.RECIPIENT_REJECTED),
    (r(556, "5.1.10 <relaytest@example.com>: Recipient address rejected: Domain example.com "
            "does not accept mail (nullMX)"), Outcome.RECIPIENT_REJECTED),
    (r(501, "5.1.3 Bad recipient address syntax"), Outcome.FORM_REJECTED),
    (r(553, "5.1.3 <a@b@>: Recipient address rejected: Bad address syntax"),
     Outcome.FORM_REJECTED),
    (r(550, "5.7.0 No thanks"), Outcome.RELAY_DENIED),
    (r(550, "Administrative prohibition"), Outcome.REJECTED),
    (r(450, "4.2.0 <relaytest@example.net>: Recipient address rejected: Greylisted, see "
            "http://postgrey.schweikert.ch/help/example.net.html"), Outcome.TEMPORARY),
    (r(450, "4.7.1 <relaytest@example.net>: Recipient address rejected: Greylisted"),
     Outcome.TEMPORARY),
    (r(450, "4.3.2 Service currently unavailable"), Outcome.TEMPORARY),  # postscreen
    (r(451, "4.3.0 Temporary lookup failure"), Outcome.TEMPORARY),
    (r(452, "4.5.3 Error: too many recipients"), Outcome.TEMPORARY),
    (r(421, "4.7.0 mail.lab.test Error: too many errors"), Outcome.THROTTLED),
    # the echoed address must not be read as words: "relaytest" is no relay refusal
    (r(550, "<relaytest@relay.test>: Recipient address rejected: User unknown"),
     Outcome.REJECTED),
    # an unanchored "530" inside a text (nmap's mistake) means nothing
    (r(550, "5.1.1 <user530@lab.test>: mailbox 530 unavailable"), Outcome.RECIPIENT_REJECTED),
]  # fmt: skip


@pytest.mark.parametrize(("reply", "outcome"), RCPT)
def test_classify_rcpt(reply: Reply, outcome: Outcome) -> None:
    assert classify_rcpt(reply) is outcome


MAIL = [
    (r(250, "2.1.0 Ok"), Outcome.ACCEPTED),
    (r(530, "5.7.0 Must issue a STARTTLS command first"), Outcome.TLS_REQUIRED),
    (r(530, "5.7.0 Authentication required"), Outcome.AUTH_REQUIRED),
    (r(553, "5.7.1 <probe>: Sender address rejected: not logged in"), Outcome.SENDER_REJECTED),
    (r(550, "5.1.8 <probe@example.org>: Sender address rejected: Domain not found"),
     Outcome.SENDER_REJECTED),
    (r(501, "5.1.7 Bad sender address syntax"), Outcome.FORM_REJECTED),
    (r(553, "sorry, that is not a valid address"), Outcome.FORM_REJECTED),
    (r(450, "4.1.8 <probe@[192.0.2.1]>: Sender address rejected: Domain not found"),
     Outcome.TEMPORARY),
    (r(421, "4.3.2 Service shutting down"), Outcome.THROTTLED),
]  # fmt: skip


@pytest.mark.parametrize(("reply", "outcome"), MAIL)
def test_classify_mail(reply: Reply, outcome: Outcome) -> None:
    assert classify_mail(reply) is outcome


@pytest.mark.parametrize(
    ("reply", "greylisting"),
    [
        (r(450, "4.2.0 Greylisted, see http://postgrey.schweikert.ch/"), True),
        (r(450, "4.3.2 Service currently unavailable"), True),
        (r(451, "Please try again later"), True),
        (r(421, "4.7.0 too many connections"), False),
        (r(452, "4.5.3 Error: too many recipients"), False),
        (r(550, "5.7.1 greylisted forever"), False),
    ],
)
def test_is_greylisting(reply: Reply, greylisting: bool) -> None:
    assert is_greylisting(reply) is greylisting
