"""Properties of row selection (files/select.py) over random seeds, segments, time
ranges and scopes, checked against the world enumerated independently."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fullstory_emulator.contract import EVENT_FIELDS
from fullstory_emulator.files.select import user_properties
from fullstory_emulator.timestamps import format_ms, to_ms
from fullstory_emulator.world import CUSTOM_VARS
from tests.helpers import START, ms

SEGMENTS = [
    "everyone",
    "rageClicks",
    "htIXCSMv9Q9M",
    "Qx7bN2rLp4Ke",
    "m0B1leUs3rsA",
    "Pr0PlanUsr5x",
]
SCOPES = ["SCOPE_EVENT", "SCOPE_PAGES", "SCOPE_SESSIONS", "SCOPE_INDIVIDUAL"]
NOW = to_ms(START)
DAY = 86_400_000
ORIGIN = NOW // DAY * DAY - 90 * DAY
PROPERTY = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def instants():
    return st.integers(min_value=ORIGIN - DAY, max_value=NOW + DAY)


@st.composite
def ranges(draw):
    """A {start, end} body part (possibly open-ended) and its resolved bounds."""
    start = draw(st.none() | instants())
    end = draw(st.none() | instants())
    if start is not None and end is not None and start >= end:
        start, end = end, start + 1 if start == end else start
    body = {
        "start": "" if start is None else format_ms(start),
        "end": "" if end is None else format_ms(end),
    }
    return body, (ORIGIN if start is None else start, NOW if end is None else end)


def rows_of(h, **body):
    return [json.loads(line) for line in gzip.decompress(h.export_bytes(**body)).splitlines()]


@PROPERTY
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    segment_id=st.sampled_from(SEGMENTS),
    time_range=ranges(),
    segment_range=ranges(),
)
def test_rows_match_segment_lie_in_both_ranges_and_scopes_nest(
    make_harness, seed, segment_id, time_range, segment_range
):
    # exports complete at once, so that every export here is pinned to NOW
    h = make_harness(seed=seed, population=20, export_duration=0)
    world, segment = h.em.exports.world, h.em.exports.segments.get(segment_id)
    (tr_body, (tr_lo, tr_hi)), (sr_body, (sr_lo, sr_hi)) = time_range, segment_range
    lo, hi = max(tr_lo, sr_lo), min(tr_hi, sr_hi, NOW)

    # the members, computed here from the world, not by the exporter
    members = {}
    for index in range(world.population):
        person = world.individual(index)
        events = [e for e in world.events(index, NOW) if sr_lo <= e.t < min(sr_hi, NOW)]
        if segment.user_matches(user_properties(person)) and any(
            segment.event_matches(e.row) for e in events
        ):
            members[person.indv_id] = index

    body = {"segmentId": segment_id, "timeRange": tr_body, "segmentTimeRange": sr_body}
    by_scope = {}
    for scope in SCOPES:
        rows = rows_of(h, eventDetails={"scope": scope}, **body)
        for row in rows:
            assert lo <= ms(row["EventStart"]) < hi
            assert row["IndvId"] in members
            if scope == "SCOPE_EVENT":
                assert segment.event_matches(row)
        by_scope[scope] = {json.dumps(row, sort_keys=True) for row in rows}
        assert len(by_scope[scope]) == len(rows)  # no duplicates
    events, pages, sessions, people = (by_scope[s] for s in SCOPES)
    assert events <= pages <= sessions <= people

    # the individual scope is exactly every event of every member inside the window
    expected = {
        (index, e.t, e.row["EventType"], e.row["PageId"])
        for index in members.values()
        for e in world.events(index, NOW)
        if lo <= e.t < hi
    }
    got = {
        (members[r["IndvId"]], ms(r["EventStart"]), r["EventType"], r["PageId"])
        for r in map(json.loads, people)
    }
    assert got == expected


@PROPERTY
@given(seed=st.integers(min_value=0, max_value=2**32), segment_id=st.sampled_from(SEGMENTS))
def test_individual_aggregates_equal_the_event_data(make_harness, seed, segment_id):
    h = make_harness(seed=seed, population=15)
    world = h.em.exports.world
    all_time = {"timeRange": {"start": "", "end": ""}, "segmentTimeRange": {"start": "", "end": ""}}
    people = rows_of(h, segmentId=segment_id, type="TYPE_INDIVIDUAL", **all_time)
    index_of = {world.individual(i).indv_id: i for i in range(world.population)}
    for person in people:
        rows = [e.row for e in world.events(index_of[person["IndvId"]], NOW)]
        sessions = defaultdict(list)
        for row in rows:
            sessions[row["SessionId"]].append(row)
        lengths = {}
        for sid, srows in sessions.items():
            pages = {r["PageId"]: r for r in srows}
            end = max(ms(r["PageStart"]) + r["PageDuration"] for r in pages.values())
            lengths[sid] = end - ms(srows[0]["SessionStart"])
        active = sum({r["PageId"]: r["PageActiveDuration"] for r in rows}.values())
        assert person["NumEvents"] == len(rows)
        assert person["NumSessions"] == len(sessions)
        assert person["NumPages"] == len({r["PageId"] for r in rows})
        assert round(person["TotalSec"] * 1000) == sum(lengths.values())
        assert round(person["ActiveSec"] * 1000) == active
        assert round(person["MaxSessionSec"] * 1000) == max(lengths.values())
        assert person["LastEventStart"] == rows[-1]["EventStart"]


ALL_COLUMNS = list(EVENT_FIELDS) + [n for k in ("user", "evt", "page") for n in CUSTOM_VARS[k]]


@PROPERTY
@given(
    picked=st.lists(st.sampled_from(ALL_COLUMNS), min_size=1, max_size=25, unique=True),
    fmt=st.sampled_from(["FORMAT_CSV", "FORMAT_NDJSON"]),
)
def test_fields_selection_is_exact(make_harness, picked, fmt):
    h = make_harness(population=8)
    body = {
        "fields": picked,
        "format": fmt,
        "timeRange": {"start": "", "end": ""},
        "segmentTimeRange": {"start": "", "end": ""},
    }
    text = gzip.decompress(h.export_bytes(**body)).decode()
    if fmt == "FORMAT_CSV":
        table = list(csv.reader(io.StringIO(text)))
        assert table[0] == picked and all(len(row) == len(picked) for row in table[1:])
    else:
        for line in text.splitlines():
            keys = list(json.loads(line))
            assert keys == [name for name in picked if name in keys]


@PROPERTY
@given(
    seed=st.integers(min_value=0, max_value=2**63 - 1),
    segment_id=st.sampled_from(SEGMENTS),
    scope=st.sampled_from(SCOPES),
    fmt=st.sampled_from(["FORMAT_CSV", "FORMAT_JSON", "FORMAT_NDJSON"]),
    time_range=ranges(),
)
def test_same_seed_same_bytes_for_any_export(
    make_harness, seed, segment_id, scope, fmt, time_range
):
    body = {
        "segmentId": segment_id,
        "format": fmt,
        "eventDetails": {"scope": scope},
        "timeRange": time_range[0],
    }
    first = make_harness(seed=seed, population=10, signing_secret="x").export_bytes(**body)
    second = make_harness(seed=seed, population=10, signing_secret="y").export_bytes(**body)
    assert first == second
