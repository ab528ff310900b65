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
import operator
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import filterfalse, islice
from typing import Any, NamedTuple

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
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(columns)
    return buffer.getvalue().encode("utf-8")


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


_MEMO_SIZE = 4096
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").fullmatch


class _CsvLines:
    """CSV lines of rows whose columns outside `event_level` are constant within a page.

    The plan, made once per export and per page, leaves little to do per row:

    - columns are cut into runs that are page-constant or event-level; a page's runs are
      rendered once, when its `PageId` first appears;
    - a row's event-level keys are the last ones of the row (rows are built as a page's dict
      plus the event's fields), so the row's *shape* is read off its tail, and each shape has a
      `%` template holding the page's runs and its own empty cells, and an itemgetter for its
      values in column order;
    - a value is written as `str(value)`, which is what the csv module writes for any value
      that needs no quotes (numbers, booleans, plain text); a line holding any other value
      (quotes, commas, line breaks, None) is written by the csv module itself.

    The output is exactly the csv module's (QUOTE_MINIMAL, "\n" line ends); a row that does
    not have the expected shape (an event-level key elsewhere than at its end, an odd key)
    is also handed to the csv module.
    """

    def __init__(self, columns: Sequence[str], event_level: frozenset[str]) -> None:
        self.columns = tuple(columns)
        self.event_level = event_level
        self.runs: list[tuple[bool, tuple[str, ...]]] = []
        for column in columns:
            per_row = column in event_level
            if self.runs and self.runs[-1][0] == per_row:
                self.runs[-1] = (per_row, (*self.runs[-1][1], column))
            else:
                self.runs.append((per_row, (column,)))
        self.page_runs = [names for per_row, names in self.runs if not per_row]
        self.plans: dict[tuple[str, ...], _Shape | None] = {}
        self._parts: list[str] = []
        # "\n" as the line end, as the file has: the csv module quotes a value holding it
        self.writerow = csv.writer(_Appender(self._parts), lineterminator="\n").writerow
        self.blanks = ("",) * len(self.columns)
        # which of the candidates the csv module quotes (a lone "\r" varies across versions)
        quoted = "".join(c for c in '",\r\n' if self.csv_line(("a", "b" + c)) != "a,b" + c)
        self.quoted = _any_of(quoted)
        self.cell = _cell_writer(self.quoted)
        self.memo: dict[str, str] = {}  # a text that needs quotes -> how the csv module writes it

    def csv_line(self, values: Sequence[Any]) -> str:
        """Values as the csv module writes them in a line (where a lone empty field, which it
        writes as "" when alone on a line, is just empty)."""
        if len(values) == 1 and (values[0] is None or values[0] == ""):
            return ""
        self.writerow(values)
        return self._parts.pop()[:-1]

    def page_texts(self, row: dict[str, Any]) -> tuple[str, ...]:
        get, blanks, texts, quoted = row.get, self.blanks, [], self.quoted
        for names in self.page_runs:
            values = tuple(map(get, names, blanks))
            plain = tuple(map(str, values))
            if None in values or quoted("\x00".join(plain)):
                plain = self.cells(values, plain)
            texts.append(",".join(plain))
        return tuple(texts)

    def cells(self, values: tuple[Any, ...], plain: tuple[str, ...]) -> tuple[str, ...]:
        """Values as the csv module writes them in a line of several (`plain`: their str()).

        A value that needs quotes is almost always one seen before (a user agent, a
        "lat,long", a custom event's EventVarFields), so the quoted texts are remembered: if
        every text that needs quotes is a remembered one (checked in C), the cells are read
        from the memo in C, a fraction of the cost of writing them one by one."""
        memo, quoted = self.memo, self.quoted
        if None not in values and not quoted("\x00".join(filterfalse(memo.__contains__, plain))):
            return tuple(map(memo.get, plain, plain))
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo.update(
            (t, self.cell(t))
            for v, t in zip(values, plain, strict=True)
            if v is not None and quoted(t)
        )
        return tuple(map(self.cell, values))

    def plan(self, keys: tuple[str, ...]) -> _Shape | None:
        """For a shape (its event-level keys, last first): the line's `%` template, whose slots
        take the page's runs then the values, and the getters that order them so."""
        event_level = self.event_level
        if not all(key in event_level and _PLAIN_KEY(key) for key in keys):
            return None
        present = set(keys)
        ordered = [c for per_row, names in self.runs if per_row for c in names if c in present]
        slot = {column: len(self.page_runs) + i for i, column in enumerate(ordered)}
        cells: list[str] = []
        order: list[int] = []
        page = 0
        for per_row, names in self.runs:
            if not per_row:
                cells.append("%s")
                order.append(page)
                page += 1
                continue
            for column in names:
                if column in slot:
                    cells.append("%s")
                    order.append(slot[column])
                else:
                    cells.append("")
        return _Shape(",".join(cells) + "\n", _tuple_getter(ordered), _tuple_getter(order))

    def __call__(self, rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
        event_level, plans, make_plan = self.event_level, self.plans, self.plan
        quoted, page_texts, csv_line = self.quoted, self.page_texts, self.csv_line
        columns, blanks = self.columns, self.blanks
        quote_cells, cells = len(columns) > 1, self.cells  # a lone empty field is written ""
        out: list[str] = []
        append = out.append
        size = 0
        page: object = _MISSING
        texts: tuple[str, ...] = ()
        page_keys = 0
        for row in rows:
            page_id = row.get("PageId", _MISSING)
            if page_id is _MISSING or page_id != page:
                page = page_id
                texts = page_texts(row)
                page_keys = len(row) - len(event_level.intersection(row))
            tail = len(row) - page_keys
            keys = tuple(islice(reversed(row), tail)) if tail > 0 else ()
            shape = plans.get(keys, _UNSEEN)
            if shape is _UNSEEN:
                shape = plans[keys] = make_plan(keys)
            line = None
            if shape is not None:
                template, values_of, order = shape
                values = values_of(row)
                plain = tuple(map(str, values))
                if None not in values and not quoted("\x00".join(plain)):
                    line = template % order(texts + plain)
                elif quote_cells:  # quotes, commas, line breaks or None
                    line = template % order(texts + cells(values, plain))
            if line is None:
                line = csv_line(tuple(map(row.get, columns, blanks))) + "\n"
            append(line)
            size += len(line)
            if size >= BATCH_BYTES:
                yield "".join(out).encode("utf-8")
                out = []
                append = out.append
                size = 0
        if out:
            yield "".join(out).encode("utf-8")


def _any_of(chars: str) -> Callable[[str], bool]:
    """Whether a text holds any of `chars`. One `in` per character scans at memchr speed; a
    regex character class walks the text a character at a time, 15 to 40 times slower on the
    few hundred characters of a CSV line (measured), which made it the CSV path's main cost."""

    def holds(text: str) -> bool:
        for char in chars:  # noqa: SIM110 (any() over a generator costs half as much again)
            if char in text:
                return True
        return False

    return holds


def _cell_writer(quoted: Callable[[str], object]) -> Callable[[Any], str]:
    """One value as the csv module writes it in a line of several: None empty, and quoted,
    inner quotes doubled, where `quoted` finds a character the module quotes. Rows with such a
    value (a custom event's EventVarFields JSON, an absent duration) stay on the fast path:
    only their odd cells pay."""

    def cell(value: Any) -> str:
        if value is None:
            return ""
        text = str(value)
        if quoted(text):
            return '"' + text.replace('"', '""') + '"'
        return text

    return cell


class _Shape(NamedTuple):
    """A row shape's `%` template, its values' getter, and the getter that orders page runs
    and values into the template's slots (a tuple: unpacked once per row)."""

    template: str
    values: Callable[[dict[str, Any]], tuple[Any, ...]]
    order: Callable[[tuple[str, ...]], tuple[str, ...]]


_UNSEEN = _Shape("", lambda row: (), lambda texts: ())  # a shape not planned yet


def _tuple_getter(keys: Sequence[Any]) -> Callable[[Any], tuple[Any, ...]]:
    """itemgetter that always answers a tuple (itemgetter of one key answers the bare item)."""
    if len(keys) == 1:
        key = keys[0]
        return lambda items: (items[key],)
    if not keys:
        return lambda items: ()
    return operator.itemgetter(*keys)


class _Appender:
    """A file-like `write` that appends to a list: the csv writer's output, without a buffer."""

    def __init__(self, parts: list[str]) -> None:
        self.write = parts.append


def _csv_by_page(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], event_level: frozenset[str]
) -> Iterator[bytes]:
    """CSV where page-constant columns are rendered once per page, not once per row."""
    return _CsvLines(columns, event_level)(rows)


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
