"""Serialise rows as CSV, JSON or NDJSON and gzip them, chunk by chunk.

Nothing here holds a whole file: rows are encoded in batches of about 64 KiB and fed through one
zlib stream, whose gzip header carries no timestamp, so the same rows give the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

BATCH_BYTES = 64 * 1024
GZIP_LEVEL = 6
_MISSING = object()


def encode(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], extension: str
) -> Iterator[str]:
    """Text pieces of the file; their concatenation is the uncompressed export."""
    if extension == "csv":
        return _csv(rows, columns)
    if extension == "json":
        return _json_array(rows, columns)
    return _ndjson(rows, columns)


def _project(row: dict[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    get = row.get
    return {c: v for c in columns if (v := get(c, _MISSING)) is not _MISSING and v != ""}


def _ndjson(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Iterator[str]:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for row in rows:
        yield dumps(_project(row, columns)) + "\n"


def _json_array(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Iterator[str]:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    separator = "[\n"
    for row in rows:
        yield separator + dumps(_project(row, columns))
        separator = ",\n"
    yield "[]\n" if separator == "[\n" else "\n]\n"


def _csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        get = row.get
        writer.writerow([get(c, "") for c in columns])
        if buffer.tell() >= BATCH_BYTES:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def gzip_stream(pieces: Iterable[str], level: int = GZIP_LEVEL) -> Iterator[bytes]:
    """Gzip-compressed chunks of the concatenated pieces, batched to ~64 KiB of input."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    batch: list[str] = []
    size = 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece)
        if size >= BATCH_BYTES:
            out = compressor.compress("".join(batch).encode("utf-8"))
            batch, size = [], 0
            if out:
                yield out
    out = compressor.compress("".join(batch).encode("utf-8")) + compressor.flush()
    if out:
        yield out
