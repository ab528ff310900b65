"""An export file as blocks of individuals, made in this process or in worker processes.

A file is one gzip member: the header, then for each block of `BLOCK_INDIVIDUALS` individuals
(in index order) the DEFLATE segment of that block's rows, with the few framing bytes (the CSV
header, JSON's brackets and commas) between them as stored blocks, then the trailer. A block's
segment depends only on the export and the block's individuals, never on which process made
it, so a file made by one process and by many is the same bytes; and it is one ordinary member,
which every gzip reader decodes whole.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .. import __version__
from ..store.records import ExportSpec
from ..world import World
from ..world.segments import Segment, SegmentCatalog
from ..world.shape import Shape
from . import replay, select, stream
from .fields import resolve_fields

BLOCK_INDIVIDUALS = 128
# Part of every file's identity: raise it whenever the bytes made from one spec change.
FILE_FORMAT = 3  # 3: the world's traffic has a rhythm and a density
# Events a day per individual of a density-1 world over its last 30 days (~8k a day for 1000
# people at the end of its data), to size the work and the export's duration before doing it.
EVENTS_PER_INDIVIDUAL_DAY = 7.0
# Below this many estimated events a file is made in the calling process: starting workers and
# shipping blocks would cost more than they save.
PARALLEL_MIN_EVENTS = 100_000


@dataclass(frozen=True)
class ExportJob:
    """Everything an export file is a function of, in a form that pickles to a worker process."""

    seed: int
    origin_ms: int
    population: int
    segment: Mapping[str, Any]  # the segment's definition, as in the fixtures
    spec: ExportSpec
    density: float = 1.0  # the world's (--density)
    shape: Shape | None = None  # a recorded org's shape over the world's rows (--replay)
    recorded: replay.RecordedRows | None = None  # the recorded rows that answer it instead

    def key(self) -> str:
        """A digest of the job: equal keys, equal bytes (the file's ETag and cache name).
        Computed once per job (a download names it as its ETag, then opens the file by it)."""
        known: str | None = self.__dict__.get("_key")
        if known is None:
            known = self._digest()
            object.__setattr__(self, "_key", known)  # not a field: equality and hash ignore it
        return known

    def _digest(self) -> str:
        replayed = {}  # only when replaying, so that other files keep their names
        if self.shape is not None:
            replayed["shape"] = self.shape.digest
        if self.recorded is not None:
            replayed["recorded"] = self.recorded.digest
        canonical = json.dumps(
            {
                **replayed,
                "format": FILE_FORMAT,
                "version": __version__,
                "block": BLOCK_INDIVIDUALS,
                "seed": self.seed,
                "origin": self.origin_ms,
                "population": self.population,
                "density": self.density,
                "segment": self.segment,
                "spec": asdict(self.spec),
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]

    def blocks(self) -> int:
        return math.ceil(self.population / BLOCK_INDIVIDUALS)

    def estimated_events(self) -> float:
        return estimated_events(self.spec, self.origin_ms, self.population, self.density)


def estimated_events(spec: ExportSpec, origin_ms: int, population: int, density: float) -> float:
    """About how many events an export reads, known before any is made: what sizes its
    duration, decides whether workers make its file, and what --max-export-events bounds.
    Every kind reads the events of its rows window (an individual export too, to match its
    people); the days before the world's first (`origin_ms`) hold none."""
    return population * density * data_days(spec, origin_ms) * EVENTS_PER_INDIVIDUAL_DAY


def data_days(spec: ExportSpec, origin_ms: int) -> float:
    """Days of data in the export's rows window: from the world's first day at the earliest."""
    lo, hi = spec.rows_window
    return max(0, hi - max(lo, origin_ms)) / 86_400_000


@dataclass(frozen=True)
class Block:
    segment: stream.Deflated
    rows: bool  # whether the block holds any row (JSON's commas depend on it)


def default_fields(kind: str, world: World) -> tuple[str, ...]:
    """The columns of an export of `kind` that names no `fields`: in a recorded org's shape,
    only those the org had, and its own custom variables."""
    columns = resolve_fields(kind, None, world.custom_vars)
    return world.shape.columns(kind, columns) if world.shape else columns


WorldKey = tuple[int, int, int, float, Shape | None]


class Maker:
    """Makes the blocks of jobs, reusing one World and compiled Segment per job it sees."""

    def __init__(self, world: World | None = None, segments: Iterable[Segment] = ()) -> None:
        self._worlds: dict[WorldKey, World] = {}
        if world is not None:
            key = (world.seed, world.origin_ms, world.population, world.density, world.shape)
            self._worlds[key] = world
        self._segments = {_definition_key(s.definition): s for s in segments}

    def world(self, job: ExportJob) -> World:
        key = (job.seed, job.origin_ms, job.population, job.density, job.shape)
        world = self._worlds.get(key)
        if world is None:
            if len(self._worlds) >= 4:
                self._worlds.pop(next(iter(self._worlds)))
            world = self._worlds[key] = World(
                seed=job.seed,
                origin_ms=job.origin_ms,
                population=job.population,
                density=job.density,
                shape=job.shape,
            )
        return world

    def segment(self, job: ExportJob) -> Segment:
        key = _definition_key(job.segment)
        segment = self._segments.get(key)
        if segment is None:
            if len(self._segments) >= 64:
                self._segments.pop(next(iter(self._segments)))
            (segment,) = SegmentCatalog.parse({"segments": [dict(job.segment)]}, "export job")
            self._segments[key] = segment
        return segment

    def rows(self, job: ExportJob, indices: range | None = None) -> Iterator[dict[str, Any]]:
        """The job's rows (with `indices`, those of that run of individuals; recorded rows
        are never made in blocks: `file_bytes` makes them whole)."""
        if job.recorded is not None:
            return replay.rows(job.recorded, job.spec) if indices is None else iter(())
        return select.rows(self.world(job), self.segment(job), job.spec, indices)

    def encoding(self, job: ExportJob) -> tuple[bool, frozenset[str] | None]:
        """How the job's rows are encoded: whether they must be cut down to its fields, and
        which of their keys vary within a page (the CSV encoder's shortcut; never for recorded
        rows, whose order and constancy nothing vouches for)."""
        world = self.world(job)
        spec = job.spec
        project = spec.fields != default_fields(spec.kind, world)
        if job.recorded is not None:
            return project, None
        return project, world.event_level if spec.kind == "event" else None

    def body(self, job: ExportJob, indices: range | None = None) -> Iterator[bytes]:
        """The uncompressed rows of the job (with `indices`, of that run of individuals),
        without the file's header and framing; from the world's pages where the encoder can
        take them, which skips building a row per event."""
        spec = job.spec
        project, event_level = self.encoding(job)
        if job.recorded is None and event_level is not None:
            world = self.world(job)
            pages = select.event_pages(world, self.segment(job), spec, indices)
            if pages is not None:
                body = stream.encode_pages(
                    pages, spec.fields, spec.extension, event_level, world.session_level
                )
                if body is not None:
                    return body
        return stream.encode_body(
            self.rows(job, indices),
            spec.fields,
            spec.extension,
            project=project,
            event_level=event_level,
        )

    def block(self, job: ExportJob, index: int) -> Block:
        start = index * BLOCK_INDIVIDUALS
        indices = range(start, min(start + BLOCK_INDIVIDUALS, job.population))
        segment = stream.deflate(self.body(job, indices))
        return Block(segment, segment.size > 0)

    def recorded_file(self, job: ExportJob) -> Iterator[bytes]:
        """A replayed export's (uncompressed) bytes: the recorded lines themselves for NDJSON
        of every field, else the recorded rows through the encoders."""
        assert job.recorded is not None
        spec = job.spec
        project, event_level = self.encoding(job)
        if spec.extension == "ndjson" and not project:
            return replay.raw_ndjson(job.recorded, spec)
        return stream.encode(
            self.rows(job), spec.fields, spec.extension, project=project, event_level=event_level
        )


def _definition_key(definition: Mapping[str, Any]) -> str:
    return json.dumps(definition, sort_keys=True, separators=(",", ":"))


def assemble(job: ExportJob, blocks: Iterable[Block]) -> Iterator[bytes]:
    """The gzip file's bytes from the job's blocks, in order."""
    extension = job.spec.extension
    member = stream.GzipMember()
    yield member.HEADER
    head = stream.header(job.spec.fields, extension)
    if head:
        yield member.add(stream.stored(head))
    first = True
    for block in blocks:
        if not block.rows:
            continue
        framing = stream.separator(extension, first)
        if framing:
            yield member.add(stream.stored(framing))
        first = False
        yield member.add(block.segment)
    tail = stream.footer(extension, not first)
    if tail:
        yield member.add(stream.stored(tail))
    yield member.finish()


BlockSource = Callable[[ExportJob], Iterator[Block]]


def file_bytes(
    job: ExportJob, maker: Maker, parallel: BlockSource | None = None
) -> Iterator[bytes]:
    """The export file, its blocks made by `parallel` (worker processes) when the job is big
    enough to be worth it, else here by `maker`; a replayed export's from its recorded rows,
    here (a recorded export is small)."""
    if job.recorded is not None:
        return stream.gzip_stream(maker.recorded_file(job))
    if parallel is not None and job.blocks() > 1 and job.estimated_events() >= PARALLEL_MIN_EVENTS:
        return assemble(job, parallel(job))
    return assemble(job, (maker.block(job, i) for i in range(job.blocks())))
