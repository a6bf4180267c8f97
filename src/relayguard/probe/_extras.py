"""The two checks that go beyond the catalogue: the one canary message of ``--prove-to`` and
the opt-in connection rate check."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from relayguard.probe._connection import Connection, OutOfTime
from relayguard.probe._errors import (
    ConnectionLost,
    ProbeTimeout,
    RemoteProtocolError,
    TargetError,
)
from relayguard.probe._session import CHECK_ERRORS, Sessions
from relayguard.probe.result import ProofResult, RateResult, TestResult


async def prove(sp: Sessions, accepted: TestResult) -> None:
    """The one message: to the canary, with the sender and HELO that were accepted."""
    canary = sp.o.prove_to or ""
    message_id = f"<{sp.o.token}.proof@relayguard.invalid>"
    conn = None
    code = None
    ok = False
    try:
        conn = await sp.session(accepted.phase, allow_data=True)
        start = len(conn.transcript)
        if conn.helo != accepted.helo:
            await sp.ehlo(conn, accepted.helo)
        replies = [await conn.command("MAIL", f"FROM:<{accepted.sender}>")]
        if replies[-1].code == 250:
            replies.append(await conn.command("RCPT", f"TO:<{canary}>"))
        if replies[-1].code in (250, 251):
            replies.append(await conn.command("DATA"))
        if replies[-1].code == 354:
            body = proof_message(accepted.sender, canary, message_id, sp.s.name)
            replies.append(await conn.message(body, f"(message {message_id}, {len(body)} bytes)"))
            ok = replies[-1].code == 250
        code = replies[-1].code
        dialogue = tuple(conn.transcript[start:])
    except OutOfTime:
        raise
    except CHECK_ERRORS as exc:
        sp.s.errors.append(f"--prove-to: {exc}")
        dialogue = ()
    sp.s.proof = ProofResult(
        recipient=canary, accepted=ok, message_id=message_id, code=code, dialogue=dialogue
    )
    await sp.done(conn)


async def check_rate(sp: Sessions) -> None:
    """Opt-in: banner + QUIT connections in a row, until one is refused."""
    served = refused = 0
    started = sp.budget.clock()
    for _ in range(sp.o.rate_connections):
        conn = None
        try:
            conn = await Connection.open(
                sp.s.address, sp.s.port, source=sp.o.source_address,
                budget=sp.budget, connect_timeout=sp.o.connect_timeout,
                command_timeout=sp.o.command_timeout,
                tls=sp.tls if sp.s.implicit_tls else None, limits=sp.o.limits,
            )  # fmt: skip
            sp.s.connections += 1
            banner = await conn.read_reply()
        except OutOfTime:
            if conn is not None:
                await conn.close()
            raise
        except (ProbeTimeout, ConnectionLost, RemoteProtocolError, TargetError):
            refused += 1
            if conn is not None:
                await conn.quit()
            break
        if banner.code != 220:
            refused += 1
            await conn.quit()
            break
        served += 1
        await conn.quit()
    sp.s.rate = RateResult(
        attempted=served + refused, served=served, refused=refused,
        seconds=sp.budget.clock() - started,
    )  # fmt: skip


def proof_message(sender: str, canary: str, message_id: str, service: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender or "relayguard probe <postmaster@relayguard.invalid>"
    msg["To"] = canary
    msg["Subject"] = f"relayguard open-relay proof: {service}"
    msg["Date"] = formatdate()
    msg["Message-ID"] = message_id
    msg.set_content(
        f"This message was relayed by {service} for a client that did not authenticate.\n"
        "It was sent by 'relayguard probe --prove-to' at the request of the owner of this\n"
        "mailbox. The server is an open relay: close it (relayguard explains how).\n"
    )
    return msg.as_bytes(policy=SMTP)
