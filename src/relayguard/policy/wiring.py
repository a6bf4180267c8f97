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
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Final

from relayguard.policy.config import parse_listen

HOOKS: Final = ("smtpd_recipient_restrictions", "smtpd_end_of_data_restrictions")
PARAMETER: Final = "relayguard_policy"


def postfix_endpoint(listen: str) -> str:
    """The server's address as Postfix writes it: ``inet:HOST:PORT`` or ``unix:/path``."""
    where = parse_listen(listen)
    if isinstance(where, str):
        return f"unix:{where}"
    host, port = where
    return f"inet:[{host}]:{port}" if ":" in host else f"inet:{host}:{port}"


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
) -> str:
    """Shell commands (postconf) wiring the server in, with the current values kept after it.

    ``main``: the current main.cf values of :data:`HOOKS` (missing: empty). ``overrides``:
    ``{"submission/inet": {"smtpd_recipient_restrictions": "..."}}`` for master.cf services
    that override a hook; each such override gets the check too.
    """
    default_action = "DUNNO" if fail_open else "DEFER_IF_PERMIT"
    check = (
        f"check_policy_service {{ {postfix_endpoint(listen)}, timeout={timeout}, "
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
    if listen.startswith("unix:"):
        lines.append(
            "# a unix socket must be reachable from smtpd's chroot (if master.cf chroots it): "
            "put it under the queue directory, e.g. unix:private/relayguard"
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
