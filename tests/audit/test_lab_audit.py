"""The audit on the real mail lab: it flags exactly the relay modes that are open.

The lab's configuration directory is read in every mode, and so is the output of ``postconf
-n``/``-M``/``-P`` captured from the running instance: both input paths must agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from relayguard.audit import io
from relayguard.audit._defaults import parse_version
from relayguard.audit.report import AuditResult, run_audit
from relayguard.findings import Severity
from tests.lab.postfix import MailLab

RELAY_RULES = {"PF-01", "PF-02", "PF-03", "PF-04", "PF-05", "PF-06", "PF-11", "PF-12"}


@pytest.fixture
def lab(mail_lab: MailLab) -> Iterator[MailLab]:
    yield mail_lab
    mail_lab.set_mode("closed")


def _expected(lab: MailLab, mode: str) -> list[tuple[str, str, str]]:
    return {
        "closed": [],
        "trusted-source": [],
        "open-mynetworks": [("PF-04", "critical", "main.cf:mynetworks")],
        "open-access-ok": [("PF-01", "critical", "main.cf:smtpd_relay_restrictions")],
        "submission-broken": [(
            "PF-11", "critical",
            f"master.cf:127.0.0.1:{lab.submission_port}/smtpd_recipient_restrictions",
        )],
    }[mode]  # fmt: skip


def _serious(result: AuditResult) -> list[tuple[str, str, str]]:
    """Findings that are high or critical, or come from a relay rule."""
    return [
        (str(f.details["rule"]), f.severity.label, f.subject.value)
        for f in result.findings
        if f.severity >= Severity.HIGH or f.details["rule"] in RELAY_RULES
    ]


def _all(result: AuditResult) -> list[tuple[str, str, str, str]]:
    return [
        (str(f.details["rule"]), f.severity.label, f.subject.value, f.title)
        for f in result.findings
    ]


@pytest.mark.parametrize(
    "mode", ["closed", "open-mynetworks", "open-access-ok", "submission-broken", "trusted-source"]
)
def test_audit_flags_the_open_modes(lab: MailLab, tmp_path: Path, mode: str) -> None:
    lab.set_mode(mode)
    version = parse_version(lab.postconf("-h", "mail_version"))
    from_dir = run_audit(io.load_config_dir(lab.config_dir, version), None, {})
    assert _serious(from_dir) == _expected(lab, mode)
    assert from_dir.exit_code == (2 if _expected(lab, mode) else 0)

    for flag, name in (("-n", "n.txt"), ("-M", "m.txt"), ("-P", "p.txt")):
        (tmp_path / name).write_text(lab.postconf(flag))
    from_postconf = run_audit(
        io.load_postconf(
            str(tmp_path / "n.txt"), str(tmp_path / "m.txt"), str(tmp_path / "p.txt"), version
        ),
        None,
        {},
    )
    assert _all(from_postconf) == _all(from_dir)


def test_fix_for_the_submission_trap_closes_it(lab: MailLab) -> None:
    """The printed fix, applied to a copy of the lab's config, leaves nothing critical."""
    lab.set_mode("submission-broken")
    result = run_audit(io.load_config_dir(lab.config_dir), None, {})
    [finding] = [f for f in result.findings if f.severity is Severity.CRITICAL]
    [command] = finding.details["fix"]
    assert command == (
        f"postconf -c {lab.config_dir} -P 127.0.0.1:{lab.submission_port}/inet/"
        "smtpd_recipient_restrictions=permit_sasl_authenticated,reject"
    )
    lab.run("postconf", "-P", command.rsplit(" ", 1)[1])
    fixed = run_audit(io.load_config_dir(lab.config_dir), None, {})
    assert _serious(fixed) == []
