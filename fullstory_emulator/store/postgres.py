"""The SQL store in PostgreSQL, for `--store postgresql://...`: one emulator made of several
replicas (processes on any number of machines) behind a load balancer.

What is PostgreSQL's own (the rest is `sql.SQLStore`): a pool of connections, one per thread's
transaction; row locks (`SELECT ... FOR UPDATE`, a missing row inserted empty first so that
there is one to lock), so that replicas never spend the same token or "next N" rule twice; an
advisory lock that numbers journal entries in commit order; and a read cache of the clock and
control settings that lives CACHE_SECONDS, which a change that widens them waits out before it
is answered (so that no replica hides it).

The schema is versioned and created or migrated at start under an advisory lock, so replicas
starting together do not race. A lost database turns calls into `StoreBusy` (503) and the
connection pool reconnects when the database is back, without a restart.
"""

from __future__ import annotations

import functools
import select
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

import psycopg
from psycopg import sql
from psycopg.pq import ConnStatus, TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import StoreBusy
from ..logs import get_logger
from ..settings import redact_url
from .records import ControlState
from .sql import Db, SQLStore

T = TypeVar("T")
log = get_logger()
Connection = psycopg.Connection[tuple[Any, ...]]
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


class StoreError(ValueError):
    """The database cannot be used at start: unreachable, refused, or of a newer schema."""


@functools.lru_cache(maxsize=512)
def _pg(query: str) -> str:
    """The shared SQL's `?` parameters as psycopg's `%s`."""
    return query.replace("%", "%%").replace("?", "%s")


class _Db:
    """A pooled connection that takes the shared SQL."""

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def execute(self, query: str, args: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        return self.conn.execute(_pg(query), tuple(args))

    def executemany(self, query: str, rows: Iterable[Sequence[Any]], /) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(_pg(query), rows)


class PostgresStore(SQLStore):
    LOCK = " FOR UPDATE"
    EMPTY_ROWS = True
    ERROR = psycopg.Error
    RETRY_SECONDS = DOWN_SECONDS
    JOURNAL_ORDER = f"SELECT pg_advisory_xact_lock({JOURNAL_LOCK})"
    SETTLE_SECONDS = CACHE_SECONDS  # a widening change is answered once every copy expired

    def __init__(
        self, url: str, *, journal_max_bytes: int = 16 << 20, pool_size: int = POOL_SIZE
    ) -> None:
        super().__init__(redact_url(url), journal_max_bytes)
        self.url = url
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
        self._cache_lock = threading.Lock()
        self._cache: dict[Any, tuple[float, Any]] = {}  # key -> (expires, value)
        self._generation = 0  # bumped by this process's changes: reads begun before are stale
        self._down_until = 0.0  # until then, calls fail at once: the database was lost
        self._in_use = 0  # connections taken from the pool and not yet returned
        self._lock = threading.Lock()  # guards the in-use count

    @contextmanager
    def _session(self) -> Iterator[Db]:
        """A pooled connection; database failures become `StoreBusy` (a 503)."""
        if time.monotonic() < self._down_until:
            raise StoreBusy("the emulator's database is unavailable; retry in a moment")
        try:
            with self._pool.connection() as conn:
                with self._lock:
                    self._in_use += 1
                try:
                    yield _Db(conn)
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

    def _usable(self, db: Db) -> bool:
        status = cast(_Db, db).conn.info.transaction_status
        return status == TransactionStatus.INTRANS

    # -- the read cache of the clock and the control settings ---------------------------------
    def _cached(self, key: Any, read: Callable[[], T]) -> T:
        """`read()`, or its result if it was read less than CACHE_SECONDS ago (measured from
        before the read). Another replica's change can be that old only while its writer
        waits (`_settle`), so no client ever sees it missing."""
        tx = self._tx()
        if tx is not None and tx.dirty:
            return read()  # this transaction's own, uncommitted change
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return cast(T, hit[1])
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

    def _widens(self, before: ControlState, after: ControlState) -> bool:
        """A change that widens (a new rule, a setting, a moved clock, a reset) must wait
        (`_settle`); one that only spends (a rule's remaining count, a denial) need not: a
        stale copy still showing it leads to a locked re-read, which finds it spent."""
        return not _spends(before, after)

    def _close(self) -> None:
        self._pool.close()


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
