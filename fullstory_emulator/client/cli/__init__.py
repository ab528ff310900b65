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

The package is split by job: `args` parses the flags (times, durations, names), `report` shows
the events (rich, --json or --quiet), `jobs` runs the exports and turns exceptions into exit
codes (`codes`). This module wires them together in `main` and re-exports their names, which
the demo, the recorder and the tests import from here.

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

import contextlib
import json
import os
import sys
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import httpx

from ...auth import DEMO_KEY
from ..core import DEFAULT_API_URL, FullStoryClient
from .args import (
    DEFAULT_RATE_LIMIT,
    FORMAT_NAMES,
    SCOPE_NAMES,
    SUBCOMMANDS,
    TIME_FLAGS,
    TYPE_NAMES,
    Relative,
    build_parser,
    check_times,
    parse_args,
    parse_duration,
    parse_time,
    resolve_times,
    rfc3339,
    stamp,
)
from .codes import (
    EXIT_AUTH,
    EXIT_CODES,
    EXIT_DOWNLOAD,
    EXIT_ERROR,
    EXIT_EXPORT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RATE_LIMITED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    Failure,
)
from .jobs import (
    EMPTY_HINT,
    SEGMENT_WINDOW_DAYS,
    Job,
    Started,
    classify,
    export_seconds,
    extension,
    finish_job,
    has_rows,
    list_segments,
    pacing_plan,
    plan,
    retry_events,
    run,
    start_job,
    window_warnings,
)
from .report import HumanReporter, JsonReporter, Listener, Reporter, make_reporter

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "EMPTY_HINT",
    "EXIT_AUTH",
    "EXIT_CODES",
    "EXIT_DOWNLOAD",
    "EXIT_ERROR",
    "EXIT_EXPORT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_RATE_LIMITED",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "FORMAT_NAMES",
    "SCOPE_NAMES",
    "SEGMENT_WINDOW_DAYS",
    "SUBCOMMANDS",
    "TIME_FLAGS",
    "TYPE_NAMES",
    "Failure",
    "HumanReporter",
    "Job",
    "JsonReporter",
    "Listener",
    "Relative",
    "Reporter",
    "Started",
    "ZoneInfo",
    "build_parser",
    "check_times",
    "classify",
    "export_seconds",
    "extension",
    "finish_job",
    "has_rows",
    "list_segments",
    "main",
    "make_reporter",
    "pacing_plan",
    "parse_args",
    "parse_duration",
    "parse_time",
    "plan",
    "resolve_times",
    "rfc3339",
    "run",
    "stamp",
    "start_job",
    "window_warnings",
]


def main(argv: Sequence[str] | None = None, *, on_event: Listener | None = None) -> int:
    """The console script; returns the exit code. `on_event(name, fields)` sees every event."""
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    api_key = args.api_key or os.environ.get("FULLSTORY_API_KEY")
    api_url, source = args.api_url, "--api-url"
    if not api_url:
        api_url, source = os.environ.get("FULLSTORY_API_URL") or None, "FULLSTORY_API_URL"
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
    if api_url is None and api_key == DEMO_KEY:
        # Production would refuse it after the retries: the user meant an emulator.
        message = (
            "the emulator's demo key was given without --api-url or FULLSTORY_API_URL, so it "
            f"would go to FullStory's production API ({DEFAULT_API_URL}), which refuses it; "
            "pass --api-url http://127.0.0.1:8080 (or set FULLSTORY_API_URL) for an emulator"
        )
        if args.json:
            print(json.dumps({"event": "error", "message": message, "exitCode": EXIT_USAGE}))
        print(f"fullstory-export: {message}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "run":
        reporter = make_reporter(args, on_event)
    elif args.json:  # stdout carries the segments, one per line: events go to stderr
        reporter = JsonReporter(on_event, stream=sys.stderr)
    else:
        reporter = make_reporter(args, on_event)
    http = httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))
    client = FullStoryClient(
        api_url,
        api_key,
        http=http,
        max_retries=args.retries,
        backoff=args.backoff,
        on_retry=retry_events(reporter, attempts=args.retries + 1),
        rate_limit=args.rate_limit if args.command == "run" else None,
        on_pace=lambda pace: reporter.emit(
            "pacing", endpoint=pace.endpoint, seconds=round(pace.delay, 3), reason=pace.reason
        ),
    )
    # Said first: a wrong host otherwise shows only after every retry (31 s by default).
    reporter.emit(
        "connecting", url=client.base_url, source="default" if api_url is None else source
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
