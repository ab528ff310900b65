"""The default store: process memory, guarded by one lock."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from ..clock import ClockBackend, ClockState, MemoryClockBackend
from . import JOURNAL_LIMIT, BucketKey
from .records import Bucket, ControlState, OperationRecord

T = TypeVar("T")
_EMPTY = ControlState()


class MemoryStore:
    blocking = False  # every call is a few dictionary operations: fine on the event loop

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._sequences: dict[str, int] = {}
        self._operations: dict[tuple[str, str], OperationRecord] = {}
        self._by_tenant: dict[str, list[tuple[str, str]]] = {}
        self._by_export: dict[str, tuple[str, str]] = {}
        self._buckets: dict[BucketKey, Bucket] = {}
        self._controls: dict[str | None, ControlState] = {}
        self._journal: deque[dict[str, Any]] = deque(maxlen=JOURNAL_LIMIT)
        self._meta: dict[str, str] = {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            yield

    def meta(self, key: str, default: Callable[[], str]) -> str:
        """The value of `key`, storing `default()` first if there is none."""
        with self._lock:
            if key not in self._meta:
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

    def update_operation(
        self, tenant: str, operation_id: str, update: Callable[[OperationRecord], OperationRecord]
    ) -> OperationRecord | None:
        with self._lock:
            record = self._operations.get((tenant, operation_id))
            if record is None:
                return None
            self._operations[(tenant, operation_id)] = record = update(record)
            return record

    def get_operation(self, tenant: str, operation_id: str) -> OperationRecord | None:
        with self._lock:
            return self._operations.get((tenant, operation_id))

    def operations(self, tenant: str | None) -> list[OperationRecord]:
        """A tenant's operations in creation order (every tenant's, for None)."""
        with self._lock:
            if tenant is None:
                return list(self._operations.values())
            return [self._operations[key] for key in self._by_tenant.get(tenant, ())]

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
        with self._lock:
            self._journal.append(entry)

    def journal(self, tenant: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._journal if tenant is None or e["tenant"] == tenant]

    def clear_journal(self, tenant: str | None) -> None:
        with self._lock:
            kept = [] if tenant is None else [e for e in self._journal if e["tenant"] != tenant]
            self._journal = deque(kept, maxlen=JOURNAL_LIMIT)

    def reset(self, tenant: str | None) -> None:
        with self._lock:
            if tenant is None:
                containers = (self._sequences, self._operations, self._by_tenant, self._by_export)
                for container in (*containers, self._buckets, self._controls, self._journal):
                    container.clear()
                return
            self._sequences.pop(tenant, None)
            for key in self._by_tenant.pop(tenant, []):
                record = self._operations.pop(key)
                self._by_export.pop(record.search_export_id, None)
            self._buckets = {k: v for k, v in self._buckets.items() if k[0] != tenant}
            self._controls.pop(tenant, None)
        self.clear_journal(tenant)
