"""On the real lab, the audit flags exactly the services the probe finds open from outside.

The probe judges what the server does; the audit judges what its configuration says. For
every relay mode, the ports the probe reports open from an outside address must be the
services the audit reports with a critical relay finding, and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from relayguard.audit import io
from relayguard.audit.report import run_audit
from relayguard.findings import Severity
from relayguard.probe import ProbeOptions, probe
from relayguard.probe.result import Verdict
from tests.lab.postfix import MailLab

OUTSIDE = "127.0.0.2"


@pytest.fixture
def lab(mail_lab: MailLab) -> Iterator[MailLab]:
    yield mail_lab
    mail_lab.set_mode("closed")


def open_ports_by_probe(lab: MailLab) -> set[int]:
    options = ProbeOptions(
        host="127.0.0.1",
        ports=(lab.smtp_port, lab.submission_port),
        source_address=OUTSIDE,
        helo="probe.example.com",
        command_timeout=10,
        retry_delay=-1,
    )
    result = asyncio.run(probe(options))
    return {s.port for s in result.services if s.verdict is Verdict.OPEN}


def open_ports_by_audit(lab: MailLab) -> set[int]:
    result = run_audit(io.load_config_dir(lab.config_dir), None, {})
    ports: set[int] = set()
    for f in result.findings:
        if f.severity is not Severity.CRITICAL:
            continue
        where = f.subject.value  # main.cf:... (every smtpd) or master.cf:ADDR:PORT/...
        if where.startswith("main.cf:"):
            services = f.details.get("services") or []
            affected = {int(s.split(":")[-1].split("/")[0]) for s in services if ":" in s}
            # a main.cf finding that names no service (PF-04 mynetworks) is about the
            # services that keep main.cf's lists: here the port-25 smtpd
            ports |= affected or {lab.smtp_port}
        else:
            ports.add(int(where.split("/")[0].rsplit(":", 1)[1]))
    return ports


@pytest.mark.parametrize(
    "mode", ["closed", "open-mynetworks", "open-access-ok", "submission-broken", "trusted-source"]
)
def test_audit_flags_exactly_what_the_probe_finds_open(lab: MailLab, mode: str) -> None:
    lab.set_mode(mode)
    probed = open_ports_by_probe(lab)
    assert open_ports_by_audit(lab) == probed
    expected = {
        "closed": set(),
        "trusted-source": set(),
        "open-mynetworks": {lab.smtp_port},
        "open-access-ok": {lab.smtp_port},
        "submission-broken": {lab.submission_port},
    }[mode]
    assert probed == expected
