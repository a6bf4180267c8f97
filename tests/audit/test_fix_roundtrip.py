"""One pass of ``--fix`` (every step that needs no edit of yours) only removes findings.

The steps run for real with ``postconf -c COPY`` on a copy of the configuration, which is then
audited again: a fix that uncovers a new finding (TLS on but no certificate, old protocols)
is an incomplete fix.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from relayguard.audit import io
from relayguard.audit.report import fix_script, run_audit

DATA = Path(__file__).parent / "data"
MASTER = (
    "smtp      inet  n       -       y       -       -       smtpd\n"
    "submission inet n       -       y       -       -       smtpd\n"
    "  -o smtpd_sasl_auth_enable=yes\n"
    "  -o smtpd_relay_restrictions=permit_mynetworks,permit_sasl_authenticated,permit\n"
    "pickup    unix  n       -       y       60      1       pickup\n"
)
NO_TLS = (
    "compatibility_level = 2\n"
    "myhostname = mx.example.org\n"
    "mynetworks = 127.0.0.0/8 10.0.0.0/8 192.168.0.0/16\n"
    "smtpd_tls_protocols = !SSLv2, !SSLv3\n"
    "smtpd_banner = $myhostname ESMTP $mail_name ($mail_version)\n"
    "allow_untrusted_routing = yes\n"
)
WITH_CERT = NO_TLS + "smtpd_tls_cert_file = /etc/ssl/certs/mx.pem\n"

pytestmark = pytest.mark.skipif(shutil.which("postconf") is None, reason="needs postconf")


def _keys(directory: Path) -> set[tuple[str, str]]:
    result = run_audit(io.load_config_dir(directory, (3, 7, 11)), None, {})
    return {(str(f.details["rule"]), f.subject.value) for f in result.findings}


def _apply(directory: Path) -> list[str]:
    result = run_audit(io.load_config_dir(directory, (3, 7, 11)), None, {})
    steps = [line for line in fix_script(result).splitlines()[4:] if line.startswith("postconf ")]
    for step in steps:
        subprocess.run(["sh", "-ec", step], check=True, capture_output=True)
    return steps


@pytest.mark.parametrize(
    ("main", "master"),
    [(NO_TLS, MASTER), (WITH_CERT, MASTER), (None, None)],
    ids=["no-tls-no-cert", "no-tls-with-cert", "trap"],
)
def test_one_pass_of_fixes_never_adds_a_finding(
    tmp_path: Path, main: str | None, master: str | None
) -> None:
    if main is None or master is None:
        shutil.copytree(DATA / "trap", tmp_path, dirs_exist_ok=True)
    else:
        (tmp_path / "main.cf").write_text(main)
        (tmp_path / "master.cf").write_text(master)
    before = _keys(tmp_path)
    assert _apply(tmp_path)
    after = _keys(tmp_path)
    assert after - before == set()
    assert len(after) < len(before)


def test_starttls_fix_carries_certificate_and_protocols(tmp_path: Path) -> None:
    (tmp_path / "main.cf").write_text(NO_TLS)
    (tmp_path / "master.cf").write_text(MASTER)
    result = run_audit(io.load_config_dir(tmp_path, (3, 7, 11)), None, {})
    (finding,) = [f for f in result.findings if f.title == "No STARTTLS on smtp: mail and logins "
                  "travel readable"]  # fmt: skip
    assert finding.details["fix"] == [
        f"postconf -c {tmp_path} -e 'smtpd_tls_chain_files = /etc/postfix/<key.pem> "
        "/etc/postfix/<cert.pem>'",
        f"postconf -c {tmp_path} -e 'smtpd_tls_protocols = >=TLSv1.2'",
        f"postconf -c {tmp_path} -e 'smtpd_tls_mandatory_protocols = >=TLSv1.2'",
        f"postconf -c {tmp_path} -e 'smtpd_tls_security_level = may'",
    ]
    assert finding.details["manual"] is True
