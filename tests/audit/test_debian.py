"""Debian's stock Postfix configuration flags nothing critical.

Debian's files are EPL-2.0/IPL-1.0, not ours to copy into the repository: the configuration
is assembled at test time from /usr/share/postfix (installed by the postfix package), the
way the package's postinst builds /etc/postfix/main.cf.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relayguard.audit import io
from relayguard.audit.report import run_audit
from relayguard.findings import Severity

SHARE = Path("/usr/share/postfix")
# What postinst adds with postconf -e on a fresh "Internet Site" install (values as Debian
# sets them; the host name is ours).
POSTINST = """\
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination
myhostname = mail.example.org
alias_maps = hash:/etc/aliases
alias_database = hash:/etc/aliases
mydestination = $myhostname, mail.example.org, localhost.localdomain, localhost
relayhost =
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128
mailbox_size_limit = 0
recipient_delimiter = +
inet_interfaces = all
inet_protocols = all
"""
RELAY_RULES = {"PF-01", "PF-02", "PF-03", "PF-04", "PF-05", "PF-06", "PF-11", "PF-12"}

pytestmark = pytest.mark.skipif(
    not (SHARE / "main.cf.debian").exists(), reason="Debian's postfix package is not installed"
)


def _uncomment_submission(master: str) -> str:
    """Enable the commented submission/submissions entries as an admin would."""
    out = []
    for line in master.splitlines():
        if line.startswith(("#submission ", "#submissions ", "#  -o ")):
            line = line[1:]
        out.append(line)
    return "\n".join(out) + "\n"


def _stock(tmp_path: Path, submission: bool) -> list[tuple[str, str, str]]:
    main = (SHARE / "main.cf.debian").read_text()
    tls = SHARE / "main.cf.tls"
    main += (tls.read_text() if tls.exists() else "") + POSTINST
    master = (SHARE / "master.cf.dist").read_text()
    (tmp_path / "main.cf").write_text(main)
    (tmp_path / "master.cf").write_text(_uncomment_submission(master) if submission else master)
    result = run_audit(io.load_config_dir(tmp_path), None, {})
    return [(str(f.details["rule"]), f.severity.label, f.subject.value) for f in result.findings]


def test_stock_config_flags_nothing_critical(tmp_path: Path) -> None:
    found = _stock(tmp_path, submission=False)
    assert not [f for f in found if f[1] in ("critical", "high")], found
    assert not [f for f in found if f[0] in RELAY_RULES], found
    # the banner names Postfix and Debian
    assert ("PF-24", "low", "main.cf:smtpd_banner") in found


def test_stock_submission_entries_are_safe(tmp_path: Path) -> None:
    found = _stock(tmp_path, submission=True)
    assert not [f for f in found if f[1] in ("critical", "high")], found
    assert not [f for f in found if f[0] in RELAY_RULES], found


def test_stock_submission_with_the_final_reject_removed_is_flagged(tmp_path: Path) -> None:
    master = _uncomment_submission((SHARE / "master.cf.dist").read_text()).replace(
        "smtpd_recipient_restrictions=permit_sasl_authenticated,reject",
        "smtpd_recipient_restrictions=permit_sasl_authenticated,permit_mynetworks,permit,reject",
    )
    (tmp_path / "main.cf").write_text((SHARE / "main.cf.debian").read_text() + POSTINST)
    (tmp_path / "master.cf").write_text(master)
    result = run_audit(io.load_config_dir(tmp_path), None, {})
    open_relays = [
        (f.details["rule"], f.subject.value)
        for f in result.findings
        if f.severity is Severity.CRITICAL
    ]
    assert open_relays == [
        ("PF-11", "master.cf:submission/smtpd_recipient_restrictions"),
        ("PF-11", "master.cf:submissions/smtpd_recipient_restrictions"),
    ]
