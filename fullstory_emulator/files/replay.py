"""Exports answered from a recording (`--replay DIR`): the recorded rows, not the world's.

An export of a segment and type whose time range lies inside a recorded export's window is
made of that export's recorded rows: those whose `EventStart` lies in the range (rows without
one, an individuals export's, are all kept), then encoded like any export's. An NDJSON export of
every field serves the recorded lines themselves, byte for byte; other formats and `fields`
projections go through the same encoders as the world's rows, so they read alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..contract import TYPE_EVENT, TYPE_INDIVIDUAL, TYPE_SCOPES
from ..recording import EXPORTS_DIR, RecordedExport, Recording, read_lines
from ..store.records import ExportSpec
from ..timestamps import parse_rfc3339, to_ms
from ..world.shape import Shape

_SCOPE_TYPES = {scope: export_type for export_type, scope in TYPE_SCOPES.items()}


@dataclass(frozen=True)
class RecordedRows:
    """A recorded export's rows file, as an export job carries it (it pickles to workers)."""

    root: str  # the recording's folder
    name: str  # the file, under the folder
    digest: str  # sha256 of the file: part of the job's key, so caches never mix recordings

    @property
    def path(self) -> str:
        return os.path.join(self.root, self.name)


def export_type(spec: ExportSpec) -> str | None:
    """The request type an export's spec stands for (None: an event export of individual
    scope, which no recording's type covers)."""
    if spec.kind == "individual":
        return TYPE_INDIVIDUAL
    if spec.scope == "SCOPE_EVENT":
        return TYPE_EVENT
    return _SCOPE_TYPES.get(spec.scope)


class Replay:
    """A loaded recording, ready to serve: the org's shape, and which export a spec replays."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.shape = Shape(recording.catalogue)
        self._windows: list[tuple[RecordedExport, int, int, RecordedRows]] = []
        digests = recording.rows_digests()
        for export in recording.exports:
            name = f"{EXPORTS_DIR}/{export.file}"
            start, end = to_ms(parse_rfc3339(export.start)), to_ms(parse_rfc3339(export.end))
            rows = RecordedRows(str(recording.root.absolute()), name, digests[export.file])
            self._windows.append((export, start, end, rows))

    def rows_for(self, spec: ExportSpec) -> RecordedRows | None:
        """The recorded rows that answer `spec`: the latest recorded export of its segment and
        type whose window holds the spec's time range."""
        kind = export_type(spec)
        for export, start, end, rows in reversed(self._windows):
            if (export.segment_id, export.type) != (spec.segment_id, kind):
                continue
            if start <= spec.range_start_ms and spec.range_end_ms <= end:
                return rows
        return None


def lines(recorded: RecordedRows, spec: ExportSpec) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """The recorded lines (without their newline) inside the spec's time range, each with its
    row decoded. The file is opened as at start (in a worker process too), so one swapped for a
    link or a device since is refused, not read."""
    start, end = spec.range_start_ms, spec.range_end_ms
    for _number, raw in read_lines(Path(recorded.root), recorded.name):
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        row = orjson.loads(line)  # checked when the recording was loaded
        when = row.get("EventStart")
        if isinstance(when, str):
            try:
                at = to_ms(parse_rfc3339(when))
            except ValueError:
                continue
            if not start <= at < end:
                continue
        yield line, row


def rows(recorded: RecordedRows, spec: ExportSpec) -> Iterator[dict[str, Any]]:
    return (row for _line, row in lines(recorded, spec))


def raw_ndjson(recorded: RecordedRows, spec: ExportSpec) -> Iterator[bytes]:
    """The recorded lines in the range, as recorded: an NDJSON export of every field."""
    for line, _row in lines(recorded, spec):
        yield line + b"\n"
