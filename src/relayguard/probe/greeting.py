"""What the banner and the EHLO reply tell: host name, extensions, software and version."""

from __future__ import annotations

import re
from dataclasses import dataclass

from relayguard.probe.dialogue import Reply

_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")

_PRODUCTS = (
    "postfix|exim|sendmail|qmail|opensmtpd|haraka|courier|zimbra|kerio connect|mdaemon"
    "|hmailserver|axigen|communigate pro|ironport|microsoft esmtp mail service|exchange server"
    "|mailenable|icewarp|merak|domino|james|xmail|surgemail|coremail"
)
_VERSION = re.compile(
    rf"\b({_PRODUCTS})\b[\s,:;/a-z-]{{0,24}}?\b(?:v(?:ersion)?[:\s]*)?(\d+(?:\.\d+)+[\w.\-/+]*)",
    re.IGNORECASE,
)
_OS = re.compile(
    r"\(((?:debian|ubuntu|centos|red ?hat|rhel|freebsd|openbsd|netbsd|gentoo|suse|alpine"
    r"|fedora|almalinux|rocky)[^)]{0,40})\)",
    re.IGNORECASE,
)


def banner_host(reply: Reply) -> str | None:
    """The host name a 220 banner (or 250 EHLO reply) starts with, if it looks like one."""
    first = reply.lines[0] if reply.lines else ""
    token = first.split(" ", 1)[0].rstrip(".")
    if "." not in token or len(token) > 253 or not set(token) <= _HOST_CHARS:
        return None
    if token.startswith(("-", ".")) or ".." in token:
        return None
    if all(part.isdigit() for part in token.split(".")):
        return None  # an IPv4 address, not a name
    return token.lower()


def extensions(reply: Reply) -> dict[str, str]:
    """EHLO keywords (upper case) -> their parameters; legacy ``AUTH=X Y`` joins ``AUTH``."""
    found: dict[str, str] = {}
    for line in reply.lines[1:]:
        keyword, _, params = line.strip().partition(" ")
        keyword = keyword.upper()
        if not keyword:
            continue
        if keyword.startswith("AUTH="):
            params = f"{keyword[5:]} {params}".strip()
            keyword = "AUTH"
            params = f"{found.get('AUTH', '')} {params}".strip()
        found[keyword] = params
    return found


def auth_mechanisms(ext: dict[str, str]) -> tuple[str, ...]:
    """The AUTH mechanisms offered, upper case, each once, in order."""
    seen: dict[str, None] = {}
    for mech in ext.get("AUTH", "").upper().split():
        seen.setdefault(mech, None)
    return tuple(seen)


@dataclass(frozen=True, slots=True)
class SoftwareLeak:
    """Product, version and OS named by the server; ``text`` is the line that said it."""

    product: str | None
    version: str | None
    os: str | None
    text: str


def software_leak(lines: list[str]) -> SoftwareLeak | None:
    """The first line naming a product with a version number, or an operating system."""
    for text in lines:
        version = _VERSION.search(text)
        os_match = _OS.search(text)
        if version is None and os_match is None:
            continue
        return SoftwareLeak(
            product=version.group(1) if version else None,
            version=version.group(2) if version else None,
            os=os_match.group(1) if os_match else None,
            text=text,
        )
    return None
