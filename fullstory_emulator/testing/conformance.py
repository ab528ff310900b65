"""`fullstory-emulator conformance`: where a FullStory API (production with a real key, or any
emulator) answers differently from this emulator.

The probes of `fullstory_emulator.client.conformance` run against the target and, at the same time,
against a private reference emulator in this process with default settings, its clock started
at the target's time so that both exports cover the same window of the same world (a default
emulator's data is a function of the seed and the day). The report compares what each side
answered; it never holds the key, a URL signature or a value from the rows.

Exit codes: 0 no difference, 1 some difference, 2 a usage error or a target that cannot be
checked (unreachable, the key refused, no such segment), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from ..auth import DEMO_KEY
from ..client.cli import parse_duration
from ..client.conformance import (
    SEGMENT_ROUTE,
    ConformanceError,
    Prober,
    compare,
    preflight,
    public_url,
    render,
    window_ending,
)
from ..client.core import FullStoryClient, FullStoryError
from ..server import ServerThread
from ..settings import RateLimit, Settings

PROG = "fullstory-emulator conformance"
EXIT_SAME, EXIT_DIFFERENT, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# FullStory's documented limit: the client paces its requests under it rather than meet a 429
RATE_LIMIT = RateLimit(2, 60, 50)
# Anything shaped like an API key (`na1.xxxx`): scrubbed from the one line a usage error prints,
# since argparse echoes what it did not understand, a key given to a misspelt flag included.
_KEYLIKE = re.compile(r"\b[a-z]{2}\d\.[A-Za-z0-9._~+/=-]+")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, not argparse's usage block, and never a key."""
        print(f"{PROG}: {_KEYLIKE.sub('***', message)} (see --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Run the same read-mostly probes against a FullStory API (production, or "
        "an emulator) and a private reference emulator, and report where the answers differ: "
        "status, headers, JSON shape and types, the values a client branches on. The report "
        "holds no key, no URL signature and no data from your org's rows.",
        epilog="exit codes: 0 no difference, 1 some difference, 2 usage error or a target that "
        "cannot be checked. Send the --json output with an issue: see docs/conformance.md.",
    )
    parser.add_argument(
        "--api-url",
        help="base URL of the API to check (default: $FULLSTORY_API_URL, else FullStory's, "
        "in the EU for an eu1. key)",
    )
    parser.add_argument(
        "--api-key", help="an Admin or Architect API key (default: $FULLSTORY_API_KEY)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON document")
    parser.add_argument(
        "--segment", default="everyone", help="segment to get and export (default: everyone)"
    )
    parser.add_argument(
        "--window",
        type=parse_duration,
        default=timedelta(hours=1),
        metavar="DURATION",
        help="length of the exported window, ending at the target's current minute (default 1h)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long the export may take to finish (default 300)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command; returns its exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or the one line of a usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    key = args.api_key or os.environ.get("FULLSTORY_API_KEY")
    if not key:
        return _usage("no API key: pass --api-key or set FULLSTORY_API_KEY")
    url = args.api_url or os.environ.get("FULLSTORY_API_URL") or None
    if url is not None and (problem := _url_problem(url)):
        return _usage(f"--api-url {public_url(url)!r} {problem}")
    if args.timeout <= 0 or args.window <= timedelta(0):
        return _usage("--timeout and --window must be positive")
    stop = threading.Event()
    sleep = _interruptible(stop)
    with httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0)) as http:
        first = FullStoryClient(url, key, http=http, max_retries=1, backoff=0.5, sleep=sleep)
        target = FullStoryClient(
            url, key, http=http, max_retries=3, rate_limit=RATE_LIMIT, sleep=sleep
        )
        try:
            now = preflight(first, args.segment)
            report = run(
                target, now, segment=args.segment, window=args.window, timeout=args.timeout,
                stop=stop,
            )  # fmt: skip
        except ConformanceError as exc:
            return _usage(str(exc).replace(key, "***"))
        except FullStoryError as exc:  # the target stopped answering during the run
            where = public_url(target.base_url)
            return _usage(f"lost {where} during the run: {exc.message}".replace(key, "***"))
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
    text = json.dumps(report, indent=2, ensure_ascii=False) if args.json else render(report)
    print(text.replace(key, "***"))  # the report never holds it; this is the second lock
    return EXIT_DIFFERENT if report["differences"] else EXIT_SAME


def _url_problem(url: str) -> str | None:
    try:
        parts = httpx.URL(url)
    except httpx.InvalidURL:
        return "is not a URL"
    if parts.scheme not in ("http", "https"):
        return "is not an http:// or https:// URL"
    return None if parts.host else "names no host"


def run(
    target: FullStoryClient,
    now: datetime,
    *,
    segment: str = "everyone",
    window: timedelta = timedelta(hours=1),
    timeout: float = 300.0,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Probe `target` and a reference emulator whose clock starts at `now` (the target's time),
    side by side, and compare: the report `compare` makes. Setting `stop` ends both sides at
    their next wait (ConformanceError); an interrupt here sets it."""
    stop = stop or threading.Event()
    sleep = _interruptible(stop)
    span = window_ending(now, window)
    settings = Settings(port=0, mcp_port=None, start_time=now)  # otherwise the defaults
    with (
        ServerThread(settings) as server,
        FullStoryClient(
            server.base_url, DEMO_KEY, max_retries=3, rate_limit=RATE_LIMIT, sleep=sleep
        ) as reference,
        ThreadPoolExecutor(2, thread_name_prefix="conformance") as pool,
    ):
        # a segment of your org's own is exported as `everyone` by the reference
        own = reference.exchange("GET", f"/segments/v1/{quote(segment, safe='')}", SEGMENT_ROUTE)
        sides = ((target, segment), (reference, segment if own.status_code == 200 else "everyone"))
        probes = [
            pool.submit(Prober(client, segment=name, window=span, timeout=timeout, sleep=sleep).run)
            for client, name in sides
        ]
        try:
            observed, expected = (probe.result() for probe in probes)
        except BaseException:  # an interrupt, or one side failed: the other stops waiting
            stop.set()
            raise
    return compare(observed, expected, target_url=target.base_url, segment=segment, window=window)


def _interruptible(stop: threading.Event) -> Callable[[float], None]:
    """A sleep that gives up, raising ConformanceError, once `stop` is set."""

    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise ConformanceError("stopped")

    return sleep


def _usage(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
