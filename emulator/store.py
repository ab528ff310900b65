"""All mutable state, behind one small interface.

The store keeps records and hands them back; it knows nothing of what they mean. Records are
immutable: an update replaces the whole record, so a reader never sees half a change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from .operations import OperationRecord

T = TypeVar("T")


class Store(Protocol):
    def next_sequence(self, tenant: str) -> int: ...
    def add_operation(self, record: OperationRecord) -> None: ...
    def save_operation(self, record: OperationRecord) -> None: ...
    def get_operation(self, tenant: str, operation_id: str) -> OperationRecord | None: ...
    def operations(self, tenant: str) -> list[OperationRecord]: ...
    def operation_by_export(self, search_export_id: str) -> OperationRecord | None: ...
    def update_bucket(self, key: str, update: Callable[[Any], Any]) -> Any: ...


class MemoryStore:
    """The default store: process memory, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._sequences: dict[str, int] = {}
        self._operations: dict[tuple[str, str], OperationRecord] = {}
        self._by_tenant: dict[str, list[tuple[str, str]]] = {}
        self._by_export: dict[str, tuple[str, str]] = {}
        self._buckets: dict[str, Any] = {}

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

    def save_operation(self, record: OperationRecord) -> None:
        key = (record.tenant, record.id)
        with self._lock:
            if key not in self._operations:
                raise KeyError(f"operation {record.id} does not exist")
            self._operations[key] = record

    def get_operation(self, tenant: str, operation_id: str) -> OperationRecord | None:
        with self._lock:
            return self._operations.get((tenant, operation_id))

    def operations(self, tenant: str) -> list[OperationRecord]:
        with self._lock:
            return [self._operations[key] for key in self._by_tenant.get(tenant, ())]

    def operation_by_export(self, search_export_id: str) -> OperationRecord | None:
        with self._lock:
            key = self._by_export.get(search_export_id)
            return self._operations.get(key) if key else None

    def update_bucket(self, key: str, update: Callable[[T | None], T]) -> T:
        with self._lock:
            value = update(self._buckets.get(key))
            self._buckets[key] = value
            return value
