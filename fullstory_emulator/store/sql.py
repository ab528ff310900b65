"""The SQL store, written once for SQLite (`--data-dir`) and PostgreSQL (`--store`).

Both backends keep the same tables with the same promises: every change is committed before the
request that made it is answered; the changes of one request share one transaction
(`transaction()`, joined by nested uses on the same thread), which takes the write lock only at
its first read-modify-write, so a request that changes nothing writes nothing; and journal
entries are buffered and written with the next transaction (or within JOURNAL_FLUSH_SECONDS),
since nothing acknowledges them. Export files are not stored: they are made again from the seed.

What differs is each backend's (`sqlite.py`, `postgres.py`): how it connects and which database
errors are a 503 (`_session`), how it locks (SQLite's `BEGIN IMMEDIATE` takes the whole database;
PostgreSQL locks the rows it reads with `FOR UPDATE`, inserting a missing one empty first so that
there is a row to lock), the length of a text in bytes, the journal's numbering lock, and how its
read cache of the clock and control settings learns of other processes' changes (`_cached`).
The SQL here uses `?` parameters; PostgreSQL's connection translates them.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

import orjson

from ..clock import ClockBackend, ClockState
from ..errors import StoreBusy
from ..logs import get_logger
from . import JOURNAL_LIMIT, BucketKey, JournalMatch, journal_page
from .codec import decode_control, decode_operation, encode_control, encode_operation
from .records import Bucket, ControlState, OperationRecord

T = TypeVar("T")
log = get_logger()
_EMPTY = ControlState()
INSTANCE = ""  # the scope key of instance-wide control settings
JOURNAL_FLUSH_SECONDS = 0.2  # how long a buffered journal entry may wait for a transaction
JOURNAL_BATCH = 500  # entries read at a time
DECODED_KEPT = 1024  # operation records kept decoded, by their stored text
_OPERATION = "WHERE tenant = ? AND id = ?"
_BUCKET = "WHERE tenant = ? AND key_id = ? AND endpoint = ?"


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Db(Protocol):
    """What the shared SQL needs of a connection (sqlite3's, or psycopg's behind `?`)."""

    def execute(self, query: str, args: Sequence[Any] = (), /) -> Cursor: ...
    def executemany(self, query: str, rows: Iterable[Sequence[Any]], /) -> object: ...


@dataclass
class Tx:
    """A thread's open unit of work."""

    db: Db | None  # its session's connection (None: not taken yet, see DEFERRED_SESSION)
    session: contextlib.ExitStack
    began: bool = False  # BEGIN sent (at the first write)
    dirty: bool = False  # changed the clock, the control settings or the metadata
    widened: bool = False  # ... in a way other processes' cached copies must not hide


class SQLStore(ABC):
    """Everything the SQL backends share; a backend adds its connections and dialect."""

    blocking = True  # its calls wait on the database: run them off the event loop
    BEGIN: ClassVar[str] = "BEGIN"  # what opens a write transaction
    LOCK: ClassVar[str] = ""  # appended to a read-modify-write's SELECT
    EMPTY_ROWS: ClassVar[bool] = False  # insert a missing row empty, to have a row to lock
    RETURNING: ClassVar[bool] = True  # INSERT ... RETURNING
    BYTES: ClassVar[str] = "octet_length(entry)"  # a journal entry's size in bytes
    ERROR: ClassVar[type[Exception]] = Exception  # the driver's errors (a ROLLBACK may fail)
    RETRY_SECONDS: ClassVar[float] = JOURNAL_FLUSH_SECONDS  # a failed journal flush's next try
    JOURNAL_ORDER: ClassVar[str] = ""  # a lock that numbers journal entries in commit order
    SETTLE_SECONDS: ClassVar[float] = 0.0  # how long other processes may cache what changed
    CHANGE_MARK: ClassVar[str] = ""  # run at the commit of a change to what `_cached` keeps
    # Whether a transaction takes its session only at its first write, reading before that
    # through `_reading`: where the session is one connection behind a process-wide lock
    # (SQLite), a request that writes nothing (a poll) then never queues for it.
    DEFERRED_SESSION: ClassVar[bool] = False

    def __init__(self, shown: str, journal_max_bytes: int) -> None:
        self.shown = shown  # the database, as logs and errors name it (no password)
        self.journal_max_bytes = journal_max_bytes
        self._local = threading.local()  # .tx: this thread's open transaction, if any
        self._buffer = threading.Lock()  # guards the journal buffer and its timer
        self._pending: list[tuple[str | None, str]] = []  # journal entries not yet written
        self._flusher: threading.Timer | None = None
        # Held by the timer's flush and by close: a timer that fired as the store closed must
        # not begin a transaction on the closed database.
        self._closing = threading.Lock()
        self._closed = False
        self._journal_writes = 0
        self._journal_unchecked = 0  # bytes written since the journal's size was last bounded
        self._decoded: dict[Any, OperationRecord] = {}  # stored text -> record (`_decode`)

    # -- what a backend provides ------------------------------------------------------------
    @abstractmethod
    def _session(self) -> AbstractContextManager[Db]:
        """A connection for one unit of work; a database that cannot answer now (locked,
        unreachable, busy) becomes `StoreBusy`, for the whole of the work."""

    @abstractmethod
    def _cached(self, key: Any, read: Callable[[], T]) -> T:
        """`read()` (of the clock or control settings), or a copy of its result that no
        process's change since has made stale."""

    @abstractmethod
    def _invalidate(self) -> None:
        """This process changed what `_cached` keeps."""

    @abstractmethod
    def _close(self) -> None: ...

    def _reading(self) -> AbstractContextManager[Db]:
        """A connection for a read outside a transaction: by default, a session's."""
        return self._session()

    def _usable(self, db: Db) -> bool:
        """Whether the open transaction can still take the journal (it has not failed)."""
        return True

    def _settle(self) -> None:
        """After a committed change that widens: wait until no other process can still hold a
        cached copy from before it. This sleeps: callers on an event loop run the store in a
        thread (`Store.blocking`)."""
        if self.SETTLE_SECONDS:
            time.sleep(self.SETTLE_SECONDS)

    def _widens(self, before: ControlState, after: ControlState) -> bool:
        """Whether a change of control settings must not hide behind a cached copy."""
        return True

    # -- transactions -------------------------------------------------------------------------
    def _tx(self) -> Tx | None:
        tx: Tx | None = getattr(self._local, "tx", None)
        return tx

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A unit of work: its writes commit together when the outermost use (on this thread)
        ends. `BEGIN` comes with the first write, so a request that changes nothing (a poll of
        a clock-driven export) runs its reads and opens no write transaction at all."""
        if self._tx() is not None:
            yield
            return
        # The session is left last, so that a database error anywhere inside is its (a 503).
        with contextlib.ExitStack() as session:
            tx = self._local.tx = Tx(None, session)
            if not self.DEFERRED_SESSION:
                tx.db = session.enter_context(self._session())
            try:
                yield
                if tx.began:
                    assert tx.db is not None
                    if self._usable(tx.db):  # not into a transaction that failed
                        self._write_journal(tx.db)
                        if tx.dirty and self.CHANGE_MARK:
                            tx.db.execute(self.CHANGE_MARK)
                    tx.db.execute("COMMIT")
            except BaseException:
                if tx.began and tx.db is not None:
                    with contextlib.suppress(self.ERROR):
                        tx.db.execute("ROLLBACK")
                raise
            finally:
                self._local.tx = None
                if tx.dirty:
                    self._invalidate()  # what other threads cached meanwhile is stale now
        if tx.widened:
            self._settle()

    @contextmanager
    def _write(self) -> Iterator[Db]:
        """The connection of this thread's transaction, begun (for a read-modify-write)."""
        with self.transaction():
            tx = self._tx()
            assert tx is not None
            if tx.db is None:
                tx.db = tx.session.enter_context(self._session())
            if not tx.began:
                tx.db.execute(self.BEGIN)
                tx.began = True
            yield tx.db

    def _changed(self, *, widens: bool) -> None:
        """The open transaction changed what `_cached` keeps; see `_settle` for `widens`."""
        tx = self._tx()
        assert tx is not None
        tx.dirty = True
        tx.widened = tx.widened or widens
        self._invalidate()

    def _rows(self, query: str, *args: Any) -> list[Any]:
        """A read, in this thread's transaction if one is open (to see its writes)."""
        tx = self._tx()
        if tx is not None and tx.db is not None:
            return tx.db.execute(query, args).fetchall()
        with self._reading() as db:
            return db.execute(query, args).fetchall()

    def _one(self, query: str, *args: Any) -> Any:
        rows = self._rows(query, *args)
        return rows[0][0] if rows else None

    def _locked(self, db: Db, select: str, args: Sequence[Any], empty: str) -> Any:
        """The row `select` reads, locked until the transaction ends; where rows are locked one
        by one, a missing row is inserted empty (`empty`) first, so that there is one to lock."""
        row = db.execute(select + self.LOCK, args).fetchone()
        if row is None and self.EMPTY_ROWS:
            db.execute(empty, args)
            row = db.execute(select + self.LOCK, args).fetchone()
        return row

    # -- metadata (clock, world origin, signing secret) --------------------------------------
    def meta(
        self, key: str, default: Callable[[], str], valid: Callable[[str], bool] = lambda _: True
    ) -> str:
        """The stored value of `key`, storing `default()` first if there is none (the first
        process to ask decides; the others read its value), or if the stored one is not
        `valid` (it is replaced, with a warning naming the database)."""
        select = "SELECT value FROM meta WHERE key = ?" + self.LOCK
        with self._write() as db:
            row = db.execute(select, (key,)).fetchone()
            if row is None:  # the winner of concurrent inserts decides
                db.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                    (key, default()),
                )
                self._changed(widens=False)
                row = db.execute(select, (key,)).fetchone()
            if isinstance(row[0], str) and valid(row[0]):
                return row[0]
            log.warning("%s: the stored %s was unreadable and is replaced", self.shown, key)
            value = default()
            db.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
            self._changed(widens=False)
            return value

    # -- operations ---------------------------------------------------------------------------
    def next_sequence(self, tenant: str) -> int:
        upsert = (
            "INSERT INTO sequences (tenant, value) VALUES (?, 1) "
            "ON CONFLICT (tenant) DO UPDATE SET value = sequences.value + 1"
        )
        with self._write() as db:
            if self.RETURNING:
                return int(db.execute(upsert + " RETURNING value", (tenant,)).fetchall()[0][0])
            db.execute(upsert, (tenant,))
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
        """`update` runs once, on the record as read without a lock: most updates (a poll of a
        clock-driven export) change nothing and so write nothing. A change is written only if
        the row is still what was read; if another writer changed it in between, `update` runs
        once more, on that writer's record, under the lock."""
        raw = self._one(f"SELECT record FROM operations {_OPERATION}", tenant, operation_id)
        before = self._decode(raw)
        if before is None:
            return None
        after = update(before)
        if after == before:
            return after
        encoded = json.dumps(encode_operation(after))
        with self._write() as db:
            swap = f"UPDATE operations SET record = ? {_OPERATION} AND record = ?"
            if db.execute(swap, (encoded, tenant, operation_id, raw)).rowcount:
                return after
            row = db.execute(
                f"SELECT record FROM operations {_OPERATION}{self.LOCK}", (tenant, operation_id)
            ).fetchone()
            before = self._decode(row[0] if row else None)
            if before is None:
                return None
            after = update(before)
            if after != before:
                db.execute(
                    f"UPDATE operations SET record = ? {_OPERATION}",
                    (json.dumps(encode_operation(after)), tenant, operation_id),
                )
            return after

    def get_operation(self, tenant: str, operation_id: str) -> OperationRecord | None:
        return self._decode(
            self._one(f"SELECT record FROM operations {_OPERATION}", tenant, operation_id)
        )

    def _decode(self, raw: Any) -> OperationRecord | None:
        """A stored operation, or None (with a warning) if its row cannot be read: one bad row
        must not stop the server or every listing.

        Records are immutable, so the same stored text (a pending export polled again and
        again) is decoded once and its record shared, until DECODED_KEPT texts are kept."""
        if raw is None:
            return None
        kept = self._decoded.get(raw)
        if kept is not None:
            return kept
        try:
            record = decode_operation(_loads(raw))
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            log.warning("%s: skipping an unreadable operation row: %r", self.shown, exc)
            return None
        if len(self._decoded) >= DECODED_KEPT:
            self._decoded.clear()  # (a whole listing's worth read anew, at worst)
        self._decoded[raw] = record
        return record

    def _records(self, rows: list[Any]) -> list[OperationRecord]:
        return [r for r in (self._decode(row[0]) for row in rows) if r is not None]

    def operations(self, tenant: str | None) -> list[OperationRecord]:
        if tenant is None:
            return self._records(self._rows("SELECT record FROM operations ORDER BY tenant, seq"))
        return self._records(
            self._rows("SELECT record FROM operations WHERE tenant = ? ORDER BY seq", tenant)
        )

    def operations_page(
        self, tenant: str, before_seq: int | None, limit: int
    ) -> list[OperationRecord]:
        return self._records(
            self._rows(
                "SELECT record FROM operations WHERE tenant = ? AND seq < ? "
                "ORDER BY seq DESC LIMIT ?",
                tenant,
                before_seq if before_seq is not None else 2**62,
                limit,
            )
        )

    def find_operation(self, operation_id: str) -> OperationRecord | None:
        return self._decode(
            self._one("SELECT record FROM operations WHERE id = ? LIMIT 1", operation_id)
        )

    def operation_by_export(self, search_export_id: str) -> OperationRecord | None:
        return self._decode(
            self._one("SELECT record FROM operations WHERE search_export_id = ?", search_export_id)
        )

    # -- rate-limit buckets --------------------------------------------------------------------
    def update_bucket(self, key: BucketKey, update: Callable[[Bucket | None], Bucket]) -> Bucket:
        """Read, changed and written under the lock, so that concurrent requests in any process
        spend a bucket's tokens one after the other."""
        with self._write() as db:
            row = self._locked(
                db,
                f"SELECT tokens, updated FROM buckets {_BUCKET}",
                key,
                "INSERT INTO buckets (tenant, key_id, endpoint) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
            )
            bucket = update(Bucket(row[0], row[1]) if row and row[0] is not None else None)
            db.execute(
                "INSERT INTO buckets (tenant, key_id, endpoint, tokens, updated) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, key_id, endpoint) "
                "DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated",
                (*key, bucket.tokens, bucket.updated),
            )
            return bucket

    # -- control settings ----------------------------------------------------------------------
    def controls(self, scopes: Sequence[str | None]) -> list[ControlState]:
        keys = tuple(_scope(scope) for scope in scopes)

        def read() -> list[ControlState]:
            marks = ", ".join("?" * len(keys))
            rows = dict(
                self._rows(
                    f"SELECT scope, state FROM controls WHERE scope IN ({marks}) "
                    "AND state IS NOT NULL",
                    *keys,
                )
            )
            return [decode_control(_loads(rows[k])) if k in rows else _EMPTY for k in keys]

        return self._cached(("controls", keys), read)

    def update_control(
        self, tenant: str | None, update: Callable[[ControlState], tuple[ControlState, T]]
    ) -> T:
        scope = _scope(tenant)
        with self._write() as db:
            row = self._locked(
                db,
                "SELECT state FROM controls WHERE scope = ?",
                (scope,),
                "INSERT INTO controls (scope) VALUES (?) ON CONFLICT DO NOTHING",
            )
            before = decode_control(_loads(row[0])) if row and row[0] is not None else _EMPTY
            after, result = update(before)
            if after != before:
                db.execute(
                    "INSERT INTO controls (scope, state) VALUES (?, ?) "
                    "ON CONFLICT (scope) DO UPDATE SET state = excluded.state",
                    (scope, json.dumps(encode_control(after))),
                )
                self._changed(widens=self._widens(before, after))
            return result

    # -- clock -----------------------------------------------------------------------------
    def clock_backend(self, initial: ClockState) -> ClockBackend:
        self.meta("clock", lambda: json.dumps(initial.to_json()), _readable_clock)
        return SQLClockBackend(self, initial)

    # -- journal -------------------------------------------------------------------------------
    def append_journal(self, entry: dict[str, Any]) -> None:
        """Buffer the entry; the next transaction, or a timer soon after, writes it. It never
        waits for the database (the buffer's lock is held only to take or add entries), so
        the event loop calls it directly.

        A timer, once started, runs out even when a transaction wrote the entries first: it
        then finds nothing to write. Cancelling it there made the next request's entry start
        a thread again, one per request when every request commits (a --data-dir poll)."""
        try:  # orjson, as the memory store: the standard module was ~3% of a --data-dir poll
            text = orjson.dumps(entry).decode()
        except TypeError:  # a text orjson refuses (a lone surrogate): the standard escapes it
            text = json.dumps(entry)
        with self._buffer:
            self._pending.append((entry.get("tenant"), text))
            if len(self._pending) > JOURNAL_LIMIT:  # the database is away for long: keep the last
                del self._pending[: len(self._pending) - JOURNAL_LIMIT]
            if self._flusher is None:
                self._flusher = self._timer(JOURNAL_FLUSH_SECONDS)

    def _timer(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self._flush_quietly)
        timer.name = "journal-flush"
        timer.daemon = True
        timer.start()
        return timer

    def flush_journal(self) -> None:
        """Write the buffered entries now; within an open transaction of this thread, they wait
        for it (or for the timer)."""
        if self._pending and self._tx() is None:
            with self._write():
                pass  # the transaction writes what is pending

    def _flush_quietly(self) -> None:
        """The timer's flush: while the database cannot take them, the entries wait."""
        with self._buffer:
            self._flusher = None
        try:
            with self._closing:
                if not self._closed:
                    self.flush_journal()
        except StoreBusy:
            with self._buffer:
                if self._pending and self._flusher is None:
                    self._flusher = self._timer(self.RETRY_SECONDS)

    def _write_journal(self, db: Db) -> None:
        """Write the buffered entries into the open transaction, just before it commits.

        The journal's lock comes first: so entries are numbered in the order they commit, in
        every process, and a reader paging by number never sees a later entry before an earlier
        one (and so never skips one); and the entries are taken from the buffer only once it
        is held, so that two transactions of this process write them in the order they came."""
        if not self._pending:
            return
        if self.JOURNAL_ORDER:  # (SQLite's write lock already does)
            db.execute(self.JOURNAL_ORDER)
        with self._buffer:
            pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            db.executemany("INSERT INTO journal (tenant, entry) VALUES (?, ?)", pending)
        except BaseException:
            with self._buffer:  # not written: keep them for the next transaction
                self._pending[:0] = pending
            raise
        before = self._journal_writes
        self._journal_writes += len(pending)
        self._journal_unchecked += sum(len(entry) for _, entry in pending)
        # Every process trims now and then: JOURNAL_LIMIT entries and journal_max_bytes of
        # them at most, the oldest going first. The count every 1000 entries (by the key); the
        # bytes once an eighth of the bound was written, as that sum reads every entry of the
        # journal (~50 ms at 50,000: every 1000 entries it was ~10% of a --data-dir poll).
        if self._journal_writes // 1000 != before // 1000:
            db.execute(
                "DELETE FROM journal WHERE n <= (SELECT MAX(n) FROM journal) - ?", (JOURNAL_LIMIT,)
            )
        if self._journal_unchecked > self.journal_max_bytes // 8:
            self._journal_unchecked = 0
            db.execute(
                "DELETE FROM journal WHERE n <= (SELECT MAX(n) FROM (SELECT n, SUM("
                f"{self.BYTES}) OVER (ORDER BY n DESC) AS total FROM journal) AS sized "
                "WHERE total > ?)",
                (self.journal_max_bytes,),
            )

    @staticmethod
    def _where(tenant: str | None, *conditions: str) -> str:
        """A WHERE clause of the conditions, and the tenant's when there is one (so that an
        index on it serves, which `? IS NULL OR tenant = ?` would not)."""
        parts = [*conditions, *(["tenant = ?"] if tenant is not None else [])]
        return f" WHERE {' AND '.join(parts)}" if parts else ""

    def journal(self, tenant: str | None) -> list[dict[str, Any]]:
        self.flush_journal()
        where = self._where(tenant)
        rows = self._rows(f"SELECT entry FROM journal{where} ORDER BY n", *_given(tenant))
        return [json.loads(r[0]) for r in rows]

    def journal_newest(self, tenant: str | None) -> Iterator[dict[str, Any]]:
        self.flush_journal()
        below = 2**62  # read in batches, newest first, and nothing held in between
        query = f"SELECT n, entry FROM journal{self._where(tenant, 'n < ?')} ORDER BY n DESC "
        while True:
            rows = self._rows(f"{query}LIMIT {JOURNAL_BATCH}", below, *_given(tenant))
            for _, entry in rows:
                yield _loads(entry)
            if len(rows) < JOURNAL_BATCH:
                return
            below = rows[-1][0]

    def journal_page(
        self, tenant: str | None, after: int, limit: int, match: JournalMatch | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        self.flush_journal()
        query = f"SELECT n, entry FROM journal{self._where(tenant, 'n > ?')} ORDER BY n "

        def entries() -> Iterator[tuple[int, str]]:
            cursor = after
            while rows := self._rows(f"{query}LIMIT {JOURNAL_BATCH}", cursor, *_given(tenant)):
                yield from rows  # in batches: a page of a long journal reads what it needs
                cursor = rows[-1][0]

        return journal_page(entries(), after, limit, match, json.loads)

    def clear_journal(self, tenant: str | None) -> None:
        with self._write() as db:
            self._write_journal(db)
            db.execute(f"DELETE FROM journal{self._where(tenant)}", _given(tenant))

    def tenants(self) -> list[str]:
        self.flush_journal()
        rows = self._rows(
            "SELECT tenant FROM operations UNION SELECT tenant FROM sequences "
            "UNION SELECT tenant FROM journal WHERE tenant IS NOT NULL "
            "UNION SELECT scope FROM controls WHERE scope != ? AND state IS NOT NULL ORDER BY 1",
            INSTANCE,
        )
        return [str(r[0]) for r in rows]

    def reset(self, tenant: str | None) -> None:
        with self._write() as db:
            self._changed(widens=True)
            self._write_journal(db)
            for table in ("sequences", "operations", "buckets", "journal"):
                db.execute(f"DELETE FROM {table}{self._where(tenant)}", _given(tenant))
            if tenant is None:
                db.execute("DELETE FROM controls")
            else:
                db.execute("DELETE FROM controls WHERE scope = ?", (tenant,))

    def close(self) -> None:
        with self._closing:
            try:
                self.flush_journal()
            finally:
                self._closed = True
                with self._buffer:
                    if self._flusher is not None:  # nothing left for it to write
                        self._flusher.cancel()
                        self._flusher = None
                self._close()


class SQLClockBackend:
    """The clock's state in the meta table: one clock for every worker, replica and restart."""

    def __init__(self, store: SQLStore, initial: ClockState) -> None:
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

        return self._store._cached("clock", read)

    def update(self, change: Callable[[ClockState], ClockState]) -> ClockState:
        with self._store._write() as db:
            select = "SELECT value FROM meta WHERE key = 'clock'" + self._store.LOCK
            row = db.execute(select).fetchone()
            before = self._decode(row[0] if row else None)
            state = change(before)
            if state != before or row is None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('clock', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (json.dumps(state.to_json()),),
                )
                self._store._changed(widens=True)
            return state


def _loads(text: Any) -> Any:
    """orjson's speed, and the standard module's reading of Infinity (poll-driven lifecycles)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _readable_clock(raw: str) -> bool:
    try:
        ClockState.from_json(json.loads(raw))
    except (TypeError, ValueError, KeyError):
        return False
    return True


def _given(tenant: str | None) -> tuple[str, ...]:
    """The argument of `_where`'s tenant condition, if it has one."""
    return () if tenant is None else (tenant,)


def _scope(tenant: str | None) -> str:
    return INSTANCE if tenant is None else tenant
