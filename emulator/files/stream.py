"""Serialise rows as CSV, JSON or NDJSON and gzip them, chunk by chunk.

Nothing here holds a whole file: rows are encoded in batches of about 64 KiB and fed through one
gzip stream, whose header carries no timestamp, so the same rows give the same bytes.

Speed decides the tools (see bench/export_throughput.py): orjson encodes a row about five times
faster than the standard library, and ISA-L's gzip (level 1) compresses about five times faster
than zlib at level 1, with smaller output. Rows are passed through untouched when the export
asks for every default column, since projecting a 50-key row costs more than encoding it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
from isal import isal_zlib

BATCH_BYTES = 64 * 1024
GZIP_LEVEL = 1  # ISA-L levels run 0..3
_MISSING = object()


def encode(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[str],
    extension: str,
    *,
    project: bool = True,
    event_level: frozenset[str] | None = None,
) -> Iterator[bytes]:
    """Byte pieces of the file; their concatenation is the uncompressed export.

    With `project=False` the rows are trusted to hold exactly the wanted columns (JSON keys then
    keep the rows' own order); otherwise each row is cut down to `columns`, in that order.
    `event_level` names the only columns that can differ between rows of one `PageId`; CSV
    renders the others once per page.
    """
    if extension == "csv":
        if event_level is not None and len(columns) > 1:  # one column: an empty line must be ""
            return _csv_by_page(rows, columns, event_level)
        return _csv(rows, columns)
    if extension == "json":
        return _json_array(rows, columns, project)
    return _ndjson(rows, columns, project)


def _projector(columns: Sequence[str], project: bool) -> Any:
    if not project:
        return None

    def cut(row: dict[str, Any]) -> dict[str, Any]:
        get = row.get
        return {c: v for c in columns if (v := get(c, _MISSING)) is not _MISSING}

    return cut


def _ndjson(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], project: bool
) -> Iterator[bytes]:
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    cut = _projector(columns, project)
    if cut is None:
        for row in rows:
            yield dumps(row, option=newline)
    else:
        for row in rows:
            yield dumps(cut(row), option=newline)


def _json_array(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], project: bool
) -> Iterator[bytes]:
    dumps = orjson.dumps
    cut = _projector(columns, project)
    separator = b"[\n"
    for row in rows:
        yield separator + dumps(cut(row) if cut else row)
        separator = b",\n"
    yield b"[]\n" if separator == b"[\n" else b"\n]\n"


def _csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        get = row.get
        writer.writerow([get(c, "") for c in columns])
        if buffer.tell() >= BATCH_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


class _CsvFragment:
    """Renders values as part of a CSV line (quoting as the csv module does)."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="")

    def __call__(self, values: list[Any]) -> str:
        if len(values) == 1 and values[0] == "":
            return ""  # the csv module would write a lone empty field as ""
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(values)
        return self._buffer.getvalue()


def _csv_by_page(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], event_level: frozenset[str]
) -> Iterator[bytes]:
    """CSV where runs of page-constant columns are rendered once per page, not once per row."""
    runs: list[tuple[bool, tuple[str, ...]]] = []
    for column in columns:
        per_row = column in event_level
        if runs and runs[-1][0] == per_row:
            runs[-1] = (per_row, (*runs[-1][1], column))
        else:
            runs.append((per_row, (column,)))
    fragment = _CsvFragment()
    out: list[str] = [fragment(list(columns)), "\n"]
    size = 0
    page: object = _MISSING
    cached: list[str | None] = []
    for row in rows:
        get = row.get
        page_id = get("PageId", _MISSING)
        if page_id is _MISSING or page_id != page:
            page = page_id
            cached = [
                None if per_row else fragment([get(c, "") for c in names])
                for per_row, names in runs
            ]
        line = ",".join(
            [
                fragment([get(c, "") for c in names]) if text is None else text
                for text, (_, names) in zip(cached, runs, strict=True)
            ]
        )
        out.append(line)
        out.append("\n")
        size += len(line)
        if size >= BATCH_BYTES:
            yield "".join(out).encode("utf-8")
            out, size = [], 0
    yield "".join(out).encode("utf-8")


def gzip_stream(pieces: Iterable[bytes], level: int = GZIP_LEVEL) -> Iterator[bytes]:
    """Gzip-compressed chunks of the concatenated pieces, batched to ~64 KiB of input."""
    compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)
    batch: list[bytes] = []
    size = 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece)
        if size >= BATCH_BYTES:
            out = compressor.compress(b"".join(batch))
            batch, size = [], 0
            if out:
                yield out
    out = compressor.compress(b"".join(batch)) + compressor.flush()
    if out:
        yield out
