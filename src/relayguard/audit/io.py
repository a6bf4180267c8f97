"""The I/O shell of the audit: read configuration files and the tables they name."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from relayguard.audit._defaults import Version
from relayguard.audit._errors import AuditError
from relayguard.audit._params import unknown_parameter_warnings
from relayguard.audit.effective import FileReader, PostfixConfig
from relayguard.audit.exim import EximConfig, not_exim_reason, parse_exim
from relayguard.audit.maincf import parse_main_cf
from relayguard.audit.mastercf import parse_master_cf
from relayguard.audit.postconf_io import (
    merge_overrides,
    parse_postconf_m,
    parse_postconf_n,
    parse_postconf_p,
)

# Real main.cf/master.cf files and lookup-table sources are kilobytes; a few MB is far beyond
# any real one and keeps a mistaken path (a log, a device) from being read whole.
MAX_FILE_BYTES = 8 * 1024 * 1024


def read_text(path: str | Path, what: str) -> str:
    """The file's text; AuditError with a one-line reason when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise AuditError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise AuditError(f"{what} {path}: is a directory") from None
    except OSError as exc:
        raise AuditError(f"{what} {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise AuditError(f"{what} {path}: larger than {MAX_FILE_BYTES // 1024 // 1024} MB")
    return data.decode("utf-8", "replace")


def table_reader() -> FileReader:
    """Reads the tables and files a configuration names; None for anything unreadable."""

    def read(path: str) -> str | None:
        if not path.startswith("/"):
            return None
        try:
            return read_text(path, "table")
        except AuditError:
            return None

    return read


def postconf_names() -> frozenset[str] | None:
    """Parameter names of this host's Postfix (``postconf -d``); None without Postfix."""
    binary = shutil.which("postconf") or (
        "/usr/sbin/postconf" if Path("/usr/sbin/postconf").is_file() else None
    )
    if binary is None:
        return None
    try:
        done = subprocess.run(
            [binary, "-d"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    names = frozenset(
        line.partition("=")[0].strip() for line in done.stdout.splitlines() if "=" in line
    )
    return names if done.returncode == 0 and len(names) > 100 else None


def load_config_dir(directory: str | Path, version: Version | None = None) -> PostfixConfig:
    base = Path(directory)
    if not base.is_dir():
        raise AuditError(f"config dir {directory}: not a directory")
    main_path, master_path = base / "main.cf", base / "master.cf"
    main = parse_main_cf(read_text(main_path, "main.cf"), str(main_path))
    master = parse_master_cf(read_text(master_path, "master.cf"), str(master_path))
    cfg = PostfixConfig(main, master, str(base.resolve()), version, table_reader())
    cfg.warnings.extend([*main.warnings, *master.warnings])
    cfg.warnings.extend(unknown_parameter_warnings(main, master, postconf_names()))
    return cfg


def load_postconf(
    n_path: str, m_path: str, p_path: str | None = None, version: Version | None = None
) -> PostfixConfig:
    main = parse_postconf_n(read_text(n_path, "postconf -n output"), n_path)
    master = parse_postconf_m(read_text(m_path, "postconf -M output"), m_path)
    warnings = [*main.warnings, *master.warnings]
    if p_path is not None:
        extra = parse_postconf_p(read_text(p_path, "postconf -P output"), p_path)
        master, more = merge_overrides(master, extra)
        warnings += more
    declared = main.get("config_directory")
    config_dir = declared.value if declared else "/etc/postfix"
    cfg = PostfixConfig(main, master, config_dir, version, table_reader())
    cfg.warnings.extend(warnings)
    cfg.warnings.extend(unknown_parameter_warnings(main, master, postconf_names()))
    return cfg


def load_exim(path: str) -> EximConfig:
    text = read_text(path, "Exim config")
    cfg = parse_exim(text, path)
    why = not_exim_reason(text, cfg)
    if why is not None:
        raise AuditError(f"Exim config {path}: not an Exim configuration: {why}")
    return cfg
