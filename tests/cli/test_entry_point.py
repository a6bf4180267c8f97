"""The console script: Ctrl-C while the CLI is still being imported is one line, exit 3."""

from __future__ import annotations

import subprocess
import sys

_INTERRUPTED_IMPORT = """
import builtins
real_import = builtins.__import__

def interrupting_import(name, *args, **kwargs):
    if name == "relayguard.cli":
        raise KeyboardInterrupt  # what Ctrl-C does to an import in progress
    return real_import(name, *args, **kwargs)

builtins.__import__ = interrupting_import
from relayguard import run
run()
"""


def test_ctrl_c_while_the_cli_loads_is_one_line_and_exit_3() -> None:
    done = subprocess.run([sys.executable, "-c", _INTERRUPTED_IMPORT], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (3, "", "relayguard: interrupted\n")


def test_python_m_relayguard_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "relayguard", "--version"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "relayguard, version 0.1.0\n")
