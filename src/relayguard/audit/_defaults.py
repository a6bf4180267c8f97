"""Built-in Postfix defaults of the parameters the audit reads, by version and compatibility level.

Sources: postconf(5) and COMPATIBILITY_README. Only parameters a rule looks at are listed; a
name missing here expands to nothing, as an undefined name does in Postfix.
"""

from __future__ import annotations

Version = tuple[int, ...]

# What an unknown binary is taken to be: a release with every compatibility-level switch
# (3.6). The defaults then follow compatibility_level alone, which main.cf usually sets.
ASSUMED_VERSION: Version = (3, 6)

RELAY_DEFAULT = "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"

_STATIC: dict[str, str] = {
    "smtpd_recipient_restrictions": "",
    "smtpd_client_restrictions": "",
    "smtpd_helo_restrictions": "",
    "smtpd_sender_restrictions": "",
    "smtpd_data_restrictions": "",
    "smtpd_restriction_classes": "",
    "mynetworks": "",
    "mydestination": "$myhostname, localhost.$mydomain, localhost",
    "permit_mx_backup_networks": "",
    "relay_recipient_maps": "",
    "parent_domain_matches_subdomains": (
        "debug_peer_list,fast_flush_domains,mynetworks,permit_mbr_backup_networks,"
        "qmqpd_authorized_clients,relay_domains,smtpd_access_maps"
    ),
    "allow_untrusted_routing": "no",
    "resolve_dequoted_address": "yes",
    "resolve_null_domain": "no",
    "allow_percent_hack": "yes",
    "swap_bangpath": "yes",
    "soft_bounce": "no",
    "smtpd_sasl_auth_enable": "no",
    "smtpd_sasl_security_options": "noanonymous",
    "smtpd_sasl_tls_security_options": "$smtpd_sasl_security_options",
    "smtpd_tls_auth_only": "no",
    "smtpd_tls_security_level": "",
    "smtpd_use_tls": "no",
    "smtpd_enforce_tls": "no",
    "smtpd_tls_wrappermode": "no",
    "smtpd_tls_ciphers": "medium",
    "smtpd_tls_mandatory_ciphers": "medium",
    "smtpd_tls_cert_file": "",
    "smtpd_tls_key_file": "",
    "smtpd_tls_eccert_file": "",
    "smtpd_tls_dcert_file": "",
    "smtpd_tls_chain_files": "",
    "smtpd_sender_login_maps": "",
    "smtpd_client_connection_rate_limit": "0",
    "smtpd_client_message_rate_limit": "0",
    "smtpd_client_recipient_rate_limit": "0",
    "smtpd_client_new_tls_session_rate_limit": "0",
    "smtpd_client_connection_count_limit": "50",
    "smtpd_client_event_limit_exceptions": (
        "${smtpd_client_connection_limit_exceptions:$mynetworks}"
    ),
    "anvil_rate_time_unit": "60s",
    "smtpd_soft_error_limit": "10",
    "smtpd_hard_error_limit": "${stress?{1}:{20}}",
    "smtpd_junk_command_limit": "${stress?{1}:{100}}",
    "smtpd_helo_required": "no",
    "disable_vrfy_command": "no",
    "local_recipient_maps": "proxy:unix:passwd.byname $alias_maps",
    "alias_maps": "hash:/etc/aliases, nis:mail.aliases",
    "luser_relay": "",
    "smtpd_reject_unlisted_recipient": "yes",
    "unknown_local_recipient_reject_code": "550",
    "virtual_alias_maps": "$virtual_maps",
    "smtpd_authorized_xclient_hosts": "",
    "smtpd_authorized_xforward_hosts": "",
    "smtpd_upstream_proxy_protocol": "",
    "postscreen_upstream_proxy_protocol": "",
    "smtpd_banner": "$myhostname ESMTP $mail_name",
    "mail_name": "Postfix",
    "inet_interfaces": "all",
    "compatibility_level": "0",
    "postscreen_access_list": "permit_mynetworks",
    "postscreen_dnsbl_action": "ignore",
    "postscreen_greet_action": "ignore",
    "postscreen_dnsbl_sites": "",
    "postscreen_dnsbl_threshold": "1",
    "syslog_name": "postfix",
}


def parse_version(text: str) -> Version | None:
    """``3.7.11`` -> (3, 7, 11); ``3.10-20240101`` -> (3, 10); None when not a version."""
    head = text.strip().split("-", 1)[0]
    parts = head.split(".")
    if not head or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def parse_level(text: str) -> Version:
    """compatibility_level ``3.6`` / ``2`` / ``0``; unparsable counts as 0 (legacy)."""
    return parse_version(text.lstrip("<=")) or (0,)


def default(name: str, version: Version, level: Version) -> str | None:
    """The built-in value of ``name`` for this binary and compatibility_level, or None."""
    legacy_1 = version < (2, 10) or level < (1,)
    legacy_2 = version < (3, 0) or level < (2,)
    if name == "smtpd_relay_restrictions":
        if version < (2, 10):
            return None
        return "" if legacy_1 else RELAY_DEFAULT
    if name == "smtpd_recipient_restrictions" and version < (2, 10):
        return "permit_mynetworks, reject_unauth_destination"
    if name == "mynetworks_style":
        return "subnet" if legacy_2 else "host"
    if name == "relay_domains":
        return "$mydestination" if legacy_2 else ""
    if name == "smtpd_relay_before_recipient_restrictions":
        if version < (3, 6):
            return None
        return "yes" if level >= (3, 6) else "no"
    if name in ("smtpd_tls_protocols", "smtpd_tls_mandatory_protocols"):
        return ">=TLSv1" if version >= (3, 6) else "!SSLv2, !SSLv3"
    if name == "smtpd_forbid_unauth_pipelining":
        return "yes" if version >= (3, 9) else ("no" if version >= (3, 5) else None)
    if name == "smtpd_forbid_bare_newline":
        return "normalize" if version >= (3, 9) else ("no" if version >= (3, 5) else None)
    if name == "smtpd_client_auth_rate_limit":
        return "0" if version >= (3, 1) else None
    return _STATIC.get(name)
