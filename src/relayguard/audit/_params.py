"""Unknown (often misspelled) main.cf parameter names: Postfix ignores them, silently for the
most part, so ``smtpd_relay_restrictoins = ...`` leaves the real parameter at its default.

Known names come from ``postconf -d`` of this host when it has Postfix (passed in by the I/O
shell); otherwise from a built-in list of the parameters the rules read plus the ones every
main.cf has. Without ``postconf -d`` only near-misses of a known name are reported, since an
unlisted name may well be a real parameter.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from relayguard.audit._defaults import _STATIC
from relayguard.audit.expand import references, split_list
from relayguard.audit.maincf import MainCf
from relayguard.audit.mastercf import MasterCf

_COMMON = (
    "alias_database", "alias_maps", "append_dot_mydomain", "biff", "command_directory",
    "compatibility_level", "config_directory", "daemon_directory", "data_directory",
    "delay_warning_time", "home_mailbox", "inet_protocols", "mail_owner", "mail_spool_directory",
    "mailbox_command", "mailbox_size_limit", "mailbox_transport", "message_size_limit",
    "mydestination", "mydomain", "myhostname", "mynetworks_style", "myorigin", "readme_directory",
    "recipient_delimiter", "relay_domains", "relayhost", "smtp_tls_CApath", "smtp_tls_CAfile",
    "smtp_tls_security_level", "smtp_tls_session_cache_database", "smtpd_relay_restrictions",
    "smtpd_relay_before_recipient_restrictions", "smtpd_tls_auth_only", "smtpd_tls_cert_file",
    "smtpd_tls_key_file", "smtpd_tls_mandatory_protocols", "smtpd_tls_protocols",
    "smtpd_tls_session_cache_database", "smtpd_tls_loglevel", "smtpd_tls_received_header",
    "smtpd_client_auth_rate_limit", "smtpd_forbid_bare_newline", "smtpd_forbid_unauth_pipelining",
    "smtpd_sasl_type", "smtpd_sasl_path", "smtpd_sasl_local_domain", "transport_maps",
    "virtual_mailbox_domains", "virtual_mailbox_maps", "virtual_transport", "virtual_alias_domains",
    "milter_default_action", "milter_protocol", "smtpd_milters", "non_smtpd_milters",
    "mail_version", "queue_directory", "sendmail_path", "newaliases_path", "mailq_path",
    "setgid_group", "manpage_directory", "sample_directory", "html_directory", "shlib_directory",
    "meta_directory", "smtputf8_enable", "maillog_file", "header_checks", "body_checks",
)  # fmt: skip
BUILTIN_NAMES = frozenset(_STATIC) | frozenset(_COMMON)


def _used_as_macro(main: MainCf, master: MasterCf) -> set[str]:
    """Names other settings refer to: user-defined lists such as ``mua_relay_restrictions``."""
    used: set[str] = set()
    values: list[str] = [p.value for p in main.params.values()]
    values += [o.value for s in master.services for o in s.overrides.values()]
    values += [a for s in master.services for a in s.args]
    for value in values:
        used.update(references(value))
    classes = main.get("smtpd_restriction_classes")
    if classes is not None:
        used.update(split_list(classes.value))
    return used


def unknown_parameter_warnings(
    main: MainCf, master: MasterCf, known: Iterable[str] | None
) -> list[str]:
    """One warning per main.cf name that is not a Postfix parameter (``known``: postconf -d)."""
    names = frozenset(known) if known is not None else BUILTIN_NAMES
    candidates = sorted(names | BUILTIN_NAMES)
    used = _used_as_macro(main, master)
    services = {s.name.rpartition(":")[2] for s in master.services}
    warnings: list[str] = []
    for name, param in main.params.items():
        if name in names or name in BUILTIN_NAMES or name in used:
            continue
        if name.partition("_")[0] in services:  # per-service parameters: relay_..., dovecot_...
            continue
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.85)
        hint = f"; did you mean {close[0]}?" if close else ""
        if known is not None:
            warnings.append(f"{param.where}: unknown parameter {name} (Postfix ignores it){hint}")
        elif close:
            warnings.append(f"{param.where}: {name} is not a Postfix parameter{hint}")
    return warnings
