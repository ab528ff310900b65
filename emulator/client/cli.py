"""`fullstory-export`: FullStory's four-step Segment Export workflow as one command.

Create the export, poll it (a live bar of `estimatePctComplete` and `step`), fetch a signed URL,
download the gzip file (optionally gunzipped). FullStory advises daily jobs to export in bundles
of about 30 minutes, so `--chunk 30m` cuts [start, end) into one export per bundle, named by the
bundle's bounds; a rerun skips bundles already on disk, and a download is written to `.part` and
renamed only when whole, so an interrupted run never leaves a file that looks finished. Bundles
run `--in-flight` at a time, and each is first polled when it should be done (learned from the
ones before), so a day of bundles costs about one request per endpoint per bundle.

Every API call goes through `FullStoryClient`, which honours `Retry-After` on 429, backs off on
5xx and dropped connections, downloads without the key, renews an expired URL and paces requests
under the rate limit (2 per minute per endpoint after a burst of 50) instead of running into it;
this module only reports what the client's hooks tell (retries, pacing, bytes, renewals), and
warns when a range lies outside the segment's window or holds no data.

Exit codes (also in `--help`):

    0    everything exported, or already on disk
    1    another API or I/O error (bad argument, unknown segment, unreachable server, ...)
    2    usage: bad flags, or no API key
    3    an export ended in ERROR/FAILED; its errorDetails go to stderr
    4    the API key was refused (401, or 403: exports need an Admin or Architect key)
    5    still rate limited (429) after the client's retries
    6    an export was still PENDING after --timeout
    7    the download failed (the URL kept expiring, a storage error, a corrupt gzip)
    130  interrupted; rerun the same command to resume a chunked run
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import re
import shutil
import sys
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from .. import __version__
from ..contract import (
    EXPORT_TYPES,
    FAILURE_STATES,
    FORMAT_EXTENSIONS,
    FORMATS,
    SCOPE_ALIASES,
    SCOPES,
    TYPE_EVENT,
)
from ..settings import RateLimit
from .core import (
    DownloadError,
    DownloadExpired,
    DownloadStart,
    ExportFailed,
    FullStoryClient,
    FullStoryError,
    NotFound,
    RateLimited,
    Resume,
    Retry,
    Unauthorized,
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_EXPORT_FAILED = 3
EXIT_AUTH = 4
EXIT_RATE_LIMITED = 5
EXIT_TIMEOUT = 6
EXIT_DOWNLOAD = 7
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "everything exported, or already on disk",
    EXIT_ERROR: "another API or I/O error (bad argument, unknown segment, unreachable server)",
    EXIT_USAGE: "usage: bad flags, or no API key",
    EXIT_EXPORT_FAILED: f"an export ended in {'/'.join(FAILURE_STATES)} (errorDetails on stderr)",
    EXIT_AUTH: "the API key was refused (401; 403: exports need an Admin or Architect key)",
    EXIT_RATE_LIMITED: "still rate limited (429) after the client's retries",
    EXIT_TIMEOUT: "an export was still PENDING after --timeout",
    EXIT_DOWNLOAD: "the download failed (URL kept expiring, storage error, corrupt gzip)",
    EXIT_INTERRUPTED: "interrupted; rerun the same command to resume a chunked run",
}


def _short_names(wire: Iterable[str], prefix: str) -> dict[str, str]:
    """The names people type (`event` for TYPE_EVENT), from the contract's wire values."""
    return {value.removeprefix(prefix).lower(): value for value in wire}


TYPE_NAMES = _short_names(EXPORT_TYPES, "TYPE_")
FORMAT_NAMES = _short_names(FORMATS, "FORMAT_")
SCOPE_NAMES = {
    **_short_names(SCOPES, "SCOPE_"),
    **{alias.removeprefix("SCOPE_").lower(): scope for alias, scope in SCOPE_ALIASES.items()},
}
SUBCOMMANDS = ("run", "segments")
Listener = Callable[[str, dict[str, Any]], Any]


class Failure(Exception):
    """An error with the exit code it stands for."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- argument parsing --------------------------------------------------------------------------


def _enum(mapping: dict[str, str], prefix: str) -> Callable[[str], str]:
    """Accept `event`, `EVENT` or the wire name `TYPE_EVENT`: people type all three."""

    def parse(text: str) -> str:
        key = text.strip().upper().removeprefix(prefix).lower()
        if key not in mapping:
            allowed = ", ".join(sorted(set(mapping)))
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {allowed}")
        return mapping[key]

    return parse


DEFAULT_RATE_LIMIT = "2/60,50"


def _rate_limit(text: str) -> RateLimit | None:
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_duration(text: str, allow_bare: bool = True) -> timedelta:
    """A bundle length: `30m`, `1h`, `1d`, `90s`, `1h30m` (a bare number is minutes)."""
    text = text.strip().lower()
    if allow_bare and re.fullmatch(r"\d+", text):
        text += "m"
    parts = re.findall(r"(\d+)([smhdw])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 30m, 1h or 1d")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    seconds = sum(int(n) * unit[u] for n, u in parts)
    if seconds <= 0:
        raise argparse.ArgumentTypeError("a chunk must be longer than zero")
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class Relative:
    """A time relative to the API's clock: `now`, `today` or `yesterday` (midnight in
    --timezone, else UTC), plus or minus a duration (`now-2h`, `today-7d`). Resolved against
    the server's clock once a request has told it, since an emulator's may be anywhere."""

    anchor: str
    offset: timedelta
    tz: ZoneInfo | None

    def resolve(self, now: datetime) -> datetime:
        local = now.astimezone(self.tz or UTC)
        if self.anchor != "now":
            local = local.replace(hour=0, minute=0, second=0, microsecond=0)
            if self.anchor == "yesterday":
                local -= timedelta(days=1)
        return (local + self.offset).astimezone(UTC)


_RELATIVE = re.compile(r"(now|today|yesterday)(?:([+-])(\w+))?")


def parse_time(text: str, tz: ZoneInfo | None) -> datetime | Relative | None:
    """RFC 3339 or a date (without an offset, read in --timezone, else UTC); `now`, `today`,
    `yesterday`, optionally with `+`/`-` a duration (`today-7d`); "" is open."""
    text = text.strip()
    if not text:
        return None
    relative = _RELATIVE.fullmatch(text.lower())
    if relative:
        offset = timedelta(0)
        if relative.group(3):
            try:
                offset = parse_duration(relative.group(3), allow_bare=False)
            except argparse.ArgumentTypeError as exc:
                raise ValueError(f"{text!r}: {exc}") from None
            offset = -offset if relative.group(2) == "-" else offset
        return Relative(relative.group(1), offset, tz)
    try:
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time such as 2026-03-01, 2026-03-01T12:00:00Z, "
            "2026-03-01T12:00:00+01:00, now, today, yesterday or today-7d"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz or UTC)
    return value.astimezone(UTC)


def rfc3339(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp(value: datetime) -> str:
    """A bundle bound in a file name: 20260301T0030Z (seconds only when the bound has them)."""
    return value.strftime("%Y%m%dT%H%M%SZ" if value.second else "%Y%m%dT%H%MZ")


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--api-url",
        default=None,
        help="API base URL (default: $FULLSTORY_API_URL, else https://api.fullstory.com, or the "
        "EU host for an eu1. key); an emulator is e.g. http://127.0.0.1:8080",
    )
    group.add_argument(
        "--api-key",
        default=None,
        help="API key, sent as 'Authorization: Basic KEY' (default: $FULLSTORY_API_KEY); exports "
        "need an Admin or Architect key",
    )
    mode = group.add_mutually_exclusive_group()
    mode.add_argument(
        "--json", action="store_true", help="one JSON object per line on stdout (machine-readable)"
    )
    mode.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def build_parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="fullstory-export",
        description="Run FullStory's Segment Export workflow (create, poll, fetch the URL, "
        "download) in one command. Without a command, 'run' is assumed.",
        epilog=f"exit codes:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="export a segment to a file (the default command)",
        description="Export a segment: create, poll with a progress bar, download.",
        epilog=f"exit codes:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = run.add_argument_group("what to export")
    what.add_argument("-s", "--segment", default="everyone", help="segment id (default: everyone)")
    what.add_argument(
        "-t",
        "--type",
        type=_enum(TYPE_NAMES, "TYPE_"),
        default=TYPE_EVENT,
        help="event (default), individual, pages or sessions",
    )
    what.add_argument(
        "-f",
        "--format",
        type=_enum(FORMAT_NAMES, "FORMAT_"),
        default=FORMAT_NAMES["ndjson"],
        help="ndjson (default), json or csv",
    )
    what.add_argument(
        "--start",
        default=None,
        help="timeRange start, inclusive: RFC 3339, a date, or now, today, yesterday with an "
        "optional +/- duration (today-7d), on the API's clock; '' is open",
    )
    what.add_argument(
        "--end", default=None, help="timeRange end, exclusive (as --start; '' is now)"
    )
    what.add_argument(
        "--segment-start",
        default=None,
        help="segmentTimeRange start: overrides the segment's own window (by default the last "
        "30 days); '' is open, so --segment-start '' --segment-end '' means all time",
    )
    what.add_argument("--segment-end", default=None, help="segmentTimeRange end ('' is open)")
    what.add_argument(
        "--fields",
        default=None,
        help="comma-separated field names; user_*, evt_*, page_* stand for all custom variables",
    )
    what.add_argument(
        "--scope",
        type=_enum(SCOPE_NAMES, "SCOPE_"),
        default=None,
        help="event scope: events, pages, sessions or individual",
    )
    what.add_argument(
        "--timezone",
        default=None,
        help="IANA zone for the segment's relative dates, and for --start/--end given "
        "without an offset (default UTC)",
    )

    where = run.add_argument_group("where and how")
    where.add_argument(
        "-o",
        "--out",
        default=".",
        help="output file, or directory (named from the download; required to be a directory "
        "with --chunk); default: current directory",
    )
    where.add_argument("--gunzip", action="store_true", help="write the data uncompressed")
    where.add_argument(
        "--chunk",
        type=parse_duration,
        default=None,
        metavar="DURATION",
        help="one export per bundle of DURATION (30m, 1h, 1d) over [--start, --end); files are "
        "named SEGMENTID-START-END.FORMAT.gz (as is a single export of a closed range, or "
        "SEGMENTID-FINISHED.FORMAT.gz for an open one) and a rerun skips those already complete",
    )
    where.add_argument(
        "--in-flight",
        type=int,
        default=10,
        metavar="N",
        help="with --chunk: bundles exported at once (default 10): while the first is "
        "downloaded the next are already running on the server",
    )
    where.add_argument(
        "--rate-limit",
        type=_rate_limit,
        default=RateLimit.parse(DEFAULT_RATE_LIMIT),
        metavar="N/SECONDS,BURST",
        help=f"the API's rate limit per key and endpoint, to pace requests under instead of "
        f"running into 429s (default {DEFAULT_RATE_LIMIT}: FullStory's 2 per minute, burst 50; "
        "'off' for none)",
    )
    where.add_argument(
        "--keep-going",
        action="store_true",
        help="with --chunk: go on with the next bundles after one fails",
    )
    where.add_argument(
        "--poll-interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="seconds between status polls (default 2)",
    )
    where.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up on an export still PENDING after this long (default: wait)",
    )
    where.add_argument(
        "--max-renewals",
        type=int,
        default=3,
        metavar="N",
        help="fresh download URLs to ask for when one has expired (default 3)",
    )
    _common(run)

    segments = sub.add_parser(
        "segments",
        help="list segments (id, name, creator, created)",
        description="List the segments the key can export.",
    )
    segments.add_argument("--creator", default=None, help="only segments created by this email")
    _common(segments)
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse, with `run` as the default command (so `fullstory-export --segment X` works)."""
    argv = list(argv)
    if not argv or argv[0] not in (*SUBCOMMANDS, "-h", "--help", "--version"):
        argv.insert(0, "run")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        _check_run_args(parser, args)
    return args


def _check_run_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    tz = None
    if args.timezone:
        try:
            tz = ZoneInfo(args.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
            parser.error(f"--timezone {args.timezone!r} is not an IANA time zone name")
    # A flag given as "" still sends its range: an open end ("" and "" mean all time).
    args.time_range_given = args.start is not None or args.end is not None
    args.segment_range_given = args.segment_start is not None or args.segment_end is not None
    try:
        for name in TIME_FLAGS:
            raw = getattr(args, name)
            setattr(args, name, None if raw is None else parse_time(raw, tz))
    except ValueError as exc:
        parser.error(str(exc))
    if args.chunk and (args.start is None or args.end is None):
        parser.error("--chunk needs both --start and --end")
    if not any(isinstance(getattr(args, name), Relative) for name in TIME_FLAGS):
        try:
            check_times(args)
        except ValueError as exc:
            parser.error(str(exc))
    if args.fields is not None:
        args.fields = [f.strip() for f in args.fields.split(",") if f.strip()]
    if args.poll_interval < 0:
        parser.error("--poll-interval cannot be negative")
    if args.in_flight < 1:
        parser.error("--in-flight must be at least 1")


TIME_FLAGS = ("start", "end", "segment_start", "segment_end")


def resolve_times(args: argparse.Namespace, now: datetime) -> None:
    """Relative times (`yesterday`, `now-2h`) as instants of the API's clock `now`."""
    for name in TIME_FLAGS:
        value = getattr(args, name)
        if isinstance(value, Relative):
            setattr(args, name, value.resolve(now))
    check_times(args)


def check_times(args: argparse.Namespace) -> None:
    if args.start and args.end and args.start >= args.end:
        raise ValueError(
            f"--start ({rfc3339(args.start)}) must be before --end ({rfc3339(args.end)})"
        )


# -- reporting ---------------------------------------------------------------------------------


class Reporter:
    """Where events go: an optional listener (the demo narrates from it), plus this mode's view.

    Failures and errors always reach stderr, whatever the mode.
    """

    def __init__(self, listener: Listener | None = None) -> None:
        self.listener = listener

    def emit(self, event: str, **fields: Any) -> None:
        if self.listener is not None:
            self.listener(event, dict(fields))
        self.show(event, fields)

    def show(self, event: str, fields: dict[str, Any]) -> None:
        if event in ("failed", "error"):
            print(f"fullstory-export: {_problem(fields)}", file=sys.stderr, flush=True)

    def transfer(self, bundle: str, size: int, total: int | None = None) -> None:
        """Bytes written so far by a download, of `total` when the server said (Content-Length;
        too chatty to be an event)."""

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _problem(fields: dict[str, Any]) -> str:
    where = f"[{fields['bundle']}] " if fields.get("bundle") else ""
    if "errorDetails" in fields:
        return (
            f"{where}export {fields.get('operationId')} ended in {fields.get('state')}: "
            f"{fields.get('errorDetails') or 'no errorDetails given'}"
        )
    return where + str(fields.get("message"))


class JsonReporter(Reporter):
    """One JSON object per line on stdout, for scripts and log shippers."""

    def show(self, event: str, fields: dict[str, Any]) -> None:
        print(json.dumps({"event": event, **fields}, default=str), flush=True)
        super().show(event, fields)


class HumanReporter(Reporter):
    """Rich progress bars and one-line notes on stderr; stdout stays clean for pipes."""

    def __init__(self, listener: Listener | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        super().__init__(listener)
        self.console = Console(stderr=True, highlight=False)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.tasks: dict[str, Any] = {}
        self.overall: Any = None
        self.chunked = False

    def __enter__(self) -> HumanReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _note(self, text: str) -> None:
        self.progress.console.print(text, soft_wrap=True)  # whole lines stay greppable

    def show(self, event: str, fields: dict[str, Any]) -> None:
        bundle = str(fields.get("bundle") or fields.get("segment") or "export")
        task = self.tasks.get(bundle)
        if event == "plan" and fields.get("bundles", 1) > 1:
            self.chunked = True
            self.overall = self.progress.add_task(
                f"[bold]{_esc(fields['segment'])}[/] bundles", total=fields["bundles"], status=""
            )
        elif event == "skipped":
            self._note(f"[dim]· {_esc(fields['file'])} is already complete; skipped[/]")
            self._advance()
        elif event == "created":
            self.tasks[bundle] = self.progress.add_task(
                _esc(bundle), total=100, status=f"created {_esc(fields['operationId'])}"
            )
        elif event == "progress" and task is not None:
            status = _esc(str(fields.get("step") or fields.get("state") or ""))
            self.progress.update(task, completed=fields.get("pct") or 0, status=status)
        elif event == "rate_limited":
            wait = fields.get("retryAfter")
            after = f"; Retry-After {wait:g} s" if wait is not None else ""
            where = _esc(f"{fields['method']} {fields['path']}")
            self._note(f"[yellow]429 rate limited on {where}{after}[/]")
        elif event == "retrying":
            what = f"HTTP {fields['status']}" if fields.get("status") else "connection failed"
            self._note(f"[yellow]{what} on {_esc(fields['path'])}; retrying[/]")
        elif event == "completed" and task is not None:
            self.progress.update(task, completed=100, status="COMPLETED, downloading")
        elif event == "resuming":
            if task is None:
                self.tasks[bundle] = task = self.progress.add_task(
                    _esc(bundle), total=100, status=""
                )
            self._note(f"[cyan]resuming {_esc(fields['file'])} at {_size(fields['offset'])}[/]")
        elif event == "url_expired":
            self._note(
                f"[yellow]download URL expired ({_esc(fields.get('details') or 'ExpiredToken')}); "
                f"asking for a fresh one (renewal {fields['renewal']})[/]"
            )
        elif event == "downloaded":
            size = _size(fields["bytes"])
            if task is not None:
                self.progress.update(task, status=f"saved {size}")
                if self.chunked:
                    self.progress.remove_task(task)
            if fields.get("empty"):
                self._note(f"[yellow]∅ {_esc(fields['file'])} ({size}, no rows)[/]")
            else:
                self._note(f"[green]✓[/] {_esc(fields['file'])} ({size})")
            self._advance()
        elif event == "warning":
            self._note(f"[yellow]warning: {_esc(fields['message'])}[/]")
        elif event == "pacing" and fields["seconds"] >= 1:
            self._note(
                f"[dim]pacing: waiting {fields['seconds']:.0f} s before "
                f"{_esc(fields['endpoint'])} to stay under the rate limit[/]"
            )
        elif event in ("failed", "error"):
            if task is not None:
                self.progress.update(task, status="[red]failed[/]")
            self._advance()
            self._note(f"[red]✗ {_esc(_problem(fields))}[/]")
        elif event == "done" and self.chunked:
            empty = f" ({fields['empty']} empty)" if fields.get("empty") else ""
            self._note(
                f"{fields['downloaded']} downloaded{empty}, {fields['skipped']} skipped, "
                f"{fields['failed']} failed"
            )

    def _advance(self) -> None:
        if self.overall is not None:
            self.progress.advance(self.overall)

    def transfer(self, bundle: str, size: int, total: int | None = None) -> None:
        task = self.tasks.get(bundle)
        if task is None:
            return
        if total:  # a real bar: bytes of the file's length
            status = f"downloading {_size(size)} of {_size(total)}"
            self.progress.update(task, completed=size, total=total, status=status)
        else:
            self.progress.update(task, status=f"downloading {_size(size)}")


def _esc(text: str) -> str:
    """Server text and paths shown literally, never read as rich markup."""
    from rich.markup import escape

    return escape(str(text))


def _size(n: int) -> str:
    size, unit = float(n), "B"
    for bigger in ("KB", "MB", "GB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"


def make_reporter(args: argparse.Namespace, listener: Listener | None) -> Reporter:
    if args.json:
        return JsonReporter(listener)
    if args.quiet:
        return Reporter(listener)
    return HumanReporter(listener)


# -- the workflow ------------------------------------------------------------------------------

SEGMENT_WINDOW_DAYS = 30  # a segment's default window, as FullStory documents it
EMPTY_HINT = (
    "the range may lie outside the data (an emulator holds --data-days, 90 by default, before "
    f"its clock's start) or outside the segment's window (by default the last "
    f"{SEGMENT_WINDOW_DAYS} days; --segment-start '' --segment-end '' exports all time)"
)


@dataclass(frozen=True)
class Job:
    """One export: the whole range, or one bundle of a chunked range."""

    bundle: str
    start: datetime | None
    end: datetime | None
    target: Path | None  # the finished file; None: named by the export's finish time
    directory: Path


@dataclass(frozen=True)
class Started:
    """A job whose export the server is working on."""

    job: Job
    operation_id: str
    created: float  # the client's `elapsed()` once the export was created
    resume: tuple[str, Resume] | None = None  # (searchExportId, where) of a `.part` to go on with


def _slug(segment_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", segment_id)


def extension(args: argparse.Namespace) -> str:
    return FORMAT_EXTENSIONS[args.format] + ("" if args.gunzip else ".gz")


def plan(args: argparse.Namespace) -> list[Job]:
    """The exports to run, in order.

    Files are named by segment id and range (`everyone-20260301T0000Z-20260301T0030Z.ndjson.gz`)
    or, for an open range, by the export's finish (`everyone-20260301T120002Z.ndjson.gz`): the
    id is stable where a segment's name is not, and a chunked rerun finds its bundles by name.
    """
    out = Path(args.out)
    ext = extension(args)
    segment = _slug(args.segment)
    if args.chunk:
        out.mkdir(parents=True, exist_ok=True)
        jobs, start = [], args.start
        while start < args.end:
            end = min(start + args.chunk, args.end)
            bundle = f"{stamp(start)}-{stamp(end)}"
            jobs.append(Job(bundle, start, end, out / f"{segment}-{bundle}.{ext}", out))
            start = end
        return jobs
    if out.is_dir() or args.out.endswith(("/", os.sep)):
        out.mkdir(parents=True, exist_ok=True)
        target = None
        if args.start is not None and args.end is not None:
            target = out / f"{segment}-{stamp(args.start)}-{stamp(args.end)}.{ext}"
        return [Job("", args.start, args.end, target, out)]
    out.parent.mkdir(parents=True, exist_ok=True)
    return [Job("", args.start, args.end, out, out.parent)]


def pacing_plan(args: argparse.Namespace, bundles: int) -> str | None:
    """What the rate limit means for a run of `bundles` exports, when it is more than a burst.

    Each export takes at least one request on each of three endpoints, and each endpoint has
    its own bucket, so the run's length is set by the busiest one."""
    limit: RateLimit | None = args.rate_limit
    if limit is None or bundles <= limit.burst:
        return None
    minutes = (bundles - limit.burst) / limit.per_second / 60
    return (
        f"{bundles} bundles need at least {bundles} requests on each of POST "
        "/segments/v1/exports, GET /operations/v1/{id} and GET /search/v1/exports/{id}/results; "
        f"the rate limit ({limit.refill:g} per {limit.period:g} s per endpoint after a burst "
        f"of {limit.burst}) makes that at least {minutes:.0f} min. The run paces itself to "
        "stay under it; a longer --chunk makes fewer bundles"
    )


def window_warnings(args: argparse.Namespace, now: datetime) -> list[str]:
    """Why the requested range may come back empty, told before the wait, not after it.

    The segment list has no window field, so the segment's default window (the last 30 days)
    is assumed; a segment with a longer one is warned about needlessly, never wrongly spared."""
    start, end = args.start, args.end
    if start is not None and start >= now:
        return [
            f"--start {rfc3339(start)} is after the API's clock ({rfc3339(now)}): "
            "there is no data there yet"
        ]
    if not args.time_range_given or args.segment_range_given:
        return []
    local = now.astimezone(ZoneInfo(args.timezone) if args.timezone else UTC)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    window = (midnight - timedelta(days=SEGMENT_WINDOW_DAYS)).astimezone(UTC)
    fix = "--segment-start '' --segment-end '' exports all time"
    if end is not None and end <= window:
        return [
            f"the range ends ({rfc3339(end)}) before the segment's window starts "
            f"({rfc3339(window)}; by default a segment covers the last {SEGMENT_WINDOW_DAYS} "
            f"days): the export will be empty; {fix}"
        ]
    if start is not None and start < window:
        return [
            f"--start {rfc3339(start)} is before the segment's window ({rfc3339(window)}; by "
            f"default a segment covers the last {SEGMENT_WINDOW_DAYS} days): rows before it "
            f"are left out; {fix}"
        ]
    return []


def start_job(
    client: FullStoryClient, args: argparse.Namespace, job: Job, reporter: Reporter
) -> Started:
    """Step 1 for one job: create its export, unless a `.part` left by an interrupted run of
    the same export can be resumed (then steps 3-4 go on from where it stopped)."""
    state = _resumable(args, job)
    if state is not None:
        part, saved = state
        offset = part.stat().st_size
        reporter.emit(
            "resuming",
            bundle=job.bundle,
            segment=args.segment,
            file=str(part),
            offset=offset,
            operationId=saved["operationId"],
            searchExportId=saved["searchExportId"],
        )
        return Started(
            job,
            saved["operationId"],
            client.elapsed(),
            resume=(saved["searchExportId"], Resume(offset, saved["etag"])),
        )
    time_range = None
    if args.time_range_given:
        time_range = (rfc3339(job.start), rfc3339(job.end))
    segment_range = None
    if args.segment_range_given:
        segment_range = (rfc3339(args.segment_start), rfc3339(args.segment_end))
    operation_id = client.create_export(
        args.segment,
        type=args.type,
        format=args.format,
        time_range=time_range,
        segment_time_range=segment_range,
        timezone=args.timezone,
        fields=args.fields,
        scope=args.scope,
    )
    reporter.emit(
        "created",
        bundle=job.bundle,
        segment=args.segment,
        operationId=operation_id,
        start=rfc3339(job.start),
        end=rfc3339(job.end),
    )
    return Started(job, operation_id, client.elapsed())


def finish_job(
    client: FullStoryClient,
    args: argparse.Namespace,
    started: Started,
    reporter: Reporter,
    first_poll_after: float,
) -> tuple[dict[str, Any], bool]:
    """Steps 2-4 for one job: poll, fetch a URL, download; (the operation, whether empty)."""
    job, operation_id = started.job, started.operation_id
    if started.resume is not None:
        search_export_id, resume = started.resume
        resumed = {"id": operation_id}
        try:
            return resumed, _download(
                client, args, job, reporter, resumed, search_export_id, resume=resume
            )
        except NotFound:  # the export itself is gone (expired): export it again
            part = _part(args, job)
            for stale in (part, _sidecar(part)):
                stale.unlink(missing_ok=True)
        started = start_job(client, args, job, reporter)
        operation_id, first_poll_after = started.operation_id, args.poll_interval
    last: tuple[Any, ...] = ()

    def on_progress(operation: dict[str, Any]) -> None:
        nonlocal last
        now = (operation.get("state"), operation.get("estimatePctComplete"), operation.get("step"))
        if now != last:
            last = now
            reporter.emit(
                "progress",
                bundle=job.bundle,
                segment=args.segment,
                operationId=operation_id,
                state=now[0],
                pct=now[1],
                step=now[2],
            )

    operation = client.wait(
        operation_id,
        poll_interval=args.poll_interval,
        timeout=args.timeout,
        on_progress=on_progress,
        first_poll_after=first_poll_after,
    )
    search_export_id = str((operation.get("results") or {}).get("searchExportId") or "")
    if not search_export_id:
        raise Failure(EXIT_ERROR, f"operation {operation_id} completed without a searchExportId")
    reporter.emit(
        "completed",
        bundle=job.bundle,
        segment=args.segment,
        operationId=operation_id,
        searchExportId=search_export_id,
    )
    return operation, _download(client, args, job, reporter, operation, search_export_id)


def _instant(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def export_seconds(operation: dict[str, Any]) -> float | None:
    """How long a finished export took on the server (finishedAt - createdAt)."""
    created, finished = _instant(operation.get("createdAt")), _instant(operation.get("finishedAt"))
    if created is None or finished is None or finished < created:
        return None
    return (finished - created).total_seconds()


def _part(args: argparse.Namespace, job: Job, target: Path | None = None) -> Path:
    """Where the download of `job` (to `target`, when the job's is not known in advance) goes
    until it is whole."""
    final = job.target or target
    assert final is not None, "a job without a target needs one named here"
    return final.with_name(final.name + (".gz.part" if args.gunzip else ".part"))


def _sidecar(part: Path) -> Path:
    """Beside a resumable `.part`: which export it is, and the file's ETag."""
    return part.with_name(part.name + ".json")


def _request(args: argparse.Namespace, job: Job) -> dict[str, Any]:
    """What a `.part` must have been asked for to be resumed by this run."""
    return {
        "apiUrl": args.api_url,
        "segment": args.segment,
        "type": args.type,
        "format": args.format,
        "start": rfc3339(job.start) if args.time_range_given and job.start else None,
        "end": rfc3339(job.end) if args.time_range_given and job.end else None,
        "segmentStart": rfc3339(args.segment_start) if args.segment_range_given else None,
        "segmentEnd": rfc3339(args.segment_end) if args.segment_range_given else None,
        "timezone": args.timezone,
        "fields": list(args.fields) if args.fields else None,
        "scope": args.scope,
    }


def _resumable(args: argparse.Namespace, job: Job) -> tuple[Path, dict[str, Any]] | None:
    """The `.part` of an interrupted download of this very export, and what its sidecar says."""
    if job.target is None:
        return None  # named by the server's Content-Disposition: no stable .part to find
    part = _part(args, job)
    try:
        saved = json.loads(_sidecar(part).read_text(encoding="utf-8"))
        held = part.stat().st_size
    except (OSError, ValueError):
        return None
    fields = ("operationId", "searchExportId", "etag")
    if not isinstance(saved, dict) or not all(isinstance(saved.get(k), str) for k in fields):
        return None
    if saved.get("request") != _request(args, job) or held == 0:
        return None
    return part, saved


def _download(
    client: FullStoryClient,
    args: argparse.Namespace,
    job: Job,
    reporter: Reporter,
    operation: dict[str, Any],
    search_export_id: str,
    resume: Resume | None = None,
) -> bool:
    """Steps 3-4: a URL (renewed while storage says it expired), streamed to .part, renamed.
    Returns whether the export holds no row.

    A body cut short is resumed by the client with a Range request. When the run itself stops
    (the client gave up, Ctrl-C) a `.part` the server can resume is kept, with a sidecar naming
    the export and the file's ETag, so that rerunning the command continues it."""
    operation_id = str(operation.get("id") or "")
    target = job.target
    if target is None:
        finished = _instant(operation.get("finishedAt")) or datetime.now(UTC)
        target = job.directory / f"{_slug(args.segment)}-{stamp(finished)}.{extension(args)}"
    part = _part(args, job, target)
    sidecar = _sidecar(part)
    label = job.bundle or args.segment
    resumable = False

    def started(start: DownloadStart) -> None:
        nonlocal resumable
        resumable = bool(start.etag) and job.target is not None
        if resumable:
            state = {
                "operationId": operation_id,
                "searchExportId": search_export_id,
                "etag": start.etag,
                "request": _request(args, job),
            }
            sidecar.write_text(json.dumps(state), encoding="utf-8")
        else:
            sidecar.unlink(missing_ok=True)

    def renewing(renewal: int, expired: DownloadExpired) -> None:
        reporter.emit(
            "url_expired",
            bundle=job.bundle,
            operationId=operation_id,
            renewal=renewal,
            details=expired.details or expired.message,
        )

    keep = False
    try:
        try:
            with open(part, "ab" if resume else "wb") as raw:
                done = client.download_export(
                    search_export_id,
                    raw,
                    max_renewals=args.max_renewals,
                    on_bytes=lambda size, total: reporter.transfer(label, size, total),
                    on_renew=renewing,
                    on_download=started,
                    resume=resume,
                )
        except KeyboardInterrupt:
            keep = resumable and part.exists() and part.stat().st_size > 0
            raise
        except DownloadExpired as exc:
            keep = resumable and part.exists() and part.stat().st_size > 0
            raise Failure(
                EXIT_DOWNLOAD, f"the download URL expired {args.max_renewals + 1} times: {exc}"
            ) from exc
        except DownloadError as exc:
            keep = resumable and part.exists() and part.stat().st_size > 0
            hint = f"; rerun to resume {part}" if keep else ""
            raise Failure(EXIT_DOWNLOAD, f"download failed: {exc}{hint}") from exc
        if args.gunzip:
            plain = target.with_name(target.name + ".part")
            try:
                _gunzip(part, plain)
            except BaseException:
                with contextlib.suppress(OSError):
                    plain.unlink()
                raise
            part.unlink()
            os.replace(plain, target)
        else:
            os.replace(part, target)
    except BaseException:
        if not keep:
            for leftover in (part, sidecar):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        raise
    sidecar.unlink(missing_ok=True)
    empty = not has_rows(target, args.format, compressed=not args.gunzip)
    reporter.emit(
        "downloaded",
        bundle=job.bundle,
        segment=args.segment,
        operationId=operation_id,
        file=str(target),
        bytes=target.stat().st_size,  # as written: uncompressed with --gunzip
        compressedBytes=done.size,
        renewals=done.renewals,
        gunzipped=args.gunzip,
        empty=empty,
    )
    return empty


def has_rows(path: Path, fmt: str, *, compressed: bool) -> bool:
    """Whether an export file holds any row, from its first 64 KiB."""
    with gzip.open(path, "rb") if compressed else open(path, "rb") as data:
        head = data.read(1 << 16).strip()
    if fmt == "FORMAT_JSON":
        return head.startswith(b"[") and head[1:].lstrip()[:1] not in (b"]", b"")
    if fmt == "FORMAT_CSV":
        return b"\n" in head  # a header line, and at least one more
    return bool(head)


def _gunzip(source: Path, dest: Path) -> None:
    """Decompress every gzip member; a truncated or corrupt file is a download failure."""
    try:
        with gzip.open(source, "rb") as packed, open(dest, "wb") as out:
            shutil.copyfileobj(packed, out, 1 << 20)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise Failure(EXIT_DOWNLOAD, f"the downloaded file is not a whole gzip: {exc}") from exc


def classify(exc: BaseException) -> int:
    """The exit code an exception stands for (see the module docstring)."""
    if isinstance(exc, Failure):
        return exc.code
    if isinstance(exc, ExportFailed):
        return EXIT_EXPORT_FAILED
    if isinstance(exc, RateLimited):
        return EXIT_RATE_LIMITED
    if isinstance(exc, Unauthorized) or (isinstance(exc, FullStoryError) and exc.status == 403):
        return EXIT_AUTH
    if isinstance(exc, FullStoryError) and exc.code == "Timeout":
        return EXIT_TIMEOUT
    return EXIT_ERROR


def _explain(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, FullStoryError) and exc.status == 403:
        text += " (Segment Export needs an Admin or Architect API key)"
    elif isinstance(exc, OSError) and not isinstance(exc, FullStoryError):
        text = f"cannot write the output: {exc}"
    return text


def run(args: argparse.Namespace, client: FullStoryClient, reporter: Reporter) -> int:
    """Every job, `--in-flight` at a time: while the first is polled and downloaded the next
    are already running on the server. Stops at the first failure unless --keep-going."""
    if any(isinstance(getattr(args, name), Relative) for name in TIME_FLAGS):
        try:  # checks the segment early, and the answer tells the API's clock
            client.get_segment(args.segment)
            resolve_times(args, client.server_time() or datetime.now(UTC))
        except (FullStoryError, ValueError) as exc:
            code = classify(exc) if isinstance(exc, FullStoryError) else EXIT_USAGE
            reporter.emit("error", segment=args.segment, message=_explain(exc), exitCode=code)
            return code
    try:
        jobs = plan(args)
    except OSError as exc:
        reporter.emit("error", message=f"cannot write to {args.out}: {exc}", exitCode=EXIT_ERROR)
        return EXIT_ERROR
    reporter.emit("plan", segment=args.segment, bundles=len(jobs), out=str(args.out))
    counts = {"downloaded": 0, "skipped": 0, "failed": 0, "empty": 0}
    pending: deque[Job] = deque()
    for job in jobs:
        if args.chunk and job.target is not None and job.target.exists():
            reporter.emit("skipped", bundle=job.bundle, file=str(job.target), reason="exists")
            counts["skipped"] += 1
        else:
            pending.append(job)
    if (pacing := pacing_plan(args, len(pending))) is not None:
        reporter.emit("warning", message=pacing)
    running: deque[Started] = deque()
    in_flight = args.in_flight if args.chunk else 1
    expected = args.poll_interval  # how long an export takes, learned from finished ones
    warned, status = False, EXIT_OK
    while pending or running:
        if pending and len(running) < in_flight:
            job = pending.popleft()
            try:
                running.append(start_job(client, args, job, reporter))
            except (FullStoryError, Failure, OSError) as exc:
                code = _report_failure(args, job, exc, reporter)
            else:
                if not warned:
                    warned = True
                    now = client.server_time() or datetime.now(UTC)
                    for text in window_warnings(args, now):
                        reporter.emit("warning", message=text)
                continue
        else:
            started = running.popleft()
            job = started.job
            # Poll first when the export should be done: a poll that can only answer PENDING
            # spends a rate-limited request.
            first_poll = max(0.0, started.created + expected - client.elapsed())
            try:
                operation, empty = finish_job(client, args, started, reporter, first_poll)
            except (FullStoryError, Failure, OSError) as exc:
                code = _report_failure(args, job, exc, reporter)
            else:
                took = export_seconds(operation)
                expected = took * 1.05 + 0.05 if took is not None else expected
                counts["downloaded"] += 1
                counts["empty"] += empty
                continue
        counts["failed"] += 1
        status = status or code
        if not args.keep_going or code == EXIT_AUTH:
            break
    if counts["downloaded"] and counts["empty"] == counts["downloaded"]:
        what = "the export is" if counts["downloaded"] == 1 else "every export is"
        reporter.emit("warning", message=f"{what} empty (no rows): {EMPTY_HINT}")
    reporter.emit("done", **counts, exitCode=status)
    return status


def _report_failure(
    args: argparse.Namespace, job: Job, exc: BaseException, reporter: Reporter
) -> int:
    """The event for a job that failed; returns its exit code."""
    code = classify(exc)
    if isinstance(exc, ExportFailed):
        reporter.emit(
            "failed",
            bundle=job.bundle,
            segment=args.segment,
            operationId=exc.operation.get("id"),
            state=exc.operation.get("state"),
            errorDetails=exc.error_details,
            exitCode=code,
        )
    else:
        reporter.emit(
            "error", bundle=job.bundle, segment=args.segment, message=_explain(exc), exitCode=code
        )
    return code


def list_segments(args: argparse.Namespace, client: FullStoryClient) -> int:
    """`segments`: a table on stdout, or one JSON object per segment with --json."""
    try:
        segments = client.list_segments(limit=100, creator=args.creator)
    except FullStoryError as exc:
        print(f"fullstory-export: {_explain(exc)}", file=sys.stderr)
        return classify(exc)
    if args.json:
        for segment in segments:
            print(json.dumps(segment), flush=True)
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("name")
    table.add_column("creator", overflow="fold")
    table.add_column("created", no_wrap=True)
    for segment in segments:
        created = str(segment.get("created") or "")[:19].replace("T", " ")
        table.add_row(
            str(segment.get("id", "")),
            str(segment.get("name", "")),
            str(segment.get("creator") or ""),
            created or "—",
        )
    if not args.quiet:
        Console(highlight=False, width=max(Console().width, 100)).print(table)
    return EXIT_OK


def _retry_events(reporter: Reporter) -> Callable[[Retry], None]:
    """The client absorbs 429s, 5xx and dropped connections; show each retry it makes."""

    def on_retry(retry: Retry) -> None:
        if retry.error.status == 429:
            reporter.emit(
                "rate_limited", method=retry.method, path=retry.path, retryAfter=retry.retry_after
            )
        else:
            reporter.emit(
                "retrying",
                method=retry.method,
                path=retry.path,
                status=retry.error.status,
                message=retry.error.message,
            )

    return on_retry


def main(argv: Sequence[str] | None = None, *, on_event: Listener | None = None) -> int:
    """The console script; returns the exit code. `on_event(name, fields)` sees every event."""
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    api_key = args.api_key or os.environ.get("FULLSTORY_API_KEY")
    api_url = args.api_url or os.environ.get("FULLSTORY_API_URL") or None  # None: production
    if not api_key:
        message = (
            "no API key: pass --api-key or set FULLSTORY_API_KEY (an Admin or Architect key, "
            "e.g. na1.xxxx). To try it offline, run the emulator and use "
            "--api-url http://127.0.0.1:8080 --api-key na1.emulator-demo-key"
        )
        if args.json:
            print(json.dumps({"event": "error", "message": message, "exitCode": EXIT_USAGE}))
        print(f"fullstory-export: {message}", file=sys.stderr)
        return EXIT_USAGE
    reporter = make_reporter(args, on_event) if args.command == "run" else Reporter(on_event)
    http = httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))
    client = FullStoryClient(
        api_url,
        api_key,
        http=http,
        on_retry=_retry_events(reporter),
        rate_limit=args.rate_limit if args.command == "run" else None,
        on_pace=lambda pace: reporter.emit(
            "pacing", endpoint=pace.endpoint, seconds=round(pace.delay, 3)
        ),
    )
    try:
        if args.command == "segments":
            return list_segments(args, client)
        with reporter:
            try:
                return run(args, client, reporter)
            except KeyboardInterrupt:
                reporter.emit(
                    "error",
                    message="interrupted; rerun the same command to resume",
                    exitCode=EXIT_INTERRUPTED,
                )
                return EXIT_INTERRUPTED
    except BrokenPipeError:  # `| head` closed stdout: stop quietly, as Unix tools do
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    finally:
        client.close()
        http.close()


if __name__ == "__main__":
    sys.exit(main())
