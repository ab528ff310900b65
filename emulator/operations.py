"""An export operation and its lifecycle, as a pure function of the clock.

A record says when the operation was created and how it will play out (its Lifecycle); its state
at any instant is computed, never advanced by timers or poll counts, so the same clock reading
always gives the same answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .errors import Unimplemented
from .export.spec import ExportSpec

PENDING, COMPLETED = "PENDING", "COMPLETED"
CANCELLED_DETAILS = "cancelled"
STEPS = ((0.05, "QUEUED"), (0.6, "SEARCHING"), (1.0, "WRITING"))


@dataclass(frozen=True)
class Lifecycle:
    duration: float  # seconds from creation until the operation finishes
    failure: str | None = None  # errorDetails when the operation is to fail
    fail_at: float = 1.0  # fraction of `duration` at which it fails


@dataclass(frozen=True)
class OperationRecord:
    id: str
    tenant: str
    seq: int
    created_at: datetime
    spec: ExportSpec
    lifecycle: Lifecycle
    search_export_id: str
    segment_name: str
    cancelled_at: datetime | None = None


@dataclass(frozen=True)
class Status:
    state: str  # PENDING, COMPLETED, or the failure state name
    pct: int
    step: str
    finished_at: datetime | None
    error_details: str
    expires: datetime | None  # results.expires, on success only


def _pct(fraction: float) -> int:
    # The epsilon keeps 4.2 s of 10 s at 42, not 41.99999.
    return max(0, min(99, math.floor(fraction * 100 + 1e-9)))


def _step(fraction: float) -> str:
    return next(name for bound, name in STEPS if fraction < bound or bound == 1.0)


def status_at(
    record: OperationRecord, now: datetime, *, failure_state: str, retention: float
) -> Status:
    life = record.lifecycle
    elapsed = (now - record.created_at).total_seconds()
    fail_after = life.duration * life.fail_at if life.failure is not None else math.inf
    end = min(life.duration, fail_after)
    if record.cancelled_at is not None:
        cancelled_after = (record.cancelled_at - record.created_at).total_seconds()
        if cancelled_after < end and elapsed >= cancelled_after:
            return Status(
                failure_state,
                _pct(cancelled_after / life.duration if life.duration else 0),
                "",
                record.cancelled_at,
                CANCELLED_DETAILS,
                None,
            )
    if elapsed < end:
        fraction = elapsed / life.duration if life.duration > 0 else 1.0
        return Status(PENDING, _pct(fraction), _step(fraction), None, "", None)
    finished = record.created_at + timedelta(seconds=end)
    if life.failure is not None and fail_after <= life.duration:
        return Status(failure_state, _pct(life.fail_at), "", finished, life.failure, None)
    return Status(COMPLETED, 100, "", finished, "", finished + timedelta(seconds=retention))


def cancel(record: OperationRecord, status: Status, now: datetime) -> OperationRecord:
    """Cancel a pending operation; a finished one cannot be, as FullStory answers with 501."""
    if status.state != PENDING:
        raise Unimplemented(
            f"operation {record.id} is {status.state} and can no longer be cancelled"
        )
    return replace(record, cancelled_at=now)
