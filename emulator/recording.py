"""A recording: what `fullstory-emulator record` saw of a FullStory org, as a folder the emulator
replays (`--replay DIR`).

The folder is meant to be committed to a test repository, so every file is small, sorted and
stable JSON (or NDJSON), and the state a recording needs to resume lives apart, in `.recording/`,
which the folder's own `.gitignore` keeps out.

    recording.json     the manifest: format version, where and when it was recorded (never the
                       key), whether personal data was scrubbed, one entry per recorded export
    segments.json      the org's segments in the emulator's `--segments` format
                       (`"replaceDefaults": true`; id, name, creator, created, url)
    fields.json        the field catalogue: for each field seen, its JSON type, null rate and a
                       bounded sample of its values (or its range), plus the page URLs' hosts
                       and paths
    exports/*.ndjson   each recorded export's rows as served, one JSON object per line
    .recording/        resume state and the scrub salt (not committed)

This module is the format and nothing else: the recorder (`client/record.py`) writes it, the
replaying server (`files/replay.py`, `world/shape.py`) reads it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .contract import EXPORT_TYPES, STATES
from .timestamps import parse_rfc3339

VERSION = 1
MANIFEST = "recording.json"
SEGMENTS = "segments.json"
FIELDS = "fields.json"
EXPORTS_DIR = "exports"
STATE_DIR = ".recording"  # resume state and the scrub salt
JSON_TYPES = ("string", "integer", "number", "boolean", "object", "array")
CUSTOM_VAR_PREFIXES = ("user_", "evt_", "page_")
MAX_VALUES = 50  # distinct values kept per field
MAX_URL_PARTS = 200  # hosts and paths kept
_FILE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def json_type(value: Any) -> str:
    """The JSON type of a decoded value, as JSON_TYPES names it (None and strings: "string";
    callers that tell null apart check it first)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string"


class RecordingError(ValueError):
    """A recording folder is missing or malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Poll:
    """One poll of the operation, `at` seconds after the export was created."""

    at: float
    state: str
    pct: int


@dataclass(frozen=True)
class Timeline:
    """How the recorded operation played out, as its client saw it."""

    polls: tuple[Poll, ...]
    duration: float | None  # seconds from creation to finishedAt, when it finished
    final_state: str
    error_details: str = ""

    def lifecycle_rule(self, segment_id: str) -> dict[str, Any]:
        """The control API's lifecycle rule (JSON) that replays this timeline poll by poll:
        the percentages seen while PENDING (never decreasing, 0..99), then the final state."""
        script: list[int] = []
        for poll in self.polls:
            if poll.state != "PENDING":
                break
            pct = max(0, min(99, poll.pct))
            script.append(max(pct, script[-1]) if script else pct)
        rule: dict[str, Any] = {"segmentId": segment_id}
        if script:
            rule["pctSequence"] = script
        else:
            rule["immediately"] = True
        if self.final_state not in ("PENDING", "COMPLETED"):
            rule["fail"] = self.error_details or "failed"
        return rule


@dataclass(frozen=True)
class RecordedExport:
    """One export as recorded: its request, its rows' file and its timeline."""

    segment_id: str
    type: str
    start: str  # RFC 3339, the timeRange asked for
    end: str
    file: str  # under exports/
    rows: int
    timeline: Timeline
    fields: tuple[str, ...] | None = None  # the `fields` asked for; None: all


@dataclass(frozen=True)
class FieldProfile:
    """What one field's values looked like: enough to generate more of the same."""

    type: str  # one of JSON_TYPES: the type of its non-null values (the commonest one)
    count: int  # rows that had the field at all
    null_rate: float  # of those, the fraction that were null or ""
    values: tuple[Any, ...] = ()  # up to MAX_VALUES distinct values (strings, booleans, numbers)
    minimum: float | None = None  # numbers only
    maximum: float | None = None


@dataclass(frozen=True)
class Catalogue:
    """Every field the recorded rows carried, and the page URLs' hosts and paths."""

    fields: Mapping[str, FieldProfile]
    hosts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    @property
    def custom_vars(self) -> dict[str, FieldProfile]:
        """The org's custom variables (`user_*`, `evt_*`, `page_*`), by name."""
        return {n: p for n, p in self.fields.items() if n.startswith(CUSTOM_VAR_PREFIXES)}


@dataclass(frozen=True)
class Recording:
    root: Path
    api_url: str
    recorded_at: str
    scrubbed: bool
    segments: tuple[Mapping[str, Any], ...]
    catalogue: Catalogue
    exports: tuple[RecordedExport, ...] = field(default=())

    @property
    def segments_file(self) -> Path:
        return self.root / SEGMENTS

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        """One lifecycle rule per recorded segment (its latest recording's timeline)."""
        latest = {e.segment_id: e for e in self.exports}
        return [e.timeline.lifecycle_rule(s) for s, e in sorted(latest.items())]

    @classmethod
    def load(cls, root: Path) -> Recording:
        manifest = _read(root / MANIFEST)
        where = str(root / MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("version") != VERSION:
            raise RecordingError(f'{where}: expected an object with "version": {VERSION}')
        segments = _read(root / SEGMENTS)
        if not isinstance(segments, dict) or not isinstance(segments.get("segments"), list):
            raise RecordingError(f'{root / SEGMENTS}: expected {{"segments": [...]}}')
        catalogue = catalogue_from_json(_read(root / FIELDS), str(root / FIELDS))
        items = manifest.get("exports", [])
        if not isinstance(items, list):
            raise RecordingError(f"{where}: exports must be a list")
        exports = tuple(
            _export_from_json(item, f"{where}: exports[{i}]", root) for i, item in enumerate(items)
        )
        return cls(
            root=root,
            api_url=_str(manifest, "apiUrl", where),
            recorded_at=_str(manifest, "recordedAt", where),
            scrubbed=manifest.get("scrubbed") is True,
            segments=tuple(segments["segments"]),
            catalogue=catalogue,
            exports=exports,
        )


# -- writing -----------------------------------------------------------------------------------


def write_json(path: Path, data: Any) -> None:
    """Write `data` as stable, diff-friendly JSON, atomically (a reader never sees half a file,
    an interrupted recording never leaves one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", "utf-8")
    os.replace(tmp, path)


def manifest_json(
    *, api_url: str, recorded_at: str, scrubbed: bool, exports: Sequence[RecordedExport]
) -> dict[str, Any]:
    return {
        "version": VERSION,
        "apiUrl": api_url,
        "recordedAt": recorded_at,
        "scrubbed": scrubbed,
        "exports": [export_json(e) for e in exports],
    }


def export_json(export: RecordedExport) -> dict[str, Any]:
    t = export.timeline
    return {
        "segmentId": export.segment_id,
        "type": export.type,
        "start": export.start,
        "end": export.end,
        "file": export.file,
        "rows": export.rows,
        "fields": list(export.fields) if export.fields is not None else None,
        "timeline": {
            "polls": [{"at": p.at, "state": p.state, "pct": p.pct} for p in t.polls],
            "durationSeconds": t.duration,
            "finalState": t.final_state,
            "errorDetails": t.error_details,
        },
    }


def catalogue_json(catalogue: Catalogue) -> dict[str, Any]:
    def profile(p: FieldProfile) -> dict[str, Any]:
        out: dict[str, Any] = {"type": p.type, "count": p.count, "nullRate": p.null_rate}
        if p.values:
            out["values"] = list(p.values)
        if p.minimum is not None:
            out["min"], out["max"] = p.minimum, p.maximum
        return out

    return {
        "fields": {name: profile(p) for name, p in sorted(catalogue.fields.items())},
        "pageUrls": {"hosts": list(catalogue.hosts), "paths": list(catalogue.paths)},
    }


# -- reading -----------------------------------------------------------------------------------


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordingError(
            f"{path}: missing; is {path.parent} a folder written by `fullstory-emulator record`?"
        ) from None
    except (OSError, ValueError) as exc:
        raise RecordingError(f"{path}: cannot read it: {exc}") from None


def _str(data: Mapping[str, Any], name: str, where: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise RecordingError(f"{where}: {name} must be a string")
    return value


def _number(data: Mapping[str, Any], name: str, where: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordingError(f"{where}: {name} must be a number")
    return float(value)


def catalogue_from_json(data: Any, where: str) -> Catalogue:
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
        raise RecordingError(f'{where}: expected {{"fields": {{...}}}}')
    fields: dict[str, FieldProfile] = {}
    for name, item in data["fields"].items():
        at = f"{where}: fields.{name}"
        if not isinstance(item, dict) or item.get("type") not in JSON_TYPES:
            raise RecordingError(f"{at}.type must be one of {', '.join(JSON_TYPES)}")
        count = item.get("count", 0)
        rate = _number(item, "nullRate", at) or 0.0
        if not isinstance(count, int) or count < 0 or not 0 <= rate <= 1:
            raise RecordingError(f"{at}: count >= 0 and nullRate in 0..1 expected")
        values = item.get("values", [])
        if not isinstance(values, list):
            raise RecordingError(f"{at}.values must be a list")
        fields[name] = FieldProfile(
            type=item["type"],
            count=count,
            null_rate=rate,
            values=tuple(values[:MAX_VALUES]),
            minimum=_number(item, "min", at),
            maximum=_number(item, "max", at),
        )
    urls = data.get("pageUrls", {})
    hosts, paths = urls.get("hosts", []), urls.get("paths", [])
    if not all(isinstance(x, str) for x in (*hosts, *paths)):
        raise RecordingError(f"{where}: pageUrls.hosts and .paths must be lists of strings")
    return Catalogue(fields, tuple(hosts), tuple(paths))


def _export_from_json(item: Any, where: str, root: Path) -> RecordedExport:
    if not isinstance(item, dict):
        raise RecordingError(f"{where}: expected an object")
    export_type = _str(item, "type", where)
    if export_type not in EXPORT_TYPES:
        raise RecordingError(f"{where}: type must be one of {', '.join(EXPORT_TYPES)}")
    start, end = _str(item, "start", where), _str(item, "end", where)
    try:
        if parse_rfc3339(end) <= parse_rfc3339(start):
            raise RecordingError(f"{where}: end must be after start")
    except (TypeError, ValueError) as exc:
        raise RecordingError(f"{where}: start and end must be RFC 3339 ({exc})") from None
    name = _str(item, "file", where)
    if not _FILE_NAME.match(name) or not (root / EXPORTS_DIR / name).is_file():
        raise RecordingError(f"{where}: file {name!r} is not a file under {EXPORTS_DIR}/")
    fields = item.get("fields")
    if fields is not None and not (
        isinstance(fields, list) and all(isinstance(f, str) for f in fields)
    ):
        raise RecordingError(f"{where}: fields must be null or a list of strings")
    t = item.get("timeline")
    if not isinstance(t, dict) or not isinstance(t.get("polls", []), list):
        raise RecordingError(f"{where}: timeline must be an object with a list of polls")
    polls = []
    for i, p in enumerate(t.get("polls", [])):
        at = f"{where}: timeline.polls[{i}]"
        if not isinstance(p, dict) or p.get("state") not in STATES:
            raise RecordingError(f"{at}.state must be one of {', '.join(STATES)}")
        pct = p.get("pct", 0)
        if not isinstance(pct, int) or isinstance(pct, bool):
            raise RecordingError(f"{at}.pct must be an integer")
        polls.append(Poll(at=_number(p, "at", at) or 0.0, state=p["state"], pct=pct))
    final = t.get("finalState", "COMPLETED")
    if final not in STATES:
        raise RecordingError(f"{where}: timeline.finalState must be one of {', '.join(STATES)}")
    rows = item.get("rows", 0)
    if not isinstance(rows, int) or rows < 0:
        raise RecordingError(f"{where}: rows must be a non-negative integer")
    return RecordedExport(
        segment_id=_str(item, "segmentId", where),
        type=export_type,
        start=start,
        end=end,
        file=name,
        rows=rows,
        fields=tuple(fields) if fields is not None else None,
        timeline=Timeline(
            polls=tuple(polls),
            duration=_number(t, "durationSeconds", where),
            final_state=final,
            error_details=str(t.get("errorDetails", "")),
        ),
    )
