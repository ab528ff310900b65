"""The default store: process memory, guarded by one lock.

Memory is bounded by size, not only by count: the journal keeps at most `journal_max_bytes` of
entries (and JOURNAL_LIMIT of them), and operations at most `operations_max_bytes` by an
estimate of each record's size; past either bound the oldest go first.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson

from ..clock import ClockBackend, ClockState, MemoryClockBackend
from . import JOURNAL_LIMIT, BucketKey, JournalMatch, journal_page
from .records import Bucket, ControlState, OperationRecord

T = TypeVar("T")
loads = orjson.loads
_EMPTY = ControlState()
DEFAULT_JOURNAL_BYTES = 16 << 20
DEFAULT_OPERATIONS_BYTES = 64 << 20


def operation_size(record: OperationRecord) -> int:
    """An estimate of a record's memory: a fixed part plus its variable-length strings."""
    spec = record.spec
    strings = (record.segment_name, record.forced_failure or "", record.lifecycle.failure or "")
    fields = spec.fields
    return 2048 + 64 * len(fields) + sum(map(len, fields)) + sum(map(len, strings))


class MemoryStore:
    blocking = False  # every call is a few dictionary operations: fine on the event loop

    def __init__(
        self,
        *,
        journal_max_bytes: int = DEFAULT_JOURNAL_BYTES,
        operations_max_bytes: int = DEFAULT_OPERATIONS_BYTES,
    ) -> None:
        self.journal_max_bytes = journal_max_bytes
        self.operations_max_bytes = operations_max_bytes
        self._lock = threading.RLock()
        self._sequences: dict[str, int] = {}
        self._operations: dict[tuple[str, str], OperationRecord] = {}
        self._by_tenant: dict[str, list[tuple[str, str]]] = {}
        self._by_export: dict[str, tuple[str, str]] = {}
        self._buckets: dict[BucketKey, Bucket] = {}
        self._controls: dict[str | None, ControlState] = {}
        # (position, tenant, the entry as JSON): kept serialised, because a journal of dicts is
        # objects by the hundred thousand that every full garbage collection walks (80-110 ms, the
        # p99 of every request, measured with bench/api_throughput.py); bytes are not walked.
        self._journal: deque[tuple[int, str | None, bytes]] = deque()
        self.journal_bytes = 0
        self._journal_next = 1
        self._order: deque[tuple[str, str]] = deque()  # operations, oldest first
        self.operations_bytes = 0
        self._meta: dict[str, str] = {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            yield

    def meta(
        self, key: str, default: Callable[[], str], valid: Callable[[str], bool] = lambda _: True
    ) -> str:
        """The value of `key`, storing `default()` first if there is none (or it is not valid)."""
        with self._lock:
            if key not in self._meta or not valid(self._meta[key]):
                self._meta[key] = default()
            return self._meta[key]

    def clock_backend(self, initial: ClockState) -> ClockBackend:
        return MemoryClockBackend(initial)

    def next_sequence(self, tenant: str) -> int:
        with self._lock:
            value = self._sequences.get(tenant, 0) + 1
            self._sequences[tenant] = value
            return value

    def add_operation(self, record: OperationRecord) -> None:
        key = (record.tenant, record.id)
        with self._lock:
            if key in self._operations:
                raise KeyError(f"operation {record.id} exists")
            self._operations[key] = record
            self._by_tenant.setdefault(record.tenant, []).append(key)
            self._by_export[record.search_export_id] = key
            self._order.append(key)
            self.operations_bytes += operation_size(record)
            while self.operations_bytes > self.operations_max_bytes and len(self._order) > 1:
                self._forget(self._order[0])

    def _forget(self, key: tuple[str, str]) -> None:
        """Drop the oldest operation (`key`), under the lock: the memory bound is reached."""
        self._order.popleft()
        record = self._operations.pop(key, None)
        if record is None:
            return
        self.operations_bytes -= operation_size(record)
        self._by_export.pop(record.search_export_id, None)
        keys = self._by_tenant.get(record.tenant)
        if keys and keys[0] == key:
            keys.pop(0)
        elif keys and key in keys:
            keys.remove(key)

    def update_operation(
        self, tenant: str, operation_id: str, update: Callable[[OperationRecord], OperationRecord]
    ) -> OperationRecord | None:
        with self._lock:
            record = self._operations.get((tenant, operation_id))
            if record is None:
                return None
            after = update(record)
            self._operations[(tenant, operation_id)] = after
            self.operations_bytes += operation_size(after) - operation_size(record)
            return after

    def get_operation(self, tenant: str, operation_id: str) -> OperationRecord | None:
        with self._lock:
            return self._operations.get((tenant, operation_id))

    def operations(self, tenant: str | None) -> list[OperationRecord]:
        """A tenant's operations in creation order (every tenant's, for None)."""
        with self._lock:
            if tenant is None:
                return list(self._operations.values())
            return [self._operations[key] for key in self._by_tenant.get(tenant, ())]

    def operations_page(
        self, tenant: str, before_seq: int | None, limit: int
    ) -> list[OperationRecord]:
        with self._lock:
            keys = self._by_tenant.get(tenant, [])
            operations = self._operations
            end = len(keys)
            if before_seq is not None:  # sequence numbers rise along the list
                end = bisect.bisect_left(keys, before_seq, key=lambda k: operations[k].seq)
            return [operations[key] for key in reversed(keys[max(0, end - limit) : end])]

    def find_operation(self, operation_id: str) -> OperationRecord | None:
        with self._lock:
            return next(
                (r for (_, oid), r in self._operations.items() if oid == operation_id), None
            )

    def operation_by_export(self, search_export_id: str) -> OperationRecord | None:
        with self._lock:
            key = self._by_export.get(search_export_id)
            return self._operations.get(key) if key else None

    def update_bucket(self, key: BucketKey, update: Callable[[Bucket | None], Bucket]) -> Bucket:
        with self._lock:
            value = update(self._buckets.get(key))
            self._buckets[key] = value
            return value

    def controls(self, scopes: Sequence[str | None]) -> list[ControlState]:
        with self._lock:
            return [self._controls.get(scope) or _EMPTY for scope in scopes]

    def update_control(
        self, tenant: str | None, update: Callable[[ControlState], tuple[ControlState, T]]
    ) -> T:
        with self._lock:
            state, result = update(self._controls.get(tenant) or _EMPTY)
            self._controls[tenant] = state
            return result

    def append_journal(self, entry: dict[str, Any]) -> None:
        blob = orjson.dumps(entry)
        with self._lock:
            self._journal.append((self._journal_next, entry["tenant"], blob))
            self._journal_next += 1
            self.journal_bytes += len(blob)
            while self._journal and (
                self.journal_bytes > self.journal_max_bytes or len(self._journal) > JOURNAL_LIMIT
            ):
                self.journal_bytes -= len(self._journal.popleft()[2])

    def journal(self, tenant: str | None) -> list[dict[str, Any]]:
        with self._lock:
            entries = list(self._journal)
        return [loads(blob) for _, owner, blob in entries if tenant is None or owner == tenant]

    def journal_page(
        self, tenant: str | None, after: int, limit: int, match: JournalMatch | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        with self._lock:
            entries = list(self._journal)  # a snapshot: the scan below runs without the lock
        mine = (
            (position, blob)
            for position, owner, blob in entries
            if position > after and (tenant is None or owner == tenant)
        )
        return journal_page(mine, after, limit, match, loads)

    def journal_newest(self, tenant: str | None) -> Iterator[dict[str, Any]]:
        with self._lock:
            entries = list(self._journal)  # references only: cheap, and no lock while reading
        for _, owner, blob in reversed(entries):
            if tenant is None or owner == tenant:
                yield loads(blob)

    def clear_journal(self, tenant: str | None) -> None:
        with self._lock:
            kept = [item for item in self._journal if tenant is not None and item[1] != tenant]
            self._journal = deque(kept)
            self.journal_bytes = sum(len(blob) for _, _, blob in kept)

    def tenants(self) -> list[str]:
        with self._lock:
            seen = set(self._by_tenant) | set(self._sequences)
            seen.update(
                s for s, state in self._controls.items() if s is not None and state != _EMPTY
            )
            seen.update(owner for _, owner, _ in self._journal if owner is not None)
        return sorted(seen)

    def reset(self, tenant: str | None) -> None:
        with self._lock:
            if tenant is None:
                containers = (self._sequences, self._operations, self._by_tenant, self._by_export)
                for container in (*containers, self._buckets, self._controls, self._journal):
                    container.clear()
                self._order.clear()
                self.journal_bytes = self.operations_bytes = 0
                return
            self._sequences.pop(tenant, None)
            for key in self._by_tenant.pop(tenant, []):
                record = self._operations.pop(key)
                self.operations_bytes -= operation_size(record)
                self._by_export.pop(record.search_export_id, None)
            self._order = deque(key for key in self._order if key[0] != tenant)
            self._buckets = {k: v for k, v in self._buckets.items() if k[0] != tenant}
            self._controls.pop(tenant, None)
        self.clear_journal(tenant)
