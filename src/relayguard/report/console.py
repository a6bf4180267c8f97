"""The terminal console every command prints its report through.

rich answers a closed pipe (``relayguard ... | head``) by exiting with status 1, which in the
monitoring-plugin convention means WARNING whatever the verdict was. Here a closed pipe is an
ordinary ``BrokenPipeError`` that the command catches, so the exit code stays the verdict's.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console


class ReportConsole(Console):
    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def report_console(**kwargs: Any) -> ReportConsole:
    return ReportConsole(highlight=False, **kwargs)


def silence_stdout() -> None:
    """After a closed pipe: send whatever is still buffered nowhere, quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
