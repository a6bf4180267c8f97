"""The mitigation catalogue: every id the analyzer uses exists, with real Postfix and Exim steps."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess

import pytest

from relayguard import mitigations
from relayguard.findings import Finding, Severity, Subject
from relayguard.mitigations import CATALOGUE, Mitigation

# The ids detectors reference (the analyzer and the architecture name exactly these).
REQUIRED_IDS = (
    "reset-password",
    "hold-queued-mail",
    "review-account-logins",
    "sender-login-maps",
    "rate-limit-outbound",
    "limit-auth-attempts",
    "ban-ip",
    "close-open-relay",
    "narrow-mynetworks",
    "remove-access-ok",
    "test-relay",
    "stop-backscatter",
    "inspect-deferred-queue",
    "purge-spam-queue",
    "check-blocklists",
    "request-delisting",
    "block-relay-probers",
    "require-auth-submission",
    "publish-spf-dkim-dmarc",
)

# Real postconf(5) parameter names (checked with `postconf -d` on Postfix 3.7).
KNOWN_POSTFIX_PARAMETERS = frozenset(
    {
        "alias_maps",
        "anvil_rate_time_unit",
        "local_recipient_maps",
        "luser_relay",
        "mynetworks",
        "mynetworks_style",
        "non_smtpd_milters",
        "postscreen_dnsbl_action",
        "postscreen_dnsbl_sites",
        "postscreen_greet_action",
        "relay_domains",
        "relay_recipient_maps",
        "smtpd_client_auth_rate_limit",
        "smtpd_client_message_rate_limit",
        "smtpd_client_recipient_rate_limit",
        "smtpd_client_restrictions",
        "smtpd_data_restrictions",
        "smtpd_milters",
        "smtpd_recipient_restrictions",
        "smtpd_reject_unlisted_recipient",
        "smtpd_relay_restrictions",
        "smtpd_sasl_auth_enable",
        "smtpd_sender_login_maps",
        "smtpd_sender_restrictions",
        "smtpd_tls_auth_only",
        "smtpd_tls_security_level",
        "syslog_name",
        "virtual_mailbox_maps",
    }
)
# smtpd access restriction names (postconf(5) "SMTPD ACCESS RESTRICTIONS").
KNOWN_RESTRICTIONS = frozenset(
    {
        "check_client_access",
        "check_policy_service",
        "check_sasl_access",
        "defer_unauth_destination",
        "permit_mynetworks",
        "permit_sasl_authenticated",
        "reject",
        "reject_sender_login_mismatch",
        "reject_unauth_pipelining",
    }
)
# Exim expansion variables the ACL snippets may use (Exim spec, "Expansion variables").
KNOWN_EXIM_VARIABLES = frozenset(
    {
        "authenticated_id",
        "authentication_failed",
        "dnslist_domain",
        "received_port",
        "sender_address",
        "sender_host_address",
        "tls_in_cipher",
    }
)
EXIM_RATELIMIT_OPTIONS = frozenset(
    {"per_rcpt", "per_mail", "per_conn", "per_cmd", "strict", "noupdate"}
)


def _postconf_commands(steps: tuple[str, ...]) -> list[list[str]]:
    """Every ``postconf`` invocation in the steps, split like a shell would."""
    commands = []
    for step in steps:
        for line in step.split("\n"):
            if line.startswith("#"):
                continue
            for segment in re.split(r"&&|\|", line):
                segment = segment.strip()
                if segment.startswith("postconf"):
                    commands.append(shlex.split(segment))
    return commands


def _postfix_names(entry: Mitigation) -> tuple[set[str], set[str]]:
    """(parameter names, restriction names) used by ``entry``'s Postfix steps."""
    params: set[str] = set()
    restrictions: set[str] = set()
    for argv in _postconf_commands(entry.postfix):
        options = {a for a in argv[1:] if a.startswith("-")}
        if "-M" in options:
            continue  # master.cf service entries, not parameters
        for arg in argv[1:]:
            if arg.startswith("-"):
                continue
            if "=" not in arg:
                params.add(arg)
                continue
            name, value = (part.strip() for part in arg.split("=", 1))
            if "-P" in options:
                name = name.rsplit("/", 1)[1]
            params.add(name)
            params.update(re.findall(r"\$\(postconf -h ([a-z_]+)\)", value))
            params.update(re.findall(r"(?<![({])\$([a-z_]+)", value))
            if name.endswith("_restrictions"):
                value = re.sub(r"\{[^}]*\}|\$\([^)]*\)", " ", value)
                for token in re.split(r"[,\s]+", value):
                    if token and ":" not in token:
                        restrictions.add(token)
    return params, restrictions


@pytest.mark.parametrize("mid", REQUIRED_IDS)
def test_required_id_exists(mid: str) -> None:
    entry = mitigations.get(mid)
    assert entry is not None
    assert entry.id == mid
    assert CATALOGUE[mid] is entry


def test_catalogue_has_exactly_the_required_ids() -> None:
    assert sorted(CATALOGUE) == sorted(REQUIRED_IDS)


def test_unknown_id_is_none() -> None:
    assert mitigations.get("no-such-fix") is None


@pytest.mark.parametrize("mid", REQUIRED_IDS)
def test_entry_is_complete(mid: str) -> None:
    entry = CATALOGUE[mid]
    assert entry.title.strip() == entry.title != ""
    assert entry.why.strip() == entry.why != ""
    assert entry.postfix and entry.exim
    for step in entry.postfix + entry.exim:
        assert step.strip() == step != ""
        assert all(line.strip() for line in step.split("\n")), step
    # A step that is only a comment tells nothing to run.
    for steps in (entry.postfix, entry.exim):
        runnable = [s for s in steps if not all(x.startswith("#") for x in s.split("\n"))]
        assert runnable, (mid, steps)


@pytest.mark.parametrize("mid", REQUIRED_IDS)
def test_postfix_names_are_real(mid: str) -> None:
    params, restrictions = _postfix_names(CATALOGUE[mid])
    assert params <= KNOWN_POSTFIX_PARAMETERS, params - KNOWN_POSTFIX_PARAMETERS
    assert restrictions <= KNOWN_RESTRICTIONS, restrictions - KNOWN_RESTRICTIONS


def test_parameter_extraction_sees_what_it_should() -> None:
    params, restrictions = _postfix_names(CATALOGUE["close-open-relay"])
    assert params == {
        "smtpd_relay_restrictions",
        "smtpd_recipient_restrictions",
        "mynetworks",
        "relay_domains",
    }
    assert restrictions == {
        "permit_mynetworks",
        "permit_sasl_authenticated",
        "defer_unauth_destination",
    }
    params, restrictions = _postfix_names(CATALOGUE["require-auth-submission"])
    assert params == {
        "syslog_name",
        "smtpd_tls_security_level",
        "smtpd_sasl_auth_enable",
        "smtpd_client_restrictions",
        "smtpd_relay_restrictions",
        "smtpd_tls_auth_only",
    }
    assert restrictions == {"permit_sasl_authenticated", "reject"}
    params, restrictions = _postfix_names(CATALOGUE["hold-queued-mail"])
    assert params == {"smtpd_sender_restrictions"}
    assert restrictions == {"check_sasl_access"}


@pytest.mark.skipif(shutil.which("postconf") is None, reason="Postfix is not installed")
def test_parameters_known_to_installed_postfix() -> None:
    proc = subprocess.run(
        ["postconf", "-d", *sorted(KNOWN_POSTFIX_PARAMETERS - {"syslog_name"})],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert "unknown parameter" not in proc.stderr


@pytest.mark.parametrize("mid", REQUIRED_IDS)
def test_exim_variables_are_real(mid: str) -> None:
    used = {v for step in CATALOGUE[mid].exim for v in re.findall(r"\$([a-z_]+)", step)}
    assert used <= KNOWN_EXIM_VARIABLES, used - KNOWN_EXIM_VARIABLES


def test_exim_ratelimit_syntax() -> None:
    """``ratelimit = <m> / <period> / <options> / <key>`` with real option names."""
    found = [
        spec
        for entry in CATALOGUE.values()
        for step in entry.exim
        for spec in re.findall(r"ratelimit\s*=\s*(.+)", step)
    ]
    assert len(found) == 5
    for spec in found:
        parts = [p.strip() for p in spec.split("/")]
        assert parts[0].isdigit(), spec
        assert re.fullmatch(r"\d+[smhdw]", parts[1]), spec
        assert set(parts[2:-1]) <= EXIM_RATELIMIT_OPTIONS, spec
        assert "$sender_host_address" in parts[-1] or parts[-1] == "$authenticated_id", spec


@pytest.mark.parametrize(
    ("mid", "postfix_needle", "exim_needle"),
    [
        ("hold-queued-mail", "| postsuper -h -", "xargs -r exim -Mf"),
        ("sender-login-maps", "reject_sender_login_mismatch", "$authenticated_id"),
        ("close-open-relay", "defer_unauth_destination", "+relay_from_hosts"),
        ("stop-backscatter", "smtpd_reject_unlisted_recipient = yes", "verify = recipient"),
        ("inspect-deferred-queue", "qshape deferred", "exim -bp | exiqsumm"),
        ("purge-spam-queue", "postsuper -d - < /root/spam-ids", "exim -Mrm"),
        ("check-blocklists", "relayguard dnsbl <ip>", "relayguard dnsbl <ip>"),
        ("test-relay", "relayguard probe <mx_host>", "exim -bh 192.0.2.1"),
        ("publish-spf-dkim-dmarc", "relayguard domain <domain>", "relayguard domain <domain>"),
        ("rate-limit-outbound", "check_policy_service", "per_rcpt / $authenticated_id"),
        ("limit-auth-attempts", "smtpd_client_auth_rate_limit", "$authentication_failed"),
        ("ban-ip", "relayguard firewall ban <ip> --apply", "/etc/exim4/blocked_hosts"),
    ],
)
def test_key_commands(mid: str, postfix_needle: str, exim_needle: str) -> None:
    entry = CATALOGUE[mid]
    assert any(postfix_needle in step for step in entry.postfix)
    assert any(exim_needle in step for step in entry.exim)


def test_delisting_urls() -> None:
    why = CATALOGUE["request-delisting"].why
    for url in (
        "https://check.spamhaus.org/",
        "https://www.barracudacentral.org/rbl/removal-request",
        "https://www.spamcop.net/bl.shtml",
    ):
        assert url in why


def test_used_by_keeps_first_use_order_once() -> None:
    def finding(*ids: str) -> Finding:
        return Finding(
            indicator="x",
            severity=Severity.LOW,
            subject=Subject("ip", "192.0.2.1"),
            title="t",
            mitigations=list(ids),
        )

    found = [
        finding("ban-ip", "reset-password"),
        finding(),
        finding("reset-password", "test-relay"),
    ]
    assert mitigations.used_by(found) == ["ban-ip", "reset-password", "test-relay"]
    assert mitigations.used_by([]) == []


def test_mitigation_is_frozen() -> None:
    entry = CATALOGUE["ban-ip"]
    with pytest.raises(AttributeError):
        entry.title = "x"  # type: ignore[misc]
