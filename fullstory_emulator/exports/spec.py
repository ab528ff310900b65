"""What a create-export request asks for, checked for shape but not yet resolved."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TimeRange:
    """A requested range; None stands for an empty string (open-ended)."""

    start_ms: int | None
    end_ms: int | None


@dataclass(frozen=True)
class ExportRequest:
    segment_id: str
    type: str
    format: str
    time_range: TimeRange | None
    segment_time_range: TimeRange | None
    timezone: str
    fields: tuple[str, ...] | None
    scope: str | None
