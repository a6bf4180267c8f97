"""The state directory of ``relayguard watch``: detectors, log position, alert table, baselines.

Two files, each written whole to a temporary name, synced and renamed over the old one, so a
crash leaves the previous state, never half of one: ``analyzer.state`` (see
:mod:`relayguard.analysis.snapshot`) and ``watch.json`` (position, alerts, baselines). The
directory is created 0700; one that another user owns or others can write is refused (its
files are loaded, so they must be ours), and a lock file keeps a second watcher out.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relayguard.analysis import snapshot
from relayguard.analysis.engine import Analyzer
from relayguard.config import Config
from relayguard.errors import RelayguardError

STATE_SCHEMA = "relayguard.watch-state/1"
ANALYZER_FILE = "analyzer.state"
WATCH_FILE = "watch.json"
LOCK_FILE = "watch.lock"
MAX_STATE_BYTES = 512 << 20


class StateError(RelayguardError):
    """The state directory cannot be used."""


@dataclass(slots=True)
class Loaded:
    analyzer: Analyzer | None = None
    watch: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


class StateDir:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.named = bool(os.fspath(path))  # Path("") would be the current directory
        self.path = Path(path)
        self._lock_fd: int | None = None

    def open(self) -> None:
        """Create (0700) or check the directory and take its lock."""
        p = self.path
        if not self.named:
            raise StateError("the state directory must be named (empty is not one)")
        real = os.path.realpath(p)
        for top in ("/proc", "/sys"):
            if real == top or real.startswith(top + "/"):
                raise StateError(f"state directory {p} is in {top}: a kernel file system")
        try:
            st = p.stat()
        except FileNotFoundError:
            st = self._create()
        except OSError as exc:
            raise StateError(f"cannot use state directory {p}: {_why(exc)}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise StateError(f"state directory {p} exists and is not a directory")
        if st.st_uid != os.geteuid():
            raise StateError(f"state directory {p} belongs to uid {st.st_uid}, not to us")
        if st.st_mode & 0o022:
            raise StateError(
                f"state directory {p} is writable by others (mode {stat.S_IMODE(st.st_mode):o}): "
                f"chmod 700 {p}"
            )
        try:
            fd = os.open(p / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise StateError(f"cannot use state directory {p}: {_why(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StateError(f"another relayguard watch is using {p}") from None
        self._lock_fd = fd

    def _create(self) -> os.stat_result:
        """Make the directory itself (0700), not its parents: a mistyped path must not grow
        a tree of directories."""
        p = self.path
        parent = p.parent
        if not parent.is_dir():
            raise StateError(
                f"cannot create state directory {p}: its parent {parent} is not an existing "
                "directory"
            )
        try:
            p.mkdir(mode=0o700)
            return p.stat()
        except FileExistsError:
            return p.stat()
        except OSError as exc:
            raise StateError(f"cannot create state directory {p}: {_why(exc)}") from None

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _read(self, name: str) -> bytes | None:
        path = self.path / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read {path}: {_why(exc)}") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                raise StateError(f"{path} is not a file of ours")
            return f.read(MAX_STATE_BYTES + 1)

    def load(self, config: Config) -> Loaded:
        """What was saved; damaged or outdated parts are dropped with a note, not fatal."""
        out = Loaded()
        raw = self._read(WATCH_FILE)
        if raw is not None:
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and doc.get("schema") == STATE_SCHEMA:
                out.watch = doc
            else:
                out.notes.append(f"{WATCH_FILE} was damaged: starting without it")
        data = self._read(ANALYZER_FILE)
        if data is not None:
            try:
                out.analyzer = snapshot.load(data, config)
            except snapshot.SnapshotError as exc:
                out.notes.append(f"{ANALYZER_FILE} not used: {exc}; detectors start afresh")
        return out

    def _write(self, name: str, data: bytes) -> None:
        path = self.path / name
        tmp = self.path / f".{name}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise StateError(f"cannot save {path}: {_why(exc)}") from None

    def save(self, analyzer: Analyzer, watch: dict[str, Any]) -> None:
        self._write(ANALYZER_FILE, snapshot.dump(analyzer))
        doc = {"schema": STATE_SCHEMA, **watch}
        self._write(WATCH_FILE, json.dumps(doc, separators=(",", ":")).encode())
