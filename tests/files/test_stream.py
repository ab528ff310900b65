"""The export stream (emulator/export/stream.py): formats, gzip chunking, determinism."""

from __future__ import annotations

import gzip
import json
import random

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


def test_gzip_stream_is_chunked_deterministic_and_valid():
    pieces = [f"line {i} {random.Random(i).randbytes(120).hex()}\n".encode() for i in range(20000)]
    chunks = list(stream.gzip_stream(iter(pieces)))
    assert len(chunks) > 3  # streamed, not one blob
    assert b"".join(chunks) == b"".join(stream.gzip_stream(iter(pieces)))
    assert gzip.decompress(b"".join(chunks)) == b"".join(pieces)
    assert chunks[0][:10] == bytes.fromhex("1f8b08000000000000ff")  # no mtime in the header


def test_empty_stream_is_a_valid_gzip():
    assert gzip.decompress(b"".join(stream.gzip_stream(iter([])))) == b""
