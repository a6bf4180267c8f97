"""The default store: one SQLite file, no set-up, shared safely by several local processes.

Durability vs speed: WAL with ``synchronous=NORMAL`` commits each request without an fsync (only
checkpoints sync). A power cut may lose the last few commits, i.e. forget a few charges or a
containment made just before; an application crash loses nothing. That is the trade the issue
asks for: the hot path never waits for the disk.

Atomicity: each :meth:`SqliteStore.allow` is one ``BEGIN IMMEDIATE`` transaction (read the key's
states, decide, write), so several stores on one file (several policy servers on one host)
serialise on SQLite's write lock and never over-admit together. A call waits at most
``busy_timeout`` seconds for that lock and then raises :class:`StoreError`.

Calls are synchronous and short (~80 microseconds, most of it the commit). Under load a server
can pass the requests queued meanwhile to :meth:`SqliteStore.allow_many`: one commit for all
(the caller bounds the batch, and so the time a batch holds the write lock). An asyncio server
should run calls in one worker thread (``loop.run_in_executor`` with a single-thread executor);
the connection is opened with ``check_same_thread=False`` and every call holds a lock, so a
store may also be shared by several threads.

Idle keys expire lazily: a state row whose TAT is <= now means the same as no row, so every
``SWEEP_EVERY``-th charge also deletes at most ``SWEEP_ROWS`` such rows, found through the TAT
index. The cost per call stays bounded however many keys went idle.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

from relayguard.policy.limiter import NEW, Decision, Limit
from relayguard.policy.stores.base import (
    Charge,
    Check,
    Contained,
    StoreError,
    Verdict,
    decide,
    is_contain_window,
    window_id,
)

SCHEMA_VERSION: Final = 2
SWEEP_EVERY: Final = 64
SWEEP_ROWS: Final = 256
SETUP_WAIT: Final = 5.0
"""Seconds opening a store may wait for other processes setting up the same file."""
LOCK_POLL: Final = 0.0001
"""Seconds between tries for the write lock another process holds. SQLite's own busy handler
sleeps 1, 2, 5, 10... ms between tries: with several policy workers on one file, those sleeps
cost more than the transactions they waited for, which hold the lock for a fraction of one."""
_KEYS_PER_SELECT: Final = 500  # below SQLite's oldest limit of 999 host parameters
_TABLES: Final = frozenset(("rate_state", "containment", "generation"))
_REQUIRED_TABLES: Final = frozenset(("rate_state", "containment"))

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS rate_state (
    key TEXT NOT NULL,
    window TEXT NOT NULL,
    tat REAL NOT NULL,
    PRIMARY KEY (key, window)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rate_state_tat ON rate_state (tat);
CREATE TABLE IF NOT EXISTS containment (
    key TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    since REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS generation (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO generation (name, value) VALUES ('containment', 0);
"""
_GENERATION: Final = "SELECT value FROM generation WHERE name = 'containment'"
_BUMP: Final = "UPDATE generation SET value = value + 1 WHERE name = 'containment'"
_SELECT: Final = "SELECT window, tat FROM rate_state WHERE key = ?"
_UPSERT: Final = (
    "INSERT INTO rate_state (key, window, tat) VALUES (?, ?, ?)"
    " ON CONFLICT (key, window) DO UPDATE SET tat = excluded.tat"
)
_DELETE: Final = "DELETE FROM rate_state WHERE key = ? AND window = ?"
_SWEEP: Final = (
    "DELETE FROM rate_state WHERE (key, window) IN"
    " (SELECT key, window FROM rate_state WHERE tat <= ? LIMIT ?)"
)


class SqliteStore:
    """Rate-limit state and containment in the SQLite file ``path``.

    ``create``: a missing file is created and given the schema; without it, the file must
    already be a relayguard store. A database with tables of its own is never touched.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 0.5,
        checkpoint_every: float | None = None,
        create: bool = True,
    ) -> None:
        self.path = os.fspath(path)
        if not create and not os.path.exists(self.path):
            raise StoreError(f"no policy store at {self.path!r} (nothing was ever stored there)")
        db = self._connect(busy_timeout, create)
        self._db = db
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._charges = 0
        # The contained keys, valid while the generation row has this value.
        self._contained_keys: frozenset[str] = frozenset()
        self._contained_generation = -1
        try:
            # Several processes opening one new file at once (policy workers, several servers
            # started together) meet in the switch to WAL, where SQLite answers "locked" at
            # once instead of waiting: try again for a while.
            deadline = time.monotonic() + max(busy_timeout, SETUP_WAIT)
            while True:
                try:
                    self._set_up(create)
                    break
                except sqlite3.OperationalError as exc:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    busy = "locked" in str(exc) or "busy" in str(exc)
                    if not busy or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
        except (sqlite3.Error, StoreError) as exc:
            db.close()
            if isinstance(exc, StoreError):
                raise
            if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
                raise StoreError(
                    f"{self.path!r} is not a relayguard policy store (not an SQLite database)"
                ) from None
            raise StoreError(f"cannot set up {self.path!r}: {exc}") from None
        # Only BEGIN IMMEDIATE waits for another process (in WAL mode readers never do), and
        # :meth:`_begin` does the waiting.
        db.execute("PRAGMA busy_timeout = 0")
        self._checkpointer: _Checkpointer | None = None
        if checkpoint_every is not None:
            # A server must not fsync on its request path: a commit that crosses the WAL's
            # auto-checkpoint threshold would copy and sync pages inline. Checkpoints run in a
            # thread of their own instead (SQLite releases the GIL while it works).
            db.execute("PRAGMA wal_autocheckpoint = 0")
            self._checkpointer = _Checkpointer(self, checkpoint_every)

    def _connect(self, busy_timeout: float, create: bool = True) -> sqlite3.Connection:
        target = self.path if create else f"file:{quote(os.path.abspath(self.path))}?mode=rw"
        try:
            return sqlite3.connect(
                target,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=not create,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path!r}: {exc}") from None

    def _set_up(self, create: bool) -> None:
        """WAL, and the schema created or checked, in one transaction."""
        db = self._db
        self._check_tables(create)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("BEGIN IMMEDIATE")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.execute("ROLLBACK")
            raise StoreError(f"{self.path!r} has schema {version}, newer than ours")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")

    def _check_tables(self, create: bool) -> None:
        """StoreError unless the file is empty (and ``create``) or has our tables only."""
        rows = self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {str(name) for (name,) in rows if not str(name).startswith("sqlite_")}
        if not tables and create:
            return
        if not tables or not tables <= _TABLES or not tables >= _REQUIRED_TABLES:
            what = "an empty database" if not tables else f"it has tables {sorted(tables)}"
            raise StoreError(f"{self.path!r} is not a relayguard policy store ({what})")

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            self._db.close()

    def allow(self, key: str, windows: Sequence[Limit], now: float, cost: float = 1) -> Decision:
        return self.allow_many(((key, windows, now, cost),))[0]

    def allow_many(self, requests: Sequence[Charge]) -> list[Decision]:
        """:meth:`allow` for each request in order, in one transaction (one commit for all)."""
        with self._lock, self._transaction("rate state"):
            batch = _Batch(self._db, {request[0] for request in requests})
            decisions = [batch.charge(*request) for request in requests]
            self._save(batch)
            return decisions

    def check_many(self, checks: Sequence[Check]) -> list[Verdict]:
        """Every check of a batch in one transaction: one commit, one containment lookup, one
        read of the keys' states and one write of the changed ones."""
        with self._lock, self._transaction("rate state"):
            contained = self._contained_now()
            held_by: list[str | None] = []
            keys: set[str] = set()
            for check in checks:
                held = None
                if contained:
                    held = next((k for k in check.contain_keys if k in contained), None)
                held_by.append(held)
                if held is None:
                    keys.update(request[0] for request in check.charges)
            batch = _Batch(self._db, keys)
            verdicts: list[Verdict] = []
            for check, held in zip(checks, held_by, strict=True):
                if held is None:
                    verdicts.append([batch.charge(*request) for request in check.charges])
                else:
                    verdicts.append(held)
            self._save(batch)
            return verdicts

    def _save(self, batch: _Batch) -> None:
        """The batch's changed states, and now and then a sweep of idle rows."""
        if not batch.changed:
            return
        db = self._db
        db.executemany(_UPSERT, [(k, i, t) for (k, i), t in batch.changed.items()])
        before = self._charges
        self._charges += batch.charges
        if self._charges // SWEEP_EVERY != before // SWEEP_EVERY:
            db.execute(_SWEEP, (batch.now, SWEEP_ROWS))

    def _contained_now(self) -> frozenset[str]:
        """The contained keys, re-read only when some process contained or released one."""
        db = self._db
        generation = db.execute(_GENERATION).fetchone()[0]
        if generation != self._contained_generation:
            rows = db.execute("SELECT key FROM containment").fetchall()
            self._contained_keys = frozenset(str(k) for (k,) in rows)
            self._contained_generation = generation
        return self._contained_keys

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; sqlite errors as StoreError."""
        db = self._db
        try:
            self._begin()
            try:
                yield
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"{what}: {exc}") from exc

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, trying again every :data:`LOCK_POLL` while another process holds
        the write lock, for at most ``busy_timeout``."""
        db = self._db
        deadline = 0.0
        while True:
            try:
                db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                now = time.monotonic()
                if not deadline:
                    deadline = now + self._busy_timeout
                elif now >= deadline:
                    raise
            time.sleep(LOCK_POLL)

    def refund(self, key: str, windows: Sequence[Limit], now: float, cost: float) -> None:
        self.refund_many(((key, windows, now, cost),))

    def refund_many(self, charges: Sequence[Charge]) -> None:
        with self._lock, self._transaction("refund"):
            db = self._db
            for key, windows, now, cost in charges:
                rows = dict(db.execute(_SELECT, (key,)).fetchall())
                for w in windows:
                    i = window_id(w)
                    state = w.refund(rows.get(i, NEW), now, cost)
                    if state > now:
                        db.execute(_UPSERT, (key, i, state))
                    elif i in rows:
                        db.execute(_DELETE, (key, i))

    def checkpoint(self) -> None:
        """Copy the WAL into the database file, without waiting for readers or writers."""
        db = self._connect(0)
        try:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # busy or locked: the next round tries again
        finally:
            db.close()

    def purge(self, now: float) -> int:
        """Delete every idle state row (e.g. from ``policy`` maintenance); the number deleted."""
        return self._write("DELETE FROM rate_state WHERE tat <= ?", (now,))

    def states(self) -> dict[tuple[str, str], float]:
        """The live state rows, by (key, window id): for tests and ``policy show``."""
        rows = self._read("SELECT key, window, tat FROM rate_state")
        return {(str(k), str(w)): float(t) for k, w, t in rows}

    def contain(self, key: str, reason: str, now: float) -> bool:
        sql = "INSERT OR IGNORE INTO containment (key, reason, since) VALUES (?, ?, ?)"
        return self._change(sql, (key, reason, now))

    def release(self, key: str) -> bool:
        with self._lock, self._transaction("containment"):
            db = self._db
            # 'contain;' is the string right after every 'contain:...': an index range scan
            rows = db.execute(
                "SELECT DISTINCT key FROM rate_state WHERE key > 'contain:' AND key < 'contain;'"
            ).fetchall()
            stale = [(k,) for (k,) in rows if is_contain_window(str(k), key)]
            db.executemany("DELETE FROM rate_state WHERE key = ?", stale)
            changed = db.execute("DELETE FROM containment WHERE key = ?", (key,)).rowcount == 1
            if changed:
                db.execute(_BUMP)
            return changed

    def is_contained(self, key: str) -> bool:
        return bool(self._read("SELECT 1 FROM containment WHERE key = ?", (key,)))

    def contained(self) -> list[Contained]:
        rows = self._read("SELECT key, reason, since FROM containment ORDER BY since, key")
        return [Contained(str(k), str(r), float(s)) for k, r, s in rows]

    def _change(self, sql: str, args: tuple[object, ...]) -> bool:
        """A containment change and the generation bump that tells other processes, together."""
        with self._lock, self._transaction("containment"):
            changed = self._db.execute(sql, args).rowcount == 1
            if changed:
                self._db.execute(_BUMP)
            return changed

    def _write(self, sql: str, args: tuple[object, ...]) -> int:
        with self._lock, self._transaction("rate state"):
            return int(self._db.execute(sql, args).rowcount)

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(str(exc)) from exc


class _Checkpointer:
    """Runs :meth:`SqliteStore.checkpoint` every ``every`` seconds in a daemon thread."""

    def __init__(self, store: SqliteStore, every: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(store, every), name="relayguard-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self, store: SqliteStore, every: float) -> None:
        while not self._stop.wait(every):
            store.checkpoint()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _Batch:
    """The states of a batch's keys, read in one query and charged in order in memory: two
    statements per batch instead of two per request (the decisions are the same as charging
    one by one, since every later charge of a key sees the earlier ones)."""

    __slots__ = ("changed", "charges", "now", "states")

    def __init__(self, db: sqlite3.Connection, keys: set[str]) -> None:
        self.states: dict[tuple[str, str], float] = {}
        self.changed: dict[tuple[str, str], float] = {}
        self.charges = 0
        self.now = 0.0
        wanted = list(keys)
        for start in range(0, len(wanted), _KEYS_PER_SELECT):
            chunk = wanted[start : start + _KEYS_PER_SELECT]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT key, window, tat FROM rate_state WHERE key IN ({marks})"
            for key, window, tat in db.execute(sql, chunk):
                self.states[key, window] = tat

    def charge(self, key: str, windows: Sequence[Limit], now: float, cost: float) -> Decision:
        ids = [(key, window_id(w)) for w in windows]
        states = self.states
        old = [states.get(i, NEW) for i in ids]
        decision, new = decide(windows, old, now, cost)
        if decision.allowed and new != tuple(old):
            for i, tat in zip(ids, new, strict=True):
                states[i] = tat
                self.changed[i] = tat
            self.charges += 1
        self.now = max(self.now, now)
        return decision
