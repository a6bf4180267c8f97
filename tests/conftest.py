from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relayguard.cli import main

pytest_plugins = ["tests.lab.fixtures"]

DATA = Path(__file__).parent / "data"
LAB = DATA / "lab"


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def relayguard(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run the CLI in-process: relayguard("analyze", ...) -> Run(code, out, err)."""

    def run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
