"""Banner host names, EHLO extensions and software leaks, on real greetings."""

from __future__ import annotations

import pytest

from relayguard.probe.dialogue import Reply
from relayguard.probe.greeting import auth_mechanisms, banner_host, extensions, software_leak


@pytest.mark.parametrize(
    ("line", "host"),
    [
        ("mail.lab.test ESMTP lab", "mail.lab.test"),
        ("MX.Example.NET ESMTP Postfix (Debian/GNU)", "mx.example.net"),
        ("mx.google.com ESMTP d2e1a72fcca58-7e3 - gsmtp", "mx.google.com"),
        ("ESMTP ready", None),
        ("192.0.2.1 ESMTP", None),
        ("-bad.example ESMTP", None),
        ("a..b ESMTP", None),
        ("", None),
    ],
)
def test_banner_host(line: str, host: str | None) -> None:
    assert banner_host(Reply(220, (line,))) == host


def test_extensions_and_legacy_auth() -> None:
    reply = Reply(
        250,
        ("mail.lab.test", "PIPELINING", "SIZE 10240000", "AUTH PLAIN LOGIN", "AUTH=PLAIN LOGIN",
         "starttls", "XCLIENT NAME ADDR PROTO HELO"),
    )  # fmt: skip
    ext = extensions(reply)
    assert ext == {
        "PIPELINING": "",
        "SIZE": "10240000",
        "AUTH": "PLAIN LOGIN PLAIN LOGIN",
        "STARTTLS": "",
        "XCLIENT": "NAME ADDR PROTO HELO",
    }
    assert auth_mechanisms(ext) == ("PLAIN", "LOGIN")
    assert auth_mechanisms({}) == ()


@pytest.mark.parametrize(
    ("line", "product", "version", "os"),
    [
        ("mx.example.net ESMTP Exim 4.96 Mon, 07 Dec 2026 10:00:00 +0000", "Exim", "4.96", None),
        ("mx.example.net ESMTP Sendmail 8.15.2/8.15.2/Debian-22; Mon, 7 Dec 2026",
         "Sendmail", "8.15.2/8.15.2/Debian-22", None),
        ("mx.example.net Microsoft ESMTP MAIL Service, Version: 10.0.17763.1697 ready",
         "Microsoft ESMTP MAIL Service", "10.0.17763.1697", None),
        ("mx.example.net ESMTP Postfix (Debian/GNU)", None, None, "Debian/GNU"),
        ("mx.example.net ESMTP Postfix (Ubuntu)", None, None, "Ubuntu"),
        ("mx.example.net ESMTP Postfix 3.7.11 (Debian/GNU)", "Postfix", "3.7.11", "Debian/GNU"),
    ],
)  # fmt: skip
def test_software_leak(line: str, product: str | None, version: str | None, os: str | None) -> None:
    leak = software_leak([line])
    assert leak is not None
    assert (leak.product, leak.version, leak.os, leak.text) == (product, version, os, line)


@pytest.mark.parametrize(
    "line",
    ["mail.lab.test ESMTP lab", "mx.example.net ESMTP Postfix", "mx.google.com ESMTP 2.1 gsmtp",
     "mx.example.net ESMTP ready 2.0.0"],
)  # fmt: skip
def test_no_software_leak(line: str) -> None:
    assert software_leak([line]) is None
