"""pytest plugin: the ``mail_lab`` fixture, one real Postfix instance for the whole session.

Enable it from the top-level conftest with ``pytest_plugins = ["tests.lab.fixtures"]``.
Outside CI the lab tests skip (with the reason) when not root or Postfix is missing; on CI
(``CI=true``) they fail instead, so a broken set-up cannot pass as green.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator

import pytest

from tests.lab.postfix import MailLab, missing_commands


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def gate(root: bool, missing: list[str], ci: bool) -> tuple[str, str]:
    """("run" | "skip" | "fail", why): what the lab tests do on this machine."""
    if not root:
        why = "the mail lab needs root (it runs a private Postfix instance)"
    elif missing:
        why = f"the mail lab needs {', '.join(missing)}: run scripts/install-test-deps"
    else:
        return "run", ""
    return ("fail", f"mail lab unavailable on CI: {why}") if ci else ("skip", why)


@pytest.fixture(scope="session")
def mail_lab() -> Iterator[MailLab]:
    """A started lab in ``closed`` mode; stopped and removed at the end of the session."""
    action, why = gate(os.geteuid() == 0, missing_commands(), on_ci())
    if action == "fail":
        pytest.fail(why, pytrace=False)
    if action == "skip":
        pytest.skip(why)
    lab = MailLab()
    atexit.register(lab.close)  # also when the session dies before teardown
    try:
        lab.start()
        yield lab
    finally:
        lab.close()
        atexit.unregister(lab.close)
