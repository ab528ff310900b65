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

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISBLK, S_ISCHR, S_ISDIR, S_ISFIFO, S_ISREG, S_ISSOCK
from typing import Any, BinaryIO

import orjson

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

# What a recording's files may be, so that a hostile folder cannot exhaust the memory: the most
# bytes each kind of file may hold (docs/recording.md lists them), the longest line of a rows
# file, and how deep arrays and objects may nest in any of them.
ROWS = "rows"  # an exports/*.ndjson file
MIB = 1 << 20
LIMITS: Mapping[str, int] = {
    MANIFEST: 4 * MIB,  # about 1 KiB per recorded export
    SEGMENTS: 16 * MIB,  # about 300 bytes per segment
    FIELDS: 16 * MIB,  # at most MAX_VALUES values per field
    ROWS: 1024 * MIB,  # a busy org's hour, streamed, never held whole
}
MAX_LINE_BYTES = 16 * MIB  # one row of a rows file, which is held whole
MAX_DEPTH = 64  # arrays and objects in arrays and objects; FullStory's rows nest about 3 deep
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


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
    """A recording folder is missing, malformed or refused; the message is one line naming the
    file (and the field) and the fix. Control characters, which a hostile file name could
    carry to the terminal, are written escaped."""

    def __init__(self, message: str) -> None:
        super().__init__(_CONTROL.sub(lambda m: repr(m.group())[1:-1], message))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


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
    segments_document: Mapping[str, Any] = field(default_factory=dict)  # segments.json, as read

    @property
    def segments_source(self) -> tuple[str, Mapping[str, Any]]:
        """segments.json as `SegmentCatalog.load` takes a file already read (its name, its
        JSON), so that it is read once, bounded, here."""
        return str(self.root / SEGMENTS), self.segments_document

    def rows_digests(self) -> dict[str, str]:
        """Each recorded rows file's digest (by its name under exports/), every line read and
        checked: what a replay needs before it serves, which a server with several workers
        checks once before starting them."""
        digests: dict[str, str] = {}
        for export in self.exports:
            if export.file not in digests:
                digests[export.file] = rows_digest(self.root, f"{EXPORTS_DIR}/{export.file}")
        return digests

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        """One lifecycle rule per recorded segment (its latest recording's timeline)."""
        latest = {e.segment_id: e for e in self.exports}
        return [e.timeline.lifecycle_rule(s) for s, e in sorted(latest.items())]

    @classmethod
    def load(cls, root: Path) -> Recording:
        """The folder's recording, every file read bounded (`open_file`); RecordingError
        naming the file and the fix if it does not load."""
        manifest = read_json(root, MANIFEST)
        where = str(root / MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("version") != VERSION:
            raise RecordingError(f'{where}: expected an object with "version": {VERSION}')
        segments = read_json(root, SEGMENTS)
        if not isinstance(segments, dict) or not isinstance(segments.get("segments"), list):
            raise RecordingError(f'{root / SEGMENTS}: expected {{"segments": [...]}}')
        catalogue = catalogue_from_json(read_json(root, FIELDS), str(root / FIELDS))
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
            segments_document=segments,
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


def read_json(root: Path, name: str) -> Any:
    """A JSON file of the folder, read bounded (see `open_file`) and decoded no deeper than
    MAX_DEPTH."""
    path = root / name
    with open_file(root, name) as file:
        data = file.read(LIMITS[_kind(name)] + 1)
    _check_size(path, len(data), _kind(name), read=True)
    try:
        value = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise too_deep(path) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a too-long integer
        raise RecordingError(
            f"{path}: not JSON ({exc}); restore the file as `fullstory-emulator record` "
            "wrote it, or record the folder again"
        ) from None
    if deeper_than(value, MAX_DEPTH):
        raise too_deep(path)
    return value


def open_file(root: Path, name: str) -> BinaryIO:
    """Open the folder's file `name` (a path relative to `root`) for reading, or say in one
    line what is wrong with it and how to fix it.

    A recording is often someone else's folder, so its files are not trusted: the real path
    (symlinks followed) must lie inside the folder, so a link never reads `/etc/shadow`; the
    file must be a regular file, checked before it is opened (and again after, on the open
    descriptor), so a device is never read and a FIFO never blocks the start; and it must be
    within its kind's size limit (`LIMITS`), so `/dev/zero` or a huge file never fills the
    memory. Readers still read at most the limit plus one byte, since a file can grow after
    its size was checked."""
    path = root / name
    try:
        folder = root.resolve(strict=True)
    except OSError:
        raise RecordingError(
            f"{root}: no such folder; give --replay a folder written by `fullstory-emulator record`"
        ) from None
    if not folder.is_dir():
        raise RecordingError(
            f"{root}: not a folder; give --replay a folder written by `fullstory-emulator record`"
        )
    try:
        real = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise RecordingError(f"{path}: cannot follow it ({exc}); make it a plain file") from None
    if not real.is_relative_to(folder):
        raise RecordingError(
            f"{path}: leads to {real}, outside the recording folder {folder}; copy the file "
            "into the folder instead of linking to it"
        )
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        raise RecordingError(
            f"{path}: missing; is {root} a folder written by `fullstory-emulator record`? "
            "Restore the file, or record the folder again"
        ) from None
    except OSError as exc:
        raise _unreadable(path, exc) from None
    if not S_ISREG(mode):
        raise _not_a_file(path, _kind_of(mode))
    try:  # O_NONBLOCK: were it swapped for a FIFO since, the open would not wait for a writer
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC)
    except OSError as exc:
        raise _unreadable(path, exc) from None
    try:
        stat = os.fstat(fd)
        if not S_ISREG(stat.st_mode):
            raise _not_a_file(path, _kind_of(stat.st_mode))
        _check_size(path, stat.st_size, _kind(name))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def rows_digest(root: Path, name: str) -> str:
    """The rows file's digest, once each of its lines is known to be a JSON object no deeper
    than MAX_DEPTH (RecordingError naming the line if not: at start, not at a download)."""
    digest = hashlib.sha256()
    for number, line in read_lines(root, name):
        digest.update(line)
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if re.search("depth|recursion", str(exc), re.I):  # orjson's own limit (1024)
                raise too_deep(root / name, number) from None
            raise RecordingError(
                f"{root / name}: line {number} is not JSON ({exc}); restore the file as "
                "`fullstory-emulator record` wrote it"
            ) from None
        if not isinstance(row, dict):
            raise RecordingError(
                f"{root / name}: line {number} is not a JSON object; each line of a rows file "
                "is one row, an object"
            )
        if line.count(b"[") + line.count(b"{") > MAX_DEPTH and deeper_than(row, MAX_DEPTH):
            raise too_deep(root / name, number)
    return digest.hexdigest()[:32]


def read_lines(root: Path, name: str) -> Iterator[tuple[int, bytes]]:
    """The lines of a rows file (with their newline), numbered from 1, read through
    `open_file`: a line longer than MAX_LINE_BYTES, or a file grown past its limit since its
    size was checked, is refused rather than read into memory."""
    path = root / name
    left = LIMITS[ROWS]
    with open_file(root, name) as file:
        number = 0
        while line := file.readline(min(MAX_LINE_BYTES, left) + 1):
            number += 1
            left -= len(line)
            if left < 0:
                raise RecordingError(
                    f"{path}: grew over the limit of {LIMITS[ROWS]:,} bytes for a rows file "
                    "while read; record a shorter --window"
                )
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                raise RecordingError(
                    f"{path}: line {number} is longer than {MAX_LINE_BYTES:,} bytes, more than "
                    "any row; restore the file as `fullstory-emulator record` wrote it"
                )
            yield number, line


def deeper_than(value: Any, limit: int) -> bool:
    """Whether decoded JSON nests arrays and objects more than `limit` deep, found without
    recursion (a value nested 100,000 deep must give an answer, not a RecursionError)."""
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _kind(name: str) -> str:
    return name if name in LIMITS else ROWS


def _check_size(path: Path, size: int, kind: str, *, read: bool = False) -> None:
    """Refuse a file over its kind's limit (`size` as stat gave it, or, when `read`, the bytes
    read, at most the limit plus one)."""
    limit = LIMITS[kind]
    if size > limit:
        fix = "record a shorter --window" if kind == ROWS else "record the folder again"
        what = "a rows file" if kind == ROWS else kind
        shown = "" if read else f" ({size:,} bytes)"
        raise RecordingError(
            f"{path}: is over the limit of {limit:,} bytes for {what}{shown}; {fix}"
        )


def too_deep(path: Path, line: int | None = None) -> RecordingError:
    where = f"{path}: line {line} is" if line else f"{path}: is"
    return RecordingError(
        f"{where} nested deeper than {MAX_DEPTH} levels of arrays and objects, which no "
        "recording is; restore the file as `fullstory-emulator record` wrote it"
    )


def _not_a_file(path: Path, kind: str) -> RecordingError:
    return RecordingError(
        f"{path}: is {kind}, not a file; replace it with the file `fullstory-emulator record` wrote"
    )


def _unreadable(path: Path, exc: OSError) -> RecordingError:
    return RecordingError(f"{path}: cannot read it ({exc.strerror or exc}); check its permissions")


def _kind_of(mode: int) -> str:
    if S_ISDIR(mode):
        return "a folder"
    if S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if S_ISCHR(mode):
        return "a character device"
    if S_ISBLK(mode):
        return "a block device"
    if S_ISSOCK(mode):
        return "a socket"
    return "a special file"


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
    if not _FILE_NAME.match(name):
        raise RecordingError(f"{where}: file {name!r} is not a file name under {EXPORTS_DIR}/")
    open_file(root, f"{EXPORTS_DIR}/{name}").close()  # there, inside, a file, not too large
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
