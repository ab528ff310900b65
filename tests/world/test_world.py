"""Properties of the procedural world: determinism, ids, field names, time nesting, aggregates."""

from __future__ import annotations

import itertools
import json
import random
import re
from collections import Counter, defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fullstory_emulator.contract import EVENT_FIELDS
from fullstory_emulator.timestamps import parse_rfc3339, to_ms
from fullstory_emulator.world import CUSTOM_VARS, SESSION_SPAN_MAX_MS, Event, World
from fullstory_emulator.world import actions as A
from fullstory_emulator.world import population as P
from fullstory_emulator.world.events import EVENT_LEVEL_FIELDS, SESSION_LEVEL_FIELDS, page_events

DAY = 86_400_000
ORIGIN = 1_704_067_200_000  # 2024-01-01T00:00:00Z
HORIZON = ORIGIN + 120 * DAY
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CUSTOM = re.compile(r"^(user|evt|page)_[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*_(str|int|real|bool|date)$")
ALL_CUSTOM = {name for names in CUSTOM_VARS.values() for name in names}
INT_FIELDS = {
    "IndvId",
    "UserId",
    "SessionId",
    "PageId",
    "PageClusterId",
    "EventPageOffset",
    "EventSessionOffset",
    "EventDuration",
    "EventSecondaryDuration",
    "EventModFrustrated",
    "EventModDead",
    "EventModError",
    "EventModSuspicious",
    "EventFirstInputDelay",
    "PageDuration",
    "PageActiveDuration",
    "PageScreenWidth",
    "PageScreenHeight",
    "PageViewportWidth",
    "PageViewportHeight",
    "PageNumEvents",
    "PageNumDerivedEvents",
    "PageNumInfos",
    "PageNumWarnings",
    "PageNumErrors",
    "PageMaxScrollDepthPercent",
    "LoadDomContentTime",
    "LoadEventTime",
    "LoadFirstPaintTime",
    "LoadLargestPaintTime",
    "ReqStatus",
}
TIME_FIELDS = ("EventStart", "SessionStart", "PageStart", "UserCreated")
APP_FIELDS = (
    "AppName",
    "AppPackageName",
    "AppDeviceModel",
    "AppDeviceVendor",
    "AppVersion",
    "AppOsVersion",
    "AppViewName",
)

seeds = st.integers(min_value=0, max_value=2**64 - 1)
indices = st.integers(min_value=0, max_value=499)
fast = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ms(text: object) -> int:
    assert isinstance(text, str) and TS.match(text), text
    return to_ms(parse_rfc3339(text))


def world(seed: int = 7, population: int = 500) -> World:
    return World(seed=seed, origin_ms=ORIGIN, population=population)


def events_of(w: World, index: int, until: int = HORIZON) -> list[Event]:
    return list(w.events(index, until))


# --- determinism and ids -------------------------------------------------------------------------


def test_same_seed_same_world() -> None:
    a, b = world(3), world(3)
    for i in (0, 1, 17, 499):
        assert a.individual(i) == b.individual(i)
        ea, eb = events_of(a, i), events_of(b, i)
        assert [(e.t, e.session_id, e.page_id, e.row) for e in ea] == [
            (e.t, e.session_id, e.page_id, e.row) for e in eb
        ]


def test_different_seeds_differ() -> None:
    a, b = world(1), world(2)
    assert a.individual(0).indv_id != b.individual(0).indv_id
    assert [e.row for e in events_of(a, 0)] != [e.row for e in events_of(b, 0)]


def test_order_of_calls_does_not_matter() -> None:
    a, b = world(5), world(5)
    forward = [events_of(a, i)[:5] for i in range(6)]
    backward = [events_of(b, i)[:5] for i in reversed(range(6))][::-1]
    assert [[e.row for e in x] for x in forward] == [[e.row for e in x] for x in backward]


def test_global_random_untouched_and_unused() -> None:
    random.seed(1)
    state = random.getstate()
    first = [e.row for e in events_of(world(9), 4)]
    assert random.getstate() == state
    random.seed(2)
    assert [e.row for e in events_of(world(9), 4)] == first


def test_ids_are_large_stable_ints() -> None:
    w = world(11)
    people = [w.individual(i) for i in range(200)]
    assert all(isinstance(p.indv_id, int) and 0 < p.indv_id < 2**63 for p in people)
    assert all(p.user_id != p.indv_id for p in people)
    assert sum(p.indv_id > 2**53 for p in people) >= 190
    assert len({p.indv_id for p in people}) == 200
    assert world(11).individual(42).indv_id == people[42].indv_id
    rows = [e.row for i in range(20) for e in events_of(w, i)]
    for key in ("SessionId", "PageId", "PageClusterId", "UserId", "IndvId"):
        values = [r[key] for r in rows]
        assert all(type(v) is int and 0 < v < 2**63 for v in values)
        assert sum(v > 2**53 for v in values) >= 0.95 * len(values)
    for i in range(20):
        for e in events_of(w, i):
            assert e.row["IndvId"] == people[i].indv_id
            assert e.row["UserId"] == people[i].user_id
            assert e.row["SessionId"] == e.session_id and e.row["PageId"] == e.page_id


def test_individuals_shape() -> None:
    w = world(13, population=400)
    people = [w.individual(i) for i in range(400)]
    anonymous = [p for p in people if not p.uid]
    assert 0.3 < len(anonymous) / 400 < 0.5
    assert all(not p.display_name and not p.email for p in anonymous)
    named = [p for p in people if p.uid]
    assert all(p.display_name and "@" in p.email for p in named)
    assert len({p.uid for p in named}) == len(named)
    assert all(len(p.user_vars) < len(named[0].user_vars) for p in anonymous)
    assert 0.08 < sum(p.mobile for p in people) / 400 < 0.25
    assert all(ORIGIN <= p.created_ms < ORIGIN + 90 * DAY for p in people)
    for p in people:
        assert set(p.user_vars) <= set(CUSTOM_VARS["user"])


def test_index_out_of_range() -> None:
    w = world(population=3)
    for bad in (-1, 3):
        with pytest.raises(IndexError):
            w.individual(bad)
        with pytest.raises(IndexError):
            w.events(bad, HORIZON)
        with pytest.raises(IndexError):
            w.session_starts(bad, HORIZON)


def test_cache_is_bounded_and_faker_lazy() -> None:
    w = world(population=5000)
    for i in range(5000):
        list(w.session_starts(i, HORIZON))
    assert w._faker is None  # scanning never builds an identity
    for i in range(4200):
        w.individual(i)
    assert len(w._cache) <= 4096
    assert w.individual(0) == world(population=5000).individual(0)


# --- rows ----------------------------------------------------------------------------------------


def test_field_names_and_types() -> None:
    w = world(17)
    seen_types: Counter[str] = Counter()
    for i in range(60):
        for e in events_of(w, i):
            row = e.row
            seen_types[row["EventType"]] += 1
            for key, value in row.items():
                if key not in EVENT_FIELDS:
                    assert CUSTOM.match(key), key
                    assert key in ALL_CUSTOM, key
                    if key.startswith("evt_"):
                        assert row["EventType"] == "custom", key
                assert value is not None and value != "", (key, row)
                if key in INT_FIELDS:
                    assert type(value) is int, (key, value)
                if key in TIME_FIELDS or key.endswith("_date"):
                    assert TS.match(value), (key, value)  # type: ignore[arg-type]
                if key.endswith("_bool"):
                    assert type(value) is bool
                if key.endswith("_real"):
                    assert type(value) is float
            for mod in (
                "EventModFrustrated",
                "EventModDead",
                "EventModError",
                "EventModSuspicious",
            ):
                assert row.get(mod, 1) >= 1  # sparse: zero is omitted
            if "EventCumulativeLayoutShift" in row:
                assert type(row["EventCumulativeLayoutShift"]) is float
            assert 0 <= row.get("PageMaxScrollDepthPercent", 0) <= 100
            assert row["PageActiveDuration"] <= row["PageDuration"]
    for etype in ("navigate", "load", "click", "change", "request", "custom", "console_message"):
        assert seen_types[etype] > 0, etype


def test_event_level_fields_vary_only_within_their_set() -> None:
    w = world(19)
    pages: dict[int, dict[str, object]] = {}
    for i in range(30):
        for e in events_of(w, i):
            page_part = {k: v for k, v in e.row.items() if k not in EVENT_LEVEL_FIELDS}
            assert pages.setdefault(e.page_id, page_part) == page_part
            keys = list(e.row)
            first_event_key = next(j for j, k in enumerate(keys) if k in EVENT_LEVEL_FIELDS)
            assert all(k in EVENT_LEVEL_FIELDS for k in keys[first_event_key:])


def test_session_level_fields_are_the_same_on_every_row_of_a_session() -> None:
    """What lets a serialiser render them once per session: checked over web and app visitors,
    and every row's keys outside both sets are its page's."""
    w = world(31)
    sessions: dict[int, dict[str, object]] = {}
    platforms = set()
    for i in range(60):
        for e in events_of(w, i):
            part = {k: v for k, v in e.row.items() if k in SESSION_LEVEL_FIELDS}
            assert sessions.setdefault(e.session_id, part) == part
            platforms.add(e.row["PagePlatform"])
    assert {"Web", "Android", "iOS"} <= platforms
    assert not SESSION_LEVEL_FIELDS & EVENT_LEVEL_FIELDS


def test_pages_hold_the_events_and_their_rows() -> None:
    """`pages_between` is `events_between` a page at a time: page_events of the pages are the
    same events, and a page's row holds no event-level field."""
    w = world(37)
    lo, hi = ORIGIN + 20 * DAY, ORIGIN + 70 * DAY  # windows cut sessions and pages
    for i in range(40):
        pages = list(w.pages_between(i, lo, hi))
        assert [(e.t, e.session_id, e.page_id, e.row) for e in page_events(pages, w.seed)] == [
            (e.t, e.session_id, e.page_id, e.row) for e in w.events_between(i, lo, hi)
        ]
        for page in pages:
            assert page.events and len(page.events) == len(page.starts)
            assert page.row["PageId"] == page.page_id
            assert not EVENT_LEVEL_FIELDS & page.row.keys()


def test_request_fields_are_shared_within_a_bound() -> None:
    requests = A.Requests()
    first = requests["/a", "GET", 200]
    assert first == {"ReqUrl": "/a", "ReqMethod": "GET", "ReqStatus": 200}
    assert requests["/a", "GET", 200] is first
    for n in range(5000):
        requests[f"/{n}", "GET", 200]
    assert len(requests) <= 4096


def test_rows_are_fresh_dicts() -> None:
    w = world(23)
    first = events_of(w, 2)
    first[0].row["EventType"] = "mutated"
    first[1].row.clear()
    again = events_of(w, 2)
    assert again[0].row["EventType"] == "navigate" and again[1].row


def test_event_vocabulary() -> None:
    w = world(29)
    rows = [e.row for i in range(150) for e in events_of(w, i)]
    kinds = Counter(r["EventType"] for r in rows)
    for etype in (
        "thrash",
        "click_error",
        "exception",
        "highlight",
        "cumulative_layout_shift",
        "first_input_delay",
        "abandon",
        "copy",
        "paste",
        "backgrounded",
        "keyboard_open",
        "keyboard_close",
        "pinch_gesture",
    ):
        assert kinds[etype] > 0, etype
    navs = {r["EventSubType"] for r in rows if r["EventType"] == "navigate"}
    assert navs == {"navigate", "reload", "back_forward"}
    assert any(r.get("EventModDead") == 1 for r in rows)
    assert all(r["EventModFrustrated"] == 1 for r in rows if r["EventType"] == "thrash")
    assert any(r.get("ReqStatus", 0) >= 400 for r in rows)
    names = {r["EventCustomName"] for r in rows if r["EventType"] == "custom"}
    assert {"Added to Cart", "Order Completed", "Checkout Started"} <= names
    for r in rows:
        if r["EventType"] == "custom":
            payload = json.loads(r["EventVarFields"])  # type: ignore[arg-type]
            assert {f"evt_{k}": v for k, v in payload.items()} == {
                k: v for k, v in r.items() if k.startswith("evt_")
            }
        if r["EventType"] == "console_message":
            assert r["EventSubType"] == "error" and r["EventTargetText"]
        if r["EventType"] == "exception":
            assert r["EventSubType"] == "uncaught"
            assert "EventWebSourceFileUrl" in r or "EventMobileSourceFile" in r
        if r["EventType"] == "load":
            assert r["LoadFirstPaintTime"] <= r["LoadDomContentTime"] <= r["LoadEventTime"]
        if r["EventType"] == "crashed":
            assert r["EventMobileSourceFile"]
        if r["EventType"] == "navigate":
            assert "PageMaxScrollDepthPercent" in r


def test_web_and_app_rows() -> None:
    w = world(31, population=300)
    mobile = [i for i in range(300) if w.individual(i).mobile][:8]
    web = [i for i in range(300) if not w.individual(i).mobile][:8]
    assert mobile and web
    for i in mobile:
        for e in events_of(w, i):
            assert all(f in e.row for f in APP_FIELDS)
            assert "PageUrl" not in e.row and "PageRefererUrl" not in e.row
            assert e.row["PagePlatform"] in ("Android", "iOS")
            assert e.row["EventType"] not in ("load", "copy", "paste", "first_input_delay")
    for i in web:
        for e in events_of(w, i):
            assert not any(f in e.row for f in APP_FIELDS)
            assert str(e.row["PageUrl"]).startswith("https://www.acme-outfitters.example/")
            assert e.row["PagePlatform"] == "Web"
            assert e.row["PageDevice"] in ("Desktop", "Mobile", "Tablet")
            assert (
                e.row["PageBrowser"]
                in str(e.row["PageUserAgent"]).replace("Samsung Internet", "SamsungBrowser")
                or e.row["PageBrowser"] == "Edge"
            )
            lat, lon = str(e.row["PageLatLong"]).split(",")
            assert -90 <= float(lat) <= 90 and -180 <= float(lon) <= 180


def test_user_fields_on_every_row() -> None:
    w = world(37)
    for i in range(20):
        person = w.individual(i)
        for e in events_of(w, i):
            assert ms(e.row["UserCreated"]) == person.created_ms
            assert e.row.get("UserAppKey", "") == person.uid
            assert e.row.get("UserEmail", "") == person.email
            assert e.row.get("UserDisplayName", "") == person.display_name
            for key, value in person.user_vars.items():
                assert e.row[key] == value


# --- time ----------------------------------------------------------------------------------------


def check_nesting(w: World, index: int) -> None:
    events = events_of(w, index)
    assert [e.t for e in events] == sorted(e.t for e in events)
    person = w.individual(index)
    sessions: dict[int, list[Event]] = defaultdict(list)
    for e in events:
        row = e.row
        t = ms(row["EventStart"])
        assert t == e.t
        page_start, session_start = ms(row["PageStart"]), ms(row["SessionStart"])
        assert row["EventPageOffset"] == t - page_start
        assert row["EventSessionOffset"] == t - session_start
        assert page_start <= t < page_start + row["PageDuration"]  # type: ignore[operator]
        assert session_start <= page_start
        sessions[e.session_id].append(e)
    starts = list(w.session_starts(index, HORIZON))
    assert [ms(v[0].row["SessionStart"]) for v in sessions.values()] == starts
    if starts:
        assert starts[0] == person.created_ms
    previous_end = None
    for session_events in sessions.values():
        pages: dict[int, tuple[int, int]] = {}
        for e in session_events:
            pages[e.page_id] = (ms(e.row["PageStart"]), int(e.row["PageDuration"]))  # type: ignore[call-overload]
        spans = list(pages.values())
        assert spans[0][0] == ms(session_events[0].row["SessionStart"])
        for (s1, d1), (s2, _) in itertools.pairwise(spans):
            assert s1 + d1 <= s2  # sequential, no overlap
        start, end = spans[0][0], spans[-1][0] + spans[-1][1]
        assert end - start < SESSION_SPAN_MAX_MS
        if previous_end is not None:
            assert previous_end < start
        previous_end = end


@fast
@given(seed=seeds, index=indices)
def test_time_nesting(seed: int, index: int) -> None:
    check_nesting(world(seed), index)


@fast
@given(
    seed=seeds,
    index=indices,
    start=st.integers(min_value=-5 * DAY, max_value=125 * DAY),
    length=st.integers(min_value=0, max_value=40 * DAY),
)
def test_events_between_is_a_filter(seed: int, index: int, start: int, length: int) -> None:
    w = world(seed)
    lo, hi = ORIGIN + start, ORIGIN + start + length
    expected = [e for e in w.events(index, hi) if e.t >= lo]
    got = list(w.events_between(index, lo, hi))
    assert [(e.t, e.page_id, e.row) for e in got] == [(e.t, e.page_id, e.row) for e in expected]


@fast
@given(seed=seeds, index=indices, cut=st.integers(min_value=0, max_value=120 * DAY))
def test_until_is_a_prefix(seed: int, index: int, cut: int) -> None:
    w = world(seed)
    full = events_of(w, index)
    until = ORIGIN + cut
    assert [e.row for e in w.events(index, until)] == [e.row for e in full if e.t < until]
    assert list(w.session_starts(index, until)) == [
        s for s in w.session_starts(index, HORIZON) if s < until
    ]


def test_sessions_continue_after_90_days_and_are_mostly_awake() -> None:
    w = world(41, population=400)
    counts, awake, total, late = [], 0, 0, 0
    for i in range(400):
        starts = list(w.session_starts(i, ORIGIN + 90 * DAY))
        counts.append(len(starts))
        tz = P.timing(w.seed, ORIGIN, i)[2]
        for s in starts:
            total += 1
            awake += (s + tz) % DAY >= 7 * 3_600_000
        late += bool(list(w.session_starts(i, ORIGIN + 365 * DAY))[len(starts) :])
    assert 12 < sum(counts) / len(counts) < 25  # density 1: ~15 sessions in the first 90 days
    assert max(counts) >= 15
    assert awake / total > 0.85
    assert late > 100


def test_page_aggregates_and_shares() -> None:
    w = world(43, population=400)
    until = ORIGIN + 60 * DAY
    by_page: dict[int, list[dict[str, object]]] = defaultdict(list)
    sessions: dict[int, set[str]] = defaultdict(set)
    for i in range(150):
        for e in w.events(i, until):
            by_page[e.page_id].append(e.row)
            sessions[e.session_id].add(str(e.row["PageName"]))
    complete = 0
    for rows in by_page.values():
        first = rows[0]
        if ms(first["PageStart"]) + int(first["PageDuration"]) >= until:  # type: ignore[call-overload]
            continue  # cut by `until`
        complete += 1
        types = Counter(r["EventType"] for r in rows)
        assert first["PageNumEvents"] == len(rows)
        assert first["PageNumErrors"] == types["console_message"] + types["exception"]
        assert first["PageNumDerivedEvents"] == types["click_error"] + types["custom_error"]
        assert rows[0]["EventType"] == "navigate" and rows[0]["EventPageOffset"] == 0
        assert sum(r["EventType"] == "navigate" for r in rows) == 1
    assert complete > 1000
    mean_events = sum(len(r) for r in by_page.values()) / len(by_page)
    assert 6 < mean_events < 11
    assert 3 < len(by_page) / len(sessions) < 5.5
    checkout = sum("Checkout" in names for names in sessions.values()) / len(sessions)
    assert 0.18 < checkout < 0.32


def test_event_times_are_formatted_across_the_epoch():
    """A world that starts in 1969: EventStart is the event's own instant, written in full,
    on both sides of the epoch (no cache of the formatted day or minute mistakes 1969-12-31
    or its last minute for "nothing formatted yet")."""
    world = World(seed=1, origin_ms=-86_400_000, population=50)
    events = [e for i in range(50) for e in world.events(i, 2 * 86_400_000)]
    assert any(e.t < 0 for e in events) and any(e.t >= 0 for e in events)
    for event in events:
        text, session = event.row["EventStart"], event.row["SessionStart"]
        assert isinstance(text, str) and isinstance(session, str)
        assert to_ms(parse_rfc3339(text)) == event.t and len(session) == 24
