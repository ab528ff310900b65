"""Which rows an export holds: segment membership, event scopes and time windows.

Rows are produced one individual at a time, so memory stays flat however large the world is.
Every row lies inside both the export's time range and the segment's window. Event scopes nest:
matching events, then every event of a page with a match, of a session with a match, and every
event of a matching individual.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import attrgetter
from typing import Any

from ..store.records import ExportSpec
from ..timestamps import MillisFormatter
from ..world import Event, Individual, Page, World
from ..world.segments import Segment

_ROW = attrgetter("row")


def user_properties(person: Individual) -> dict[str, Any]:
    """What a segment's `user` conditions can test."""
    props: dict[str, Any] = dict(person.user_vars)
    props.update(UserAppKey=person.uid, UserEmail=person.email, UserDisplayName=person.display_name)
    return props


def is_member(world: World, segment: Segment, index: int, start_ms: int, end_ms: int) -> bool:
    if segment.user_conditions and not segment.user_matches(
        user_properties(world.individual(index))
    ):
        return False
    matches = segment.event_matches
    return any(matches(event.row) for event in world.events_between(index, start_ms, end_ms))


def rows(
    world: World, segment: Segment, spec: ExportSpec, indices: range | None = None
) -> Iterator[dict[str, Any]]:
    """The export's rows, or (with `indices`) those of that run of individuals: an export's rows
    are its blocks' rows one after the other, so blocks can be made apart and in any order."""
    if spec.kind == "individual":
        return individual_rows(world, segment, spec, indices)
    return event_rows(world, segment, spec, indices)


def event_pages(
    world: World, segment: Segment, spec: ExportSpec, indices: range | None = None
) -> Iterator[Page] | None:
    """The export's rows as the world's pages, when they are every event of each member in
    the window (an event export of a segment without event conditions, or of individual
    scope, in the world's own shape); else None, and the rows are `rows`."""
    if spec.kind != "event" or world.shape is not None:
        return None
    if spec.scope != "SCOPE_INDIVIDUAL" and segment.event_conditions:
        return None
    lo, hi = spec.rows_window
    return (
        page
        for index in _members(world, segment, spec, indices)
        for page in world.pages_between(index, lo, hi)
    )


def _members(
    world: World, segment: Segment, spec: ExportSpec, indices: range | None
) -> Iterator[int]:
    lo, hi = spec.rows_window
    if lo >= hi:
        return
    seg_lo, seg_hi = spec.segment_start_ms, min(spec.segment_end_ms, spec.as_of_ms)
    for index in range(world.population) if indices is None else indices:
        if is_member(world, segment, index, seg_lo, seg_hi):
            yield index


def event_rows(
    world: World, segment: Segment, spec: ExportSpec, indices: range | None = None
) -> Iterator[dict[str, Any]]:
    lo, hi = spec.rows_window
    matches = segment.event_matches
    # Every event of a member: no per-event test (a third of the selection's cost).
    everything = spec.scope == "SCOPE_INDIVIDUAL" or not segment.event_conditions
    for index in _members(world, segment, spec, indices):
        events = world.events_between(index, lo, hi)
        if everything:
            yield from map(_ROW, events)
        elif spec.scope == "SCOPE_EVENT":
            for event in events:
                if matches(event.row):
                    yield event.row
        else:
            by_page = spec.scope == "SCOPE_PAGES"
            yield from _matching_groups(events, by_page, matches)


def _matching_groups(
    events: Iterable[Event], by_page: bool, matches: Any
) -> Iterator[dict[str, Any]]:
    """Every event of each page (or session) that holds at least one matching event."""
    group: list[dict[str, Any]] = []
    group_key: int | None = None
    hit = False
    for event in events:
        key = event.page_id if by_page else event.session_id
        if key != group_key:
            if hit:
                yield from group
            group, group_key, hit = [], key, False
        group.append(event.row)
        hit = hit or matches(event.row)
    if hit:
        yield from group


def individual_rows(
    world: World, segment: Segment, spec: ExportSpec, indices: range | None = None
) -> Iterator[dict[str, Any]]:
    """Matching individuals active in the rows window, with lifetime aggregates up to as_of."""
    lo, hi = spec.rows_window
    shape = world.shape
    for index in _members(world, segment, spec, indices):
        if next(iter(world.events_between(index, lo, hi)), None) is None:
            continue
        person = world.individual(index)
        row = aggregate(person, world.events(index, spec.as_of_ms))
        yield shape.individual_row(row) if shape else row


def aggregate(person: Individual, events: Iterable[Event]) -> dict[str, Any]:
    """An individual's export row; its figures are derived from the same rows an event export
    shows, so the two always agree:

    - a session lasts from SessionStart to the latest PageStart + PageDuration of its pages;
      TotalSec/MaxSessionSec/LastSessionSec are those lengths in seconds (ms precision);
    - ActiveSec sums PageActiveDuration of the individual's pages;
    - Last* describe the latest session, page and event.
    """
    fmt = MillisFormatter()
    sessions: dict[int, list[int]] = {}  # id -> [start, end, pages, events, active_ms]
    pages_seen: set[int] = set()
    num_events = 0
    last_row: dict[str, Any] | None = None
    last_page_row: dict[str, Any] | None = None
    last_page_start = -1
    last_session_id = 0
    last_session_start = -1
    for event in events:
        row: dict[str, Any] = event.row
        num_events += 1
        session = sessions.get(event.session_id)
        if session is None:
            start = event.t - row["EventSessionOffset"]
            session = sessions[event.session_id] = [start, start, 0, 0, 0]
            if start > last_session_start:
                last_session_start, last_session_id = start, event.session_id
        session[3] += 1
        page_start = event.t - row["EventPageOffset"]
        if event.page_id not in pages_seen:
            pages_seen.add(event.page_id)
            session[2] += 1
            session[4] += row.get("PageActiveDuration", 0)
            session[1] = max(session[1], page_start + row.get("PageDuration", 0))
        if page_start >= last_page_start:
            last_page_start, last_page_row = page_start, row
        last_row = row
    out: dict[str, Any] = {
        "IndvId": person.indv_id,
        "Created": fmt(person.created_ms),
        "Uid": person.uid,
        "DisplayName": person.display_name,
        "Email": person.email,
    }
    if sessions:
        lengths = [s[1] - s[0] for s in sessions.values()]
        active = [s[4] for s in sessions.values()]
        last = sessions[last_session_id]
        total_ms, active_ms = sum(lengths), sum(active)
        out.update(
            NumSessions=len(sessions),
            NumPages=len(pages_seen),
            NumEvents=num_events,
            TotalSec=total_ms / 1000,
            ActiveSec=active_ms / 1000,
            AvgSessionSec=round(total_ms / len(sessions) / 1000, 3),
            AvgSessionActiveSec=round(active_ms / len(sessions) / 1000, 3),
            MaxSessionSec=max(lengths) / 1000,
            LastSessionNumPages=last[2],
            LastSessionNumEvents=last[3],
            LastSessionSec=(last[1] - last[0]) / 1000,
            LastSessionActiveSec=last[4] / 1000,
            LastSessionStart=fmt(last[0]),
        )
    if last_page_row is not None:
        out.update(
            LastPage=last_page_row.get("PageUrl") or last_page_row.get("AppViewName", ""),
            LastIp=last_page_row.get("PageIp", ""),
            LastLatLong=last_page_row.get("PageLatLong", ""),
            LastBrowser=last_page_row.get("PageBrowser", ""),
            LastDevice=last_page_row.get("PageDevice", ""),
            LastPlatform=last_page_row.get("PagePlatform", ""),
            LastOperatingSystem=last_page_row.get("PageOperatingSystem", ""),
        )
    if last_row is not None:
        out["LastEventStart"] = last_row["EventStart"]
    out.update(person.user_vars)
    return {key: value for key, value in out.items() if value not in ("", None)}
