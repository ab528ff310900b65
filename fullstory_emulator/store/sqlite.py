"""The SQL store in SQLite, for `--data-dir`: state that survives restarts (even `kill -9`) and is
shared by several worker processes on one machine.

What is SQLite's own (the rest is `sql.SQLStore`): one connection per process for transactions,
behind a lock and taken at a transaction's first write, and one per thread for the other reads
(in WAL mode a reader never waits for a writer, so a request's reads, a poll's whole work among
them, never wait for another thread's transaction); `BEGIN IMMEDIATE`, which takes the whole
database's write lock, so that workers never spend the same token or rule twice; "database is
locked" past the busy timeout as a 503; and a read cache of the clock and control settings, per
thread, kept while the generation a change of them counts in the meta table stays the same
(SQLite's `data_version` would also count every spent token and every poll).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from ..errors import StoreBusy
from .sql import Db, SQLStore

T = TypeVar("T")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sequences (tenant TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS operations (
    tenant TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
    search_export_id TEXT NOT NULL UNIQUE, record TEXT NOT NULL,
    PRIMARY KEY (tenant, id));
CREATE INDEX IF NOT EXISTS operations_by_seq ON operations (tenant, seq);
CREATE TABLE IF NOT EXISTS buckets (
    tenant TEXT NOT NULL, key_id TEXT NOT NULL, endpoint TEXT NOT NULL,
    tokens REAL NOT NULL, updated REAL NOT NULL, PRIMARY KEY (tenant, key_id, endpoint));
CREATE TABLE IF NOT EXISTS controls (scope TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    n INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT, entry TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS journal_tenant ON journal (tenant, n);
"""
BUSY_TIMEOUT_SECONDS = 2.0  # how long a request waits for another process's write lock
GENERATION = "generation"  # the meta key counting changes of the clock and control settings


class StoreUnavailable(ValueError):
    """The data directory cannot be used; the message names the path and what to do."""


class SQLiteStore(SQLStore):
    BEGIN = "BEGIN IMMEDIATE"  # the write lock of the whole database: no row locks needed
    RETURNING = sqlite3.sqlite_version_info >= (3, 35)
    BYTES = "length(CAST(entry AS BLOB))"
    ERROR = sqlite3.Error
    DEFERRED_SESSION = True  # the writing connection's lock is taken at the first write only
    CHANGE_MARK = (
        f"INSERT INTO meta (key, value) VALUES ('{GENERATION}', '1') "
        "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
    )

    def __init__(
        self,
        path: Path,
        *,
        journal_max_bytes: int = 16 << 20,
        busy_timeout: float | None = None,
    ) -> None:
        super().__init__(str(path), journal_max_bytes)
        self.path = path
        self._timeout = BUSY_TIMEOUT_SECONDS if busy_timeout is None else busy_timeout
        self._lock = threading.RLock()  # the writing connection's: one transaction at a time
        self._db = _open(path, self._timeout)
        self._readers: list[sqlite3.Connection] = []  # each thread's, to close
        self._readers_lock = threading.Lock()

    @contextmanager
    def _session(self) -> Iterator[Db]:
        """The writing connection, under its lock."""
        with self._lock, self._busy():
            yield self._db

    @contextmanager
    def _reading(self) -> Iterator[Db]:
        """This thread's reading connection (opened at its first read)."""
        reader: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if reader is None:
            reader = self._local.reader = _connect(self.path, self._timeout)
            self._local.cache = {}
            with self._readers_lock:
                self._readers.append(reader)
        with self._busy():
            yield reader

    @contextmanager
    def _busy(self) -> Iterator[None]:
        """SQLite's "database is locked" (another process kept the write lock longer than the
        busy timeout) is the API's 503: retry."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" not in text and "busy" not in text:
                raise
            raise StoreBusy(
                f"the emulator's state in {self.path} is locked by another process; retry"
            ) from None

    def _cached(self, key: Any, read: Callable[[], T]) -> T:
        """`read()`, or this thread's copy of its result while no process has changed it
        since (the clock and control settings are read on every request, and rarely change)."""
        tx = self._tx()
        if tx is not None and tx.dirty:
            return read()  # this transaction's own change, not yet committed
        with self._reading() as db:  # the generation first: a change after it reads again
            generation = db.execute(
                "SELECT value FROM meta WHERE key = ?", (GENERATION,)
            ).fetchone()
        cache: dict[Any, tuple[Any, Any]] = self._local.cache
        hit = cache.get(key)
        if hit is not None and hit[0] == generation:
            return cast(T, hit[1])
        value = read()
        cache[key] = (generation, value)
        return value

    def _invalidate(self) -> None:
        """Nothing to do: the change's commit counts a generation (CHANGE_MARK)."""

    def _close(self) -> None:
        with self._lock, self._readers_lock:
            for reader in self._readers:
                reader.close()
            self._db.close()


def _open(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """The database at `path`, or StoreUnavailable with one line naming the path and the fix."""
    fix = "fix its permissions, point --data-dir elsewhere, or delete it to start afresh"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot use the data directory {path.parent}: {exc.strerror or exc}; {fix}"
        ) from None
    wal = path.with_name(path.name + "-wal")
    if path.exists() and path.stat().st_size == 0 and not (wal.exists() and wal.stat().st_size):
        raise StoreUnavailable(
            f"{path} is empty (0 bytes): the state it held (operations, clock, the URL-signing "
            "secret) is gone; delete the file to start afresh, or restore it from a backup"
        )
    try:
        db = _connect(path, busy_timeout)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
    except sqlite3.DatabaseError as exc:  # OperationalError too: unable to open, locked, ...
        raise StoreUnavailable(f"cannot use {path} as the emulator's state: {exc}; {fix}") from None
    return db


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    return db
