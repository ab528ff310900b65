"""A store in SQLite, for `--data-dir`: state that survives restarts (even `kill -9`) and is
shared by several worker processes.

Every change is committed before the request that made it is answered, so an acknowledged
export is never lost; the changes of one request share one transaction (`transaction()`), which
takes SQLite's write lock (`BEGIN IMMEDIATE`) at its first read-modify-write, so workers never
spend the same token or rule twice, and a request that changes nothing writes nothing. Journal
entries are buffered and written with the next transaction (or within a fraction of a second),
since nothing acknowledges them. Export files are not stored: they are regenerated from the
seed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ..clock import ClockBackend, ClockState
from ..errors import StoreBusy
from ..logs import get_logger
from . import JOURNAL_LIMIT, JOURNAL_PAGE_BYTES, BucketKey, JournalMatch
from .codec import decode_control, decode_operation, encode_control, encode_operation
from .records import Bucket, ControlState, OperationRecord

T = TypeVar("T")
log = get_logger()
_EMPTY = ControlState()
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
INSTANCE = ""  # the scope key of instance-wide control settings
JOURNAL_FLUSH_SECONDS = 0.2  # how long a buffered journal entry may wait for a transaction
JOURNAL_BATCH = 500  # entries read at a time, newest first


class StoreUnavailable(ValueError):
    """The data directory cannot be used; the message names the path and what to do."""


BUSY_TIMEOUT_SECONDS = 2.0  # how long a request waits for another process's write lock


def _loads(text: str) -> Any:
    """orjson's speed, and the standard module's reading of Infinity (poll-driven lifecycles)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


class SQLiteStore:
    blocking = True  # its calls may wait for the database: run them off the event loop

    def __init__(
        self,
        path: Path,
        *,
        journal_max_bytes: int = 16 << 20,
        busy_timeout: float | None = None,
    ) -> None:
        self.path = path
        self.journal_max_bytes = journal_max_bytes
        self._journal_unchecked = 0  # bytes written since the journal's size was last bounded
        self._lock = threading.RLock()
        self._db = _open(path, BUSY_TIMEOUT_SECONDS if busy_timeout is None else busy_timeout)
        self._depth = 0  # open transaction() levels, under the lock
        self._writing = False  # whether the open transaction holds the write lock
        self._changes = 0  # this connection's writes, for the read cache below
        # Values decoded from the database, valid while nobody wrote: the clock and control
        # settings are read on every request and rarely change.
        self._cache: dict[Any, tuple[tuple[int, int], Any]] = {}
        self._pending: list[tuple[str | None, str]] = []  # journal entries not yet written
        self._journal_writes = 0
        self._flusher: threading.Timer | None = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A unit of work: its writes commit together when the outermost use ends. It takes
        the write lock only at its first write, so a request that changes nothing (a poll of a
        clock-driven export) opens no write transaction at all."""
        with self._lock:
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0 and self._writing:
                    self._end("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0 and self._writing:
                try:
                    with self._busy():
                        self._write_journal(self._db)
                        self._end("COMMIT")
                except BaseException:
                    if self._writing:
                        self._end("ROLLBACK")
                    raise

    def _end(self, statement: str) -> None:
        self._writing = False
        self._changes += 1
        if statement == "COMMIT" or self._db.in_transaction:
            self._db.execute(statement)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """The write lock (`BEGIN IMMEDIATE`) for a read-modify-write, inside the transaction."""
        with self.transaction():
            if not self._writing:
                with self._busy():
                    self._db.execute("BEGIN IMMEDIATE")
                self._writing = True
            self._changes += 1
            with self._busy():
                yield self._db

    def _cached(self, key: Any, read: Callable[[], Any]) -> Any:
        """`read()`, or its cached result while no connection has written since."""
        with self._lock, self._busy():
            generation = (self._db.execute("PRAGMA data_version").fetchone()[0], self._changes)
            hit = self._cache.get(key)
            if hit is not None and hit[0] == generation:
                return hit[1]
            value = read()
            self._cache[key] = (generation, value)
            return value

    @contextmanager
    def _busy(self) -> Iterator[None]:
        """SQLite's "database is locked" (another process kept the write lock longer than the
        busy timeout) as the API's 503, which tells the client to retry."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" not in text and "busy" not in text:
                raise
            raise StoreBusy(
                f"the emulator's state in {self.path} is locked by another process; retry"
            ) from None

    def _one(self, sql: str, *args: Any) -> Any:
        with self._lock, self._busy():
            row = self._db.execute(sql, args).fetchone()
        return row[0] if row else None

    # -- metadata (clock, world origin, signing secret) --------------------------------------
    def meta(
        self, key: str, default: Callable[[], str], valid: Callable[[str], bool] = lambda _: True
    ) -> str:
        """The stored value of `key`, storing `default()` first if there is none (or the stored
        one is not `valid`: it is replaced, with a warning naming the file)."""
        with self._write() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row and isinstance(row[0], str) and valid(row[0]):
                return row[0]
            if row:
                log.warning("%s: the stored %s was unreadable and is replaced", self.path, key)
            value = default()
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
            return value

    # -- operations ---------------------------------------------------------------------------
    def next_sequence(self, tenant: str) -> int:
        with self._write() as db:
            db.execute(
                "INSERT INTO sequences (tenant, value) VALUES (?, 1) "
                "ON CONFLICT (tenant) DO UPDATE SET value = value + 1",
                (tenant,),
            )
            row = db.execute("SELECT value FROM sequences WHERE tenant = ?", (tenant,)).fetchone()
            return int(row[0])

    def add_operation(self, record: OperationRecord) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO operations (tenant, id, seq, search_export_id, record) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    record.tenant,
                    record.id,
                    record.seq,
                    record.search_export_id,
                    json.dumps(encode_operation(record)),
                ),
            )

    def update_operation(
        self, tenant: str, operation_id: str, update: Callable[[OperationRecord], OperationRecord]
    ) -> OperationRecord | None:
        with self._lock:  # most updates (a poll of a clock-driven export) change nothing
            current = self.get_operation(tenant, operation_id)
            if current is None:
                return None
            unchanged = update(current)
            if unchanged == current:
                return unchanged
        with self._write() as db:
            row = db.execute(
                "SELECT record FROM operations WHERE tenant = ? AND id = ?", (tenant, operation_id)
            ).fetchone()
            if row is None:
                return None
            before = self._decode(row[0])
            if before is None:
                return None
            after = update(before)
            if after != before:
                db.execute(
                    "UPDATE operations SET record = ? WHERE tenant = ? AND id = ?",
                    (json.dumps(encode_operation(after)), tenant, operation_id),
                )
            return after

    def get_operation(self, tenant: str, operation_id: str) -> OperationRecord | None:
        raw = self._one(
            "SELECT record FROM operations WHERE tenant = ? AND id = ?", tenant, operation_id
        )
        return self._decode(raw)

    def _decode(self, raw: Any) -> OperationRecord | None:
        """A stored operation, or None (with a warning) if its row cannot be read: one bad row
        must not stop the server or every listing."""
        if raw is None:
            return None
        try:
            return decode_operation(_loads(raw))
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            log.warning("%s: skipping an unreadable operation row: %r", self.path, exc)
            return None

    def _records(self, rows: list[Any]) -> list[OperationRecord]:
        return [r for r in (self._decode(row[0]) for row in rows) if r is not None]

    def operations(self, tenant: str | None) -> list[OperationRecord]:
        with self._lock:
            if tenant is None:
                rows = self._db.execute("SELECT record FROM operations ORDER BY tenant, seq")
            else:
                rows = self._db.execute(
                    "SELECT record FROM operations WHERE tenant = ? ORDER BY seq", (tenant,)
                )
            fetched = rows.fetchall()
        return self._records(fetched)

    def operations_page(
        self, tenant: str, before_seq: int | None, limit: int
    ) -> list[OperationRecord]:
        with self._lock:
            fetched = self._db.execute(
                "SELECT record FROM operations WHERE tenant = ? AND seq < ? "
                "ORDER BY seq DESC LIMIT ?",
                (tenant, before_seq if before_seq is not None else 2**62, limit),
            ).fetchall()
        return self._records(fetched)

    def find_operation(self, operation_id: str) -> OperationRecord | None:
        return self._decode(
            self._one("SELECT record FROM operations WHERE id = ? LIMIT 1", operation_id)
        )

    def operation_by_export(self, search_export_id: str) -> OperationRecord | None:
        raw = self._one(
            "SELECT record FROM operations WHERE search_export_id = ?", search_export_id
        )
        return self._decode(raw)

    # -- rate-limit buckets --------------------------------------------------------------------
    def update_bucket(self, key: BucketKey, update: Callable[[Bucket | None], Bucket]) -> Bucket:
        with self._write() as db:
            row = db.execute(
                "SELECT tokens, updated FROM buckets WHERE tenant = ? AND key_id = ? "
                "AND endpoint = ?",
                key,
            ).fetchone()
            bucket = update(Bucket(row[0], row[1]) if row else None)
            db.execute(
                "INSERT OR REPLACE INTO buckets (tenant, key_id, endpoint, tokens, updated) "
                "VALUES (?, ?, ?, ?, ?)",
                (*key, bucket.tokens, bucket.updated),
            )
            return bucket

    # -- control settings ----------------------------------------------------------------------
    def controls(self, scopes: Sequence[str | None]) -> list[ControlState]:
        keys = tuple(_scope(scope) for scope in scopes)

        def read() -> list[ControlState]:
            marks = ", ".join("?" * len(keys))
            rows = dict(
                self._db.execute(
                    f"SELECT scope, state FROM controls WHERE scope IN ({marks})", keys
                ).fetchall()
            )
            return [decode_control(_loads(rows[k])) if k in rows else _EMPTY for k in keys]

        states: list[ControlState] = self._cached(("controls", keys), read)
        return states

    def update_control(
        self, tenant: str | None, update: Callable[[ControlState], tuple[ControlState, T]]
    ) -> T:
        with self._write() as db:
            row = db.execute(
                "SELECT state FROM controls WHERE scope = ?", (_scope(tenant),)
            ).fetchone()
            before = decode_control(_loads(row[0])) if row else _EMPTY
            after, result = update(before)
            if after != before:
                db.execute(
                    "INSERT OR REPLACE INTO controls (scope, state) VALUES (?, ?)",
                    (_scope(tenant), json.dumps(encode_control(after))),
                )
            return result

    # -- clock -----------------------------------------------------------------------------
    def clock_backend(self, initial: ClockState) -> ClockBackend:
        self.meta("clock", lambda: json.dumps(initial.to_json()), _readable_clock)
        return SQLiteClockBackend(self, initial)

    # -- journal -------------------------------------------------------------------------------
    def append_journal(self, entry: dict[str, Any]) -> None:
        """Buffer the entry; the next transaction, or a timer soon after, writes it."""
        with self._lock:
            self._pending.append((entry.get("tenant"), json.dumps(entry)))
            if self._flusher is None:
                self._flusher = threading.Timer(JOURNAL_FLUSH_SECONDS, self.flush_journal)
                self._flusher.name = "journal-flush"
                self._flusher.daemon = True
                self._flusher.start()

    def flush_journal(self) -> None:
        with self._lock:
            self._flusher = None
            if self._pending and self._depth == 0:
                try:
                    with self._write():
                        pass  # the outermost transaction writes what is pending
                except StoreBusy:  # another process holds the lock: the entries wait
                    self._flusher = threading.Timer(JOURNAL_FLUSH_SECONDS, self.flush_journal)
                    self._flusher.name = "journal-flush"
                    self._flusher.daemon = True
                    self._flusher.start()

    def _write_journal(self, db: sqlite3.Connection) -> None:
        if not self._pending:
            return
        db.executemany("INSERT INTO journal (tenant, entry) VALUES (?, ?)", self._pending)
        before = self._journal_writes
        self._journal_writes += len(self._pending)
        self._journal_unchecked += sum(len(entry) for _, entry in self._pending)
        self._pending.clear()
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if (
            self._journal_writes // 1000 != before // 1000
            or self._journal_unchecked > self.journal_max_bytes // 8
        ):
            self._journal_unchecked = 0
            db.execute(
                "DELETE FROM journal WHERE n <= (SELECT MAX(n) FROM journal) - ?",
                (JOURNAL_LIMIT,),
            )
            # The oldest entries beyond the byte bound, counting from the newest.
            db.execute(
                "DELETE FROM journal WHERE n <= (SELECT MAX(n) FROM (SELECT n, SUM(length("
                "CAST(entry AS BLOB))) OVER (ORDER BY n DESC) AS total FROM journal) "
                "WHERE total > ?)",
                (self.journal_max_bytes,),
            )

    def journal(self, tenant: str | None) -> list[dict[str, Any]]:
        self.flush_journal()
        with self._lock:
            if tenant is None:
                rows = self._db.execute("SELECT entry FROM journal ORDER BY n")
            else:
                rows = self._db.execute(
                    "SELECT entry FROM journal WHERE tenant = ? ORDER BY n", (tenant,)
                )
            return [json.loads(r[0]) for r in rows.fetchall()]

    def journal_newest(self, tenant: str | None) -> Iterator[dict[str, Any]]:
        self.flush_journal()
        below = None  # read in batches, newest first, without holding the lock in between
        while True:
            where = ["n < ?"] if below is not None else []
            args: list[Any] = [below] if below is not None else []
            if tenant is not None:
                where.append("tenant = ?")
                args.append(tenant)
            sql = "SELECT n, entry FROM journal"
            if where:
                sql += " WHERE " + " AND ".join(where)
            with self._lock:
                rows = self._db.execute(
                    f"{sql} ORDER BY n DESC LIMIT {JOURNAL_BATCH}", args
                ).fetchall()
            for _, entry in rows:
                yield _loads(entry)
            if len(rows) < JOURNAL_BATCH:
                return
            below = rows[-1][0]

    def journal_page(
        self, tenant: str | None, after: int, limit: int, match: JournalMatch | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        self.flush_journal()
        page: list[dict[str, Any]] = []
        size, last, cursor = 0, after, after
        while True:
            with self._lock:  # in batches, so that writers wait for one batch at most
                rows = self._db.execute(
                    "SELECT n, entry FROM journal WHERE n > ? AND (? IS NULL OR tenant = ?) "
                    "ORDER BY n LIMIT 500",
                    (cursor, tenant, tenant),
                ).fetchall()
            if not rows:
                return page, None
            for position, raw in rows:
                cursor = position
                entry = json.loads(raw)
                if match is not None and not match(entry):
                    continue
                if len(page) == limit or (page and size + len(raw) > JOURNAL_PAGE_BYTES):
                    return page, last
                page.append(entry)
                size += len(raw)
                last = position

    def clear_journal(self, tenant: str | None) -> None:
        with self._write() as db:
            self._write_journal(db)
            if tenant is None:
                db.execute("DELETE FROM journal")
            else:
                db.execute("DELETE FROM journal WHERE tenant = ?", (tenant,))

    def tenants(self) -> list[str]:
        self.flush_journal()
        with self._lock:
            rows = self._db.execute(
                "SELECT tenant FROM operations UNION SELECT tenant FROM sequences "
                "UNION SELECT tenant FROM journal WHERE tenant IS NOT NULL "
                "UNION SELECT scope FROM controls WHERE scope != ? ORDER BY 1",
                (INSTANCE,),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def reset(self, tenant: str | None) -> None:
        with self._write() as db:
            self._write_journal(db)
            if tenant is None:
                for table in ("sequences", "operations", "buckets", "controls", "journal"):
                    db.execute(f"DELETE FROM {table}")
                return
            for table in ("sequences", "operations", "buckets", "journal"):
                db.execute(f"DELETE FROM {table} WHERE tenant = ?", (tenant,))
            db.execute("DELETE FROM controls WHERE scope = ?", (tenant,))

    def close(self) -> None:
        self.flush_journal()
        with self._lock:
            self._db.close()


class SQLiteClockBackend:
    """The clock's state in the store's meta table: one clock for every worker and restart."""

    def __init__(self, store: SQLiteStore, initial: ClockState) -> None:
        self._store = store
        self._initial = initial  # what an unreadable stored state reads as

    def _decode(self, raw: Any) -> ClockState:
        try:
            return ClockState.from_json(_loads(raw))
        except (TypeError, ValueError):
            return self._initial

    def load(self) -> ClockState:
        def read() -> ClockState:
            return self._decode(self._store._one("SELECT value FROM meta WHERE key = 'clock'"))

        state: ClockState = self._store._cached("clock", read)
        return state

    def update(self, change: Callable[[ClockState], ClockState]) -> ClockState:
        with self._store._write() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'clock'").fetchone()
            state = change(self._decode(row[0] if row else None))
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('clock', ?)",
                (json.dumps(state.to_json()),),
            )
            return state


def _readable_clock(raw: str) -> bool:
    try:
        ClockState.from_json(json.loads(raw))
    except ValueError:
        return False
    return True


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
        db = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        db.executescript(SCHEMA)
    except sqlite3.DatabaseError as exc:  # OperationalError too: unable to open, locked, ...
        raise StoreUnavailable(f"cannot use {path} as the emulator's state: {exc}; {fix}") from None
    return db


def _scope(tenant: str | None) -> str:
    return INSTANCE if tenant is None else tenant
