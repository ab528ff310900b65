"""`fullstory-emulator demo`: the Segment Export workflow end to end, in seconds, with no key.

It starts the emulator in a background thread, uses the control API to stage the two things
a careful client must survive (a 429 with `Retry-After`, and a download URL that has expired by
the time it is used), runs `fullstory-export` against it with its progress bar, and then tells
what happened from the CLI's events and the emulator's request journal, so the story is what
really went over the wire, not what the demo hoped for.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import shutil
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

from ..auth import DEMO_KEY
from ..client import cli as export_cli
from ..server import ServerThread, Terminated, sigterm_as_interrupt
from ..settings import RateLimit, Settings
from ..timestamps import parse_rfc3339

RETRY_AFTER = 1  # seconds the staged 429 asks the client to wait
# A URL's life starts at its X-Goog-Date, a whole second, so a TTL of N seconds really lasts
# N-1 to N: 2 s keeps the renewed URL alive for its download; 2.1 s of storage latency on the
# first download outlasts the first one.
URL_TTL = 2
LATENCY_MS = 2100
# FullStory refills 2 tokens a minute per endpoint: after the staged 429 the client (rightly)
# takes the poll endpoint's bucket as empty and would wait 30 s for a token. The demo's own
# emulator refills 2 a second, and the client is told so, so that wait is half a second.
RATE_LIMIT = RateLimit(2, 1, 50)
SAMPLE_FIELDS = ("EventStart", "EventType", "EventTargetText", "PageUrl", "UserEmail", "IndvId")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fullstory-emulator demo",
        description="Run a Segment Export against an in-process emulator, with a 429 to absorb "
        "and an expired download URL to renew, and explain what happened.",
    )
    parser.add_argument("--out", default=None, help="directory for the file (default: a temp dir)")
    parser.add_argument(
        "--format", default="ndjson", choices=("ndjson", "json", "csv"), help="export format"
    )
    parser.add_argument(
        "--population", type=int, default=300, help="individuals in the demo world (default 300)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="port of the demo's emulator (default: any free one); it stops when the demo ends",
    )
    return parser


class _Control:
    """The emulator's control API, on the demo key's tenant (the client has no control calls)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(
            base_url=f"{base_url}/__emulator",
            headers={"Authorization": f"Basic {DEMO_KEY}"},
            timeout=10,
        )

    def __call__(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self.http.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content.strip() else {}

    def close(self) -> None:
        self.http.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the export's exit code (0 when all went as staged).

    Without --out the file goes to a temporary folder, which is kept only when the demo wrote
    the file it then points to: an interrupted (Ctrl-C, SIGTERM) or failed run removes it."""
    args = _parser().parse_args(argv)
    console = Console(highlight=False)
    if args.out:
        return _interruptible(console, args, Path(args.out))
    out = Path(tempfile.mkdtemp(prefix="fullstory-demo-"))
    code = 1
    try:
        code = _interruptible(console, args, out)
    finally:
        if code != 0:
            shutil.rmtree(out, ignore_errors=True)
    return code


def _interruptible(console: Console, args: argparse.Namespace, out: Path) -> int:
    """The demo, stopped by SIGTERM as by Ctrl-C: its emulator is stopped and closed either way."""
    try:
        with sigterm_as_interrupt() as signalled:
            code = _demo(console, args, out)
    except KeyboardInterrupt as exc:
        console.print("[yellow]demo stopped[/]")
        return 143 if isinstance(exc, Terminated) else 130
    if signalled.received:  # the client caught it first, and exited 130 as for Ctrl-C
        console.print("[yellow]demo stopped[/]")
        return 143
    return code


def _demo(console: Console, args: argparse.Namespace, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        port=args.port,
        population=args.population,
        export_duration=3.0,
        export_duration_per_million=0,
        mcp_port=None,
        rate_limit=RATE_LIMIT,
    )
    events: list[tuple[str, dict[str, Any]]] = []
    try:
        running = ServerThread(settings)
    except OSError as exc:
        console.print(f"[red]cannot listen on port {args.port}: {escape(str(exc))}[/]")
        return 2
    with running as server:
        control = _Control(server.base_url)
        try:
            now = parse_rfc3339(control("GET", "/health")["now"])
            console.print(
                f"[bold]FullStory emulator[/] running in-process at {server.base_url} "
                f"(key {DEMO_KEY}).\nStaged through the control API: the first status poll "
                f"answers 429 (Retry-After {RETRY_AFTER} s); download URLs live {URL_TTL} s and "
                f"the first download waits {LATENCY_MS / 1000:g} s in storage, so its URL "
                "expires.\nIts rate limit is "
                f"{RATE_LIMIT.refill:g} requests per {RATE_LIMIT.period:g} s per endpoint "
                f"(FullStory's: 2 per 60 s), and the client is told so (--rate-limit "
                f"{RATE_LIMIT}): it paces itself after the 429 for a second, not 30.\n"
            )
            throttle = {
                "method": "GET",
                "path": "/operations/v1/*",
                "status": 429,
                "retryAfter": RETRY_AFTER,
                "times": 1,
            }
            slow_storage = {
                "method": "GET",
                "path": f"/{settings.bucket}/*",
                "latencyMs": LATENCY_MS,
                "times": 1,
            }
            control("POST", "/faults", throttle)
            control("POST", "/config", {"urlTtl": URL_TTL})
            control("POST", "/faults", slow_storage)
            end = now.replace(microsecond=0)
            start = end - timedelta(days=1)
            argv_cli = [
                "run",
                "--api-url",
                server.base_url,
                "--api-key",
                DEMO_KEY,
                "--segment",
                "everyone",
                "--format",
                args.format,
                "--out",
                str(out),
                "--start",
                export_cli.rfc3339(start),
                "--end",
                export_cli.rfc3339(end),
                "--poll-interval",
                "0.5",
                "--rate-limit",
                str(RATE_LIMIT),
            ]
            shown = " ".join(argv_cli[5:])
            console.print(f"$ fullstory-export {escape(shown)} --api-key {DEMO_KEY}")
            code = export_cli.main(argv_cli, on_event=lambda name, f: events.append((name, f)))
            journal = control("GET", "/journal")["requests"]
        finally:
            control.close()
    _narrate(console, code, events, journal, args.format)
    return code


def _narrate(
    console: Any,
    code: int,
    events: list[tuple[str, dict[str, Any]]],
    journal: list[dict[str, Any]],
    fmt: str,
) -> None:
    """The story of the run, from the CLI's events and the emulator's journal."""
    api = [e for e in journal if not e["path"].startswith("/__emulator")]
    polls = [e for e in api if e["path"].startswith("/operations/v1/")]
    api_paths = ("/segments/", "/operations/", "/search/")
    downloads = [e for e in api if not e["path"].startswith(api_paths)]
    locations = [e for e in api if e["path"].startswith("/search/v1/exports/")]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for name, fields in events:
        by_name.setdefault(name, []).append(fields)
    steps: dict[str, list[int]] = {}  # step (or final state) -> the percentages polled in it
    for fields in by_name.get("progress", []):
        steps.setdefault(str(fields.get("step") or fields.get("state")), []).append(
            int(fields.get("pct") or 0)
        )
    story = " → ".join(
        f"{step} {pcts[0]}%" if len(set(pcts)) == 1 else f"{step} {pcts[0]}–{pcts[-1]}%"
        for step, pcts in steps.items()
    )
    console.print("\n[bold]What happened[/]")
    created = by_name.get("created", [{}])[0]
    console.print(f"  1. POST /segments/v1/exports created operation {created.get('operationId')}")
    limited = by_name.get("rate_limited", [])
    throttled = sum(1 for e in polls if e.get("status") == 429)
    console.print(f"  2. polled GET /operations/v1/{{id}} {len(polls)} times: {story}")
    if limited:
        wait = limited[0].get("retryAfter")
        console.print(
            f"     one poll got [yellow]429 Too Many Requests[/] (Retry-After {wait:g} s): the "
            f"client waited as told and polled again (the journal shows {throttled} × 429)"
        )
    else:
        console.print("     [red]no 429 was seen[/] (the staged fault did not fire)")
    paced = by_name.get("pacing", [])
    if paced:
        waited = sum(float(e.get("seconds") or 0) for e in paced)
        console.print(
            f"     the client paced itself {len(paced)} time{'s' if len(paced) > 1 else ''} "
            f"({waited:.1f} s in all): {escape(str(paced[0].get('reason')))}"
        )
    expired = by_name.get("url_expired", [])
    statuses = " then ".join(str(e.get("status")) for e in downloads)
    console.print(
        f"  3. asked GET /search/v1/exports/{{id}}/results {len(locations)} times for a signed URL"
    )
    if expired:
        console.print(
            f"     the first URL had expired when storage answered ([yellow]400 ExpiredToken[/]: "
            f"{escape(str(expired[0].get('details')))}); the CLI asked for a fresh URL and the "
            f"[green]renewed URL[/] worked (downloads answered {statuses})"
        )
    else:
        console.print(f"     [red]no URL expired[/] (downloads answered {statuses or 'nothing'})")
    done = by_name.get("downloaded", [])
    if code != 0 or not done:
        problems = by_name.get("failed", []) + by_name.get("error", [])
        reason = problems[0].get("errorDetails") or problems[0].get("message") if problems else ""
        console.print(f"  4. [red]the export did not finish (exit {code})[/] {escape(str(reason))}")
        return
    path = Path(done[0]["file"])
    rows = _rows(path, fmt)
    where = escape(str(path))
    size = done[0]["bytes"]
    console.print(f"  4. wrote [bold]{where}[/] ({size:,} bytes of gzip), {len(rows):,} rows")
    if rows:
        sample = {k: _short(rows[0][k]) for k in SAMPLE_FIELDS if rows[0].get(k) not in (None, "")}
        console.print(f"     a sample row: {escape(json.dumps(sample, ensure_ascii=False))}")
    console.print(f"\nTry it yourself: zcat {where} | head -3   (or: fullstory-export --help)")


def _short(value: Any, width: int = 60) -> Any:
    text = str(value)
    return value if len(text) <= width else text[: width - 1] + "…"


def _rows(path: Path, fmt: str) -> list[dict[str, Any]]:
    """The rows of a downloaded export, whichever the format."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
        if fmt == "ndjson":
            return [json.loads(line) for line in text if line.strip()]
        if fmt == "json":
            data = json.load(text)
            return data if isinstance(data, list) else []
        return list(csv.DictReader(io.StringIO(text.read())))


if __name__ == "__main__":
    raise SystemExit(main())
