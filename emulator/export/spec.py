"""What an export asks for, validated and resolved to absolute instants at creation time.

A spec pins `as_of_ms` (the clock at creation), so that an export's file is the same bytes
whenever it is downloaded, however the clock moves afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

TYPES = ("TYPE_INDIVIDUAL", "TYPE_EVENT", "TYPE_PAGES", "TYPE_SESSIONS")
FORMATS = {"FORMAT_CSV": "csv", "FORMAT_JSON": "json", "FORMAT_NDJSON": "ndjson"}
SCOPES = ("SCOPE_EVENT", "SCOPE_PAGES", "SCOPE_SESSIONS", "SCOPE_INDIVIDUAL")
SCOPE_ALIASES = {"SCOPE_EVENTS": "SCOPE_EVENT"}
TYPE_SCOPES = {"TYPE_PAGES": "SCOPE_PAGES", "TYPE_SESSIONS": "SCOPE_SESSIONS"}


@dataclass(frozen=True)
class ExportSpec:
    segment_id: str
    kind: str  # "individual" or "event"
    scope: str  # one of SCOPES; meaningful for event exports
    format: str  # one of FORMATS
    range_start_ms: int  # rows: start inclusive
    range_end_ms: int  # rows: end exclusive
    segment_start_ms: int  # membership window, start inclusive
    segment_end_ms: int  # membership window, end exclusive
    fields: tuple[str, ...]  # resolved columns, in file order
    timezone: str
    as_of_ms: int

    @property
    def extension(self) -> str:
        return FORMATS[self.format]

    @property
    def rows_window(self) -> tuple[int, int]:
        """Rows fall inside both time ranges."""
        return (
            max(self.range_start_ms, self.segment_start_ms),
            min(self.range_end_ms, self.segment_end_ms, self.as_of_ms),
        )


@dataclass(frozen=True)
class TimeRange:
    """A requested range; None stands for an empty string (open-ended)."""

    start_ms: int | None
    end_ms: int | None


@dataclass(frozen=True)
class ExportRequest:
    """A create-export body, checked for shape but not yet resolved against the world."""

    segment_id: str
    type: str
    format: str
    time_range: TimeRange | None
    segment_time_range: TimeRange | None
    timezone: str
    fields: tuple[str, ...] | None
    scope: str | None
