"""All mutable state, behind one small interface, with memory and SQLite backends.

The store keeps records (see `records`) and hands them back; it knows nothing of what they mean.
Records are immutable: an update replaces the whole record under the store's lock, so a reader
never sees half a change and two requests never spend the same "next N" rule twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from ..clock import ClockBackend, ClockState
from .records import Bucket, ControlState, OperationRecord

T = TypeVar("T")
JOURNAL_LIMIT = 50_000
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
    def append_journal(self, entry: dict[str, Any]) -> None: ...
    def journal(self, tenant: str | None) -> list[dict[str, Any]]: ...
    def clear_journal(self, tenant: str | None) -> None: ...
    def reset(self, tenant: str | None) -> None: ...
    def meta(self, key: str, default: Callable[[], str]) -> str: ...
    def clock_backend(self, initial: ClockState) -> ClockBackend: ...


__all__ = ["JOURNAL_LIMIT", "BucketKey", "Store"]
