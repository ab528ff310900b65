"""Argument parsing: the flags, and the times, durations and names people type into them.

Times relative to the API's clock (`today-7d`) stay `Relative` until a request has told the
clock (`resolve_times`); everything else is checked here, so a bad flag is a usage error (exit 2)
before any request is made.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ... import __version__
from ...contract import EXPORT_TYPES, FORMATS, SCOPE_ALIASES, SCOPES, TYPE_EVENT
from ...durations import parse_timedelta
from ...settings import RateLimit
from ...timestamps import format_rfc3339
from .codes import EXIT_CODES


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


def parse_duration(text: str) -> timedelta:
    """A bundle length or a time's offset: `30m`, `1h`, `1d`, `90s`, `1h30m`. A bare number is
    refused: `--chunk 30` was thirty minutes, and is seconds everywhere else (see durations)."""
    try:
        value = parse_timedelta(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError("a chunk must be longer than zero")
    return value


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
                offset = parse_duration(relative.group(3))
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
    """A flag's instant on the wire: milliseconds, or none for a whole second; "" is open."""
    return "" if value is None else format_rfc3339(value, digits=3, trim=True)


def stamp(value: datetime) -> str:
    """A bundle bound in a file name: 20260301T0030Z (seconds only when the bound has them)."""
    return value.strftime("%Y%m%dT%H%M%SZ" if value.second else "%Y%m%dT%H%MZ")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} cannot be negative")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


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
    group.add_argument(
        "--retries",
        type=_count,
        default=5,
        metavar="N",
        help="retries of a request refused with 429 or 5xx, or whose connection failed "
        "(default 5); each is shown as it happens",
    )
    group.add_argument(
        "--backoff",
        type=_seconds,
        default=1.0,
        metavar="SECONDS",
        help="wait before the first retry, doubled for each next one (default 1: 1+2+4+8+16 s "
        "before giving up on a host that is down); a 429's Retry-After is waited instead",
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
        prog="fullstory-export [run]",
        help="export a segment to a file (the default command)",
        description="Run FullStory's Segment Export workflow (create, poll with a progress bar,\n"
        "fetch the URL, download) in one command. 'run' is the default command, so\n"
        "'fullstory-export --segment X' is 'fullstory-export run --segment X'.\n\n"
        "commands:\n"
        "  run        export a segment to a file (the default; these flags)\n"
        "  segments   list segments (id, name, creator, created): "
        "fullstory-export segments --help\n\n"
        "  --version  print the version",
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
    if argv[:1] in (["-h"], ["--help"]):
        argv[0:1] = ["run", "--help"]  # users read --help first: show the default command's flags
    elif not argv or argv[0] not in (*SUBCOMMANDS, "--version"):
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
