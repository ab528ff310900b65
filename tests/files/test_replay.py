"""Which recorded export answers an export's spec (fullstory_emulator/files/replay.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fullstory_emulator.files.replay import Replay, export_type
from fullstory_emulator.recording import Catalogue, RecordedExport, Recording, Timeline
from fullstory_emulator.store.records import ExportSpec
from fullstory_emulator.timestamps import parse_rfc3339, to_ms
from tests.helpers import write_recording

TIMELINE = Timeline((), 1.0, "COMPLETED")


def spec(start: str, end: str, *, kind: str = "event", scope: str = "SCOPE_EVENT") -> ExportSpec:
    lo, hi = to_ms(parse_rfc3339(start)), to_ms(parse_rfc3339(end))
    return ExportSpec(
        "seg", kind, scope, "FORMAT_NDJSON", lo, hi, lo, hi, ("EventStart",), "UTC", hi
    )


def recorded(file: str, start: str, end: str, export_type: str = "TYPE_EVENT") -> RecordedExport:
    return RecordedExport("seg", export_type, start, end, file, 1, TIMELINE)


def test_types_and_scopes():
    base = spec("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
    assert export_type(base) == "TYPE_EVENT"
    assert export_type(dataclasses.replace(base, scope="SCOPE_PAGES")) == "TYPE_PAGES"
    assert export_type(dataclasses.replace(base, scope="SCOPE_SESSIONS")) == "TYPE_SESSIONS"
    assert export_type(dataclasses.replace(base, scope="SCOPE_INDIVIDUAL")) is None
    individual = dataclasses.replace(base, kind="individual", scope="SCOPE_INDIVIDUAL")
    assert export_type(individual) == "TYPE_INDIVIDUAL"


def test_the_latest_recorded_export_holding_the_range_answers(tmp_path: Path):
    day = recorded("day.ndjson", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
    hour = recorded("hour.ndjson", "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z")
    pages = recorded("p.ndjson", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "TYPE_PAGES")
    root = write_recording(
        tmp_path,
        segments=[{"id": "seg", "name": "Seg"}],
        catalogue=Catalogue({}),
        exports=[(day, b'{"a":1}\n'), (hour, b'{"a":2}\n'), (pages, b'{"a":3}\n')],
    )
    replay = Replay(Recording.load(root))

    def answer(s: ExportSpec) -> str | None:
        found = replay.rows_for(s)
        return Path(found.path).name if found else None

    assert answer(spec("2026-01-01T10:15:00Z", "2026-01-01T10:45:00Z")) == "hour.ndjson"
    assert answer(spec("2026-01-01T09:00:00Z", "2026-01-01T10:30:00Z")) == "day.ndjson"
    assert answer(spec("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")) == "day.ndjson"
    assert answer(spec("2025-12-31T23:59:59Z", "2026-01-01T01:00:00Z")) is None
    in_pages = spec("2026-01-01T10:15:00Z", "2026-01-01T10:45:00Z", scope="SCOPE_PAGES")
    assert answer(in_pages) == "p.ndjson"
    assert answer(dataclasses.replace(in_pages, segment_id="other")) is None
    hour_rows = replay.rows_for(spec("2026-01-01T10:15:00Z", "2026-01-01T10:45:00Z"))
    day_rows = replay.rows_for(spec("2026-01-01T09:00:00Z", "2026-01-01T10:30:00Z"))
    assert hour_rows and day_rows and hour_rows.digest != day_rows.digest  # a file's identity
