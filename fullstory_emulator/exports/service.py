"""The Segment Export workflow as domain operations: create, observe, cancel, locate, download.

This module knows the rules (who sees what, when a result exists, how long things last) but not
HTTP; the handlers in api/ translate requests into these calls and results into responses.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ..auth import Principal
from ..clock import Clock
from ..contract import COMPLETED, FAILURE_STATES, PENDING, SCOPE_EVENT, TYPE_INDIVIDUAL, TYPE_SCOPES
from ..control.rules import lifecycle_of
from ..control.service import ControlView
from ..control.specs import lifecycle_rule
from ..errors import InsufficientStorage, InvalidArgument, NoSuchKey, NotFound, StorageError, echo
from ..files import stream
from ..files.cache import FileCache, FileTooLarge, OpenFile
from ..files.export import (
    PARALLEL_MIN_EVENTS,
    ExportJob,
    Maker,
    data_days,
    default_fields,
    estimated_events,
    file_bytes,
)
from ..files.fields import resolve_fields
from ..files.pool import BlockPool
from ..files.replay import Replay
from ..ids import text_key, token
from ..logs import get_logger
from ..recording import RecordingError
from ..settings import Settings
from ..store import Store
from ..store.records import ExportSpec, Lifecycle, LifecycleRule, OperationRecord
from ..timestamps import format_api, from_ms, to_ms
from ..world import World
from ..world.segments import Segment, SegmentCatalog
from .lifecycle import Status, cancel, force, polled, status_at
from .signing import UrlSigner
from .spec import ExportRequest, TimeRange

logger = get_logger("exports")
BACKGROUND_PENDING = 2  # large files waiting to be made ahead of their download


@dataclass(frozen=True)
class Preview:
    """The first rows of an export, decoded: what the console shows as a table."""

    format: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]  # cells as the file writes them
    more: bool  # the file has rows past these


@dataclass(frozen=True)
class Download:
    """A verified download: what its headers say, and the job that makes its bytes."""

    filename: str
    etag: str  # quoted, as the header carries it
    last_modified: datetime
    job: ExportJob


class ExportService:
    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        store: Store,
        world: World,
        segments: SegmentCatalog,
        signer: UrlSigner,
        files: FileCache,
        pool: BlockPool | None = None,
        replay: Replay | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.store = store
        self.world = world
        self.segments = segments
        self.signer = signer
        self._hinted: dict[tuple[str, str], None] = {}  # operations whose hint was logged
        self.files = files
        self.pool = pool
        self._maker = Maker(world, segments)
        self.replay = replay
        self.recorded_rules = _recorded_rules(replay)
        self._lock = threading.Lock()
        # Large files waiting to be made in the background, newest last; bounded, so that a
        # burst of creations cannot keep the emulator busy for hours after it (a dropped job's
        # file is made by its first download instead).
        self._pending: deque[ExportJob] = deque(maxlen=BACKGROUND_PENDING)
        self._wake = threading.Condition(self._lock)
        self._maker_thread: threading.Thread | None = None
        self._closed = False

    # -- segments -------------------------------------------------------------------------
    def segment(self, segment_id: str) -> Segment:
        segment = self.segments.get(segment_id)
        if segment is None:
            raise NotFound(
                f"segment {echo(segment_id)} not found; list segments with GET /segments/v1"
            )
        return segment

    # -- create ---------------------------------------------------------------------------
    def create(
        self, principal: Principal, request: ExportRequest, control: ControlView
    ) -> OperationRecord:
        principal.require_export_role()
        segment = self.segment(request.segment_id)
        tenant = principal.tenant
        now = self.clock.now(tenant)
        spec = self._resolve(request, segment, to_ms(now))
        world = self.world
        estimate = estimated_events(spec, world.origin_ms, world.population, world.density)
        self._check_size(spec, estimate, control)
        failure = segment.failure
        lifecycle = Lifecycle(
            duration=self._duration(estimate, control),
            failure=failure.message if failure else None,
            fail_at=failure.at_fraction if failure else 1.0,
        )
        # The user's own rules first; then, for a recorded segment, its recorded timeline.
        rule = control.take_lifecycle(segment.id) or self.recorded_rules.get(segment.id)
        if rule is not None:
            lifecycle = lifecycle_of(rule, lifecycle)
        seq = self.store.next_sequence(tenant)
        tenant_key = text_key(tenant)
        seed = self.settings.seed
        record = OperationRecord(
            id=token(seed, tenant_key, seq, 1, length=20),
            tenant=principal.tenant,
            seq=seq,
            created_at=now,
            spec=spec,
            lifecycle=lifecycle,
            search_export_id=token(seed, tenant_key, seq, 2, length=20),
            segment_name=segment.name,
        )
        self.store.add_operation(record)
        if failure is None and estimate >= PARALLEL_MIN_EVENTS:
            self._prepare(self.job(record, segment))
        return record

    def _prepare(self, job: ExportJob) -> None:
        """Start making a large export's file now, while the export is PENDING, as FullStory
        writes it then: its first download need not wait for it. One at a time, in the
        background, at most BACKGROUND_PENDING waiting (the oldest waiting one gives way); a
        download that wants a file meanwhile makes it, or waits for the same making."""
        with self._wake:
            if self._closed:
                return
            self._pending.append(job)
            if self._maker_thread is None:
                # A daemon: stopping the server never waits for a file being made (its half
                # is removed at the next start).
                self._maker_thread = threading.Thread(
                    target=self._make_in_background, name="export-files", daemon=True
                )
                self._maker_thread.start()
            self._wake.notify()

    def _make_in_background(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                job = self._pending.popleft()
            try:
                self._open(job).close()
            except RuntimeError:  # the process is exiting: its worker pool was shut down
                return
            except FileTooLarge as exc:  # told once; its downloads answer why
                self._too_large(exc)
            except RecordingError as exc:  # the download answers it; one line, no traceback
                logger.error("%s", exc)
            except Exception:  # the download will try again, and answer the error there
                if self._closed:  # stopped under it (its pool and cache are gone): no failure
                    return
                logger.exception("making export file %s failed", job.key())

    def _resolve(self, request: ExportRequest, segment: Segment, as_of: int) -> ExportSpec:
        if request.type == TYPE_INDIVIDUAL:
            kind, scope = "individual", "SCOPE_INDIVIDUAL"
        else:
            kind = "event"
            implied = TYPE_SCOPES.get(request.type)
            if implied and request.scope and request.scope != implied:
                raise InvalidArgument(
                    f"eventDetails.scope {request.scope} contradicts type {request.type} "
                    f"(which means {implied}); send TYPE_EVENT with the scope, or drop the scope"
                )
            scope = implied or request.scope or SCOPE_EVENT
        origin = self.world.origin_ms
        # An explicit start >= end was refused while parsing; open ends that leave an empty
        # window (an end before the data begins, a start after now) just select nothing.
        start, end = _bounds(request.time_range, origin, as_of)
        if request.segment_time_range is None:
            seg_start, seg_end = _window(segment.window_days, request.timezone, as_of), as_of
        else:
            seg_start, seg_end = _bounds(request.segment_time_range, origin, as_of)
        return ExportSpec(
            segment_id=segment.id,
            kind=kind,
            scope=scope,
            format=request.format,
            range_start_ms=start,
            range_end_ms=end,
            segment_start_ms=seg_start,
            segment_end_ms=seg_end,
            fields=(
                default_fields(kind, self.world)
                if request.fields is None
                else resolve_fields(kind, request.fields, self.world.custom_vars)
            ),
            timezone=request.timezone,
            as_of_ms=as_of,
        )

    def _check_size(self, spec: ExportSpec, estimate: float, control: ControlView) -> None:
        """Refuse an export larger than the tenant's --max-export-events when it is created.

        The estimate is known then, so the client learns at once, in the create call's own
        answer, what to change: no operation is stored, no lifecycle rule is spent, and no
        core works for minutes on a file nobody can use. (An operation failed later instead
        would look to a client like any other failed export, which it may create again.)"""
        limit = control.setting("max_export_events", self.settings.max_export_events)
        if estimate <= limit:
            return
        days = data_days(spec, self.world.origin_ms)
        raise InvalidArgument(
            f"this export would read about {estimate:,.0f} events ({self.world.population:,} "
            f"individuals over the {days:,.1f} days of data where its timeRange and "
            f"segmentTimeRange meet), more than the limit of {limit:,} estimated events; "
            "export a shorter timeRange or segmentTimeRange, or raise the limit: "
            "--max-export-events N (FULLSTORY_EMULATOR_MAX_EXPORT_EVENTS), or for this tenant "
            'POST /__emulator/config {"maxExportEvents": N}'
        )

    def _duration(self, estimate: float, control: ControlView) -> float:
        extra = self.settings.export_duration_per_million * estimate / 1_000_000
        base = control.setting("export_duration", self.settings.export_duration)
        return round(base + extra, 3)

    # -- observe --------------------------------------------------------------------------
    def failure_state(self, control: ControlView) -> str:
        """The name a failed operation's state takes for the viewed tenant: `ERROR` or
        `FAILED` (what FullStory's own clients recognise), overridable per tenant."""
        return control.setting("failure_state", self.settings.failure_state)

    def tenant_failure_state(self, record: OperationRecord) -> str:
        """The failure state's name as the record's own tenant sees it."""
        return self.failure_state(ControlView(self.store, record.tenant))

    def status(
        self, record: OperationRecord, failure_state: str, now: datetime | None = None
    ) -> Status:
        return status_at(
            record,
            now or self.clock.now(record.tenant),
            failure_state=failure_state,
            retention=self.settings.export_retention,
        )

    def state_counts(self) -> dict[str, int]:
        """How many operations of every tenant are in each state now, each named as its own
        tenant sees it."""
        counts: dict[str, int] = {}
        tenants: dict[str, tuple[str, datetime]] = {}  # failure state name and clock, read once
        for record in self.store.operations(None):
            seen = tenants.get(record.tenant)
            if seen is None:
                name = self.failure_state(ControlView(self.store, record.tenant))
                seen = tenants[record.tenant] = (name, self.clock.now(record.tenant))
            state = self.status(record, *seen).state
            counts[state] = counts.get(state, 0) + 1
        return counts

    def get(
        self,
        principal: Principal,
        operation_id: str,
        control: ControlView,
        *,
        poll: bool = False,
    ) -> tuple[OperationRecord, Status]:
        """The operation and its status; `poll` counts a client's status request."""
        tenant = principal.tenant
        failure_state = self.failure_state(control)
        now = self.clock.now(tenant)  # one reading: the poll and the answer agree
        limit = self.settings.finish_stalled_after_polls
        seen: list[tuple[OperationRecord, Status]] = []  # the status the poll computed

        def poll_once(before: OperationRecord) -> OperationRecord:
            status = self.status(before, failure_state, now)
            after = polled(before, status, now, stall_limit=limit)
            seen[:] = [(after, status)] if after is before else []
            return after

        if poll:
            record = self.store.update_operation(tenant, operation_id, poll_once)
        else:
            record = self.store.get_operation(tenant, operation_id)
        if record is None:
            raise NotFound(f"operation {echo(operation_id)} not found")
        if seen and seen[0][0] is record:  # the poll changed nothing: its status stands
            return record, seen[0][1]
        return record, self.status(record, failure_state, now)

    def stall_hint(self, record: OperationRecord, status: Status) -> str | None:
        """Why a clock-driven export polled on a frozen clock does not move, for the poll's
        answer; None when the clock runs or the export is done or poll-driven."""
        life = record.lifecycle
        if status.state != PENDING or life.polls is not None:
            return None
        if not self.clock.frozen(record.tenant):
            return None
        ends = life.duration * (life.fail_at if life.failure is not None else 1.0)
        due = record.created_at + timedelta(seconds=ends)
        now = self.clock.now(record.tenant)
        wait = max(0.0, (due - now).total_seconds())
        hint = (
            f"the emulator's clock is frozen at {format_api(now)}, so this export (due at "
            f"{format_api(due)}) stays PENDING until the clock moves: POST /__emulator/clock "
            f'{{"advance": {wait:g}}} (pytest: sleep with handle.clock.advance, or poll with '
            "handle.client)"
        )
        limit = self.settings.finish_stalled_after_polls
        if limit:
            hint += (
                f"; it finishes anyway on poll {limit + 1} at a standstill "
                f"({record.stalled_polls} so far)"
            )
        return hint

    def first_hint(self, record: OperationRecord) -> bool:
        """Whether this process has not told `record`'s hint yet (so the log says it once)."""
        key = (record.tenant, record.id)
        if key in self._hinted:
            return False
        self._hinted[key] = None
        if len(self._hinted) > 10_000:  # oldest first: forget the oldest
            del self._hinted[next(iter(self._hinted))]
        return True

    def find(self, tenant: str | None, operation_id: str) -> OperationRecord:
        """The tenant's operation, or (tenant None, the control API's instance view) whichever
        tenant has it."""
        if tenant is not None:
            record = self.store.get_operation(tenant, operation_id)
        else:  # the instance: whichever tenant has it
            record = self.store.find_operation(operation_id)
        if record is None:
            raise NotFound(f"operation {echo(operation_id)} not found")
        return record

    def finish(self, tenant: str | None, operation_id: str, failure: str | None) -> None:
        """Complete (or fail) a pending operation now: the control API's shortcut."""
        record = self.find(tenant, operation_id)
        now = self.clock.now(record.tenant)
        failure_state = self.failure_state(ControlView(self.store, record.tenant))
        self.store.update_operation(
            record.tenant,
            record.id,
            lambda r: force(r, self.status(r, failure_state, now), now, failure),
        )

    def list(
        self,
        principal: Principal,
        control: ControlView,
        *,
        state: str | None,
        limit: int,
        after_seq: int | None,
    ) -> tuple[list[tuple[OperationRecord, Status]], int | None]:
        """Newest first; `after_seq` continues below a previous page's last sequence number."""
        now = self.clock.now(principal.tenant)
        failure_state = self.failure_state(control)
        failure_names = set(FAILURE_STATES)
        page: list[tuple[OperationRecord, Status]] = []
        before = after_seq
        # Read in batches, newest first: a page without a state filter reads limit + 1 rows.
        batch = limit + 1 if state is None else max(4 * limit, 200)
        while True:
            records = self.store.operations_page(principal.tenant, before, batch)
            for record in records:
                status = self.status(record, failure_state, now)
                if state is not None and not (
                    status.state == state
                    or (state in failure_names and status.state in failure_names)
                ):
                    continue
                if len(page) == limit:
                    return page, page[-1][0].seq
                page.append((record, status))
            if len(records) < batch:
                return page, None
            before = records[-1].seq

    def cancel(self, principal: Principal, operation_id: str, control: ControlView) -> None:
        """Cancel a pending export of the caller's tenant. Exports belong to the tenant (the
        organisation), not to the key that created them: any key that may create exports (admin,
        architect) may cancel any of them; standard and read-only keys may cancel none."""
        self.get(principal, operation_id, control)  # 404 before anything else
        principal.require_export_role()
        now = self.clock.now(principal.tenant)
        failure_state = self.failure_state(control)
        self.store.update_operation(
            principal.tenant,
            operation_id,
            lambda r: cancel(r, self.status(r, failure_state, now), now),
        )

    # -- results and download -------------------------------------------------------------
    def locate(
        self, principal: Principal, search_export_id: str, control: ControlView
    ) -> tuple[str, datetime]:
        """A fresh signed URL for a completed, unexpired export, and when the URL expires."""
        record = self.store.operation_by_export(search_export_id)
        if record is None or record.tenant != principal.tenant:
            raise NotFound(f"export {echo(search_export_id)} not found")
        return self.signed_url(record, control)

    def signed_url(self, record: OperationRecord, control: ControlView) -> tuple[str, datetime]:
        """A fresh signed URL for the record's file (the control API's path to it, too)."""
        now = self.clock.now(record.tenant)
        status = self._available(record, now)
        assert status.expires is not None
        url_ttl = control.setting("url_ttl", self.settings.url_ttl)
        ttl = min(url_ttl, (status.expires - now).total_seconds())
        ttl_seconds = max(1, int(ttl))
        url = self.signer.mint(self.object_name(record), now, ttl_seconds)
        issued = now.replace(microsecond=0)
        return url, issued + timedelta(seconds=ttl_seconds)

    def _available(self, record: OperationRecord, now: datetime) -> Status:
        """The status of a completed, unexpired export; NotFound otherwise."""
        search_export_id = record.search_export_id
        # Only success matters here, so the failure state's name does not.
        status = self.status(record, self.settings.failure_state, now)
        if status.state != COMPLETED or status.expires is None:
            detail = "not ready" if status.state == PENDING else "not found"
            raise NotFound(f"export {echo(search_export_id)} {detail}")
        if now >= status.expires:
            raise NotFound(
                f"export {echo(search_export_id)} expired at {status.expires.isoformat()}"
            )
        return status

    def preview(self, record: OperationRecord, limit: int) -> Preview:
        """The first `limit` rows of a completed export, decoded from the bytes its download
        would start with: the same selection and the same encoder, stopped early."""
        self._available(record, self.clock.now(record.tenant))
        spec = record.spec
        job = self.job(record, self.segment(spec.segment_id))
        rows = list(itertools.islice(self._maker.rows(job), limit + 1))
        project, event_level = self._maker.encoding(job)
        text = b"".join(
            stream.encode(
                rows[:limit], spec.fields, spec.extension, project=project, event_level=event_level
            )
        ).decode("utf-8")
        return Preview(
            format=spec.format,
            columns=spec.fields,
            rows=tuple(_decode(text, spec.extension, spec.fields)),
            more=len(rows) > limit,
        )

    def object_name(self, record: OperationRecord) -> str:
        return f"segment-exports/{record.search_export_id}.{record.spec.extension}.gz"

    def export_of(self, object_name: str) -> OperationRecord | None:
        """The operation whose file `object_name` is, if any."""
        match = re.fullmatch(r"segment-exports/([A-Za-z0-9]+)\.(csv|json|ndjson)\.gz", object_name)
        record = self.store.operation_by_export(match.group(1)) if match else None
        return record if record and self.object_name(record) == object_name else None

    def download(
        self,
        method: str,
        object_name: str,
        query: Sequence[tuple[str, str]],
        control: ControlView,
        found: tuple[OperationRecord | None, datetime] | None = None,
    ) -> Download:
        """Verify the signed URL (its query as sent, repeats and all; a HEAD verifies as the GET
        it was signed for) and describe the file; `control` is the view of the export's tenant,
        `found` the export (`export_of`) and the time on its tenant's clock when the caller
        already looked them up. The ETag is the job's digest, known before the file is made."""
        if found is None:
            record = self.export_of(object_name)
            now = self.clock.now(record.tenant if record else None)
        else:
            record, now = found
        self.signer.verify(method, self.signer.path_for(object_name), query, now)
        missing = NoSuchKey(
            f"No such object: {self.signer.bucket}/{echo(object_name, quote=False)}"
        )
        if record is None:
            raise missing
        status = self.status(record, self.failure_state(control), now)
        if status.state != COMPLETED or status.expires is None or now >= status.expires:
            raise missing
        job = self.job(record, self.segment(record.spec.segment_id))
        finished = status.finished_at or now
        return Download(
            filename=export_filename(record.segment_name, finished, record.spec),
            etag=f'"{job.key()}"',
            last_modified=finished,
            job=job,
        )

    def job(self, record: OperationRecord, segment: Segment) -> ExportJob:
        return ExportJob(
            seed=self.settings.seed,
            origin_ms=self.world.origin_ms,
            population=self.world.population,
            segment=segment.definition,
            spec=record.spec,
            density=self.world.density,
            shape=self.world.shape,
            recorded=self.replay.rows_for(record.spec) if self.replay else None,
        )

    def open_file(self, download: Download) -> OpenFile:
        """The download's file, made (on every core for a large one) if it is not kept. Blocks
        for as long as making it takes: call it from a thread, not the event loop."""
        try:
            return self._open(download.job)
        except FileTooLarge as exc:
            raise self._too_large(exc) from None
        except RecordingError as exc:  # a replayed rows file changed since the start
            logger.error("%s", exc)  # the one line, here; the client is not shown local paths
            raise StorageError.for_status(
                500,
                "We encountered an internal error. Please try again.",
                "The recording's rows file cannot be read; the emulator's log says why.",
            ) from None

    def _too_large(self, exc: FileTooLarge) -> InsufficientStorage:
        """The download's answer to a file larger than the whole cache; a warning in the log
        the first time it is found (later downloads are answered from the cache's marker)."""
        details = (
            f"this export's file is larger than --file-cache-bytes ({exc.max_bytes:,} bytes; "
            "FULLSTORY_EMULATOR_FILE_CACHE_BYTES), so it is not kept and not made again for "
            "each download; raise --file-cache-bytes, or export a shorter timeRange or "
            "segmentTimeRange (--max-export-events bounds what a tenant may create)"
        )
        if exc.found:
            logger.warning("export file %s not kept: %s", exc.key, details)
        return InsufficientStorage(details)

    def _open(self, job: ExportJob) -> OpenFile:
        parallel = self.pool.blocks if self.pool is not None else None
        return self.files.open(job.key(), lambda: file_bytes(job, self._maker, parallel))

    def close(self) -> None:
        """Stop the background maker and the worker processes, and drop a temporary cache."""
        with self._wake:
            self._closed = True
            self._pending.clear()
            self._wake.notify_all()
        if self.pool is not None:
            self.pool.close()
        self.files.close()


def _recorded_rules(replay: Replay | None) -> dict[str, LifecycleRule]:
    """The recorded timelines as lifecycle rules, by segment: how a recorded segment's exports
    play out unless a rule of the user's says otherwise. They are never written to the store,
    so a restart on the same data does not add them again."""
    if replay is None:
        return {}
    out = {}
    for body in replay.recording.lifecycle_rules():
        segment_id = body["segmentId"]
        try:
            out[segment_id] = lifecycle_rule(body, f"recorded:{segment_id}")
        except InvalidArgument as exc:
            raise RecordingError(
                f"{replay.recording.root}: the timeline recorded for segment {segment_id!r} "
                f"does not replay: {exc.message}"
            ) from None
    return out


def _decode(text: str, extension: str, columns: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """The rows of an export file's text as cells in column order, parsed the way a client
    would parse the file; each cell is its value as the file writes it ("" for none), so
    64-bit ids stay exact wherever the cells are shown."""
    if extension == "csv":
        reader = csv.reader(io.StringIO(text))
        header = next(reader)
        index = [header.index(c) for c in columns]
        for line in reader:
            yield tuple(line[i] for i in index)
        return
    objects = json.loads(text) if extension == "json" else map(json.loads, text.splitlines())
    for row in objects:
        yield tuple(_cell(row.get(c)) for c in columns)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode("utf-8")


def export_filename(segment_name: str, finished: datetime, spec: ExportSpec) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", segment_name).strip("_") or "export"
    return f"{slug}-{finished:%Y%m%dT%H%M%SZ}.{spec.extension}.gz"


def _bounds(value: TimeRange | None, origin: int, as_of: int) -> tuple[int, int]:
    """Open ends: the start of data and the export's creation instant."""
    if value is None:
        return origin, as_of
    start = origin if value.start_ms is None else value.start_ms
    end = as_of if value.end_ms is None else value.end_ms
    return start, end


def _window(days: int, timezone: str, as_of: int) -> int:
    """A segment's default window: from local midnight `days` days before the creation day."""
    local = from_ms(as_of).astimezone(ZoneInfo(timezone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
    return to_ms(midnight)
