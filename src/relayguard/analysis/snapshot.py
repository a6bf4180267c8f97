"""Save and restore an :class:`~relayguard.analysis.engine.Analyzer` between runs.

``relayguard watch`` keeps the detectors' state (baselines, failure counts, open messages, the
accounts judged taken over) in its state directory, so a restart neither forgets an ongoing
brute force nor starts the baselines afresh.

Format: a header line, the fingerprint of the detection settings, then a pickle. A pickle can
name any callable, so loading uses an unpickler that resolves only the classes the analyzer
state is made of (:data:`_ALLOWED`): a state file that names anything else is refused, not
run. The state directory is also checked by its owner (``monitor/state.py``).

A state saved under other detection settings is refused (:class:`StaleSnapshot`): its windows,
histories and thresholds were shaped by the old values, and mixing them would give findings
neither setting would.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from typing import Any

from relayguard.analysis.engine import Analyzer
from relayguard.config import Config
from relayguard.errors import RelayguardError

MAGIC = b"relayguard-analyzer-state/1\n"

# Modules whose classes make up the analyzer state, and the standard types it uses.
_RELAYGUARD_PREFIXES = ("relayguard.analysis.", "relayguard.logs.events", "relayguard.config")
_ALLOWED = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "dict"),
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("collections", "deque"),
        ("collections", "OrderedDict"),
        ("relayguard.findings", "Severity"),
        ("ipaddress", "IPv4Network"),
        ("ipaddress", "IPv6Network"),
        ("ipaddress", "IPv4Address"),
        ("ipaddress", "IPv6Address"),
    }
)


class SnapshotError(RelayguardError):
    """The saved analyzer state cannot be used."""


class StaleSnapshot(SnapshotError):
    """The state was saved under other detection settings."""


def fingerprint(config: Config) -> str:
    """A digest of the settings the analyzer state depends on (not the watch settings)."""
    text = repr((config.analyze, config.detectors)).encode()
    return hashlib.sha256(text).hexdigest()


def dump(analyzer: Analyzer) -> bytes:
    head = MAGIC + fingerprint(analyzer.ctx.config).encode() + b"\n"
    return head + pickle.dumps(analyzer, protocol=pickle.HIGHEST_PROTOCOL)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        allowed = (module, name) in _ALLOWED or module.startswith(_RELAYGUARD_PREFIXES)
        if not allowed:
            raise SnapshotError(f"state names {module}.{name}, which is not analyzer state")
        found = super().find_class(module, name)
        if module.startswith("relayguard.") and not isinstance(found, type):
            raise SnapshotError(f"state names {module}.{name}, which is not a class")
        return found


def load(data: bytes, config: Config) -> Analyzer:
    """The analyzer saved in ``data``; :class:`SnapshotError` if it cannot be used."""
    if not data.startswith(MAGIC):
        raise SnapshotError("not a relayguard analyzer state (or one from another version)")
    line_end = data.find(b"\n", len(MAGIC))
    if line_end < 0:
        raise SnapshotError("analyzer state is truncated")
    saved = data[len(MAGIC) : line_end].decode("ascii", "replace")
    if saved != fingerprint(config):
        raise StaleSnapshot("the detection settings changed since the state was saved")
    try:
        analyzer = _Unpickler(io.BytesIO(data[line_end + 1 :])).load()
    except SnapshotError:
        raise
    except Exception as exc:  # a damaged file can fail in any way unpickling can
        raise SnapshotError(f"analyzer state is damaged ({type(exc).__name__})") from None
    if not isinstance(analyzer, Analyzer):
        raise SnapshotError("analyzer state holds something else")
    # equal detection settings (checked above); the rest of the file may have changed
    analyzer.ctx.config = config
    return analyzer
