"""The export stream (fullstory_emulator/files/stream.py): formats, DEFLATE segments in one gzip
member, determinism."""

from __future__ import annotations

import gzip
import json
import random
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fullstory_emulator.files import stream
from fullstory_emulator.world import EVENT_LEVEL_FIELDS, Page, World
from fullstory_emulator.world.events import page_events

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


SESSION_COLUMNS = ["IndvId", "SessionId", "PageUserAgent"]
OWN_COLUMNS = ["PageId", "PageUrl", "user_plan_str"]
SHARED_EXTRAS = [None, {}, {"EventTargetText": "Buy, now"}, {"ReqUrl": "/a", "evt_price_real": 1.5}]


@st.composite
def generated_pages(draw):
    """Pages as the world makes them (session columns constant within a session, extras often
    shared between events), with hostile values, and some that break the world's promises:
    an extra with a key that is not event-level or is one of the four every event has, a page
    row holding an event-level key, an event type that needs quotes."""
    pages = []
    for session_id in range(draw(st.integers(1, 3))):
        session = {c: draw(VALUES) for c in draw(st.lists(st.sampled_from(SESSION_COLUMNS)))}
        for page_id in range(draw(st.integers(1, 3))):
            row = {**session, "PageId": page_id}
            for column in draw(st.lists(st.sampled_from(OWN_COLUMNS[1:]), unique=True)):
                row[column] = draw(VALUES)
            if draw(st.integers(0, 9)) == 0:
                row["EventTargetText"] = draw(VALUES)
            events, starts = [], []
            for offset in range(draw(st.integers(1, 5))):
                extra = draw(st.sampled_from(SHARED_EXTRAS))
                if draw(st.booleans()):
                    keys = [*EVENT_COLUMNS[2:], "EventOther", "PageUrl", "EventType", "bad key"]
                    extra = {k: draw(VALUES) for k in draw(st.lists(st.sampled_from(keys)))}
                etype = draw(st.sampled_from(["click", "navigate", "odd,type"]))
                events.append((offset, etype, extra))
                starts.append(f"2026-01-01T00:00:0{offset}.000Z")
            pages.append(Page(session_id, page_id, 1000 * page_id, 10, row, events, starts))
    return pages


@settings(max_examples=300, deadline=None)
@given(
    generated_pages(),
    st.lists(
        st.sampled_from([*SESSION_COLUMNS, *OWN_COLUMNS, *EVENT_COLUMNS, "EventPageOffset"]),
        min_size=2,
        unique=True,
    ),
)
def test_pages_are_written_as_the_csv_module_writes_their_rows(pages, columns):
    level = frozenset([*EVENT_COLUMNS, "EventOther", "EventPageOffset", "EventSessionOffset"])
    rows = [event.row for event in page_events(pages, 0)]
    made = stream.encode_pages(pages, columns, "csv", level, frozenset(SESSION_COLUMNS))
    assert made is not None
    assert text(made) == text(stream.encode(rows, columns, "csv"))[len(",".join(columns)) + 1 :]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(COLUMNS), min_size=2, max_size=40, unique=True), st.randoms())
def test_the_worlds_pages_are_written_as_their_rows(columns, rng):
    """Every column of the world's rows, in any order and subset, and windows that cut pages."""
    lo = 1_700_000_000_000 + rng.randint(0, 60) * 86_400_000
    hi = lo + rng.randint(1, 40) * 86_400_000
    pages = [page for i in range(6) for page in WORLD.pages_between(i, lo, hi)]
    rows = [e.row for i in range(6) for e in WORLD.events_between(i, lo, hi)]
    made = stream.encode_pages(pages, columns, "csv", WORLD.event_level, WORLD.session_level)
    assert made is not None
    assert text(made) == text(stream.encode(rows, columns, "csv"))[len(",".join(columns)) + 1 :]


def test_formats_other_than_csv_are_left_to_the_rows():
    assert (
        stream.encode_pages([], ["IndvId", "EventType"], "ndjson", frozenset(), frozenset()) is None
    )
    assert stream.encode_pages([], ["EventType"], "csv", frozenset(), frozenset()) is None


BASE_AND_REQ = frozenset(
    ["EventStart", "EventType", "EventPageOffset", "EventSessionOffset", "ReqUrl"]
)


def test_extras_are_remembered_within_a_bound(monkeypatch):
    """Events' extra fields are remembered by the dict's id, within a bound."""
    monkeypatch.setattr(stream, "_MEMO_SIZE", 4)
    pages = [
        Page(
            1,
            p,
            0,
            0,
            {"PageId": p},
            [(0, "click", {"ReqUrl": f"/{p}/{e}"}) for e in range(3)],
            ["t"] * 3,
        )
        for p in range(20)
    ]
    lines = stream._CsvPages(["PageId", "EventType", "ReqUrl"], BASE_AND_REQ, frozenset())
    assert b"".join(lines.pages(pages)).decode() == "".join(
        f"{p},click,/{p}/{e}\n" for p in range(20) for e in range(3)
    )
    assert 0 < len(lines.extras) <= 4


def test_a_freed_extras_id_is_not_taken_for_it():
    """A dict freed after its events were written leaves its memory (and id) to the next dict
    made; the memo holds the dicts it remembers, so that cannot happen while it remembers."""
    lines = stream._CsvPages(["PageId", "ReqUrl"], BASE_AND_REQ, frozenset())

    def written(url: str) -> bytes:
        extra = {"ReqUrl": url}
        return b"".join(lines.pages([Page(1, 1, 0, 0, {"PageId": 1}, [(0, "x", extra)], ["t"])]))

    assert written("/first") == b"1,/first\n"
    assert written("/second") == b"1,/second\n"
