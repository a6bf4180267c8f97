"""Writes steady_office.log: a SYNTHETIC, clearly benign Postfix log (not captured from a server).

Two working days of a small office on example.org: three users submit mail through the
submission service from their usual addresses, outside senders deliver to local mailboxes,
and bob mistypes his password once before logging in. The line shapes are those of the real
lab logs in ../lab/. Deterministic: run it again and the file is byte-for-byte the same.

    python3 tests/data/benign/make_benign.py > tests/data/benign/steady_office.log
"""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta

USERS = {"alice": "198.51.100.10", "bob": "198.51.100.11", "carol": "2001:db8:10::25"}
PARTNERS = ["partner.example", "supplier.example", "client-a.example", "client-b.example"]
INBOUND = [("mx.partner.example", "192.0.2.40"), ("mail.supplier.example", "192.0.2.77")]


def main() -> None:
    rnd = random.Random(7)
    lines: list[tuple[datetime, str]] = []
    pid = 4100
    qn = 0x1A2B3C0000
    start = datetime(2026, 11, 30, 8, 0, 0)

    def qid() -> str:
        nonlocal qn
        qn += rnd.randint(0x100, 0x4000)
        return f"{qn:011X}"

    def log(t: datetime, tag: str, msg: str) -> None:
        lines.append((t, f"{t:%b %d %H:%M:%S} mail postfix/{tag}: {msg}"))

    for day in range(2):
        for hour in range(9, 18):
            base = start + timedelta(days=day, hours=hour - 8)
            for user, ip in USERS.items():
                for _ in range(rnd.randint(1, 5)):
                    pid += 1
                    t = base + timedelta(seconds=rnd.randint(0, 3500))
                    q = qid()
                    who = f"unknown[{ip}]"
                    sub = f"submission/smtpd[{pid}]"
                    if (
                        user == "bob"
                        and day == 1
                        and hour == 9
                        and not any("bob@example.org" in ln and "failed" in ln for _, ln in lines)
                    ):
                        log(t, sub, f"connect from {who}")
                        log(
                            t,
                            sub,
                            f"warning: {who}: SASL LOGIN authentication failed: "
                            "authentication failure, sasl_username=bob@example.org",
                        )
                        log(t, sub, f"disconnect from {who} ehlo=1 auth=0/1 quit=1 commands=2/3")
                        t += timedelta(seconds=20)
                    rcpts = [
                        f"{rnd.choice(['info', 'sales', 'ops', 'jane', 'li'])}@"
                        f"{rnd.choice(PARTNERS)}"
                        for _ in range(rnd.randint(1, 3))
                    ]
                    rcpts = list(dict.fromkeys(rcpts))
                    log(t, sub, f"connect from {who}")
                    log(
                        t,
                        sub,
                        f"{q}: client={who}, sasl_method=PLAIN, sasl_username={user}@example.org",
                    )
                    log(
                        t,
                        f"cleanup[{pid + 9000}]",
                        f"{q}: message-id=<{q.lower()}.{pid}@example.org>",
                    )
                    log(
                        t,
                        "qmgr[812]",
                        f"{q}: from=<{user}@example.org>, "
                        f"size={rnd.randint(900, 90000)}, nrcpt={len(rcpts)} (queue active)",
                    )
                    log(
                        t,
                        sub,
                        f"disconnect from {who} ehlo=1 auth=1 mail=1 "
                        f"rcpt={len(rcpts)} data=1 quit=1 commands={5 + len(rcpts)}",
                    )
                    t2 = t + timedelta(seconds=1)
                    for r in rcpts:
                        log(
                            t2,
                            f"smtp[{pid + 20000}]",
                            f"{q}: to=<{r}>, "
                            f"relay=mx.{r.split('@')[1]}[203.0.113.{rnd.randint(2, 250)}]:25, "
                            "delay=0.6, delays=0.05/0.01/0.3/0.24, dsn=2.0.0, "
                            "status=sent (250 2.0.0 Ok: queued as 4Xa1b2C3d4)",
                        )
                    log(t2, "qmgr[812]", f"{q}: removed")
            for _ in range(rnd.randint(2, 6)):
                pid += 1
                t = base + timedelta(seconds=rnd.randint(0, 3500))
                name, ip = rnd.choice(INBOUND)
                q = qid()
                user = rnd.choice(list(USERS))
                sender = f"news@{name.split('.', 1)[1]}"
                log(t, f"smtpd[{pid}]", f"connect from {name}[{ip}]")
                log(t, f"smtpd[{pid}]", f"{q}: client={name}[{ip}]")
                log(t, f"cleanup[{pid + 9000}]", f"{q}: message-id=<{q}@{name}>")
                log(
                    t,
                    "qmgr[812]",
                    f"{q}: from=<{sender}>, size={rnd.randint(2000, 40000)}, "
                    "nrcpt=1 (queue active)",
                )
                log(
                    t,
                    f"smtpd[{pid}]",
                    f"disconnect from {name}[{ip}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
                )
                log(
                    t,
                    f"local[{pid + 30000}]",
                    f"{q}: to=<{user}@example.org>, relay=local, "
                    "delay=0.02, delays=0.01/0/0/0.01, dsn=2.0.0, "
                    "status=sent (delivered to mailbox)",
                )
                log(t, "qmgr[812]", f"{q}: removed")
    lines.sort(key=lambda x: x[0])
    sys.stdout.write("".join(line + "\n" for _, line in lines))


if __name__ == "__main__":
    main()
