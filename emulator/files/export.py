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
from ..world import CUSTOM_VARS, EVENT_LEVEL_FIELDS, World
from ..world.segments import Segment, SegmentCatalog
from . import select, stream
from .fields import resolve_fields

BLOCK_INDIVIDUALS = 128
# Part of every file's identity: raise it whenever the bytes made from one spec change.
FILE_FORMAT = 2
EVENTS_PER_INDIVIDUAL_DAY = 1.5  # rough world density, to size the work before doing it
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

    def key(self) -> str:
        """A digest of the job: equal keys, equal bytes (the file's ETag and cache name)."""
        canonical = json.dumps(
            {
                "format": FILE_FORMAT,
                "version": __version__,
                "block": BLOCK_INDIVIDUALS,
                "seed": self.seed,
                "origin": self.origin_ms,
                "population": self.population,
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
        lo, hi = self.spec.rows_window
        return self.population * max(0, hi - lo) / 86_400_000 * EVENTS_PER_INDIVIDUAL_DAY


@dataclass(frozen=True)
class Block:
    segment: stream.Deflated
    rows: bool  # whether the block holds any row (JSON's commas depend on it)


class Maker:
    """Makes the blocks of jobs, reusing one World and compiled Segment per job it sees."""

    def __init__(self, world: World | None = None, segments: Iterable[Segment] = ()) -> None:
        self._worlds: dict[tuple[int, int, int], World] = {}
        if world is not None:
            self._worlds[(world.seed, world.origin_ms, world.population)] = world
        self._segments = {_definition_key(s.definition): s for s in segments}

    def world(self, job: ExportJob) -> World:
        key = (job.seed, job.origin_ms, job.population)
        world = self._worlds.get(key)
        if world is None:
            if len(self._worlds) >= 4:
                self._worlds.pop(next(iter(self._worlds)))
            world = self._worlds[key] = World(
                seed=job.seed, origin_ms=job.origin_ms, population=job.population
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

    def block(self, job: ExportJob, index: int) -> Block:
        spec = job.spec
        start = index * BLOCK_INDIVIDUALS
        indices = range(start, min(start + BLOCK_INDIVIDUALS, job.population))
        rows = select.rows(self.world(job), self.segment(job), spec, indices)
        pieces = stream.encode_body(
            rows,
            spec.fields,
            spec.extension,
            project=spec.fields != resolve_fields(spec.kind, None, CUSTOM_VARS),
            event_level=EVENT_LEVEL_FIELDS if spec.kind == "event" else None,
        )
        segment = stream.deflate(pieces)
        return Block(segment, segment.size > 0)


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
    enough to be worth it, else here by `maker`."""
    if parallel is not None and job.blocks() > 1 and job.estimated_events() >= PARALLEL_MIN_EVENTS:
        return assemble(job, parallel(job))
    return assemble(job, (maker.block(job, i) for i in range(job.blocks())))
