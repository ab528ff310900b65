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
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
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
    """Byte pieces of a whole file; their concatenation is the uncompressed export."""
    head = header(columns, extension)
    if head:
        yield head
    any_rows = False
    for piece in encode_body(rows, columns, extension, project=project, event_level=event_level):
        if extension == "json" and not any_rows:
            yield b"[\n"
        any_rows = True
        yield piece
    yield footer(extension, any_rows)


def header(columns: Sequence[str], extension: str) -> bytes:
    """What a file starts with whatever its rows: the CSV header line."""
    if extension != "csv":
        return b""
    return (_CsvFragment()(list(columns)) + "\n").encode("utf-8")


def separator(extension: str, first: bool) -> bytes:
    """What goes before a run of rows: JSON's "[" or the comma after the rows before."""
    if extension != "json":
        return b""
    return b"[\n" if first else b",\n"


def footer(extension: str, any_rows: bool) -> bytes:
    if extension != "json":
        return b""
    return b"\n]\n" if any_rows else b"[]\n"


def encode_body(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[str],
    extension: str,
    *,
    project: bool = True,
    event_level: frozenset[str] | None = None,
) -> Iterator[bytes]:
    """Byte pieces of a run of rows, without the file's header and framing: CSV lines without
    the header, JSON objects separated by ",\n" without the brackets. Empty rows give no piece.

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
        return _json_rows(rows, columns, project)
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


def _json_rows(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], project: bool
) -> Iterator[bytes]:
    dumps = orjson.dumps
    cut = _projector(columns, project)
    separator = b""
    for row in rows:
        yield separator + dumps(cut(row) if cut else row)
        separator = b",\n"


def _csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        get = row.get
        writer.writerow([get(c, "") for c in columns])
        if buffer.tell() >= BATCH_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
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
    out: list[str] = []
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
    if out:
        yield "".join(out).encode("utf-8")


@dataclass(frozen=True)
class Deflated:
    """Raw DEFLATE data that ends on a byte boundary in a non-final block (a sync flush), so that
    such segments concatenate into one stream, with the CRC-32 and length of what it holds."""

    data: bytes
    crc: int
    size: int


def deflate(pieces: Iterable[bytes], level: int = GZIP_LEVEL) -> Deflated:
    """Compress the concatenated pieces, fed in batches of ~64 KiB, as one segment."""
    compressor = isal_zlib.compressobj(level, isal_zlib.DEFLATED, -15)
    crc32 = isal_zlib.crc32
    out: list[bytes] = []
    batch: list[bytes] = []
    crc = size = pending = 0
    for piece in pieces:
        batch.append(piece)
        pending += len(piece)
        if pending >= BATCH_BYTES:
            data = b"".join(batch)
            crc = crc32(data, crc)
            out.append(compressor.compress(data))
            size += pending
            batch, pending = [], 0
    data = b"".join(batch)
    if not size and not data:
        return Deflated(b"", 0, 0)
    crc = crc32(data, crc)
    out.append(compressor.compress(data))
    out.append(compressor.flush(isal_zlib.Z_SYNC_FLUSH))
    return Deflated(b"".join(out), crc, size + pending)


def stored(data: bytes) -> Deflated:
    """`data` as stored (uncompressed) DEFLATE blocks: how the few framing bytes are written."""
    out = bytearray()
    for i in range(0, len(data), 0xFFFF):
        part = data[i : i + 0xFFFF]
        out += struct.pack("<BHH", 0, len(part), len(part) ^ 0xFFFF) + part
    return Deflated(bytes(out), isal_zlib.crc32(data), len(data))


class GzipMember:
    """One gzip member assembled from DEFLATE segments, as pigz does: the header, each segment's
    bytes in turn, an empty final block, then the CRC-32 and length of everything.

    The header has no name and no timestamp, so the same segments give the same bytes.
    """

    HEADER = bytes.fromhex("1f8b08000000000000ff")
    _LAST_BLOCK = b"\x01\x00\x00\xff\xff"  # an empty stored block with BFINAL set

    def __init__(self) -> None:
        self.crc = 0
        self.size = 0

    def add(self, segment: Deflated) -> bytes:
        self.crc = isal_zlib.crc32_combine(self.crc, segment.crc, segment.size)
        self.size += segment.size
        return segment.data

    def finish(self) -> bytes:
        return self._LAST_BLOCK + struct.pack("<II", self.crc, self.size & 0xFFFFFFFF)


def gzip_stream(pieces: Iterable[bytes], level: int = GZIP_LEVEL) -> Iterator[bytes]:
    """One gzip member of the concatenated pieces, as a single segment (for small files)."""
    member = GzipMember()
    yield member.HEADER
    yield member.add(deflate(pieces, level))
    yield member.finish()
