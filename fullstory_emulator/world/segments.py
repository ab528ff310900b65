"""Segments: declarative definitions from fixtures, compiled into predicates over the world.

A segment selects individuals by conditions on their events (any event matching any one of the
`events` conditions, inside the segment's time window) and on their user properties. Membership
is computed from the world whenever an export runs; nothing is listed.

Condition syntax, for one field: a literal (equality), or one of
`{"contains": s}`, `{"prefix": s}`, `{"in": [...]}`, `{"exists": bool}`, `{"gte": n}`, `{"lte": n}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ..resources import fixture
from ..timestamps import parse_rfc3339

Test = Callable[[Any], bool]
Condition = tuple[tuple[str, Test], ...]
DEFAULT_WINDOW_DAYS = 30
_MISSING = object()


class SegmentFileError(ValueError):
    """A segments fixture is malformed; the message names the file, segment and field."""


@dataclass(frozen=True)
class SegmentFailure:
    message: str
    at_fraction: float


@dataclass(frozen=True)
class Segment:
    id: str
    name: str
    creator: str
    created: str | None  # RFC 3339; built-in segments have none
    window_days: int = DEFAULT_WINDOW_DAYS
    event_conditions: tuple[Condition, ...] = ()
    user_conditions: Condition = ()
    failure: SegmentFailure | None = None
    url: str | None = None  # as recorded from FullStory; else the emulator's own
    definition: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def event_matches(self, row: Mapping[str, Any]) -> bool:
        if not self.event_conditions:
            return True
        get = row.get
        for condition in self.event_conditions:
            if all(test(get(name, _MISSING)) for name, test in condition):
                return True
        return False

    def user_matches(self, properties: Mapping[str, Any]) -> bool:
        get = properties.get
        return all(test(get(name, _MISSING)) for name, test in self.user_conditions)


def _present(value: Any) -> bool:
    return value is not _MISSING and value not in ("", None)


def _compile_test(where: str, spec: Any) -> Test:
    if not isinstance(spec, dict):
        expected = spec
        return lambda value: bool(value == expected)
    if len(spec) != 1:
        raise SegmentFileError(f"{where}: a condition object has exactly one operator")
    op, arg = next(iter(spec.items()))
    if op == "contains" and isinstance(arg, str):
        return lambda value: isinstance(value, str) and arg in value
    if op == "prefix" and isinstance(arg, str):
        return lambda value: isinstance(value, str) and value.startswith(arg)
    if op == "in" and isinstance(arg, list):
        allowed = frozenset(arg)
        return lambda value: value is not _MISSING and value in allowed
    if op == "exists" and isinstance(arg, bool):
        return lambda value: _present(value) == arg
    if op in ("gte", "lte") and isinstance(arg, int | float) and not isinstance(arg, bool):
        if op == "gte":
            return lambda value: isinstance(value, int | float) and value >= arg
        return lambda value: isinstance(value, int | float) and value <= arg
    raise SegmentFileError(
        f"{where}: unknown operator {op!r} or wrong argument; use contains/prefix (string), "
        f"in (list), exists (bool), gte/lte (number)"
    )


def _compile_condition(where: str, spec: Any) -> Condition:
    if not isinstance(spec, dict) or not spec:
        raise SegmentFileError(f"{where}: expected an object of field conditions")
    return tuple((name, _compile_test(f"{where}.{name}", test)) for name, test in spec.items())


def _segment(where: str, item: Any) -> Segment:
    if not isinstance(item, dict):
        raise SegmentFileError(f"{where}: expected an object")
    seg_id, name = item.get("id"), item.get("name")
    if not isinstance(seg_id, str) or not seg_id or not isinstance(name, str):
        raise SegmentFileError(f"{where}: needs string 'id' and 'name'")
    where = f"{where} ({seg_id})"
    created = item.get("created")
    if created is not None:
        try:
            parse_rfc3339(created)
        except (TypeError, ValueError):
            raise SegmentFileError(f"{where}.created: {created!r} is not RFC 3339") from None
    url = item.get("url")
    if url is not None and not isinstance(url, str):
        raise SegmentFileError(f"{where}.url: a string (the segment's page in FullStory)")
    window = item.get("windowDays", DEFAULT_WINDOW_DAYS)
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise SegmentFileError(f"{where}.windowDays: a positive integer")
    events = item.get("events", [])
    if not isinstance(events, list):
        raise SegmentFileError(f"{where}.events: a list of conditions")
    failure = None
    if "fail" in item:
        fail = item["fail"]
        if not isinstance(fail, dict) or not isinstance(fail.get("message"), str):
            raise SegmentFileError(f"{where}.fail: needs a string 'message'")
        at = fail.get("atPercent", 100)
        if not isinstance(at, int | float) or not 0 <= at <= 100:
            raise SegmentFileError(f"{where}.fail.atPercent: a number from 0 to 100")
        failure = SegmentFailure(fail["message"], at / 100)
    return Segment(
        id=seg_id,
        name=name,
        creator=str(item.get("creator", "")),
        created=created,
        window_days=window,
        event_conditions=tuple(
            _compile_condition(f"{where}.events[{i}]", c) for i, c in enumerate(events)
        ),
        user_conditions=(
            _compile_condition(f"{where}.user", item["user"]) if item.get("user") else ()
        ),
        failure=failure,
        url=url,
        definition=item,
    )


class SegmentCatalog:
    """The segments of the instance, in fixture order (the order List Segments pages through)."""

    def __init__(self, segments: Iterable[Segment]) -> None:
        self._segments = list(segments)
        self._by_id = {s.id: s for s in self._segments}
        if len(self._by_id) != len(self._segments):
            raise SegmentFileError("segment ids must be unique")

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._segments)

    def __len__(self) -> int:
        return len(self._segments)

    def get(self, segment_id: str) -> Segment | None:
        return self._by_id.get(segment_id)

    @classmethod
    def parse(cls, data: Any, source: str) -> SegmentCatalog:
        items = data.get("segments") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise SegmentFileError(f'{source}: expected {{"segments": [...]}}')
        return cls(_segment(f"{source}: segments[{i}]", item) for i, item in enumerate(items))

    @classmethod
    def load(cls, *paths: Path | Traversable | tuple[str, Any] | None) -> SegmentCatalog:
        """The embedded segments, then each file's in turn: a file adds its segments to those
        before it (or, with `"replaceDefaults": true`, replaces them all), and a segment with
        an id seen before replaces that one in place. (`--replay` puts the recording's file,
        which replaces the defaults, before `--segments`; it comes already read, as a pair of
        its name and its JSON, since a recording's files are read bounded by its loader.)
        """
        catalog = cls.parse(
            _read_json(fixture("segments.json"), "embedded segments.json"), "embedded segments.json"
        )
        for path in paths:
            if path is None:
                continue
            name, data = (
                path if isinstance(path, tuple) else (str(path), _read_json(path, str(path)))
            )
            extra = cls.parse(data, name)
            if isinstance(data, dict) and data.get("replaceDefaults") is True:
                catalog = extra
                continue
            merged = {s.id: s for s in catalog}
            merged.update((s.id, s) for s in extra)
            catalog = cls(merged.values())
        return catalog


def _read_json(source: Traversable | Path, name: str) -> Any:
    try:
        return json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SegmentFileError(f"cannot read segments from {name}: {exc}") from None
