"""All mutable state, behind one small interface, with three backends: memory (`memory`, the
default), SQLite (`sqlite`, for `--data-dir`) and PostgreSQL (`postgres`, for `--store`); the two
SQL backends share one implementation (`sql`) and differ only in connections, locking and dialect.

The store keeps records (see `records`) and hands them back; it knows nothing of what they mean.
Records are immutable: an update replaces the whole record under the store's lock, so a reader
never sees half a change and two requests never spend the same "next N" rule twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, ParamSpec, Protocol, TypeVar

from ..clock import ClockBackend, ClockState
from .records import Bucket, ControlState, OperationRecord

T = TypeVar("T")
P = ParamSpec("P")
STORE_THREADS = 4  # threads that run requests' store work (off_loop)
JOURNAL_LIMIT = 50_000  # entries, whatever their size (--journal-max-bytes bounds the bytes)
JOURNAL_PAGE = 1000  # entries in one page of GET /__emulator/journal
JOURNAL_PAGE_BYTES = 4 << 20  # ... and at most about this many bytes of them
JournalMatch = Callable[[dict[str, Any]], bool]
BucketKey = tuple[str, str, str]  # tenant, key id, endpoint


class Store(Protocol):
    blocking: bool  # whether calls may wait on I/O (and so belong off the event loop)

    def transaction(self) -> AbstractContextManager[None]:
        """Group the changes made inside into one atomic write (nested uses join the outer)."""
        ...

    def next_sequence(self, tenant: str) -> int: ...
    def add_operation(self, record: OperationRecord) -> None: ...
    def update_operation(
        self, tenant: str, operation_id: str, update: Callable[[OperationRecord], OperationRecord]
    ) -> OperationRecord | None: ...
    def get_operation(self, tenant: str, operation_id: str) -> OperationRecord | None: ...
    def operations(self, tenant: str | None) -> list[OperationRecord]: ...
    def operations_page(
        self, tenant: str, before_seq: int | None, limit: int
    ) -> list[OperationRecord]:
        """Up to `limit` of a tenant's operations with a sequence number below `before_seq`
        (None: any), newest first: only the rows it returns are read."""
        ...

    def find_operation(self, operation_id: str) -> OperationRecord | None:
        """The operation with this id, whichever tenant's it is."""
        ...

    def operation_by_export(self, search_export_id: str) -> OperationRecord | None: ...
    def update_bucket(
        self, key: BucketKey, update: Callable[[Bucket | None], Bucket]
    ) -> Bucket: ...
    def controls(self, scopes: Sequence[str | None]) -> list[ControlState]:
        """The control state of each scope (a tenant, or None for the instance), in one read."""
        ...

    def update_control(
        self, tenant: str | None, update: Callable[[ControlState], tuple[ControlState, T]]
    ) -> T: ...
    def append_journal(self, entry: dict[str, Any]) -> None:
        """Record a request's entry; never waits on I/O (the event loop calls it)."""
        ...

    def journal(self, tenant: str | None) -> list[dict[str, Any]]: ...
    def journal_newest(self, tenant: str | None) -> Iterator[dict[str, Any]]:
        """The journal newest first, read as it is consumed: the last few entries of a full
        journal cost what they are, not what the journal is."""
        ...

    def journal_page(
        self, tenant: str | None, after: int, limit: int, match: JournalMatch | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Up to `limit` entries (and about JOURNAL_PAGE_BYTES) recorded after position `after`
        that `match` accepts, oldest first, and the position to continue after (None: the end)."""
        ...

    def clear_journal(self, tenant: str | None) -> None: ...
    def reset(self, tenant: str | None) -> None: ...
    def tenants(self) -> list[str]:
        """Every tenant the store holds something for (operations, journal entries, control
        settings, id sequences), sorted: what the console offers to choose from."""
        ...

    def meta(self, key: str, default: Callable[[], str], valid: Callable[[str], bool] = ...) -> str:
        """The value kept under `key`; `default()` is stored first when there is none, or when
        the kept one is not `valid` (so that no stored value can stop a start)."""
        ...

    def clock_backend(self, initial: ClockState) -> ClockBackend: ...


def journal_page(
    entries: Iterable[tuple[int, str | bytes]],
    after: int,
    limit: int,
    match: JournalMatch | None,
    loads: Callable[[str | bytes], dict[str, Any]],
) -> tuple[list[dict[str, Any]], int | None]:
    """`Store.journal_page` over `entries` (position and JSON, oldest first, after position `after`,
    of the tenant asked for), read only as far as the page needs."""
    page: list[dict[str, Any]] = []
    size, last = 0, after
    for position, raw in entries:
        entry = loads(raw)
        if match is not None and not match(entry):
            continue
        if len(page) == limit or (page and size + len(raw) > JOURNAL_PAGE_BYTES):
            return page, last
        page.append(entry)
        size += len(raw)
        last = position
    return page, None


__all__ = ["JOURNAL_LIMIT", "JOURNAL_PAGE", "BucketKey", "JournalMatch", "Store", "journal_page"]


_queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
_threads: list[threading.Thread] = []
_threads_lock = threading.Lock()


def _serve() -> None:
    while True:
        _queue.get()()


class _Hop:
    """One call's way back to the loop: its answer, and whether the work has ended."""

    __slots__ = ("ended", "future", "waiter")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.ended = False
        self.waiter: asyncio.Future[None] | None = None  # a cancelled caller's, until the end


def _settle(hop: _Hop, result: Any, error: BaseException | None) -> None:
    """On the loop: the work ended (so a cancelled caller's check and this never race)."""
    hop.ended = True
    if not hop.future.done():  # (cancelled with its caller)
        if error is not None:
            hop.future.set_exception(error)
        else:
            hop.future.set_result(result)
    if hop.waiter is not None and not hop.waiter.done():
        hop.waiter.set_result(None)


async def off_loop(work: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`work(*args, **kwargs)` on one of a few threads of its own, in a copy of the caller's
    context (as anyio's threads run it), so that the event loop never waits for the store.

    A few threads, not Starlette's pool of 40: with 32 requests in flight each took a thread of
    its own and they fought for the GIL (and the SQLite connection's lock) between every step;
    on these threads a --data-dir poll cost about half the CPU (bench/api_throughput.py). The
    threads take plain calls from a queue and hand the result straight to the loop: an
    executor's future, its condition and the chaining of the two futures cost a --data-dir
    poll (two hops) about a tenth of its CPU. As with anyio, a cancelled caller waits for the
    work to end before it is cancelled."""
    if len(_threads) < STORE_THREADS:
        with _threads_lock:
            while len(_threads) < STORE_THREADS:
                thread = threading.Thread(target=_serve, name=f"store_{len(_threads)}", daemon=True)
                thread.start()
                _threads.append(thread)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    hop = _Hop(future)
    context = contextvars.copy_context()

    def call() -> None:
        result, error = None, None
        try:
            result = context.run(work, *args, **kwargs)
        except BaseException as exc:  # the caller's to handle, as the executor's were
            error = exc
        with contextlib.suppress(RuntimeError):  # a loop closed meanwhile waits for nothing
            loop.call_soon_threadsafe(_settle, hop, result, error)

    _queue.put(call)
    try:
        return await future  # (no shield: its futures and callbacks were ~3% of a poll)
    except asyncio.CancelledError:
        if not hop.ended:  # the work is not abandoned half done
            hop.waiter = loop.create_future()
            await hop.waiter
        raise
