"""An outside SMTP client for the lab: bound to a chosen 127.x source, it records every reply.

All of 127.0.0.0/8 is local on Linux's ``lo``, so binding to 127.0.0.N needs no set-up, and
Postfix sees the client as ``unknown[127.0.0.N]``: outside ``mynetworks = 127.0.0.1/32``.
Nothing here raises on an SMTP refusal; refusals are replies the tests assert on.
"""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import partial
from types import TracebackType


@dataclass(frozen=True, slots=True)
class Reply:
    command: str  # the verb sent ("CONNECT" for the banner); AUTH secrets are not kept
    code: int  # 0 when the server hung up instead of replying
    text: str  # the reply text, enhanced status code included, lines joined by "\n"

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


@dataclass(slots=True)
class Transcript:
    """The replies of one session, in order."""

    replies: list[Reply] = field(default_factory=list)

    def add(self, command: str, code: int, text: bytes | str) -> Reply:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        reply = Reply(command, code, text)
        self.replies.append(reply)
        return reply

    def of(self, command: str) -> list[Reply]:
        return [r for r in self.replies if r.command == command]

    def last(self, command: str) -> Reply | None:
        found = self.of(command)
        return found[-1] if found else None

    @property
    def rcpt(self) -> list[Reply]:
        return self.of("RCPT")

    @property
    def auth(self) -> Reply | None:
        return self.last("AUTH")

    @property
    def data(self) -> Reply | None:
        return self.last("DATA")

    @property
    def accepted(self) -> bool:
        """The last message was queued (250 after DATA)."""
        data = self.data
        return data is not None and data.code == 250

    @property
    def queue_ids(self) -> list[str]:
        """Postfix queue ids from ``250 2.0.0 Ok: queued as ID`` replies."""
        return [
            r.text.rpartition(" ")[2]
            for r in self.of("DATA")
            if r.code == 250 and "queued as" in r.text
        ]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def message(sender: str, recipients: Iterable[str], subject: str, body: str = "") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender or "<>"
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "lab.invalid")
    msg.set_content(body or "relayguard mail lab\n")
    return msg.as_bytes(policy=policy.SMTP)  # CRLF line ends, as on the wire


class Session:
    """One SMTP connection from ``source``; use as a context manager (QUIT on exit)."""

    def __init__(
        self, port: int, source: str, helo: str = "client.example", timeout: float = 20.0
    ) -> None:
        self.transcript = Transcript()
        self._smtp = smtplib.SMTP(local_hostname=helo, timeout=timeout)
        self._smtp.source_address = (source, 0)
        self._alive = True
        code, text = self._smtp.connect("127.0.0.1", port)
        self.transcript.add("CONNECT", code, text)
        self._call("EHLO", self._smtp.ehlo)

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, command: str, call: Callable[[], tuple[int, bytes]]) -> Reply:
        """Run one smtplib call returning (code, text) and record it; a hang-up is code 0."""
        if not self._alive:
            return self.transcript.add(command, 0, "not connected")
        try:
            code, text = call()
        except smtplib.SMTPServerDisconnected as exc:
            self._alive = False
            return self.transcript.add(command, 0, str(exc))
        except smtplib.SMTPResponseException as exc:
            return self.transcript.add(command, exc.smtp_code, exc.smtp_error)
        return self.transcript.add(command, code, text)

    def auth(self, user: str, password: str, mechanism: str = "PLAIN") -> Reply:
        """AUTH PLAIN or LOGIN; returns the final reply (235 or 535 ...)."""
        if mechanism == "PLAIN":
            plain = "PLAIN " + _b64(f"\0{user}\0{password}")
            return self._call("AUTH", partial(self._smtp.docmd, "AUTH", plain))
        reply = self._call("AUTH", partial(self._smtp.docmd, "AUTH", "LOGIN"))
        for secret in (user, password):
            if reply.code != 334:
                break
            self.transcript.replies.pop()  # one AUTH reply per attempt: the final one
            reply = self._call("AUTH", partial(self._smtp.docmd, _b64(secret)))
        return reply

    def mail(
        self, sender: str, recipients: Iterable[str], subject: str = "lab", body: str = ""
    ) -> bool:
        """MAIL, RCPT for each, DATA if any recipient was accepted (else RSET); True if queued."""
        rcpts = list(recipients)
        if self._call("MAIL", partial(self._smtp.mail, sender)).code != 250:
            self._call("RSET", self._smtp.rset)
            return False
        accepted = [r for r in rcpts if self._call("RCPT", partial(self._smtp.rcpt, r)).code == 250]
        if not accepted:
            self._call("RSET", self._smtp.rset)
            return False
        data = message(sender, rcpts, subject, body)
        return self._call("DATA", partial(self._smtp.data, data)).code == 250

    def close(self) -> None:
        if self._alive:
            self._alive = False
            try:
                code, text = self._smtp.quit()
                self.transcript.add("QUIT", code, text)
            except (smtplib.SMTPException, OSError):
                pass
        self._smtp.close()
