"""An export operation and its lifecycle.

A record says when the operation was created and how it will play out (its Lifecycle). By
default its state at any instant is computed from the clock alone, never advanced by timers, so
the same clock reading always gives the same answer. Test authors can instead make it finish
after a number of polls, follow a scripted percentage, or finish it outright; those outcomes
are written into the record when they happen, so later readings stay stable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ..contract import COMPLETED, PENDING
from ..errors import Conflict, Unimplemented
from ..store.records import OperationRecord

CANCELLED_DETAILS = "cancelled"
FORCED_FAILURE_DETAILS = "failed by the emulator's control API"
STEPS = ((0.05, "QUEUED"), (0.6, "SEARCHING"), (1.0, "WRITING"))


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


def _poll_fraction(record: OperationRecord) -> tuple[int, float]:
    """Percent and progress fraction of a poll-driven operation after `record.polls` polls."""
    life = record.lifecycle
    polls = life.polls or 0
    if life.script:
        pct = life.script[min(record.polls, len(life.script)) - 1] if record.polls else 0
        return pct, pct / 100
    fraction = max(0, record.polls - 1) / polls if polls else 0.0
    return _pct(fraction), fraction


def status_at(
    record: OperationRecord, now: datetime, *, failure_state: str, retention: float
) -> Status:
    life = record.lifecycle

    def succeeded(at: datetime) -> Status:
        return Status(COMPLETED, 100, "", at, "", at + timedelta(seconds=retention))

    def failed(at: datetime, pct: int, details: str) -> Status:
        return Status(failure_state, pct, "", at, details, None)

    if record.finished_at is not None and now >= record.finished_at:
        pending = replace(record, finished_at=None, forced_failure=None)
        last = status_at(pending, record.finished_at, failure_state=failure_state, retention=0)
        pct = last.pct if last.state == PENDING else 99
        if record.forced_failure is not None:
            return failed(record.finished_at, pct, record.forced_failure)
        if life.polls is not None and life.failure is not None:
            return failed(record.finished_at, pct, life.failure)
        return succeeded(record.finished_at)
    if record.cancelled_at is not None and now >= record.cancelled_at:
        before = replace(record, cancelled_at=None)
        last = status_at(before, record.cancelled_at, failure_state=failure_state, retention=0)
        if last.state == PENDING:
            return failed(record.cancelled_at, last.pct, CANCELLED_DETAILS)
    if life.polls is not None:
        pct, fraction = _poll_fraction(record)
        return Status(PENDING, pct, _step(fraction), None, "", None)
    elapsed = (now - record.created_at).total_seconds()
    fail_after = life.duration * life.fail_at if life.failure is not None else math.inf
    end = min(life.duration, fail_after)
    if elapsed < end:
        fraction = elapsed / life.duration if life.duration > 0 else 1.0
        return Status(PENDING, _pct(fraction), _step(fraction), None, "", None)
    finished = record.created_at + timedelta(seconds=end)
    if life.failure is not None and fail_after <= life.duration:
        return failed(finished, _pct(life.fail_at), life.failure)
    return succeeded(finished)


def polled(
    record: OperationRecord, status: Status, now: datetime, *, stall_limit: int = 0
) -> OperationRecord:
    """The record after a client's poll: poll-driven operations count it, and finish on the
    poll after their last. With a `stall_limit`, a clock-driven one counts the polls in a row
    that found the clock standing still (at creation, then where the previous poll found it):
    past the limit it finishes anyway, as it would have by the clock, so that a client that
    really sleeps is not left polling a frozen clock forever."""
    if status.state != PENDING:
        return record
    if record.lifecycle.polls is None:
        if not stall_limit:  # nothing to count for: a poll changes nothing (and writes nothing)
            return record
        still = now == (record.polled_at or record.created_at)
        stalled = record.stalled_polls + 1 if still else 0
        record = replace(record, polled_at=now, stalled_polls=stalled)
        if stall_limit and stalled > stall_limit:
            return replace(record, finished_at=now, forced_failure=record.lifecycle.failure)
        return record
    polls = record.polls + 1
    done = polls > max(record.lifecycle.polls, len(record.lifecycle.script))
    return replace(record, polls=polls, finished_at=now if done else None)


def cancel(record: OperationRecord, status: Status, now: datetime) -> OperationRecord:
    """Cancel a pending operation; a finished one cannot be, as FullStory answers with 501."""
    if status.state != PENDING:
        raise Unimplemented(
            f"operation {record.id} is {status.state} and can no longer be cancelled"
        )
    return replace(record, cancelled_at=now)


def force(
    record: OperationRecord, status: Status, now: datetime, failure: str | None
) -> OperationRecord:
    """Finish a pending operation now (the control API's complete and fail)."""
    if status.state != PENDING:
        raise Conflict(f"operation {record.id} is already {status.state}")
    return replace(record, finished_at=now, forced_failure=failure)
