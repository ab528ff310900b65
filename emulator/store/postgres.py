"""A store in PostgreSQL, for `--store postgresql://...`: one emulator made of several replicas
(processes on any number of machines) behind a load balancer.

It keeps what the SQLite store keeps, with the same promises: every change is committed before
the request that made it is answered; the changes of one request share one transaction
(`transaction()`, joined by nested uses on the same thread); a read-modify-write (`update_*`,
the clock) locks its row first (`SELECT ... FOR UPDATE`), so replicas never spend the same token
or "next N" rule twice. Journal entries are buffered and written with the next transaction (or
within a fraction of a second), since nothing acknowledges them.

The schema is versioned and created or migrated at start under an advisory lock, so replicas
starting together do not race. A lost database turns calls into `StoreBusy` (503) and the
connection pool reconnects when the database is back, without a restart.
"""

from __future__ import annotations

import contextlib
import json
import select
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg import sql
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from ..clock import ClockBackend, ClockState
from ..errors import StoreBusy
from ..logs import get_logger
from ..settings import redact_url
from . import JOURNAL_LIMIT, JOURNAL_PAGE_BYTES, BucketKey, JournalMatch
from .codec import decode_control, decode_operation, encode_control, encode_operation
from .records import Bucket, ControlState, OperationRecord

T = TypeVar("T")
log = get_logger()
Connection = psycopg.Connection[tuple[Any, ...]]
_EMPTY = ControlState()
INSTANCE = ""  # the scope key of instance-wide control settings
JOURNAL_FLUSH_SECONDS = 0.2  # how long a buffered journal entry may wait for a transaction
POOL_SIZE = 8  # connections per process: requests run in a thread pool, each on its own
POOL_WAIT_SECONDS = 1.0  # how long a call waits for a connection before answering 503
DOWN_SECONDS = 1.0  # after a lost connection, calls fail at once for this long (then one probes)
CONNECT_TIMEOUT = 5  # seconds, unless the URL says otherwise
CACHE_SECONDS = 0.05  # how long a replica reuses the clock and control settings it read
MIGRATION_LOCK = 0x46_53_45_4D_55  # pg_advisory_xact_lock keys: "FSEMU"
JOURNAL_LOCK = MIGRATION_LOCK + 1
VERSION_TABLE = "fullstory_emulator_schema"

# Each entry migrates the schema from version i to i + 1; the emulator applies what is missing.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE sequences (tenant TEXT PRIMARY KEY, value BIGINT NOT NULL);
    CREATE TABLE operations (
        tenant TEXT NOT NULL, id TEXT NOT NULL, seq BIGINT NOT NULL,
        search_export_id TEXT NOT NULL UNIQUE, record TEXT NOT NULL,
        PRIMARY KEY (tenant, id));
    CREATE INDEX operations_by_seq ON operations (tenant, seq);
    CREATE INDEX operations_by_id ON operations (id);
    CREATE TABLE buckets (
        tenant TEXT NOT NULL, key_id TEXT NOT NULL, endpoint TEXT NOT NULL,
        tokens DOUBLE PRECISION, updated DOUBLE PRECISION,
        PRIMARY KEY (tenant, key_id, endpoint));
    CREATE TABLE controls (scope TEXT PRIMARY KEY, state TEXT);
    CREATE TABLE journal (
        n BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, tenant TEXT, entry TEXT NOT NULL);
    CREATE INDEX journal_by_tenant ON journal (tenant, n);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
TABLES = ("meta", "sequences", "operations", "buckets", "controls", "journal")


@dataclass
class _Tx:
    """A thread's open unit of work."""

    conn: Connection
    began: bool = False  # BEGIN sent (at the first write)
    dirty: bool = False  # changed the clock or control settings
    widened: bool = False  # ... in a way other replicas must see before the answer


class StoreError(ValueError):
    """The database cannot be used at start: unreachable, refused, or of a newer schema."""


class PostgresStore:
    blocking = True  # every call waits on the network: run API work off the event loop

    def __init__(
        self, url: str, *, journal_max_bytes: int = 16 << 20, pool_size: int = POOL_SIZE
    ) -> None:
        self.url = url
        self.journal_max_bytes = journal_max_bytes
        self._journal_unchecked = 0  # bytes written since the journal's size was last bounded
        self.shown = redact_url(url)
        self._kwargs = _connect_options(url)
        prepare(url)
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            url,
            kwargs=self._kwargs,
            min_size=1,
            max_size=max(2, pool_size),
            timeout=POOL_WAIT_SECONDS,
            reconnect_timeout=2 * CONNECT_TIMEOUT,
            check=_alive,
            name="fullstory-emulator",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except PoolTimeout:
            self._pool.close()
            raise StoreError(f"cannot connect to PostgreSQL at {self.shown}") from None
        self._local = threading.local()  # .tx: this thread's open transaction, if any
        self._cache_lock = threading.Lock()
        self._cache: dict[Any, tuple[float, Any]] = {}  # key -> (expires, value)
        self._generation = 0  # bumped by this process's changes: reads begun before are stale
        self._down_until = 0.0  # until then, calls fail at once: the database was lost
        self._in_use = 0  # connections taken from the pool and not yet returned
        self._lock = threading.Lock()  # guards the journal buffer, its timer, the in-use count
        self._pending: list[tuple[str | None, str]] = []  # journal entries not yet written
        self._journal_writes = 0
        self._flusher: threading.Timer | None = None

    # -- connections and transactions -----------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A pooled connection; database failures become `StoreBusy` (a 503)."""
        if time.monotonic() < self._down_until:
            raise StoreBusy("the emulator's database is unavailable; retry in a moment")
        try:
            with self._pool.connection() as conn:
                with self._lock:
                    self._in_use += 1
                try:
                    yield conn
                finally:
                    with self._lock:
                        self._in_use -= 1
        except PoolTimeout:
            if self._in_use:  # the connections are all busy, not gone
                raise StoreBusy(
                    "the emulator is busy (every database connection is in use); retry"
                ) from None
            self._down_until = time.monotonic() + DOWN_SECONDS
            raise StoreBusy(
                "the emulator's database cannot be reached; retry in a moment"
            ) from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            # A lost connection is OperationalError itself (or the server shutting down);
            # its subclasses are a busy database: a deadlock, a lock or statement timeout.
            lost = type(exc) in (psycopg.OperationalError, psycopg.InterfaceError) or isinstance(
                exc, psycopg.errors.AdminShutdown | psycopg.errors.CannotConnectNow
            )
            if lost:
                self._down_until = time.monotonic() + DOWN_SECONDS
            what = "was lost" if lost else "is busy"
            raise StoreBusy(
                f"the emulator's database {what} ({_reason(exc)}); retry in a moment"
            ) from None
        except psycopg.errors.InFailedSqlTransaction:
            raise StoreBusy(
                "the emulator's database is busy (the transaction failed); retry in a moment"
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A unit of work on one connection: its writes commit together when the outermost use
        (on this thread) ends. `BEGIN` comes with the first write, so a request that changes
        nothing (a poll of a clock-driven export) runs its reads and opens no transaction."""
        if getattr(self._local, "tx", None) is not None:
            yield
            return
        with self._connection() as conn:
            tx = self._local.tx = _Tx(conn)
            try:
                yield
                if tx.began:
                    if conn.info.transaction_status == TransactionStatus.INTRANS:
                        self._write_journal(conn)  # not into a transaction that failed
                    conn.execute("COMMIT")
            except BaseException:
                if tx.began and not conn.closed:
                    with contextlib.suppress(psycopg.Error):
                        conn.execute("ROLLBACK")
                raise
            finally:
                self._local.tx = None
                if tx.dirty:
                    self._invalidate()  # what other threads cached meanwhile is stale now
        if tx.widened:
            time.sleep(CACHE_SECONDS)  # until every replica's cached copy has expired

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """The connection of this thread's transaction, begun (for a read-modify-write)."""
        with self.transaction():
            tx: _Tx = self._local.tx
            if not tx.began:
                tx.conn.execute("BEGIN")
                tx.began = True
            yield tx.conn

    def _rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """A read, on this thread's transaction's connection if one is open (to see its
        writes), else on any pooled connection."""
        tx: _Tx | None = getattr(self._local, "tx", None)
        if tx is not None:
            return tx.conn.execute(query, args).fetchall()
        with self._connection() as conn:
            return conn.execute(query, args).fetchall()

    def _one(self, query: str, *args: Any) -> Any:
        rows = self._rows(query, *args)
        return rows[0][0] if rows else None

    # -- the read cache of the clock and the control settings ---------------------------------
    def _cached(self, key: Any, read: Callable[[], T]) -> T:
        """`read()`, or its result if it was read less than CACHE_SECONDS ago (measured from
        before the read). Another replica's change can be that old only while its writer
        waits (`_changed(widens=True)`), so no client ever sees it missing."""
        tx: _Tx | None = getattr(self._local, "tx", None)
        if tx is not None and tx.dirty:
            return read()  # this transaction's own, uncommitted change
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]  # type: ignore[no-any-return]
            generation = self._generation
        value = read()
        with self._cache_lock:
            if generation == self._generation:
                self._cache[key] = (now + CACHE_SECONDS, value)
        return value

    def _invalidate(self) -> None:
        with self._cache_lock:
            self._generation += 1
            self._cache.clear()

    def _changed(self, *, widens: bool) -> None:
        """The open transaction changed the clock or control settings. A change that widens
        (a new rule, a setting, a moved clock, a reset) is answered only after CACHE_SECONDS,
        when no replica can still hold a copy from before it. A change that only spends (a
        rule's remaining count, a denial) need not wait: a stale copy still showing it leads
        to a locked re-read, which finds it spent."""
        tx: _Tx = self._local.tx
        tx.dirty = True
        tx.widened = tx.widened or widens
        self._invalidate()

    # -- metadata (clock, world origin, signing secret) --------------------------------------
    def meta(
        self, key: str, default: Callable[[], str], valid: Callable[[str], bool] = lambda _: True
    ) -> str:
        """The stored value of `key`, storing `default()` first if there is none (the first
        replica to ask decides; the others read its value), or if the stored one is not
        `valid` (it is replaced, with a warning)."""
        select = "SELECT value FROM meta WHERE key = %s FOR UPDATE"
        with self._write() as db:
            row = db.execute(select, (key,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                    (key, default()),
                )
                row = db.execute(select, (key,)).fetchone()
            assert row is not None
            if valid(row[0]):
                return str(row[0])
            log.warning("%s: the stored %s was unreadable and is replaced", self.shown, key)
            value = default()
            db.execute("UPDATE meta SET value = %s WHERE key = %s", (value, key))
            return value

    # -- operations ---------------------------------------------------------------------------
    def next_sequence(self, tenant: str) -> int:
        with self._write() as db:
            row = db.execute(
                "INSERT INTO sequences (tenant, value) VALUES (%s, 1) "
                "ON CONFLICT (tenant) DO UPDATE SET value = sequences.value + 1 RETURNING value",
                (tenant,),
            ).fetchone()
            return int(row[0]) if row else 0

    def add_operation(self, record: OperationRecord) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO operations (tenant, id, seq, search_export_id, record) "
                "VALUES (%s, %s, %s, %s, %s)",
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
        before = self.get_operation(tenant, operation_id)  # most updates (a poll of a
        if before is None:  # clock-driven export) change nothing, and take no lock
            return None
        after = update(before)
        if after == before:
            return after
        with self._write() as db:
            row = db.execute(
                "SELECT record FROM operations WHERE tenant = %s AND id = %s FOR UPDATE",
                (tenant, operation_id),
            ).fetchone()
            if row is None:
                return None
            before = self._decode(row[0])
            if before is None:
                return None
            after = update(before)
            if after != before:
                db.execute(
                    "UPDATE operations SET record = %s WHERE tenant = %s AND id = %s",
                    (json.dumps(encode_operation(after)), tenant, operation_id),
                )
            return after

    def get_operation(self, tenant: str, operation_id: str) -> OperationRecord | None:
        return self._decode(
            self._one(
                "SELECT record FROM operations WHERE tenant = %s AND id = %s", tenant, operation_id
            )
        )

    def _decode(self, raw: Any) -> OperationRecord | None:
        """A stored operation, or None (with a warning) if its row cannot be read: one bad row
        must not stop a replica or every listing."""
        if raw is None:
            return None
        try:
            return decode_operation(_loads(raw))
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            log.warning("%s: skipping an unreadable operation row: %r", self.shown, exc)
            return None

    def _records(self, rows: list[tuple[Any, ...]]) -> list[OperationRecord]:
        return [r for r in (self._decode(row[0]) for row in rows) if r is not None]

    def operations(self, tenant: str | None) -> list[OperationRecord]:
        if tenant is None:
            return self._records(self._rows("SELECT record FROM operations ORDER BY tenant, seq"))
        return self._records(
            self._rows("SELECT record FROM operations WHERE tenant = %s ORDER BY seq", tenant)
        )

    def operations_page(
        self, tenant: str, before_seq: int | None, limit: int
    ) -> list[OperationRecord]:
        return self._records(
            self._rows(
                "SELECT record FROM operations WHERE tenant = %s AND seq < %s "
                "ORDER BY seq DESC LIMIT %s",
                tenant,
                before_seq if before_seq is not None else 2**62,
                limit,
            )
        )

    def find_operation(self, operation_id: str) -> OperationRecord | None:
        return self._decode(
            self._one("SELECT record FROM operations WHERE id = %s LIMIT 1", operation_id)
        )

    def operation_by_export(self, search_export_id: str) -> OperationRecord | None:
        return self._decode(
            self._one("SELECT record FROM operations WHERE search_export_id = %s", search_export_id)
        )

    # -- rate-limit buckets --------------------------------------------------------------------
    def update_bucket(self, key: BucketKey, update: Callable[[Bucket | None], Bucket]) -> Bucket:
        """The bucket's row is locked before it is read, so concurrent requests on any replica
        spend its tokens one after the other. A missing row is first inserted empty (tokens
        NULL), so that there is a row to lock even for the first request."""
        where = "WHERE tenant = %s AND key_id = %s AND endpoint = %s"
        select = f"SELECT tokens, updated FROM buckets {where} FOR UPDATE"
        with self._write() as db:
            row = db.execute(select, key).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO buckets (tenant, key_id, endpoint) VALUES (%s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    key,
                )
                row = db.execute(select, key).fetchone()
            assert row is not None
            bucket = update(Bucket(row[0], row[1]) if row[0] is not None else None)
            db.execute(
                f"UPDATE buckets SET tokens = %s, updated = %s {where}",
                (bucket.tokens, bucket.updated, *key),
            )
            return bucket

    # -- control settings ----------------------------------------------------------------------
    def controls(self, scopes: Sequence[str | None]) -> list[ControlState]:
        keys = [_scope(scope) for scope in scopes]

        def read() -> list[ControlState]:
            rows = dict(
                self._rows(
                    "SELECT scope, state FROM controls WHERE scope = ANY(%s) AND state IS NOT NULL",
                    keys,
                )
            )
            return [decode_control(_loads(rows[k])) if k in rows else _EMPTY for k in keys]

        return self._cached(("controls", *keys), read)

    def update_control(
        self, tenant: str | None, update: Callable[[ControlState], tuple[ControlState, T]]
    ) -> T:
        """Read-modify-write under the scope's row lock (an empty row is made to lock first)."""
        scope = _scope(tenant)
        select = "SELECT state FROM controls WHERE scope = %s FOR UPDATE"
        with self._write() as db:
            row = db.execute(select, (scope,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO controls (scope) VALUES (%s) ON CONFLICT DO NOTHING", (scope,)
                )
                row = db.execute(select, (scope,)).fetchone()
            assert row is not None
            before = decode_control(_loads(row[0])) if row[0] is not None else _EMPTY
            after, result = update(before)
            if after != before:
                db.execute(
                    "UPDATE controls SET state = %s WHERE scope = %s",
                    (json.dumps(encode_control(after)), scope),
                )
                self._changed(widens=not _spends(before, after))
            return result

    # -- clock -----------------------------------------------------------------------------
    def clock_backend(self, initial: ClockState) -> ClockBackend:
        self.meta("clock", lambda: json.dumps(initial.to_json()), _readable_clock)
        return PostgresClockBackend(self, initial)

    # -- journal -------------------------------------------------------------------------------
    def append_journal(self, entry: dict[str, Any]) -> None:
        """Buffer the entry; the next transaction, or a timer soon after, writes it."""
        with self._lock:
            self._pending.append((entry.get("tenant"), json.dumps(entry)))
            if len(self._pending) > JOURNAL_LIMIT:  # the database is away for long: keep the last
                del self._pending[: len(self._pending) - JOURNAL_LIMIT]
            if self._flusher is None:
                self._flusher = threading.Timer(JOURNAL_FLUSH_SECONDS, self._flush_quietly)
                self._flusher.daemon = True
                self._flusher.start()

    def flush_journal(self) -> None:
        with self._lock:
            if not self._pending:
                return
        with self._write():
            pass  # the outermost transaction writes what is pending

    def _flush_quietly(self) -> None:
        """The timer's flush: with the database away, the entries wait for the next try."""
        with self._lock:
            self._flusher = None
        try:
            self.flush_journal()
        except StoreBusy:
            with self._lock:
                if self._pending and self._flusher is None:
                    self._flusher = threading.Timer(DOWN_SECONDS, self._flush_quietly)
                    self._flusher.daemon = True
                    self._flusher.start()

    def _write_journal(self, db: Connection) -> None:
        """Write the buffered entries into the open transaction, just before it commits.

        The journal lock (an advisory lock, held until the commit) is taken first: so entries
        are numbered in the order they commit, on every replica, and a reader paging by number
        never sees a later entry before an earlier one (and so never skips one); and the
        entries are taken from the buffer only once it is held, so that two transactions of
        this process write them in the order they were recorded."""
        if not self._pending:
            return
        db.execute("SELECT pg_advisory_xact_lock(%s)", (JOURNAL_LOCK,))
        with self._lock:
            pending, self._pending = self._pending, []
            if self._flusher is not None:
                self._flusher.cancel()
                self._flusher = None
        if not pending:
            return
        try:
            with db.cursor() as cursor:
                cursor.executemany("INSERT INTO journal (tenant, entry) VALUES (%s, %s)", pending)
        except BaseException:
            with self._lock:  # not written: keep them for the next transaction
                self._pending[:0] = pending
            raise
        before = self._journal_writes
        self._journal_writes += len(pending)
        self._journal_unchecked += sum(len(entry) for _, entry in pending)
        if (
            self._journal_writes // 1000 != before // 1000
            or self._journal_unchecked > self.journal_max_bytes // 8
        ):
            # Every replica trims now and then: JOURNAL_LIMIT entries and journal_max_bytes of
            # them at most, the oldest going first.
            self._journal_unchecked = 0
            db.execute(
                "DELETE FROM journal WHERE n <= (SELECT MAX(n) FROM journal) - %s",
                (JOURNAL_LIMIT,),
            )
            db.execute(
                "DELETE FROM journal WHERE n <= (SELECT MAX(n) FROM (SELECT n, SUM(octet_length("
                "entry)) OVER (ORDER BY n DESC) AS total FROM journal) AS sized WHERE total > %s)",
                (self.journal_max_bytes,),
            )

    def journal(self, tenant: str | None) -> list[dict[str, Any]]:
        self.flush_journal()
        if tenant is None:
            rows = self._rows("SELECT entry FROM journal ORDER BY n")
        else:
            rows = self._rows("SELECT entry FROM journal WHERE tenant = %s ORDER BY n", tenant)
        return [json.loads(r[0]) for r in rows]

    def journal_page(
        self, tenant: str | None, after: int, limit: int, match: JournalMatch | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        self.flush_journal()
        page: list[dict[str, Any]] = []
        size, last, cursor = 0, after, after
        while True:  # in batches: a page of a long journal reads only what it needs
            rows = self._rows(
                "SELECT n, entry FROM journal WHERE n > %s "
                "AND (%s::text IS NULL OR tenant = %s) ORDER BY n LIMIT 500",
                cursor,
                tenant,
                tenant,
            )
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

    def journal_newest(self, tenant: str | None) -> Iterator[dict[str, Any]]:
        self.flush_journal()
        below = 2**62  # read in batches, newest first
        while True:
            rows = self._rows(
                "SELECT n, entry FROM journal WHERE n < %s "
                "AND (%s::text IS NULL OR tenant = %s) ORDER BY n DESC LIMIT 500",
                below,
                tenant,
                tenant,
            )
            for _, entry in rows:
                yield _loads(entry)
            if len(rows) < 500:
                return
            below = rows[-1][0]

    def tenants(self) -> list[str]:
        self.flush_journal()
        rows = self._rows(
            "SELECT tenant FROM operations UNION SELECT tenant FROM sequences "
            "UNION SELECT tenant FROM journal WHERE tenant IS NOT NULL "
            "UNION SELECT scope FROM controls WHERE scope != %s AND state IS NOT NULL ORDER BY 1",
            INSTANCE,
        )
        return [str(r[0]) for r in rows]

    def clear_journal(self, tenant: str | None) -> None:
        with self._write() as db:
            self._write_journal(db)
            if tenant is None:
                db.execute("DELETE FROM journal")
            else:
                db.execute("DELETE FROM journal WHERE tenant = %s", (tenant,))

    def reset(self, tenant: str | None) -> None:
        with self._write() as db:
            self._changed(widens=True)
            self._write_journal(db)
            if tenant is None:
                for table in ("sequences", "operations", "buckets", "controls", "journal"):
                    db.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
                return
            for table in ("sequences", "operations", "buckets", "journal"):
                db.execute(
                    sql.SQL("DELETE FROM {} WHERE tenant = %s").format(sql.Identifier(table)),
                    (tenant,),
                )
            db.execute("DELETE FROM controls WHERE scope = %s", (tenant,))

    def close(self) -> None:
        try:
            self.flush_journal()
        finally:
            self._pool.close()


class PostgresClockBackend:
    """The clock's state in the meta table: one clock for every replica.

    It is read on every request, so reads are cached for CACHE_SECONDS; a replica that moves
    the clock answers only once every other replica's copy has expired (see
    `PostgresStore._changed`), so a test that moves it through one replica and polls through
    the next sees the new time.
    """

    def __init__(self, store: PostgresStore, initial: ClockState) -> None:
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
            row = db.execute("SELECT value FROM meta WHERE key = 'clock' FOR UPDATE").fetchone()
            before = self._decode(row[0] if row else None)
            state = change(before)
            if state != before or row is None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('clock', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (json.dumps(state.to_json()),),
                )
                self._store._changed(widens=True)
            return state


# -- schema -----------------------------------------------------------------------------------
def prepare(url: str) -> int:
    """Connect once and create or migrate the schema; a clear `StoreError` if that fails.
    Returns the schema version found."""
    try:
        with psycopg.connect(url, **_connect_options(url)) as conn:
            return migrate(conn)
    except psycopg.Error as exc:
        raise StoreError(f"cannot use PostgreSQL at {redact_url(url)}: {_reason(exc)}") from None


def _connect_options(url: str) -> dict[str, Any]:
    options: dict[str, Any] = {"autocommit": True}
    if "connect_timeout" not in psycopg.conninfo.conninfo_to_dict(url):
        options["connect_timeout"] = CONNECT_TIMEOUT
    return options


def migrate(conn: Connection) -> int:
    """Bring the schema to SCHEMA_VERSION in the connection's current schema (created if the
    search path names one that does not exist); returns the version found. Replicas starting
    together take turns on an advisory lock, so each migration runs once."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        schema = _target_schema(conn)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)")
        row = conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
        found = int(row[0]) if row else 0
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"the database's schema is version {found}, newer than this emulator's "
                f"{SCHEMA_VERSION}; upgrade the emulator (every replica runs the same version)"
            )
        for version in range(found, SCHEMA_VERSION):
            conn.execute(MIGRATIONS[version].encode())
        if row is None:
            conn.execute(f"INSERT INTO {VERSION_TABLE} VALUES (%s)", (SCHEMA_VERSION,))
        elif found != SCHEMA_VERSION:
            conn.execute(f"UPDATE {VERSION_TABLE} SET version = %s", (SCHEMA_VERSION,))
        return found


def _target_schema(conn: Connection) -> str:
    """The schema tables go into: the current one, or the first the search path names."""
    current = conn.execute("SELECT current_schema()").fetchone()
    if current and current[0]:
        return str(current[0])
    path = conn.execute("SELECT current_setting('search_path')").fetchone()
    names = [n.strip().strip('"') for n in str(path[0] if path else "").split(",")]
    named = [n for n in names if n and n != "$user"]
    if not named:
        raise StoreError("the connection's search_path names no schema to create tables in")
    return named[0]


@dataclass(frozen=True)
class Check:
    usable: bool
    lines: tuple[str, ...]


def check(url: str) -> Check:
    """Whether the database at `url` can hold an emulator's state, without changing it."""
    shown = redact_url(url)
    try:
        conn = psycopg.connect(url, **_connect_options(url))
    except psycopg.Error as exc:
        return Check(False, (f"{shown}: cannot connect: {_reason(exc)}",))
    with conn:
        info = conn.info
        version = f"{info.server_version // 10000}.{info.server_version % 10000}"
        lines = [f"{shown}: PostgreSQL {version}, database {info.dbname!r} as {info.user!r}"]
        try:
            schema = _target_schema(conn)
        except StoreError as exc:
            return Check(False, (*lines, str(exc)))
        standby = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        if standby and standby[0]:
            return Check(False, (*lines, "read-only: this server is a standby (in recovery)"))
        table = conn.execute(
            "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))", (schema, VERSION_TABLE)
        ).fetchone()
        found = 0
        if table and table[0]:
            row = conn.execute(
                sql.SQL("SELECT version FROM {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(VERSION_TABLE)
                )
            ).fetchone()
            found = int(row[0]) if row else 0
        exists = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s)", (schema,)
        ).fetchone()
        if exists and exists[0]:
            may = conn.execute("SELECT has_schema_privilege(%s, 'CREATE')", (schema,)).fetchone()
        else:
            may = conn.execute(
                "SELECT has_database_privilege(current_database(), 'CREATE')"
            ).fetchone()
        creates = bool(may and may[0])
        if found > SCHEMA_VERSION:
            return Check(
                False,
                (
                    *lines,
                    f"schema {schema!r} is at version {found}, newer than this emulator's "
                    f"{SCHEMA_VERSION}: upgrade the emulator",
                ),
            )
        if found == SCHEMA_VERSION:
            counts = conn.execute(
                sql.SQL(
                    "SELECT (SELECT count(*) FROM {s}.operations), "
                    "(SELECT count(DISTINCT tenant) FROM {s}.operations)"
                ).format(s=sql.Identifier(schema))
            ).fetchone()
            operations, tenants = counts if counts else (0, 0)
            lines.append(
                f"schema {schema!r} at version {found} (current): {operations} operation(s) "
                f"of {tenants} tenant(s)"
            )
            return Check(True, tuple(lines))
        action = "created" if found == 0 else f"migrated from version {found}"
        if not creates:
            return Check(
                False,
                (
                    *lines,
                    f"schema {schema!r} needs to be {action} at start (to version "
                    f"{SCHEMA_VERSION}), but {info.user!r} may not create tables in it",
                ),
            )
        lines.append(f"schema {schema!r} will be {action} at start (to version {SCHEMA_VERSION})")
        return Check(True, tuple(lines))


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


def _alive(conn: Connection) -> None:
    """The pool's check of an idle connection, without a round trip. An idle connection hears
    nothing from the server unless the server is leaving (a shutdown, a restart, a terminated
    backend), so anything to read, or a closed socket, means a fresh connection is needed."""
    if conn.closed or conn.pgconn.status != ConnStatus.OK:
        raise psycopg.OperationalError("the connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        conn.close()  # so that the pool replaces it rather than handing it out again
        raise psycopg.OperationalError("the server closed the connection while it was idle")


def _reason(exc: BaseException) -> str:
    """The first line of a database error (libpq never includes the password)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def _spends(before: ControlState, after: ControlState) -> bool:
    """Whether `after` differs from `before` only by what requests spend: a rule's remaining
    count or match count, a rule used up, a denial."""
    if replace(before, lifecycle=(), faults=(), deny_next=0) != replace(
        after, lifecycle=(), faults=(), deny_next=0
    ):
        return False
    if after.deny_next > before.deny_next:
        return False
    return _rules_spent(before.faults, after.faults) and _rules_spent(
        before.lifecycle, after.lifecycle
    )


def _rules_spent(before: Sequence[Any], after: Sequence[Any]) -> bool:
    old = {rule.id: rule for rule in before}
    for rule in after:
        was = old.get(rule.id)
        if was is None:
            return False
        fixed = {"remaining": None, **({"matched": 0} if hasattr(rule, "matched") else {})}
        if replace(rule, **fixed) != replace(was, **fixed):
            return False
        if rule.remaining is not None and was.remaining is not None:
            if rule.remaining > was.remaining:
                return False
        elif rule.remaining is None and was.remaining is not None:
            return False
    return True


def _scope(tenant: str | None) -> str:
    return INSTANCE if tenant is None else tenant
