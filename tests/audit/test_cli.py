"""``relayguard audit`` end to end: outputs, exit codes, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relayguard.cli import cli
from relayguard.cli.audit import audit

DATA = Path(__file__).parent / "data"
TRAP = DATA / "trap"

# Until cli/__init__.py registers it; add_command is idempotent.
cli.add_command(audit)


def test_trap_text_report(relayguard: Any) -> None:
    run = relayguard("audit", "--config-dir", str(TRAP), "--mail-version", "3.9.1")
    assert run.code == 2
    lines = run.out.splitlines()
    assert lines[0] == "relayguard audit: UNSAFE (1 critical, 1 info)"
    assert "CRITICAL PF-11  master.cf:submission/smtpd_recipient_restrictions" in lines
    assert (
        f"  > {TRAP}/master.cf:8: -o smtpd_recipient_restrictions=permit_sasl_authenticated,"
        "permit_mynetworks,permit,reject"
    ) in lines
    assert run.err == ""


def test_trap_json(relayguard: Any) -> None:
    run = relayguard("audit", "--config-dir", str(TRAP), "--mail-version", "3.9.1", "--json")
    doc = run.json
    assert run.code == 2
    assert (doc["schema"], doc["verdict"], doc["exit_code"]) == ("relayguard.audit/1", "abused", 2)
    assert doc["counts"] == {"info": 1, "low": 0, "medium": 0, "high": 0, "critical": 1}
    first = doc["findings"][0]
    assert first["indicator"] == "config-submission-open"
    assert first["subject"] == {
        "kind": "config_key",
        "value": "master.cf:submission/smtpd_recipient_restrictions",
    }
    assert first["details"]["rule"] == "PF-11"
    assert first["details"]["reason"] == "a bare permit accepts every client"
    services = {s["service"]: s for s in doc["postfix"]["services"]}
    assert sorted(services) == ["smtp", "submission"]
    relay = services["submission"]["effective"]["smtpd_relay_restrictions"]
    assert relay == {"value": "", "origin": "master.cf", "location": f"{TRAP}/master.cf:7"}
    assert services["smtp"]["effective"]["smtpd_relay_restrictions"]["origin"] == "main.cf"
    assert doc["postfix"]["mail_version_known"] is True
    assert [m["id"] for m in doc["mitigations"]] == [
        "require-auth-submission", "test-relay", "limit-listening",
    ]  # fmt: skip
    assert doc["fix"] == [
        f"postconf -c {TRAP} -P submission/inet/smtpd_recipient_restrictions="
        "permit_sasl_authenticated,reject"
    ]
    assert json.loads(json.dumps(doc)) == doc


def test_trap_fix_script(relayguard: Any) -> None:
    run = relayguard("audit", "--config-dir", str(TRAP), "--mail-version", "3.9.1", "--fix")
    assert run.code == 2
    script = run.out.splitlines()
    assert script[0] == "#!/bin/sh"
    assert (
        f"postconf -c {TRAP} -P submission/inet/smtpd_recipient_restrictions="
        "permit_sasl_authenticated,reject" in script
    )
    assert script[-2:] == [f"postfix -c {TRAP} check", f"postfix -c {TRAP} reload"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "relayguard: usage error: give --config-dir, --postconf-n with --postconf-m, or "
             "--exim-config (try 'relayguard audit --help')"),
        (["--config-dir", "/nonexistent-dir"],
         "relayguard: error: config dir /nonexistent-dir: not a directory"),
        (["--postconf-n", "/nonexistent"], "relayguard: usage error: --postconf-n and "
         "--postconf-m go together (try 'relayguard audit --help')"),
        (["--config-dir", str(TRAP), "--json", "--fix"],
         "relayguard: usage error: --json and --fix are exclusive (try 'relayguard audit --help')"),
        (["--config-dir", str(TRAP), "--mail-version", "new"], "relayguard: usage error: "
         "--mail-version 'new': want a version such as 3.7.11 (try 'relayguard audit --help')"),
        (["--exim-config", "/nonexistent.conf"],
         "relayguard: error: Exim config /nonexistent.conf: no such file"),
    ],
)  # fmt: skip
def test_errors_exit_3_with_one_line(relayguard: Any, args: list[str], message: str) -> None:
    run = relayguard("audit", *args)
    assert run.code == 3
    assert run.err.strip() == message
    assert run.out == ""


def test_invalid_main_cf_is_exit_3(relayguard: Any, tmp_path: Path) -> None:
    (tmp_path / "main.cf").write_text("mynetworks = 127.0.0.1\nthis line is broken\n")
    (tmp_path / "master.cf").write_text("smtp inet n - y - - smtpd\n")
    run = relayguard("audit", "--config-dir", str(tmp_path))
    assert run.code == 3
    assert run.err == (
        f"relayguard: error: {tmp_path}/main.cf, line 2: missing '=' after attribute name\n"
    )


def test_missing_master_cf_is_exit_3(relayguard: Any, tmp_path: Path) -> None:
    (tmp_path / "main.cf").write_text("mynetworks = 127.0.0.1\n")
    run = relayguard("audit", "--config-dir", str(tmp_path))
    assert (run.code, run.err) == (
        3, f"relayguard: error: master.cf {tmp_path}/master.cf: no such file\n",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "code", "headline"),
    [
        ("", 0, "OK"),  # only low/info findings
        ("relay_domains = example.org\n", 1, "NEEDS FIXES"),  # PF-08 medium
        ("mynetworks = 0.0.0.0/0\n", 2, "UNSAFE"),  # PF-04 critical
    ],
)
def test_exit_codes(relayguard: Any, tmp_path: Path, extra: str, code: int, headline: str) -> None:
    (tmp_path / "main.cf").write_text((TRAP / "main.cf").read_text() + extra)
    (tmp_path / "master.cf").write_text("smtp inet n - y - - smtpd\n")
    run = relayguard("audit", "--config-dir", str(tmp_path), "--mail-version", "3.9.1")
    assert run.code == code, run.out
    assert run.out.split(" (", 1)[0] == f"relayguard audit: {headline}"


def test_postconf_inputs_and_exim_together(relayguard: Any, tmp_path: Path) -> None:
    (tmp_path / "n.txt").write_text("mynetworks = 127.0.0.0/8\ncompatibility_level = 3.6\n")
    (tmp_path / "m.txt").write_text("smtp inet n - y - - smtpd\n")
    (tmp_path / "p.txt").write_text("smtp/inet/smtpd_relay_restrictions = permit_mynetworks,"
                                    "permit,reject_unauth_destination\n")  # fmt: skip
    run = relayguard(
        "audit", "--postconf-n", str(tmp_path / "n.txt"), "--postconf-m",
        str(tmp_path / "m.txt"), "--postconf-p", str(tmp_path / "p.txt"),
        "--exim-config", str(DATA / "exim-hardened.conf"), "--json",
    )  # fmt: skip
    doc = run.json
    assert run.code == 2
    assert doc["findings"][0]["subject"]["value"] == "master.cf:smtp/smtpd_relay_restrictions"
    assert doc["findings"][0]["evidence"] == [
        f"{tmp_path}/p.txt:1: smtp/inet/smtpd_relay_restrictions = "
        "permit_mynetworks,permit,reject_unauth_destination"
    ]
    assert doc["inputs"]["exim"] == {"config": str(DATA / "exim-hardened.conf")}
    assert doc["postfix"]["config_directory"] == "/etc/postfix"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary content (NUL bytes)"),
        (bytes(range(128, 256)) * 4, "binary content (not text)"),
        (b"", "empty file"),
        (b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n",
         "no Exim option, named list, ACL or 'begin' section found"),
        (b"PATH=/usr/bin\nfoo = bar\n", "no Exim option, named list, ACL or 'begin' section found"),
    ],
)  # fmt: skip
def test_not_an_exim_config_is_exit_3(
    relayguard: Any, tmp_path: Path, content: bytes, why: str
) -> None:
    path = tmp_path / "exim.conf"
    path.write_bytes(content)
    run = relayguard("audit", "--exim-config", str(path))
    assert (run.code, run.out) == (3, "")
    assert run.err == f"relayguard: error: Exim config {path}: not an Exim configuration: {why}\n"


@pytest.mark.parametrize(
    "content",
    ["primary_hostname = mx.example.org\n", "begin acl\n", "domainlist local_domains = @\n"],
)
def test_minimal_exim_configs_are_audited(relayguard: Any, tmp_path: Path, content: str) -> None:
    path = tmp_path / "exim.conf"
    path.write_text(content)
    assert relayguard("audit", "--exim-config", str(path)).code != 3


def test_json_error_is_still_one_json_object(relayguard: Any, tmp_path: Path) -> None:
    run = relayguard("audit", "--config-dir", str(tmp_path / "nowhere"), "--json")
    message = f"config dir {tmp_path / 'nowhere'}: not a directory"
    assert run.code == 3
    assert json.loads(run.out) == {
        "schema": "relayguard.audit/1", "verdict": None, "exit_code": 3, "error": message,
    }  # fmt: skip
    assert run.err == f"relayguard: error: {message}\n"


def _write(tmp_path: Path, main: str, master: str) -> str:
    (tmp_path / "main.cf").write_text(main)
    (tmp_path / "master.cf").write_text(master)
    return str(tmp_path)


def test_empty_master_cf_is_not_a_silent_clean(relayguard: Any, tmp_path: Path) -> None:
    directory = _write(tmp_path, (TRAP / "main.cf").read_text(), "")
    warning = (
        f"{tmp_path}/master.cf: no smtpd service: this Postfix receives no SMTP mail, so no "
        "relay rule was checked per service (is it the right master.cf?)"
    )
    run = relayguard("audit", "--config-dir", directory, "--mail-version", "3.9.1", "--json")
    assert run.json["warnings"] == [warning]
    text = relayguard("audit", "--config-dir", directory, "--mail-version", "3.9.1")
    assert text.out.splitlines()[-1] == f"warning: {warning}"


def test_misspelled_parameter_and_indented_first_line_are_warned(
    relayguard: Any, tmp_path: Path
) -> None:
    main = "  mynetworks = 0.0.0.0/0\n" + (TRAP / "main.cf").read_text()
    main += "smtpd_relay_restrictoins = permit_mynetworks, reject_unauth_destination\n"
    directory = _write(tmp_path, main, "smtp inet n - y - - smtpd\n")
    run = relayguard("audit", "--config-dir", directory, "--mail-version", "3.9.1", "--json")
    warnings = run.json["warnings"]
    assert warnings[0] == f"{tmp_path}/main.cf, line 1: ignored: starts with whitespace"
    assert warnings[1].startswith(f"{tmp_path}/main.cf:23: ")
    assert warnings[1].endswith("; did you mean smtpd_relay_restrictions?")
    assert len(warnings) == 2


def test_fix_script_comments_out_the_alternative_after_or(relayguard: Any, tmp_path: Path) -> None:
    main = (TRAP / "main.cf").read_text() + "mynetworks = 127.0.0.0/8 172.17.0.0/16\n"
    directory = _write(tmp_path, main, "smtp inet n - y - - smtpd\n")
    run = relayguard("audit", "--config-dir", directory, "--mail-version", "3.9.1", "--fix")
    script = run.out.splitlines()
    assert f"postconf -c {tmp_path} -e 'mynetworks = [::1]/128 127.0.0.0/8'" in script
    assert f"# EDIT: postconf -c {tmp_path} -e 'smtpd_upstream_proxy_protocol = haproxy'" in script
