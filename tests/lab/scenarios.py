"""Abuse scenarios driven through the real lab: the traffic behind tests/data/lab/, repeatable.

Deterministic (no randomness), so a test can assert exact counts on the log they produce.
Each function returns the transcripts of its sessions.
"""

from __future__ import annotations

from tests.lab.client import Transcript
from tests.lab.config import USERS
from tests.lab.postfix import MailLab

ALICE = "alice@lab.test"
WRONG_PASSWORDS = ("123456", "password", "qwerty", "letmein", "alice2024", "Summer2024!")
GUESSED_USERS = (ALICE, "admin@lab.test", ALICE, "info@lab.test", "bob@lab.test", "test")
SPAM_SUBJECTS = ("Verify your account now", "Re: invoice overdue", "You won!!!")


def bruteforce(lab: MailLab, source: str, attempts: int) -> list[Transcript]:
    """One wrong AUTH per connection, cycling user names, passwords and PLAIN/LOGIN."""
    runs = []
    for i in range(attempts):
        with lab.session(source, helo="ylmf-pc") as smtp:
            user = GUESSED_USERS[i % len(GUESSED_USERS)]
            password = WRONG_PASSWORDS[i % len(WRONG_PASSWORDS)]
            smtp.auth(user, password, "PLAIN" if i % 2 == 0 else "LOGIN")
        runs.append(smtp.transcript)
    return runs


def spam_recipients(message: int, first: int, domains: int) -> list[str]:
    """Two recipients for even messages, three for odd ones; domains used round-robin."""
    count = 2 if message % 2 == 0 else 3
    return [f"user{n}@mailbox{n % domains + 1}.example" for n in range(first, first + count)]


def spam_run(
    lab: MailLab,
    source: str,
    messages: int,
    domains: int,
    user: str = ALICE,
    per_session: int = 10,
) -> list[Transcript]:
    """Log in as ``user`` and send spam, mostly with forged senders in outside domains."""
    runs: list[Transcript] = []
    first = 0
    for start in range(0, messages, per_session):
        with lab.session(source, helo="DESKTOP-7H2K1") as smtp:
            smtp.auth(user, USERS[user], "LOGIN")
            for i in range(start, min(start + per_session, messages)):
                rcpts = spam_recipients(i, first, domains)
                first += len(rcpts)
                sender = user if i % 3 == 0 else f"billing@mailbox{i % domains + 1}.example"
                smtp.mail(sender, rcpts, SPAM_SUBJECTS[i % len(SPAM_SUBJECTS)])
        runs.append(smtp.transcript)
    return runs


def relay_run(lab: MailLab, source: str, messages: int) -> list[Transcript]:
    """Unauthenticated outside-to-outside messages, one recipient each."""
    return [
        lab.send(
            source,
            "promo@deals.example",
            [f"victim{i}@target{i % 5}.example"],
            helo="spambot.example",
            subject="Cheap meds",
        )
        for i in range(messages)
    ]


def relay_probe(lab: MailLab, source: str, sessions: int) -> list[Transcript]:
    """Unauthenticated relay attempts, two outside recipients per session."""
    senders = ("probe@scanner.example", "", "postmaster@lab.test", "ceo@bank.example")
    return [
        lab.send(
            source,
            senders[i % len(senders)],
            [f"relaytest{i}@external.example", f"check{i}@mailbox1.example"],
            helo="[127.0.0.2]",
        )
        for i in range(sessions)
    ]


def queue_ids(runs: list[Transcript]) -> list[str]:
    return [qid for run in runs for qid in run.queue_ids]
