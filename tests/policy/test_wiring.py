"""The Postfix wiring text and the systemd unit shipped in contrib/."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from relayguard.errors import ConfigError
from relayguard.policy.wiring import parse_overrides, postfix_endpoint, postfix_wiring
from tests.lab.fixtures import on_ci
from tests.policy.serve import Client, Served, request, write_config

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "contrib" / "systemd" / "relayguard-policy.service"


@pytest.mark.parametrize(
    ("listen", "endpoint"),
    [
        ("127.0.0.1:10040", "inet:127.0.0.1:10040"),
        ("[::1]:10040", "inet:[::1]:10040"),
        # under the queue directory: relative, so that a chrooted smtpd reaches it too
        ("unix:/var/spool/postfix/relayguard/policy.sock", "unix:relayguard/policy.sock"),
        ("unix:/var/spool/postfix//private/relayguard", "unix:private/relayguard"),
        ("unix:/run/relayguard/policy.sock", "unix:/run/relayguard/policy.sock"),
        ("unix:/var/spool/postfixx/p.sock", "unix:/var/spool/postfixx/p.sock"),
    ],
)
def test_endpoint(listen: str, endpoint: str) -> None:
    assert postfix_endpoint(listen) == endpoint


def test_endpoint_under_another_queue_directory() -> None:
    assert postfix_endpoint("unix:/srv/pf/q/rg.sock", "/srv/pf/q/") == "unix:rg.sock"


def test_unix_socket_outside_the_queue_directory_gets_a_chroot_warning() -> None:
    inside = postfix_wiring("unix:/var/spool/postfix/relayguard/policy.sock")
    assert "check_policy_service { unix:relayguard/policy.sock, timeout=5s," in inside
    assert "chroot" not in inside
    outside = postfix_wiring("unix:/run/relayguard/policy.sock")
    assert (
        "# /run/relayguard/policy.sock is outside the queue directory /var/spool/postfix: an "
        "smtpd chrooted there (master.cf chroot column y, Debian's default) cannot reach it. "
        "Listen under it (e.g. unix:/var/spool/postfix/relayguard/policy.sock) or on "
        "inet:127.0.0.1:10040\n"
    ) in outside


def test_endpoint_refuses_garbage() -> None:
    with pytest.raises(ConfigError):
        postfix_endpoint("not an address")


def test_wiring_keeps_current_values_after_the_check() -> None:
    text = postfix_wiring(
        "127.0.0.1:10040",
        fail_open=False,
        timeout="3s",
        main={
            "smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination",
            "smtpd_end_of_data_restrictions": "",
        },
        overrides=parse_overrides(
            "submission/inet/smtpd_recipient_restrictions = permit_sasl_authenticated,reject\n"
            "submission/inet/syslog_name = postfix/submission\n"
            "smtps/inet/smtpd_end_of_data_restrictions = $relayguard_policy\n"
        ),
    )
    commands = [line for line in text.splitlines() if not line.startswith("#")]
    assert commands == [
        "postconf -e 'relayguard_policy = check_policy_service { inet:127.0.0.1:10040, "
        "timeout=3s, default_action=DEFER_IF_PERMIT }'",
        "postconf -e 'smtpd_recipient_restrictions = $relayguard_policy, permit_mynetworks, "
        "reject_unauth_destination'",
        "postconf -e 'smtpd_end_of_data_restrictions = $relayguard_policy'",
        "postconf -P 'smtps/inet/smtpd_end_of_data_restrictions=$relayguard_policy'",
        "postconf -P 'submission/inet/smtpd_recipient_restrictions=$relayguard_policy,"
        "permit_sasl_authenticated,reject'",
        "postfix reload",
    ]
    # every command is one shell word list: nothing unquoted for the shell to expand
    assert all(shlex.split(c)[0] in ("postconf", "postfix") for c in commands)


def test_systemd_unit_verifies_and_its_command_serves(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if on_ci():
            pytest.fail("systemd-analyze missing on CI", pytrace=False)
        pytest.skip("systemd-analyze (package systemd) is not installed")
    relayguard = REPO / ".venv" / "bin" / "relayguard"
    config = write_config(
        tmp_path / "relayguard.toml",
        f"sqlite:{tmp_path / 'p.db'}",
        '[[policy.rules]]\nkey = "sasl_username"\ncount = "messages"\n'
        'windows = ["1/hour"]\naction = "REJECT"\n',
    )
    unit = UNIT.read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(exec_start.removeprefix("ExecStart="))
    assert argv == [
        "/usr/local/bin/relayguard",
        "policy",
        "serve",
        "--config",
        "/etc/relayguard/relayguard.toml",
    ]
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    local = tmp_path / "relayguard-policy.service"
    local.write_text(unit.replace(argv[0], str(relayguard)).replace(argv[-1], str(config)))
    out = subprocess.run(
        [analyze, "verify", str(local)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "relayguard-policy.service" not in out.stderr, out.stderr
    served = Served(config)  # the unit's own arguments, with this test's config
    try:
        client = Client(served.port)
        assert client.ask(request("END-OF-MESSAGE", "u", "1")) == "action=DUNNO"
        assert client.ask(request("END-OF-MESSAGE", "u", "2")).startswith("action=554 5.7.1")
        client.close()
    finally:
        assert served.stop() == 0
