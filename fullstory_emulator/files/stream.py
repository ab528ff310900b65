"""Serialise rows as CSV, JSON or NDJSON and gzip them, chunk by chunk.

Nothing here holds a whole file: rows are encoded in batches of about 64 KiB and fed through one
gzip stream, whose header carries no timestamp, so the same rows give the same bytes.

Speed decides the tools (see bench/export_throughput.py): orjson encodes a row about five times
faster than the standard library, and ISA-L's gzip (level 1) compresses about five times faster
than zlib at level 1, with smaller output. Rows are passed through untouched when the export
asks for every default column, since projecting a 50-key row costs more than encoding it.
CSV can also be made from the world's pages (`encode_pages`), without building a 60-key row per
event: a session's and a page's columns are rendered once, and an event adds its own few.
"""

from __future__ import annotations

import csv
import io
import operator
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import filterfalse, groupby, islice
from typing import Any, NamedTuple

import orjson
from isal import isal_zlib

from ..world.events import Page, page_events

BATCH_BYTES = 64 * 1024
# The fields every event row adds to its page's, in the order `_CsvLines.pages` passes them.
_BASE = ("EventStart", "EventType", "EventPageOffset", "EventSessionOffset")
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


def encode_pages(
    pages: Iterable[Page],
    columns: Sequence[str],
    extension: str,
    event_level: frozenset[str],
    session_level: frozenset[str],
) -> Iterator[bytes] | None:
    """`encode_body` of the pages' events, made without building their rows; None for the
    formats that need the rows (then encode `page_events` of the pages). `event_level` and
    `session_level` name the columns that vary within a page and those constant within a
    session."""
    if extension == "csv" and len(columns) > 1:
        return _CsvPages(columns, event_level, session_level).pages(pages)
    return None


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
        self.runs = [
            (per_row, tuple(names)) for per_row, names in groupby(columns, event_level.__contains__)
        ]
        self.page_cut = _cut([names for per_row, names in self.runs if not per_row])
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
        return self.texts(row, self.page_cut)

    def texts(self, row: dict[str, Any], cut: _Cut) -> tuple[str, ...]:
        """The texts of runs of `row`'s values (cells joined by commas), all rendered at once
        and then cut into runs: most of the cost is per call, not per value."""
        names, runs = cut
        values = tuple(map(row.get, names, self.blanks))
        plain = tuple(map(str, values))
        if None in values or self.quoted("\x00".join(plain)):
            plain = self.cells(values, plain)
        return tuple(map(",".join, map(plain.__getitem__, runs)))

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
        """For a row shape (its event-level keys, last first): the line's template, and the
        getter of the row's values in the order the template's `order` takes them."""
        layout = self.layout(keys, self.runs)
        if layout is None:
            return None
        return _Shape(layout[0], _tuple_getter(keys), layout[1])

    def layout(
        self, keys: tuple[str, ...], runs: Sequence[tuple[bool, tuple[str, ...]]]
    ) -> _Layout | None:
        """For event-level `keys`: the line's `%` template, and the getter that orders the
        texts of the `runs` that are not per row, followed by the keys' values (in `keys`
        order), into the template's slots. None when a key is not an event-level column name
        or comes twice."""
        event_level = self.event_level
        if len(set(keys)) != len(keys) or not all(k in event_level and _PLAIN_KEY(k) for k in keys):
            return None
        slot = {key: sum(not per_row for per_row, _ in runs) + i for i, key in enumerate(keys)}
        cells: list[str] = []
        order: list[int] = []
        page = 0
        for per_row, names in runs:
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
        return ",".join(cells) + "\n", _tuple_getter(order)

    def __call__(self, rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
        return _batches(self.lines(rows))

    def lines(self, rows: Iterable[dict[str, Any]]) -> Iterator[str]:
        event_level, plans, make_plan = self.event_level, self.plans, self.plan
        quoted, page_texts, csv_line = self.quoted, self.page_texts, self.csv_line
        columns, blanks = self.columns, self.blanks
        quote_cells, cells = len(columns) > 1, self.cells  # a lone empty field is written ""
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
            yield line


class _CsvPages(_CsvLines):
    """`_CsvLines` for the world's pages instead of rows: the same lines, without the rows.

    Columns are cut into runs of three kinds: session-level (rendered once per session),
    page-level (once per page) and event-level. An event's line is then its layout's template
    (one per set of extra keys) filled with the session's and page's texts, the event's four
    own fields and its extra fields' cells, remembered per extra dict.
    """

    def __init__(
        self, columns: Sequence[str], event_level: frozenset[str], session_level: frozenset[str]
    ) -> None:
        super().__init__(columns, event_level)

        def level(column: str) -> int:  # 0 session, 1 page, 2 event
            return 2 if column in event_level else 0 if column in session_level else 1

        levels = [(lv, tuple(names)) for lv, names in groupby(columns, level)]
        self.session_cut = _cut([names for lv, names in levels if lv == 0])
        self.own_cut = _cut([names for lv, names in levels if lv == 1])
        # A page's texts in run order are taken from the session's texts followed by the page's
        # own (`merge`), then joined into the runs of `self.runs` that are not per row (`join`).
        order: list[int] = []
        sizes: list[int] = []  # how many texts each of those runs joins
        taken = {0: 0, 1: len(self.session_cut.runs)}  # the next text of each level
        for per_row, group in groupby(levels, lambda run: run[0] == 2):
            if not per_row:
                kinds = [lv for lv, _names in group]
                sizes.append(len(kinds))
                for lv in kinds:
                    order.append(taken[lv])
                    taken[lv] += 1
        self.merge = _tuple_getter(order)
        self.join = _cut([("",) * size for size in sizes]).runs
        self.layouts: dict[tuple[str, ...], _Layout | None] = {}  # extra keys -> layout
        self.extras: dict[int, _Extra] = {}  # id(extra) -> how its events are written

    def event(self, extra: Mapping[str, Any] | None) -> _Extra:
        """How an event with these extra fields is written: its template and order (see
        `layout`), and the extra values' cells; None when only the csv module can say.

        Extras are mostly constant dicts shared by many events (a button's click, a product's
        custom event), so this is remembered by the dict's id; the entry holds the dict, so no
        other object can have that id while the entry stands."""
        memo = self.extras
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        keys = tuple(extra) if extra else ()
        if keys in self.layouts:
            layout = self.layouts[keys]
        else:
            layout = self.layouts[keys] = self.layout(_BASE + keys, self.runs)
        if layout is None:
            entry: _Extra = (extra, None)
        else:
            values = tuple(extra.values()) if extra else ()
            plain = tuple(map(str, values))
            if None in values or self.quoted("\x00".join(plain)):
                plain = self.cells(values, plain)
            entry = (extra, (*layout, plain))
        memo[id(extra)] = entry
        return entry

    def pages(self, pages: Iterable[Page]) -> Iterator[bytes]:
        """The CSV of pages' events, the same as `__call__` of their rows."""
        return _batches(self.page_lines(pages))

    def page_lines(self, pages: Iterable[Page]) -> Iterator[str]:
        """Lines without the rows: each page's runs are rendered once, and each event adds its
        four own fields (EventStart, EventType and the offsets) to its extra fields' cells."""
        event_level, quoted, texts_of = self.event_level, self.quoted, self.texts
        merge, join = self.merge, self.join
        session_cut, own_cut = self.session_cut, self.own_cut
        extras, remember = self.extras, self.event
        session: object = _MISSING
        session_texts: tuple[str, ...] = ()
        plain_types: set[str] = set()
        for page in pages:
            so = page.session_offset
            row = page.row
            odd = not event_level.isdisjoint(row)  # a page column that events may vary
            if odd:
                texts: tuple[str, ...] = ()
            else:
                if page.session_id != session:
                    session, session_texts = page.session_id, texts_of(row, session_cut)
                merged = merge(session_texts + texts_of(row, own_cut))
                texts = tuple(map(",".join, map(merged.__getitem__, join)))
            for (off, etype, extra), start in zip(page.events, page.starts, strict=True):
                how = None
                if not odd:
                    entry = extras.get(id(extra))
                    if entry is None:
                        entry = remember(extra)
                    how = entry[1]
                    if how is not None and etype not in plain_types:
                        if quoted(etype):
                            how = None
                        else:
                            plain_types.add(etype)
                if how is None:
                    line = self.event_line(page, off, etype, extra, start)
                else:
                    template, order, cells = how
                    values = texts + (start, etype, off, so + off) + cells  # noqa: RUF005 (faster)
                    line = template % order(values)
                yield line

    def event_line(
        self, page: Page, off: int, etype: str, extra: Mapping[str, Any] | None, start: str
    ) -> str:
        """One event's line from its whole row, by the csv module: for what the fast path
        does not vouch for."""
        alone = page._replace(events=[(off, etype, extra)], starts=[start])
        row = next(page_events([alone], 0)).row
        return self.csv_line(tuple(map(row.get, self.columns, self.blanks))) + "\n"


def _batches(lines: Iterable[str]) -> Iterator[bytes]:
    """Lines joined into UTF-8 batches of about BATCH_BYTES (where they end decides where the
    compressor's input is cut, so it is part of the file's bytes)."""
    out: list[str] = []
    append = out.append
    size = 0
    for line in lines:
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


# An event's extra fields, and how its lines are written: (template, order, the extras' cells),
# or None when the csv module must write them.
_Layout = tuple[str, Callable[[Any], tuple[Any, ...]]]
_Extra = tuple[
    Mapping[str, Any] | None, tuple[str, Callable[[Any], tuple[Any, ...]], tuple[str, ...]] | None
]


class _Cut(NamedTuple):
    """Runs of columns: all their names in order, and the slice of them each run is."""

    names: tuple[str, ...]
    runs: tuple[slice, ...]


def _cut(runs: Sequence[tuple[str, ...]]) -> _Cut:
    bounds, start = [], 0
    for names in runs:
        bounds.append(slice(start, start + len(names)))
        start += len(names)
    return _Cut(tuple(c for names in runs for c in names), tuple(bounds))


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
