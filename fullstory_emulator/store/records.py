"""The records the store keeps: plain, immutable data, with no rules attached.

The rules that create and change them live in `exports` and `control`; the store only swaps
whole records under its lock, so a reader never sees half a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from ..contract import FORMAT_EXTENSIONS
from ..settings import RateLimit


class _Unset:
    """The type of UNSET: a setting the control API has not overridden."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


@dataclass(frozen=True)
class ExportSpec:
    """What an export asks for, resolved to absolute instants at creation time.

    It pins `as_of_ms` (the clock at creation), so that an export's file is the same bytes
    whenever it is downloaded, however the clock moves afterwards.
    """

    segment_id: str
    kind: str  # "individual" or "event"
    scope: str  # one of contract.SCOPES; meaningful for event exports
    format: str  # one of contract.FORMATS
    range_start_ms: int  # rows: start inclusive
    range_end_ms: int  # rows: end exclusive
    segment_start_ms: int  # membership window, start inclusive
    segment_end_ms: int  # membership window, end exclusive
    fields: tuple[str, ...]  # resolved columns, in file order
    timezone: str
    as_of_ms: int

    @property
    def extension(self) -> str:
        return FORMAT_EXTENSIONS[self.format]

    @property
    def rows_window(self) -> tuple[int, int]:
        """Rows fall inside both time ranges."""
        return (
            max(self.range_start_ms, self.segment_start_ms),
            min(self.range_end_ms, self.segment_end_ms, self.as_of_ms),
        )


@dataclass(frozen=True)
class Lifecycle:
    duration: float  # seconds from creation until the operation finishes (inf: polls decide)
    failure: str | None = None  # errorDetails when the operation is to fail
    fail_at: float = 1.0  # fraction of `duration` at which it fails
    polls: int | None = None  # finish on poll number polls + 1, whatever the clock says
    script: tuple[int, ...] = ()  # percent shown on successive polls


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
    polls: int = 0
    finished_at: datetime | None = None  # set when polls or the control API finished it
    forced_failure: str | None = None  # errorDetails of a failure forced by the control API
    polled_at: datetime | None = None  # the clock at the last poll of a clock-driven export
    stalled_polls: int = 0  # polls in a row that found the clock where the one before did


@dataclass(frozen=True)
class Bucket:
    """A rate-limit token bucket."""

    tokens: float
    updated: float  # clock reading, epoch seconds


@dataclass(frozen=True)
class LifecycleRule:
    """How upcoming exports play out, instead of the clock-driven default."""

    id: str
    segment_id: str | None = None
    seconds: float | None = None
    polls: int | None = None
    script: tuple[int, ...] = ()
    fail: str | None = None
    remaining: int | None = None  # None: every export from now on


@dataclass(frozen=True)
class FaultRule:
    """A matcher (method, path glob, headers) and what to do to the requests it matches."""

    id: str
    method: str | None = None
    path: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    status: int | None = None
    retry_after: int | None = None
    message: str | None = None
    latency_ms: float = 0.0
    drop: bool = False
    truncate_after_bytes: int | None = None
    truncate_after_fraction: float | None = None  # of the body's Content-Length
    expired: bool = False  # a download answers as if its signed URL had expired
    bytes_per_second: int | None = None
    remaining: int | None = None
    probability: float | None = None
    seed: int = 0
    matched: int = 0  # how many requests matched: the index of the next probability draw


@dataclass(frozen=True)
class ControlState:
    """The control settings of one tenant (or of the instance, under every tenant)."""

    lifecycle: tuple[LifecycleRule, ...] = ()
    faults: tuple[FaultRule, ...] = ()
    rate_limit: RateLimit | _Unset | None = UNSET  # None: off
    deny_next: int = 0
    deny_retry_after: int = 1
    url_ttl: float | _Unset = UNSET  # seconds
    export_duration: float | _Unset = UNSET
    failure_state: str | _Unset = UNSET  # ERROR or FAILED
    max_export_events: int | _Unset = UNSET  # estimated events
    next_rule: int = 1
