"""Build events by hand for detector unit tests (the parsers have their own tests)."""

from __future__ import annotations

from typing import Any

from relayguard.analysis.engine import Analyzer
from relayguard.analysis.result import AnalysisResult
from relayguard.config import Config, with_overrides
from relayguard.logs import events as E
from relayguard.logs.events import Event

T0 = 1_796_300_000.0  # 2026-12-03 around 10:53 UTC


def ev(type_: str, t: float, program: str = "postfix/smtpd", **fields: Any) -> Event:
    e = Event(t, "mail", program, fields.pop("pid", 100), fields.pop("raw", f"{type_} line"))
    e.type = type_
    e.mta = fields.pop("mta", "postfix")
    for k, v in fields.items():
        setattr(e, k, v)
    return e


def message(
    t: float,
    qid: str,
    recipients: list[str],
    *,
    sender: str = "user@example.org",
    user: str | None = None,
    ip: str = "192.0.2.10",
    status: str = "sent",
) -> list[Event]:
    """The Postfix lines of one message: client=, qmgr from=, one delivery each, removed."""
    kind = E.AUTH_SUCCESS if user else E.CLIENT
    out = [
        ev(
            kind,
            t,
            queue_id=qid,
            client_ip=ip,
            sasl_username=user,
            sasl_method="PLAIN" if user else None,
        ),
        ev(E.QUEUED, t, "postfix/qmgr", queue_id=qid, sender=sender, nrcpt=len(recipients)),
    ]
    for r in recipients:
        out.append(
            ev(
                E.DELIVERY,
                t + 1,
                "postfix/smtp",
                queue_id=qid,
                recipient=r,
                status=status,
                relay="mx.remote[203.0.113.5]:25",
            )
        )
    out.append(ev(E.REMOVED, t + 1, "postfix/qmgr", queue_id=qid))
    return out


def run(
    events: list[Event], *, local: tuple[str, ...] = ("example.org",), config: Config | None = None
) -> AnalysisResult:
    cfg = with_overrides(config or Config(), local_domains=list(local), trusted_networks=[])
    analyzer = Analyzer(cfg)
    analyzer.feed_all(events)
    return analyzer.finish()
