"""Export files (CONTRACT §6-7): columns, formats, scopes, time windows and aggregates."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import defaultdict
from datetime import timedelta

import pytest

from fullstory_emulator.contract import EVENT_FIELDS, INDIVIDUAL_FIELDS
from fullstory_emulator.files.fields import resolve_fields
from fullstory_emulator.world import CUSTOM_VARS
from tests.helpers import ms

MS_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ALL_TIME = {"timeRange": {"start": "", "end": ""}, "segmentTimeRange": {"start": "", "end": ""}}


def ndjson(h, **body):
    return [json.loads(line) for line in gzip.decompress(h.export_bytes(**body)).splitlines()]


def test_event_rows_types_and_names(harness):
    rows = ndjson(harness, **ALL_TIME)
    assert rows
    allowed = set(EVENT_FIELDS) | {n for names in CUSTOM_VARS.values() for n in names}
    for row in rows:
        assert set(row) <= allowed
        for name in ("IndvId", "UserId", "SessionId", "PageId"):
            assert type(row[name]) is int and row[name] > 0
        for name in ("EventStart", "SessionStart", "PageStart"):
            assert MS_TS.match(row[name]), row[name]
        assert all(value != "" for value in row.values())  # sparse: empty fields omitted
        if "PageLatLong" in row:
            assert re.fullmatch(r"-?\d+\.\d+,-?\d+\.\d+", row["PageLatLong"])
    assert any(row["IndvId"] > 2**53 for row in rows)


def test_big_ids_are_bare_json_numbers(harness):
    raw = gzip.decompress(harness.export_bytes(**ALL_TIME)).decode()
    first = raw.splitlines()[0]
    assert re.search(r'"IndvId":\d{16,19}[,}]', first)


def test_fields_select_and_order_columns(harness):
    fields = ["EventType", "IndvId", "EventStart", "page_*"]
    rows = ndjson(harness, fields=fields, **ALL_TIME)
    page_vars = sorted(CUSTOM_VARS["page"])
    order = ["EventType", "IndvId", "EventStart", *page_vars]
    for row in rows:
        assert list(row) == [c for c in order if c in row]
        assert {"EventType", "IndvId", "EventStart"} <= set(row)


def test_csv_has_deterministic_header_and_all_columns(harness):
    text = gzip.decompress(harness.export_bytes(format="FORMAT_CSV", **ALL_TIME)).decode()
    rows = list(csv.reader(io.StringIO(text)))
    header = list(resolve_fields("event", None, CUSTOM_VARS))
    assert rows[0] == header
    assert all(len(row) == len(header) for row in rows[1:])


def test_json_format_is_one_array_matching_ndjson(harness):
    as_json = json.loads(gzip.decompress(harness.export_bytes(format="FORMAT_JSON", **ALL_TIME)))
    assert isinstance(as_json, list)
    assert as_json == ndjson(harness, **ALL_TIME)


def test_empty_export_is_valid_in_every_format(harness):
    empty = {"timeRange": {"start": "2000-01-01T00:00:00Z", "end": "2000-01-02T00:00:00Z"}}
    assert json.loads(gzip.decompress(harness.export_bytes(format="FORMAT_JSON", **empty))) == []
    assert gzip.decompress(harness.export_bytes(format="FORMAT_NDJSON", **empty)) == b""
    csv_text = gzip.decompress(harness.export_bytes(format="FORMAT_CSV", **empty)).decode()
    assert csv_text.count("\n") == 1 and csv_text.startswith("IndvId,")


def test_scopes_nest(harness):
    body = {
        "segmentId": "rageClicks",
        **ALL_TIME,
        "fields": ["SessionId", "PageId", "EventStart", "EventType"],
    }

    def keys(scope):
        rows = ndjson(harness, eventDetails={"scope": scope}, **body)
        return {(r["SessionId"], r["PageId"], r["EventStart"], r["EventType"]) for r in rows}

    events, pages, sessions, people = (
        keys(s) for s in ("SCOPE_EVENT", "SCOPE_PAGES", "SCOPE_SESSIONS", "SCOPE_INDIVIDUAL")
    )
    assert events and all(k[3] == "thrash" for k in events)
    assert events <= pages <= sessions <= people
    assert events < people
    assert {k[1] for k in pages} == {k[1] for k in events}  # exactly the pages with a match
    via_type = ndjson(harness, type="TYPE_PAGES", **body)
    assert {
        (r["SessionId"], r["PageId"], r["EventStart"], r["EventType"]) for r in via_type
    } == pages


def test_segment_window_defaults_to_last_30_days(harness):
    rows = ndjson(harness, timeRange={"start": "", "end": ""}, fields=["EventStart"])
    now = int(harness.em.clock.now().timestamp() * 1000)
    starts = [ms(r["EventStart"]) for r in rows]
    assert rows and min(starts) >= now - 31 * 86_400_000 and max(starts) < now


def test_segment_membership_is_computed(harness):
    scope = {"scope": "SCOPE_INDIVIDUAL"}
    rows = ndjson(harness, segmentId="htIXCSMv9Q9M", eventDetails=scope, **ALL_TIME)
    members = {r["IndvId"] for r in rows}
    everyone = ndjson(harness, **ALL_TIME, fields=["IndvId", "EventType", "PageUrl"])
    visited = {
        r["IndvId"]
        for r in everyone
        if r["EventType"] == "navigate" and "/checkout" in r.get("PageUrl", "")
    }
    assert members == visited and members


def test_individual_aggregates_agree_with_events(harness):
    people = ndjson(harness, type="TYPE_INDIVIDUAL", **ALL_TIME)
    events = ndjson(harness, eventDetails={"scope": "SCOPE_INDIVIDUAL"}, **ALL_TIME)
    assert people and set(people[0]) <= set(INDIVIDUAL_FIELDS) | set(CUSTOM_VARS["user"])
    by_person = defaultdict(list)
    for row in events:
        by_person[row["IndvId"]].append(row)
    assert {p["IndvId"] for p in people} == set(by_person)
    for person in people:
        rows = by_person[person["IndvId"]]
        sessions = defaultdict(list)
        for row in rows:
            sessions[row["SessionId"]].append(row)
        lengths, active = {}, {}
        for sid, srows in sessions.items():
            pages = {r["PageId"]: r for r in srows}
            end = max(ms(r["PageStart"]) + r.get("PageDuration", 0) for r in pages.values())
            lengths[sid] = end - ms(srows[0]["SessionStart"])
            active[sid] = sum(r.get("PageActiveDuration", 0) for r in pages.values())
        last = max(sessions, key=lambda sid: ms(sessions[sid][0]["SessionStart"]))
        assert person["NumEvents"] == len(rows)
        assert person["NumSessions"] == len(sessions)
        assert person["NumPages"] == len({r["PageId"] for r in rows})
        assert person["TotalSec"] == pytest.approx(sum(lengths.values()) / 1000)
        assert person["ActiveSec"] == pytest.approx(sum(active.values()) / 1000)
        assert person["MaxSessionSec"] == pytest.approx(max(lengths.values()) / 1000)
        assert person["LastSessionSec"] == pytest.approx(lengths[last] / 1000)
        assert person["LastSessionNumEvents"] == len(sessions[last])
        assert person["LastSessionStart"] == sessions[last][0]["SessionStart"]
        assert person["LastEventStart"] == max(r["EventStart"] for r in rows)
        assert person["Created"] == rows[0]["UserCreated"]


def test_fields_for_individual_exports(harness):
    rows = ndjson(
        harness,
        type="TYPE_INDIVIDUAL",
        fields=["Email", "IndvId", "NumEvents", "user_*"],
        **ALL_TIME,
    )
    assert rows and all(list(r)[:1] in (["Email"], ["IndvId"]) for r in rows)
    assert all(set(r) <= {"Email", "IndvId", "NumEvents", *CUSTOM_VARS["user"]} for r in rows)


def test_explicit_unknown_custom_variable_is_an_empty_column(harness):
    text = gzip.decompress(
        harness.export_bytes(
            format="FORMAT_CSV", fields=["IndvId", "user_favourite_colour_str"], **ALL_TIME
        )
    ).decode()
    lines = text.splitlines()
    assert lines[0] == "IndvId,user_favourite_colour_str" and all(
        line.endswith(",") for line in lines[1:]
    )


@pytest.mark.parametrize("timezone", ["UTC", "America/Los_Angeles", "Asia/Kolkata"])
def test_timezone_sets_the_segment_window_midnight(harness, timezone):
    from zoneinfo import ZoneInfo

    now = harness.em.clock.now()
    local = now.astimezone(ZoneInfo(timezone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30)
    lo, hi = int(midnight.timestamp() * 1000), int(now.timestamp() * 1000)
    world = harness.em.exports.world
    expected = sorted(
        e.row["EventStart"]
        for i in range(world.population)
        for e in world.events(i, hi)
        if lo <= e.t
    )
    rows = ndjson(
        harness, timezone=timezone, timeRange={"start": "", "end": ""}, fields=["EventStart"]
    )
    assert sorted(r["EventStart"] for r in rows) == expected
