"""The Postfix configuration that puts the policy server in front of smtpd (pure text).

``check_policy_service`` goes first in ``smtpd_recipient_restrictions`` (where the recipient
rules count) and in ``smtpd_end_of_data_restrictions`` (where messages and bytes are counted).
First, because a ``permit_sasl_authenticated`` before it would skip the very users the limits
are for; safe, because the server never answers ``OK``, only ``DUNNO`` or a refusal, so it
cannot permit anything that a later restriction would have refused.

The per-service settings ``timeout`` and ``default_action`` need the ``{ ... }`` syntax, which
has spaces, and ``postconf -P`` refuses spaces in a master.cf override. So the check is defined
once as a main.cf parameter of its own, ``relayguard_policy``, and every list refers to it as
``$relayguard_policy`` (the idiom of Debian's ``$mua_client_restrictions``).

A unix socket is named relative to Postfix's queue directory when it lies under it
(``unix:relayguard/policy.sock``): smtpd runs in that directory, chrooted there on Debian, so
a relative name works chrooted or not, and a socket outside it is out of a chrooted smtpd's
reach.
"""

from __future__ import annotations

import os.path
import shlex
from collections.abc import Mapping
from typing import Final

from relayguard.policy.config import parse_listen

HOOKS: Final = ("smtpd_recipient_restrictions", "smtpd_end_of_data_restrictions")
PARAMETER: Final = "relayguard_policy"


DEFAULT_QUEUE_DIRECTORY: Final = "/var/spool/postfix"


def postfix_endpoint(listen: str, queue_directory: str = DEFAULT_QUEUE_DIRECTORY) -> str:
    """The server's address as Postfix writes it: ``inet:HOST:PORT``, ``unix:/path``, or
    ``unix:relative/path`` for a socket under the queue directory."""
    where = parse_listen(listen)
    if isinstance(where, str):
        relative = _under(where, queue_directory)
        return f"unix:{relative or where}"
    host, port = where
    return f"inet:[{host}]:{port}" if ":" in host else f"inet:{host}:{port}"


def _under(path: str, directory: str) -> str:
    """``path`` relative to ``directory`` when it lies under it, else ``""``."""
    path, directory = os.path.normpath(path), os.path.normpath(directory)
    if os.path.isabs(path) and path.startswith(directory.rstrip("/") + "/"):
        return path[len(directory.rstrip("/")) + 1 :]
    return ""


def _prepend(existing: str, separator: str) -> str:
    rest = [part for part in existing.replace(",", " ").split() if part]
    if rest and rest[0] == f"${PARAMETER}":
        return separator.join(rest)  # already wired
    return separator.join([f"${PARAMETER}", *rest])


def postfix_wiring(
    listen: str,
    *,
    timeout: str = "5s",
    fail_open: bool = True,
    main: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
    postconf: str = "postconf",
    queue_directory: str = DEFAULT_QUEUE_DIRECTORY,
) -> str:
    """Shell commands (postconf) wiring the server in, with the current values kept after it.

    ``main``: the current main.cf values of :data:`HOOKS` (missing: empty). ``overrides``:
    ``{"submission/inet": {"smtpd_recipient_restrictions": "..."}}`` for master.cf services
    that override a hook; each such override gets the check too.
    """
    default_action = "DUNNO" if fail_open else "DEFER_IF_PERMIT"
    check = (
        f"check_policy_service {{ {postfix_endpoint(listen, queue_directory)}, "
        f"timeout={timeout}, "
        f"default_action={default_action} }}"
    )
    q = shlex.quote
    lines = [
        "# relayguard policy in front of smtpd. Postfix waits at most "
        f"{timeout} (x2 tries) for an answer,",
        f"# then applies {default_action} "
        + ("(fail-open: mail flows if the server is down)." if fail_open else "(fail-closed)."),
        f"{postconf} -e {q(f'{PARAMETER} = {check}')}",
    ]
    main = main or {}
    for hook in HOOKS:
        value = _prepend(main.get(hook, ""), ", ")
        lines.append(f"{postconf} -e {q(f'{hook} = {value}')}")
    for service, values in sorted((overrides or {}).items()):
        for hook in HOOKS:
            if hook in values:
                value = _prepend(values[hook], ",")
                lines.append(f"{postconf} -P {q(f'{service}/{hook}={value}')}")
    where = parse_listen(listen)
    if isinstance(where, str) and not _under(where, queue_directory):
        lines.append(
            f"# {where} is outside the queue directory {queue_directory}: an smtpd chrooted "
            "there (master.cf chroot column y, Debian's default) cannot reach it. Listen under "
            f"it (e.g. unix:{queue_directory.rstrip('/')}/relayguard/policy.sock) "
            "or on inet:127.0.0.1:10040"
        )
    lines.append(f"{postconf.replace('postconf', 'postfix', 1)} reload")
    return "\n".join(lines) + "\n"


def parse_overrides(postconf_p: str) -> dict[str, dict[str, str]]:
    """``postconf -P`` output (``service/type/name = value`` lines) as the overrides of
    :data:`HOOKS`, by ``service/type``."""
    out: dict[str, dict[str, str]] = {}
    for line in postconf_p.splitlines():
        left, sep, value = line.partition("=")
        service, _, name = left.strip().rpartition("/")
        if sep and service and name in HOOKS:
            out.setdefault(service, {})[name] = value.strip()
    return out
