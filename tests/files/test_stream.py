"""The export stream (emulator/files/stream.py): formats, DEFLATE segments in one gzip member,
determinism."""

from __future__ import annotations

import gzip
import json
import random
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.files import stream
from emulator.world import EVENT_LEVEL_FIELDS, World

WORLD = World(seed=5, origin_ms=1_700_000_000_000, population=6)
ROWS = [e.row for i in range(6) for e in WORLD.events(i, 1_700_000_000_000 + 90 * 86_400_000)]
COLUMNS = sorted({key for row in ROWS for key in row} | {"user_unknown_str"})


def text(pieces) -> str:
    return b"".join(pieces).decode("utf-8")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=30, unique=True), st.randoms())
def test_page_cached_csv_equals_plain_csv(columns, rng):
    rows = ROWS[: rng.randint(0, len(ROWS))]
    plain = text(stream.encode(rows, columns, "csv"))
    cached = text(stream.encode(rows, columns, "csv", event_level=EVENT_LEVEL_FIELDS))
    assert cached == plain


def test_json_and_ndjson_hold_the_same_objects():
    columns = ["IndvId", "EventStart", "PageUrl"]
    as_ndjson = [
        json.loads(line) for line in text(stream.encode(ROWS, columns, "ndjson")).splitlines()
    ]
    assert json.loads(text(stream.encode(ROWS, columns, "json"))) == as_ndjson
    assert all(list(row) == [c for c in columns if c in row] for row in as_ndjson)


def test_unprojected_rows_pass_through():
    out = [
        json.loads(line)
        for line in text(stream.encode(ROWS, [], "ndjson", project=False)).splitlines()
    ]
    assert out == ROWS


def test_segments_concatenate_into_one_gzip_member():
    pieces = [f"line {i} {random.Random(i).randbytes(120).hex()}\n".encode() for i in range(20000)]
    parts = [pieces[:7000], pieces[7000:7001], [], pieces[7001:]]
    member = stream.GzipMember()
    out = [member.HEADER]
    for part in parts:
        segment = stream.deflate(iter(part))
        assert segment.size == sum(map(len, part))
        out.append(member.add(segment))
    out.append(member.add(stream.stored(b"x" * 70_000)))  # more than one stored block
    out.append(member.finish())
    data = b"".join(out)
    assert data[:10] == bytes.fromhex("1f8b08000000000000ff")  # no name, no mtime
    reader = zlib.decompressobj(31)
    assert reader.decompress(data) == b"".join(pieces) + b"x" * 70_000
    assert reader.eof and reader.unused_data == b""  # one member, nothing after it
    assert gzip.decompress(data) == b"".join(pieces) + b"x" * 70_000


def test_a_segment_ends_on_a_byte_boundary_in_a_non_final_block():
    segment = stream.deflate([b"abc" * 1000])
    assert segment.data.endswith(b"\x00\x00\xff\xff")  # the sync flush's empty stored block
    assert stream.deflate([]) == stream.Deflated(b"", 0, 0)


def test_gzip_stream_is_deterministic_and_valid():
    pieces = [f"{i}\n".encode() for i in range(50_000)]
    data = b"".join(stream.gzip_stream(iter(pieces)))
    assert data == b"".join(stream.gzip_stream(iter(pieces)))
    assert gzip.decompress(data) == b"".join(pieces)


def test_empty_stream_is_a_valid_gzip():
    assert gzip.decompress(b"".join(stream.gzip_stream(iter([])))) == b""


@pytest.mark.parametrize("extension", ["csv", "json", "ndjson"])
def test_body_runs_with_framing_make_the_whole_file(extension):
    """What blocks are made of: bodies of row runs, joined by the framing, equal the file."""
    columns = ["IndvId", "EventStart", "PageUrl"]
    whole = text(stream.encode(ROWS, columns, extension))
    cuts = [ROWS[:0], ROWS[:5], ROWS[5:5], ROWS[5:40], ROWS[40:]]
    out = [stream.header(columns, extension).decode()]
    first = True
    for run in cuts:
        body = text(stream.encode_body(run, columns, extension))
        if not run:
            assert body == ""
            continue
        out.append(stream.separator(extension, first).decode() + body)
        first = False
    out.append(stream.footer(extension, not first).decode())
    assert "".join(out) == whole


VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["a,b", 'say "hi"', "line\nbreak", "cr\rhere", "None", "%s", "{x}", "", " "]),
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True),
)
PAGE_COLUMNS = ["IndvId", "PageId", "PageUrl", "PageUserAgent", "user_plan_str"]
EVENT_COLUMNS = ["EventStart", "EventType", "EventTargetText", "ReqUrl", "evt_price_real"]


@st.composite
def generated_rows(draw):
    """Rows as the world builds them: a page's dict, then the event's keys at the end; some
    rows break that shape (an event key among the page's, a key the columns do not have)."""
    rows = []
    for page_id in range(draw(st.integers(1, 4))):
        page = {"PageId": page_id}
        for column in draw(st.lists(st.sampled_from(PAGE_COLUMNS), unique=True)):
            page.setdefault(column, draw(VALUES))
        for _ in range(draw(st.integers(1, 5))):
            row = dict(page)
            for column in draw(st.lists(st.sampled_from([*EVENT_COLUMNS, "EventOther"]))):
                row[column] = draw(VALUES)
            if draw(st.booleans()) and len(row) > 2:  # an event key first: not the usual shape
                row = {"EventType": draw(VALUES), **row}
            rows.append(row)
    return rows


@settings(max_examples=200, deadline=None)
@given(
    generated_rows(),
    st.lists(st.sampled_from(PAGE_COLUMNS + EVENT_COLUMNS), min_size=1, unique=True),
)
def test_page_cached_csv_writes_what_the_csv_module_writes(rows, columns):
    level = frozenset([*EVENT_COLUMNS, "EventOther"])
    assert text(stream.encode(rows, columns, "csv", event_level=level)) == text(
        stream.encode(rows, columns, "csv")
    )


def test_quoted_texts_are_remembered_within_a_bound(monkeypatch):
    """Texts that need quotes are remembered across pages and rows, and a file with more of
    them than the memo holds is still written as the csv module writes it."""
    monkeypatch.setattr(stream, "_MEMO_SIZE", 8)
    columns = ["PageId", "PageUserAgent", "EventStart", "EventTargetText"]
    level = frozenset(["EventStart", "EventTargetText"])
    rows = [
        {"PageId": page, "PageUserAgent": f'agent, "{page % 20}"', "EventStart": f"t{event}"}
        | ({"EventTargetText": f"Size {event % 30}, {page}"} if event % 3 else {})
        for page in range(100)
        for event in range(5)
    ]
    lines = stream._CsvLines(columns, level)
    assert (
        b"".join(lines(rows)).decode()
        == text(stream.encode(rows, columns, "csv"))[len(",".join(columns)) + 1 :]
    )
    assert 0 < len(lines.memo) <= 8
