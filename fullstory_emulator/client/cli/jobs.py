"""Job running: the exports a run makes (one, or one per bundle), each created, polled when it
should be done, and downloaded to a `.part` renamed only when whole, `--in-flight` at a time.
Exceptions become exit codes here (`classify`), and every step an event for the reporter."""

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ...contract import FORMAT_EXTENSIONS
from ...settings import RateLimit
from ..core import DownloadStart, FullStoryClient, Resume, Retry
from ..errors import (
    DownloadError,
    DownloadExpired,
    ExportFailed,
    FullStoryError,
    NotFound,
    RateLimited,
    Unauthorized,
)
from .args import TIME_FLAGS, Relative, resolve_times, rfc3339, stamp
from .codes import (
    EXIT_AUTH,
    EXIT_DOWNLOAD,
    EXIT_ERROR,
    EXIT_EXPORT_FAILED,
    EXIT_OK,
    EXIT_RATE_LIMITED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    Failure,
)
from .report import Reporter

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
    elif isinstance(exc, FullStoryError) and exc.status is None and _local_refusal(text):
        text += " (is the emulator running? start it with: fullstory-emulator)"
    return text


def _local_refusal(text: str) -> bool:
    """Nothing listens on this machine's port: most often an emulator not (yet) started."""
    local = ("://127.0.0.1:", "://localhost:", "://[::1]:")
    return "Connection refused" in text and any(host in text for host in local)


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


def retry_events(reporter: Reporter, attempts: int | None = None) -> Callable[[Retry], None]:
    """The client absorbs 429s, 5xx and dropped connections; show each retry as it happens
    (which attempt of `attempts`, and the wait), so a run never sits silent through backoff."""

    def on_retry(retry: Retry) -> None:
        count = {"attempt": retry.attempt, "attempts": attempts, "delay": round(retry.delay, 3)}
        if retry.error.status == 429:
            reporter.emit(
                "rate_limited",
                method=retry.method,
                path=retry.path,
                retryAfter=retry.retry_after,
                **count,
            )
        else:
            reporter.emit(
                "retrying",
                method=retry.method,
                path=retry.path,
                status=retry.error.status,
                message=retry.error.message,
                **count,
            )

    return on_retry
