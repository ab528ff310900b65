"""`--replay DIR` through the API: the recorded segments, the recorded rows inside a recorded
window (byte for byte, filtered, projected, re-encoded), data in the org's shape outside it,
the recorded timelines, and clear errors for a folder that does not load."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from fullstory_emulator.files import export
from fullstory_emulator.instance import Emulator
from fullstory_emulator.recording import EXPORTS_DIR, Poll, RecordedExport, RecordingError, Timeline
from fullstory_emulator.timestamps import parse_rfc3339
from fullstory_emulator.world import CUSTOM_VARS
from fullstory_emulator.world.segments import SegmentFileError
from tests.helpers import (
    AUTH,
    Harness,
    catalogue_of,
    harness_factory,
    small_settings,
    write_recording,
)

WINDOW = ("2026-02-28T20:00:00Z", "2026-02-28T22:00:00Z")
SHOP_VARS = {name for names in CUSTOM_VARS.values() for name in names}
TIERS = ("gold", "silver", "bronze & <co>", "Grün")
SECTIONS = ("docs", "pricing", "Straße")
HOSTS = ("shop.example.de", "help.example.de")
PATHS = ("/", "/produkte/äpfel", "/kasse", "/hilfe?x")
ORG_SEGMENT = {
    "id": "Xy12AbCd34Ef",
    "name": "Paying customers & <friends>",
    "creator": "zoë@example.de",
    "created": "2025-11-02T10:11:12.345Z",
    "url": "https://app.fullstory.com/ui/o-ORG-eu1/segments/Xy12AbCd34Ef",
}
EVERYONE = {
    "id": "everyone",
    "name": "Everyone",
    "creator": "",
    "url": "https://app.fullstory.com/ui/o-ORG-eu1/segments/everyone",
}
TIMELINE = Timeline(
    polls=(Poll(0.5, "PENDING", 10), Poll(1.5, "PENDING", 35), Poll(3.0, "PENDING", 80)),
    duration=4.0,
    final_state="COMPLETED",
)
# A line as Go's encoder writes it (& < > and non-ASCII escaped): served as it is, byte for byte.
ESCAPED = (
    '{"IndvId":1,"UserId":2,"SessionId":3,"PageId":4,"EventStart":"2026-02-28T21:00:00.000Z",'
    '"EventType":"custom","EventCustomName":"Caf\\u00e9 \\u0026 \\u003cB\\u00e4ckerei\\u003e",'
    '"evt_note_str":"na\\u00efve \\"quoted\\", comma","user_tier_str":"gold",'
    '"PageUrl":"https://shop.example.de/kasse"}'
)


@pytest.fixture(scope="module")
def source_rows() -> list[bytes]:
    """Real rows of the emulator's own export over the window, moved into the org's shape
    (the shop's custom variables swapped for the org's, no mobile app), plus one escaped
    line."""
    factory = harness_factory()
    make = next(factory)
    try:
        h = make(seed=7, population=200, density=1.0)
        data = h.export_bytes(
            timeRange={"start": WINDOW[0], "end": WINDOW[1]}, format="FORMAT_NDJSON"
        )
    finally:
        next(factory, None)
    lines = []
    for number, line in enumerate(gzip.decompress(data).splitlines()):
        row = {k: v for k, v in json.loads(line).items() if k not in SHOP_VARS}
        if "AppName" in row:  # the org has no mobile app
            continue
        if number % 5:
            row["user_tier_str"] = TIERS[row["IndvId"] % len(TIERS)]
        row["page_section_str"] = SECTIONS[row["PageId"] % len(SECTIONS)]
        if row["EventType"] == "custom":
            row["evt_note_str"] = f"note {number % 7} & <b>"
        lines.append(orjson.dumps(row))
    assert len(lines) > 50
    middle = len(lines) // 2
    return [*lines[:middle], ESCAPED.encode(), *lines[middle:]]


def recording(root: Path, lines: list[bytes], *, timeline: Timeline = TIMELINE) -> Path:
    rows = [json.loads(line) for line in lines]
    recorded = RecordedExport(
        segment_id="everyone",
        type="TYPE_EVENT",
        start=WINDOW[0],
        end=WINDOW[1],
        file="everyone-event.ndjson",
        rows=len(lines),
        timeline=timeline,
    )
    return write_recording(
        root,
        segments=[EVERYONE, ORG_SEGMENT],
        catalogue=catalogue_of(rows, HOSTS, PATHS),
        exports=[(recorded, b"".join(line + b"\n" for line in lines))],
    )


@pytest.fixture
def folder(tmp_path: Path, source_rows: list[bytes]) -> Path:
    return recording(tmp_path / "org", source_rows)


@pytest.fixture
def make_harness() -> Iterator[Callable[..., Harness]]:
    yield from harness_factory(lambda n: {"seed": 7})


def download(h: Harness, **body: Any) -> bytes:
    """The gunzipped file of an export, polled to its end."""
    return gzip.decompress(h.export_bytes(**body))


def recorded_file(folder: Path) -> bytes:
    return (folder / EXPORTS_DIR / "everyone-event.ndjson").read_bytes()


def within(lines: list[bytes], start: str, end: str) -> list[bytes]:
    lo, hi = parse_rfc3339(start), parse_rfc3339(end)
    return [line for line in lines if lo <= parse_rfc3339(json.loads(line)["EventStart"]) < hi]


def test_the_recorded_segments_are_served_as_recorded(make_harness, folder):
    h = make_harness(replay=folder)
    listed = h.client.get("/segments/v1", headers=AUTH).json()["segments"]
    assert listed == [EVERYONE, ORG_SEGMENT]
    one = h.client.get(f"/segments/v1/{ORG_SEGMENT['id']}", headers=AUTH)
    assert one.status_code == 200 and one.json() == ORG_SEGMENT
    assert h.client.get("/segments/v1/rageClicks", headers=AUTH).status_code == 404


def test_segments_adds_to_the_recorded_ones(make_harness, folder, tmp_path):
    mine = tmp_path / "mine.json"
    mine.write_text(
        json.dumps(
            {
                "segments": [
                    {"id": "golden", "name": "Gold tier", "user": {"user_tier_str": "gold"}},
                    {**ORG_SEGMENT, "name": "Renamed"},
                ]
            }
        )
    )
    h = make_harness(replay=folder, segments=mine)
    listed = h.client.get("/segments/v1", headers=AUTH).json()["segments"]
    assert [s["id"] for s in listed] == ["everyone", ORG_SEGMENT["id"], "golden"]
    assert listed[1] == {**ORG_SEGMENT, "name": "Renamed"}
    # a condition on the org's own variable selects by the values generated in its shape
    data = download(
        h,
        segmentId="golden",
        type="TYPE_INDIVIDUAL",
        timeRange={"start": "2026-02-20T00:00:00Z", "end": "2026-02-27T00:00:00Z"},
    )
    people = [json.loads(line) for line in data.splitlines()]
    assert people and all(p["user_tier_str"] == "gold" for p in people)


def test_an_export_of_the_recorded_window_is_the_recorded_file_byte_for_byte(make_harness, folder):
    h = make_harness(replay=folder)
    data = download(h, timeRange={"start": WINDOW[0], "end": WINDOW[1]})
    assert data == recorded_file(folder)
    assert ESCAPED.encode() in data.splitlines()


def test_a_sub_window_returns_exactly_its_recorded_rows(make_harness, folder, source_rows):
    h = make_harness(replay=folder)
    start, end = "2026-02-28T20:30:00Z", "2026-02-28T21:00:00.001Z"
    data = download(h, timeRange={"start": start, "end": end})
    expected = within(source_rows, start, end)
    assert ESCAPED.encode() in expected and len(expected) < len(source_rows)
    assert data.splitlines() == expected


def test_only_a_range_inside_a_window_of_the_recorded_segment_and_type_replays(
    make_harness, folder
):
    h = make_harness(replay=folder)
    recorded = recorded_file(folder)
    inside = {"start": WINDOW[0], "end": WINDOW[1]}
    # TYPE_PAGES would be TYPE_EVENT with SCOPE_PAGES: a different type from the recorded one
    for body in (
        {"timeRange": inside, "type": "TYPE_PAGES"},
        {"timeRange": inside, "segmentId": ORG_SEGMENT["id"]},
        {"timeRange": {"start": "2026-02-28T19:59:59Z", "end": WINDOW[1]}},
        {},  # open ends: from the start of the data to now
    ):
        data = download(h, **body)
        assert ESCAPED.encode() not in data.splitlines() and data != recorded, body
    scoped = download(h, timeRange=inside, eventDetails={"scope": "SCOPE_EVENT"})
    assert scoped == recorded  # SCOPE_EVENT is what TYPE_EVENT means


def test_fields_csv_and_json_are_encoded_like_any_export(make_harness, folder, source_rows):
    h = make_harness(replay=folder)
    time_range = {"start": WINDOW[0], "end": WINDOW[1]}
    rows = [json.loads(line) for line in source_rows]
    fields = ["EventStart", "EventCustomName", "evt_*", "user_tier_str"]
    columns = ["EventStart", "EventCustomName", "evt_note_str", "user_tier_str"]
    data = download(h, timeRange=time_range, format="FORMAT_CSV", fields=fields)
    table = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert table[0] == columns
    assert table[1:] == [[str(r.get(c, "")) for c in columns] for r in rows]
    assert ["2026-02-28T21:00:00.000Z", "Café & <Bäckerei>", 'naïve "quoted", comma', "gold"] in (
        table
    )
    projected = download(h, timeRange=time_range, fields=fields)
    assert [json.loads(line) for line in projected.splitlines()] == [
        {c: r[c] for c in columns if c in r} for r in rows
    ]
    assert b"Caf\xc3\xa9 & <B\xc3\xa4ckerei>" in projected  # re-encoded as every export is
    whole = download(h, timeRange=time_range, format="FORMAT_JSON")
    assert json.loads(whole) == rows


def test_outside_the_window_the_world_has_the_orgs_shape(make_harness, folder, source_rows):
    recorded = [json.loads(line) for line in source_rows]
    notes = {r.get("evt_note_str") for r in recorded} - {None}
    names = {r.get("EventCustomName") for r in recorded} - {None}
    h = make_harness(replay=folder)
    data = download(h, timeRange={"start": "2026-02-25T00:00:00Z", "end": "2026-02-27T00:00:00Z"})
    rows = [json.loads(line) for line in data.splitlines()]
    assert len(rows) > 100
    keys = {key for row in rows for key in row}
    assert not keys & SHOP_VARS
    assert {"user_tier_str", "page_section_str", "evt_note_str"} <= keys
    assert not any(k.startswith("App") for k in keys)  # the recorded rows had none
    for row in rows:
        assert row.get("user_tier_str", "gold") in TIERS
        assert row["page_section_str"] in SECTIONS
        if "evt_note_str" in row:
            assert row["EventType"] == "custom" and row["evt_note_str"] in notes
        assert row.get("EventCustomName", "Café & <Bäckerei>") in names
        if "PageUrl" in row:
            url = urlsplit(row["PageUrl"])
            assert url.netloc in HOSTS and url.path in {urlsplit(p).path for p in PATHS}
    csv_data = download(
        h,
        format="FORMAT_CSV",
        timeRange={"start": "2026-02-25T00:00:00Z", "end": "2026-02-27T00:00:00Z"},
    )
    header, *table = csv.reader(io.StringIO(csv_data.decode("utf-8")))
    assert "evt_note_str" in header and "user_plan_str" not in header and "AppName" not in header
    assert table == [[str(row.get(c, "")) for c in header] for row in rows]


def test_the_same_seed_gives_the_same_files_also_from_worker_processes(
    make_harness, folder, monkeypatch
):
    outside = {"timeRange": {"start": "2026-02-20T00:00:00Z", "end": "2026-02-27T00:00:00Z"}}
    one = make_harness(replay=folder, export_workers=1, population=300)  # three blocks
    first = one.export_bytes(**outside)
    assert (
        make_harness(replay=folder, export_workers=1, population=300).export_bytes(**outside)
        == first
    )
    monkeypatch.setattr(export, "PARALLEL_MIN_EVENTS", 0)  # every export counts as large
    pooled = make_harness(replay=folder, export_workers=2, population=300)
    pool = pooled.em.exports.pool
    assert pool is not None
    try:
        assert pooled.export_bytes(**outside) == first
        assert pool._executor is not None  # the blocks were made by the worker processes
    finally:
        pool.close()
    other_seed = make_harness(replay=folder, export_workers=1, population=300, seed=8)
    assert other_seed.export_bytes(**outside) != first


def test_the_etag_names_the_recording(make_harness, folder, tmp_path, source_rows):
    def etag(h: Harness, **body: Any) -> str:
        op = h.finish(h.create(**body))
        response = h.client.head(h.location(op["results"]["searchExportId"]))
        return response.headers["etag"]

    inside = {"timeRange": {"start": WINDOW[0], "end": WINDOW[1]}}
    outside = {"timeRange": {"start": "2026-02-25T00:00:00Z", "end": "2026-02-26T00:00:00Z"}}
    changed = [*source_rows[:-1], source_rows[-1].replace(b'"EventType"', b'"EventType" ')]
    other = recording(tmp_path / "other", changed)
    replayed, plain = make_harness(replay=folder), make_harness()
    assert etag(replayed, **inside) != etag(make_harness(replay=other), **inside)
    assert etag(replayed, **outside) != etag(plain, **outside)


def test_the_recorded_timeline_drives_the_polls(make_harness, folder):
    h = make_harness(replay=folder)
    op_id = h.create(timeRange={"start": WINDOW[0], "end": WINDOW[1]})
    polls = [h.operation(op_id) for _ in range(4)]
    assert [(op["state"], op["estimatePctComplete"]) for op in polls] == [
        ("PENDING", 10),
        ("PENDING", 35),
        ("PENDING", 80),
        ("COMPLETED", 100),
    ]
    # the user's own rule wins over the recorded timeline
    rule = {"segmentId": "everyone", "immediately": True, "times": 1}
    assert h.client.post("/__emulator/lifecycle", json=rule).status_code == 200
    assert h.operation(h.create())["state"] == "COMPLETED"
    assert h.operation(h.create())["state"] == "PENDING"  # spent: the recording's again


def test_recorded_timelines_are_not_written_into_the_store(make_harness, folder, tmp_path):
    for _ in range(2):  # started twice on one data dir
        h = make_harness(replay=folder, data_dir=tmp_path / "data")
        assert h.client.get("/__emulator/lifecycle").json() == {"lifecycle": []}
        assert h.em.control.state(None).lifecycle == ()


def test_a_failed_recorded_timeline_fails_its_exports(make_harness, tmp_path, source_rows):
    failed = Timeline(
        polls=(Poll(1, "PENDING", 20),), duration=2, final_state="FAILED", error_details="boom"
    )
    h = make_harness(replay=recording(tmp_path / "f", source_rows, timeline=failed))
    op = h.finish(h.create())
    assert op["state"] == "ERROR" and op["errorDetails"] == "boom"


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda root: _edit(root / "recording.json", "exports", 0, "type", "TYPE_BOGUS"), "type"),
        (lambda root: _edit(root / "recording.json", "exports", 0, "file", "../x"), "file"),
        (lambda root: (root / "fields.json").unlink(), "fields.json: missing"),
        (
            lambda root: (root / EXPORTS_DIR / "everyone-event.ndjson").write_text(
                '{"a":1}\n[1]\n'
            ),
            "line 2 is not a JSON object",
        ),
        (
            lambda root: (root / EXPORTS_DIR / "everyone-event.ndjson").write_text('{"a":1}\n{'),
            "line 2 is not JSON",
        ),
        (
            lambda root: _edit(root / "segments.json", "segments", 1, "url", 7),
            "segments.json: segments[1] (Xy12AbCd34Ef).url",
        ),
    ],
)
def test_a_folder_that_does_not_load_stops_the_start(folder, damage, named):
    damage(folder)
    with pytest.raises((RecordingError, SegmentFileError)) as caught:
        Emulator.build(small_settings(replay=folder))
    message = str(caught.value)
    assert str(folder) in message and named in message and "\n" not in message


def test_the_preview_shows_the_recorded_rows(make_harness, folder, source_rows):
    h = make_harness(replay=folder)
    op = h.finish(h.create(timeRange={"start": WINDOW[0], "end": WINDOW[1]}))
    preview = h.client.get(f"/__emulator/operations/{op['id']}/preview")
    assert preview.status_code == 200, preview.text
    body = preview.json()
    first = json.loads(source_rows[0])
    assert body["rows"][0][body["columns"].index("EventStart")] == first["EventStart"]


# -- helpers -----------------------------------------------------------------------------------


def _edit(path: Path, key: str, index: int, field: str, value: Any) -> None:
    data = json.loads(path.read_text())
    data[key][index][field] = value
    path.write_text(json.dumps(data))
