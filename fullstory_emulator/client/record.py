"""`fullstory-emulator record`: what a FullStory org serves, written down as a folder the emulator
loads (`--segments DIR/segments.json`) and replays.

It lists the org's segments, then walks the Segment Export workflow once per chosen segment
(create one event export over the window, poll it, fetch a signed URL, download) and writes the
folder `fullstory_emulator.recording` describes: the segments, each export's rows and the timeline
its polls saw, and the catalogue of the fields the rows carried. Personal data is scrubbed from
the rows before they touch the disk (`client/scrub.py`), unless `--no-scrub`.

Every request goes through `FullStoryClient`, which paces itself under the documented rate
limit and waits out a 429's `Retry-After`; a 429 that outlasts the client's retries is waited
out again here, so being rate limited only ever makes a recording slower.

What the recording learns as it goes (the window it resolved, the operations it created, the
polls it saw) is written to `.recording/state.json` before the next step, and the manifest is
rewritten after each export, so the folder is valid whenever the recording stops. Started again
with the same command it carries on: segments and exports done are not redone, an export
already created is polled again by its operation id, and a download is fetched again with a
fresh URL.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from ..contract import TYPE_EVENT
from ..recording import (
    EXPORTS_DIR,
    FIELDS,
    MANIFEST,
    MAX_URL_PARTS,
    MAX_VALUES,
    SEGMENTS,
    STATE_DIR,
    Catalogue,
    FieldProfile,
    Poll,
    RecordedExport,
    RecordingError,
    Timeline,
    catalogue_json,
    json_type,
    manifest_json,
    read_lines,
    write_json,
)
from ..settings import RateLimit, redact_url
from ..timestamps import parse_rfc3339
from .cli import DEFAULT_RATE_LIMIT, export_seconds, parse_duration, rfc3339
from .core import (
    DEFAULT_API_URL,
    EU_API_URL,
    DownloadExpired,
    ExportFailed,
    FullStoryClient,
    FullStoryError,
    NotFound,
    Pace,
    RateLimited,
    Retry,
    Unauthorized,
)
from .scrub import Scrubber, load_salt, scrub_segments

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
STATE_FILE = "state.json"
DOWNLOADS = "downloads"
GITIGNORE = ".gitignore"
SEGMENT_KEYS = ("id", "name", "creator", "created", "url")
TRACKED = 1000  # distinct values counted per field (and URL hosts and paths) while profiling
PROG = "fullstory-emulator record"
T = TypeVar("T")
Listener = Callable[[str, dict[str, Any]], Any]


class RecordError(Exception):
    """A recording that cannot go on, in one line naming what failed."""


# -- what is asked for ------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What the command asks for; pinned in the state at the first run, so that a rerun with
    other options is told rather than mixed into the same folder."""

    api_url: str
    segments: tuple[str, ...]
    window: timedelta
    end: datetime | None  # None: the API's clock when the recording starts
    scrub: bool

    def pinned(self) -> dict[str, Any]:
        return {
            "apiUrl": self.api_url,
            "segments": list(self.segments),
            "windowSeconds": self.window.total_seconds(),
            "end": rfc3339(self.end) if self.end else None,
            "scrub": self.scrub,
        }


def describe(pinned: Mapping[str, Any]) -> str:
    window = _duration(float(pinned.get("windowSeconds") or 0))
    scrub = "" if pinned.get("scrub") else ", unscrubbed"
    return (
        f"segments {', '.join(pinned.get('segments') or [])} over {window} ending "
        f"{pinned.get('end') or 'now'} from {public_url(str(pinned.get('apiUrl')))}{scrub}"
    )


def _duration(seconds: float) -> str:
    out, left = "", int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            out += f"{left // size}{unit}"
            left %= size
    return out or "0s"


def safe_name(segment_id: str) -> str:
    """A file name for a segment's export: its id where that is a safe name, else the id made
    safe plus a digest of it, so two ids never share a file."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", segment_id)[:150]
    if name != segment_id or name.startswith((".", "-")):
        digest = hashlib.sha256(segment_id.encode()).hexdigest()[:8]
        name = f"{name.lstrip('._-') or 'segment'}-{digest}"
    return name + ".ndjson"


def public_url(url: str) -> str:
    """The API URL as the manifest keeps it: no credentials, query or fragment."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


# -- progress ---------------------------------------------------------------------------------


class Reporter:
    """One line on stderr per step, in the words of `fullstory-export`; `listener(event,
    fields)` sees every event too (tests, and whoever embeds the recorder)."""

    def __init__(self, listener: Listener | None = None) -> None:
        from rich.console import Console

        self.listener = listener
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)

    def emit(self, event: str, **fields: Any) -> None:
        if self.listener is not None:
            self.listener(event, dict(fields))
        line = self.line(event, fields)
        if line:
            self.console.print(line)

    @staticmethod
    def line(event: str, f: dict[str, Any]) -> str | None:
        seg = f"\\[{_esc(f['segment'])}] " if f.get("segment") else ""
        if event == "start":
            return f"recording {_esc(f['apiUrl'])} into {_esc(f['out'])}"
        if event == "listed":
            return f"[green]✓[/] {f['count']} segments → {_esc(f['file'])}"
        if event == "window":
            return f"window: {f['start']} to {f['end']}{' (scrubbed)' if f['scrub'] else ''}"
        if event == "skipped":
            return f"[dim]· {seg}already recorded ({_esc(f['file'])}); skipped[/]"
        if event == "created":
            return f"{seg}export created: operation {_esc(f['operationId'])}"
        if event == "resuming":
            return f"[cyan]{seg}resuming operation {_esc(f['operationId'])} of an earlier run[/]"
        if event == "gone":
            return (
                f"[yellow]{seg}operation {_esc(f['operationId'])} is gone from the server "
                f"({_esc(f['reason'])}); creating the export again[/]"
            )
        if event == "progress":
            return f"[dim]{seg}{_esc(f['state'])} {f['pct']}%[/]"
        if event == "downloading":
            took = f" in {f['seconds']:g} s" if f.get("seconds") is not None else ""
            return f"{seg}COMPLETED{took}; downloading"
        if event == "url_expired":
            return (
                f"[yellow]{seg}download URL expired; asking for a fresh one "
                f"(renewal {f['renewal']})[/]"
            )
        if event == "recorded":
            empty = " [yellow](no rows in the window)[/]" if not f["rows"] else ""
            return f"[green]✓[/] {seg}{f['rows']} rows → {_esc(f['file'])}{empty}"
        if event == "export_failed":
            return (
                f"[yellow]✗ {seg}the export ended in {_esc(f['state'])}: "
                f"{_esc(f['errorDetails'] or 'no errorDetails given')}; recorded as such[/]"
            )
        if event == "rate_limited":
            wait = f"; Retry-After {f['retryAfter']:g} s" if f.get("retryAfter") is not None else ""
            if f.get("delay") is not None:  # a throttled recording waits; it never fails for it
                wait += f"; waiting {f['delay']:g} s and retrying"
            return f"[yellow]429 rate limited on {_esc(f['method'] + ' ' + f['path'])}{wait}[/]"
        if event == "still_rate_limited":
            return (
                f"[yellow]still rate limited while {_esc(f['what'])}; waiting "
                f"{f['seconds']:g} s and trying again[/]"
            )
        if event == "retrying":
            what = f"HTTP {f['status']}" if f.get("status") else "connection failed"
            return f"[yellow]{what} on {_esc(f['path'])}; retrying[/]"
        if event == "pacing" and f["seconds"] >= 1:
            return (
                f"[dim]pacing: waiting {f['seconds']:.0f} s before {_esc(f['endpoint'])} to stay "
                f"under the rate limit{_esc(': ' + f['reason']) if f.get('reason') else ''}[/]"
            )
        if event == "done":
            failed = f", {f['failed']} failed" if f["failed"] else ""
            return (
                f"[green]done:[/] {_esc(f['out'])}: {f['exports']} export(s), {f['rows']} rows"
                f"{failed}; {f['fields']} fields in {FIELDS}; load the segments with "
                f"fullstory-emulator --segments {_esc(f['segmentsFile'])}"
            )
        if event == "error":
            return f"[red]{PROG}: {_esc(f['message'])}[/]"
        return None


def _esc(text: object) -> str:
    from rich.markup import escape

    return escape(str(text))


# -- the field catalogue ----------------------------------------------------------------------


def _count(counter: Counter[Any], key: Any) -> None:
    """Count `key`, once `TRACKED` distinct keys are known only those: memory stays bounded
    whatever the number of rows."""
    if key in counter or len(counter) < TRACKED:
        counter[key] += 1


def _commonest(counter: Counter[Any], limit: int) -> tuple[Any, ...]:
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], json_type(kv[0]), str(kv[0])))
    return tuple(value for value, _ in ranked[:limit])


@dataclass
class _Tally:
    count: int = 0
    nulls: int = 0
    types: Counter[str] = field(default_factory=Counter)
    values: Counter[Any] = field(default_factory=Counter)
    minimum: float | None = None
    maximum: float | None = None

    def add(self, value: Any) -> None:
        self.count += 1
        if value is None or (isinstance(value, str) and value == ""):
            self.nulls += 1
            return
        kind = json_type(value)
        self.types[kind] += 1
        if kind in ("string", "boolean"):
            _count(self.values, value)
        elif kind in ("integer", "number"):
            self.minimum = value if self.minimum is None else min(self.minimum, value)
            self.maximum = value if self.maximum is None else max(self.maximum, value)

    def profile(self) -> FieldProfile:
        if {"integer", "number"} <= set(self.types):
            kind = "number"  # an integer is a number too
        else:
            kind = _commonest(self.types, 1)[0] if self.types else "string"
        return FieldProfile(
            type=kind,
            count=self.count,
            null_rate=round(self.nulls / self.count, 4) if self.count else 0.0,
            values=_commonest(self.values, MAX_VALUES),
            minimum=self.minimum,
            maximum=self.maximum,
        )


class Profiler:
    """The catalogue of the fields rows carried (custom variables among them) and of the page
    URLs' hosts and paths, commonest first."""

    def __init__(self) -> None:
        self._fields: dict[str, _Tally] = {}
        self._hosts: Counter[str] = Counter()
        self._paths: Counter[str] = Counter()

    def add(self, row: Mapping[str, Any]) -> None:
        for name, value in row.items():
            tally = self._fields.get(name)
            if tally is None:
                tally = self._fields[name] = _Tally()
            tally.add(value)
        url = row.get("PageUrl")
        if isinstance(url, str) and url:
            try:
                parts = urlsplit(url)
            except ValueError:
                return
            if parts.hostname:
                _count(self._hosts, parts.hostname)
            _count(self._paths, parts.path or "/")

    def add_file(self, root: Path, name: str) -> None:
        """The rows of the folder's file `name`, read bounded as a replay reads them."""
        for _number, line in read_lines(root, name):
            try:
                row = json.loads(line) if line.strip() else None
            except (ValueError, RecursionError):
                continue  # recorded as served; the catalogue describes what parses
            if isinstance(row, dict):
                self.add(row)

    def catalogue(self) -> Catalogue:
        return Catalogue(
            fields={name: tally.profile() for name, tally in self._fields.items()},
            hosts=_commonest(self._hosts, MAX_URL_PARTS),
            paths=_commonest(self._paths, MAX_URL_PARTS),
        )


# -- the recorder -----------------------------------------------------------------------------


class Recorder:
    """One recording into `root`, resumable from its state."""

    def __init__(
        self,
        client: FullStoryClient,
        root: Path,
        plan: Plan,
        reporter: Reporter,
        *,
        poll_interval: float = 2.0,
        restart: bool = False,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.root = root
        self.plan = plan
        self.reporter = reporter
        self.poll_interval = poll_interval
        self.restart = restart
        self.sleep = sleep
        self.clock = clock
        self.state_dir = root / STATE_DIR
        self.state: dict[str, Any] = {}
        self.scrubber: Scrubber | None = None

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> None:
        self._open()
        if self.plan.scrub:
            try:
                self.scrubber = Scrubber(load_salt(self.state_dir))
            except ValueError as exc:
                raise RecordError(str(exc)) from None
        self.reporter.emit("start", apiUrl=public_url(self.plan.api_url), out=str(self.root))
        if not self.state["segmentsListed"]:
            self._list_segments()
        window = self.state["window"]
        self.reporter.emit(
            "window", start=window["start"], end=window["end"], scrub=self.plan.scrub
        )
        for segment_id in self.plan.segments:
            self._export(segment_id)
        recorded = self._recorded()
        self.reporter.emit(
            "done",
            out=str(self.root),
            exports=len(recorded),
            rows=sum(e.rows for e in recorded),
            failed=sum(e.timeline.final_state != "COMPLETED" for e in recorded),
            fields=self.state.get("fieldCount", 0),
            segmentsFile=str(self.root / SEGMENTS),
        )

    def _open(self) -> None:
        """The folder and the state: a new recording, the one to resume, or (--restart, or a
        different command refused) the old one cleared."""
        root, pinned = self.root, self.plan.pinned()
        if root.exists() and not root.is_dir():
            raise RecordError(f"--out {root} is a file, not a folder")
        state = self._read_state()
        if state is not None and (self.restart or state.get("plan") != pinned):
            if not self.restart and state.get("segmentsListed"):  # else nothing is recorded yet
                raise RecordError(
                    f"{root} holds a recording of {describe(state.get('plan') or {})}, but this "
                    f"command asks for {describe(pinned)}: run the first command again to "
                    "resume it, or add --restart to record this one from the start (replacing "
                    "the recorded files)"
                )
            self._clear()
            state = None
        elif state is None and root.is_dir():
            others = sorted(p.name for p in root.iterdir() if p.name not in (STATE_DIR, GITIGNORE))
            if others and not (root / MANIFEST).exists():
                raise RecordError(
                    f"--out {root} is not empty ({', '.join(others[:3])}) and holds no "
                    "recording; choose a new or empty folder"
                )
            if others and not self.restart:
                raise RecordError(
                    f"{root} holds a recording but not its resume state "
                    f"({STATE_DIR}/{STATE_FILE}); add --restart to record it again"
                )
            self._clear()
        if state is None:
            state = {
                "version": 1,
                "plan": pinned,
                "recordedAt": rfc3339(datetime.now(UTC).replace(microsecond=0)),
                "segmentsListed": False,
                "window": None,
                "exports": {},
            }
        self.state = state
        (root / EXPORTS_DIR).mkdir(parents=True, exist_ok=True)
        ignore = root / GITIGNORE
        if not ignore.exists():
            ignore.write_text(
                f"# resume state and the scrub salt of `fullstory-emulator record`\n{STATE_DIR}/\n",
                encoding="utf-8",
            )
        self._save()

    def _read_state(self) -> dict[str, Any] | None:
        path = self.state_dir / STATE_FILE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RecordError(
                f"{path}: cannot read the resume state ({exc}); add --restart"
            ) from None
        if not isinstance(state, dict) or state.get("version") != 1:
            raise RecordError(f"{path}: not a resume state this version knows; add --restart")
        return state

    def _clear(self) -> None:
        """Remove what a recording wrote (the salt stays: replacements stay the same)."""
        for name in (MANIFEST, SEGMENTS, FIELDS, f"{STATE_DIR}/{STATE_FILE}"):
            (self.root / name).unlink(missing_ok=True)
        shutil.rmtree(self.state_dir / DOWNLOADS, ignore_errors=True)
        exports = self.root / EXPORTS_DIR
        if exports.is_dir():
            for path in exports.glob("*.ndjson"):
                path.unlink()

    def _save(self) -> None:
        write_json(self.state_dir / STATE_FILE, self.state)

    # -- steps ---------------------------------------------------------------------------------

    def _call(
        self, what: str, call: Callable[[], T], passthrough: tuple[type[Exception], ...] = ()
    ) -> T:
        """`call()`, waiting out any 429 however long it lasts; another API error is a
        RecordError that says `what` failed."""
        while True:
            try:
                return call()
            except RateLimited as exc:
                wait = exc.retry_after if exc.retry_after is not None else 60.0
                self.reporter.emit("still_rate_limited", what=what, seconds=wait)
                self.sleep(wait)
            except passthrough:
                raise
            except Unauthorized as exc:
                raise RecordError(f"{what} failed: the API key was refused ({exc})") from None
            except FullStoryError as exc:
                hint = "; rerun the same command to resume"
                if exc.status == 403:
                    hint = " (Segment Export needs an Admin or Architect API key)"
                elif exc.status in (400, 404):
                    hint = ""
                raise RecordError(f"{what} failed: {exc}{hint}") from None

    def _list_segments(self) -> None:
        """Every segment of the org, in the `--segments` format; the window is pinned with
        them (the API's clock tells `now`)."""
        retries = self.client.max_retries
        self.client.max_retries = min(1, retries)  # a wrong --api-url says so at once
        try:
            listed = self._call(
                f"listing the segments of {public_url(self.plan.api_url)}",
                lambda: self.client.list_segments(limit=100),
            )
        finally:
            self.client.max_retries = retries
        items = [{k: s[k] for k in SEGMENT_KEYS if k in s} for s in listed]
        if self.scrubber is not None:
            items = scrub_segments(items, self.scrubber)
        path = self.root / SEGMENTS
        write_json(path, {"replaceDefaults": True, "segments": items})
        self.reporter.emit("listed", count=len(items), file=str(path))
        known = {str(s.get("id")) for s in listed}
        missing = [s for s in self.plan.segments if s not in known]
        if missing:
            raise RecordError(
                f"segment {', '.join(missing)} is not among the org's {len(listed)} segments "
                f"(see {path})"
            )
        end = self.plan.end
        if end is None:
            end = (self.client.server_time() or datetime.now(UTC)).replace(microsecond=0)
        self.state["window"] = {"start": rfc3339(end - self.plan.window), "end": rfc3339(end)}
        self.state["segmentsListed"] = True
        self._write_outputs()
        self._save()

    def _export(self, segment_id: str) -> None:
        entry: dict[str, Any] = self.state["exports"].setdefault(segment_id, {})
        if entry.get("recorded"):
            self.reporter.emit(
                "skipped", segment=segment_id, file=f"{EXPORTS_DIR}/{entry['recorded']['file']}"
            )
            return
        renewed = False
        while True:
            try:
                self._run_export(segment_id, entry)
                return
            except NotFound as exc:  # the operation or its export is no longer on the server
                if renewed:
                    raise RecordError(f"recording segment {segment_id} failed: {exc}") from None
                renewed = True
                self.reporter.emit(
                    "gone",
                    segment=segment_id,
                    operationId=entry.get("operationId"),
                    reason=exc.message,
                )
                entry.clear()
                self._save()

    def _run_export(self, segment_id: str, entry: dict[str, Any]) -> None:
        window = self.state["window"]
        if not entry.get("operationId"):
            operation_id = self._call(
                f"creating the export of segment {segment_id}",
                lambda: self.client.create_export(
                    segment_id,
                    type=TYPE_EVENT,
                    format="FORMAT_NDJSON",
                    time_range=(window["start"], window["end"]),
                ),
            )
            entry.update(operationId=operation_id, createdAt=self.clock(), polls=[])
            self._save()
            self.reporter.emit("created", segment=segment_id, operationId=operation_id)
        else:
            self.reporter.emit("resuming", segment=segment_id, operationId=entry["operationId"])
        operation_id = entry["operationId"]
        if not entry.get("searchExportId"):
            try:
                operation = self._call(
                    f"polling the export of segment {segment_id} (operation {operation_id})",
                    lambda: self.client.wait(
                        operation_id,
                        poll_interval=self.poll_interval,
                        on_progress=lambda op: self._polled(segment_id, entry, op),
                    ),
                    passthrough=(ExportFailed, NotFound),
                )
            except ExportFailed as exc:
                self._finished(segment_id, entry, exc.operation, rows=0)
                return
            results = operation.get("results") or {}
            if not results.get("searchExportId"):
                raise RecordError(
                    f"the export of segment {segment_id} completed without a searchExportId"
                )
            entry["searchExportId"] = str(results["searchExportId"])
            entry["operation"] = {k: operation.get(k) for k in ("state", "createdAt", "finishedAt")}
            self._save()
        self.reporter.emit(
            "downloading", segment=segment_id, seconds=export_seconds(entry["operation"])
        )
        rows = self._download(segment_id, entry)
        self._finished(segment_id, entry, entry["operation"], rows=rows)

    def _polled(self, segment_id: str, entry: dict[str, Any], operation: Mapping[str, Any]) -> None:
        pct = operation.get("estimatePctComplete")
        poll = {
            "at": round(max(0.0, self.clock() - float(entry["createdAt"])), 3),
            "state": str(operation.get("state")),
            "pct": pct if isinstance(pct, int) and not isinstance(pct, bool) else 0,
        }
        polls = entry["polls"]
        changed = not polls or (polls[-1]["state"], polls[-1]["pct"]) != (
            poll["state"],
            poll["pct"],
        )
        if changed and poll["state"] == "PENDING":  # the end is told by what follows it
            self.reporter.emit("progress", segment=segment_id, state=poll["state"], pct=poll["pct"])
        polls.append(poll)
        self._save()

    def _download(self, segment_id: str, entry: dict[str, Any]) -> int:
        """The export's file, fetched (with a fresh URL whenever one expires), gunzipped and
        (unless --no-scrub) scrubbed into exports/; returns its rows."""
        name = safe_name(segment_id)
        packed = self.state_dir / DOWNLOADS / (name + ".gz")
        packed.parent.mkdir(parents=True, exist_ok=True)
        search_export_id = entry["searchExportId"]

        def renewing(renewal: int, expired: DownloadExpired) -> None:
            self.reporter.emit("url_expired", segment=segment_id, renewal=renewal)

        self._call(
            f"downloading the export of segment {segment_id}",
            lambda: self.client.download_export(search_export_id, packed, on_renew=renewing),
            passthrough=(NotFound,),
        )
        target = self.root / EXPORTS_DIR / name
        try:
            rows = self._write_rows(packed, target, segment_id)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            packed.unlink(missing_ok=True)
            raise RecordError(
                f"the export of segment {segment_id} is not a whole gzip file ({exc}); rerun "
                "the same command to download it again"
            ) from None
        packed.unlink(missing_ok=True)
        return rows

    def _write_rows(self, packed: Path, target: Path, segment_id: str) -> int:
        partial = target.with_name(target.name + ".part")
        rows = 0
        try:
            with gzip.open(packed, "rb") as lines, partial.open("wb") as out:
                for number, line in enumerate(lines, 1):
                    body = line.rstrip(b"\r\n")
                    if not body.strip():
                        out.write(line)
                        continue
                    rows += 1
                    if self.scrubber is not None:
                        try:
                            scrubbed = self.scrubber.line(body)
                        except ValueError as exc:
                            raise RecordError(
                                f"row {number} of the export of segment {segment_id} is not "
                                f"JSON ({exc}), so it cannot be scrubbed; --no-scrub records "
                                "rows as served"
                            ) from None
                        line = scrubbed + line[len(body) :]
                    out.write(line)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return rows

    def _finished(
        self, segment_id: str, entry: dict[str, Any], operation: Mapping[str, Any], rows: int
    ) -> None:
        name = safe_name(segment_id)
        state = str(operation.get("state"))
        details = str(operation.get("errorDetails") or "")
        if state != "COMPLETED":
            (self.root / EXPORTS_DIR / name).write_bytes(b"")  # a failed export has no rows
            self.reporter.emit(
                "export_failed", segment=segment_id, state=state, errorDetails=details
            )
        else:
            self.reporter.emit(
                "recorded", segment=segment_id, rows=rows, file=str(self.root / EXPORTS_DIR / name)
            )
        entry["recorded"] = {
            "file": name,
            "rows": rows,
            "finalState": state,
            "errorDetails": details,
            "durationSeconds": export_seconds(dict(operation)),
        }
        self._save()
        self._write_outputs()

    # -- the folder ----------------------------------------------------------------------------

    def _recorded(self) -> list[RecordedExport]:
        window = self.state["window"]
        out = []
        for segment_id in self.plan.segments:
            entry = self.state["exports"].get(segment_id) or {}
            done = entry.get("recorded")
            if not done:
                continue
            polls = tuple(Poll(p["at"], p["state"], p["pct"]) for p in entry.get("polls") or [])
            timeline = Timeline(
                polls=polls,
                duration=done["durationSeconds"],
                final_state=done["finalState"],
                error_details=done["errorDetails"],
            )
            out.append(
                RecordedExport(
                    segment_id=segment_id,
                    type=TYPE_EVENT,
                    start=window["start"],
                    end=window["end"],
                    file=done["file"],
                    rows=done["rows"],
                    timeline=timeline,
                )
            )
        return out

    def _write_outputs(self) -> None:
        """fields.json from every recorded export's rows, then the manifest: a reader that
        finds an export in the manifest finds its file and its fields too."""
        recorded = self._recorded()
        profiler = Profiler()
        for export in recorded:
            profiler.add_file(self.root, f"{EXPORTS_DIR}/{export.file}")
        catalogue = profiler.catalogue()
        self.state["fieldCount"] = len(catalogue.fields)
        write_json(self.root / FIELDS, catalogue_json(catalogue))
        manifest = manifest_json(
            api_url=public_url(self.plan.api_url),
            recorded_at=self.state["recordedAt"],
            scrubbed=self.plan.scrub,
            exports=recorded,
        )
        write_json(self.root / MANIFEST, manifest)


# -- the command ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Record a FullStory org (its segments, one small event export per chosen "
        "segment with the timeline its polls saw, and the catalogue of the fields its rows "
        "carry) into a folder the emulator loads. Rerun the same command to resume an "
        "interrupted recording.",
        epilog="exit codes: 0 recorded; 1 failed (the reason on stderr); 130 interrupted "
        "(rerun the same command to resume)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="the recording's folder")
    parser.add_argument(
        "--api-url",
        default=None,
        help=f"API base URL (default: $FULLSTORY_API_URL, else {DEFAULT_API_URL}, or the EU "
        "host for an eu1. key)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="an Admin or Architect API key (default: $FULLSTORY_API_KEY); never written anywhere",
    )
    parser.add_argument(
        "--segment",
        action="append",
        default=None,
        metavar="ID",
        help="a segment to export (repeatable; default: everyone)",
    )
    parser.add_argument(
        "--window",
        default="1h",
        metavar="DURATION",
        help="how much data each export covers, e.g. 30m, 1h, 2d (default 1h)",
    )
    parser.add_argument(
        "--end",
        default=None,
        metavar="RFC3339",
        help="when the window ends, e.g. 2026-03-01T12:00:00Z (default: now, on the API's clock)",
    )
    parser.add_argument(
        "--no-scrub",
        dest="scrub",
        action="store_false",
        help="keep personal data (emails, names, IPs, locations, user ids, URL query strings) "
        "as served; by default it is replaced by consistent fake values",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="start the recording in --out over instead of resuming it",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="seconds between status polls (default 2)",
    )
    parser.add_argument(
        "--rate-limit",
        default=DEFAULT_RATE_LIMIT,
        metavar="N/SECONDS,BURST",
        help=f"the API's rate limit per key and endpoint, paced under (default "
        f"{DEFAULT_RATE_LIMIT}: FullStory's documented limit; 'off' for none)",
    )
    return parser


def plan_from(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[Plan, str, RateLimit | None]:
    """The plan, the key and the rate limit, or a RecordError naming the flag that is wrong."""
    try:
        window = parse_duration(args.window)
    except argparse.ArgumentTypeError:
        raise RecordError(
            f"--window {args.window!r} is not a duration such as 30m, 1h or 2d"
        ) from None
    end = None
    if args.end is not None:
        try:
            end = parse_rfc3339(args.end.strip())
        except ValueError as exc:
            raise RecordError(f"--end: {exc}") from None
    try:
        limit = RateLimit.parse(args.rate_limit)
    except ValueError as exc:
        raise RecordError(f"--rate-limit: {exc}") from None
    if args.poll_interval < 0:
        raise RecordError("--poll-interval cannot be negative")
    key = args.api_key or environ.get("FULLSTORY_API_KEY") or ""
    if not key:
        raise RecordError("no API key: pass --api-key or set FULLSTORY_API_KEY")
    default = EU_API_URL if key.startswith("eu1.") else DEFAULT_API_URL
    api_url = (args.api_url or environ.get("FULLSTORY_API_URL") or default).rstrip("/")
    if not re.match(r"https?://[^/?#]+", api_url):
        raise RecordError(f"--api-url {redact_url(api_url)!r} is not an http(s) URL")
    segments = tuple(dict.fromkeys(args.segment or ["everyone"]))
    if not all(s.strip() for s in segments):
        raise RecordError("--segment needs a segment id")
    return Plan(api_url, segments, window, end, args.scrub), key, limit


def _hooks(reporter: Reporter) -> tuple[Callable[[Retry], None], Callable[[Pace], None]]:
    def on_retry(retry: Retry) -> None:
        if retry.error.status == 429:
            reporter.emit(
                "rate_limited",
                method=retry.method,
                path=retry.path,
                retryAfter=retry.retry_after,
                delay=round(retry.delay, 3),
            )
        else:
            reporter.emit("retrying", path=retry.path, status=retry.error.status)

    def on_pace(pace: Pace) -> None:
        reporter.emit(
            "pacing", endpoint=pace.endpoint, seconds=round(pace.delay, 3), reason=pace.reason
        )

    return on_retry, on_pace


def main(
    argv: Sequence[str] | None = None,
    *,
    on_event: Listener | None = None,
    sleep: Callable[[float], object] = time.sleep,
) -> int:
    """The command; returns its exit code. `on_event(name, fields)` sees every event."""
    try:
        args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # --help, or flags argparse could not read
        return exc.code if isinstance(exc.code, int) else EXIT_FAILED
    reporter = Reporter(on_event)
    key = ""
    try:
        plan, key, limit = plan_from(args, os.environ)
        on_retry, on_pace = _hooks(reporter)
        with (
            httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0)) as http,
            FullStoryClient(
                plan.api_url,
                key,
                http=http,
                sleep=sleep,
                on_retry=on_retry,
                rate_limit=limit,
                on_pace=on_pace,
            ) as client,
        ):
            recorder = Recorder(
                client,
                Path(args.out),
                plan,
                reporter,
                poll_interval=args.poll_interval,
                restart=args.restart,
                sleep=sleep,
            )
            recorder.run()
        return EXIT_OK
    except KeyboardInterrupt:
        message = "interrupted; rerun the same command to resume"
        reporter.emit("error", message=message)
        return EXIT_INTERRUPTED
    except (RecordError, RecordingError) as exc:  # RecordingError: a recorded file refused
        reporter.emit("error", message=_secret_free(str(exc), key))
        return EXIT_FAILED
    except OSError as exc:
        reporter.emit("error", message=_secret_free(f"cannot write {args.out}: {exc}", key))
        return EXIT_FAILED


def _secret_free(text: str, key: str) -> str:
    """Whatever a server or a library put in a message, the key is not shown."""
    return text.replace(key, "***") if len(key) >= 4 else text
