"""Export files as blocks (fullstory_emulator/files/export.py and pool.py): one gzip member
whatever made it, the same bytes from one process and from worker processes."""

from __future__ import annotations

import dataclasses
import gzip
import json
import threading
import zlib

import pytest

from fullstory_emulator.files import export, select, stream
from fullstory_emulator.files.export import Block, ExportJob, Maker, assemble, file_bytes
from fullstory_emulator.files.fields import resolve_fields
from fullstory_emulator.files.pool import BlockPool
from fullstory_emulator.store.records import ExportSpec
from fullstory_emulator.world import CUSTOM_VARS, EVENT_LEVEL_FIELDS, World
from fullstory_emulator.world.segments import SegmentCatalog

ORIGIN = 1_700_000_000_000
DAY = 86_400_000
SEGMENTS = SegmentCatalog.load()


def job(extension: str = "ndjson", population: int = 300, segment: str = "everyone") -> ExportJob:
    fmt = {"csv": "FORMAT_CSV", "json": "FORMAT_JSON", "ndjson": "FORMAT_NDJSON"}[extension]
    spec = ExportSpec(
        segment_id=segment,
        kind="event",
        scope="SCOPE_EVENT",
        format=fmt,
        range_start_ms=ORIGIN,
        range_end_ms=ORIGIN + 20 * DAY,
        segment_start_ms=ORIGIN,
        segment_end_ms=ORIGIN + 20 * DAY,
        fields=resolve_fields("event", None, CUSTOM_VARS),
        timezone="UTC",
        as_of_ms=ORIGIN + 20 * DAY,
    )
    definition = SEGMENTS.get(segment).definition  # type: ignore[union-attr]
    return ExportJob(seed=3, origin_ms=ORIGIN, population=population, segment=definition, spec=spec)


def one_member(data: bytes) -> bytes:
    reader = zlib.decompressobj(31)
    text = reader.decompress(data)
    assert reader.eof and reader.unused_data == b""
    return text


@pytest.mark.parametrize("extension", ["csv", "json", "ndjson"])
def test_a_file_of_many_blocks_is_the_whole_export_in_one_member(extension):
    j = job(extension)
    assert j.blocks() == 3  # 300 individuals, 128 a block
    data = b"".join(file_bytes(j, Maker()))
    world = World(seed=3, origin_ms=ORIGIN, population=300)
    whole = stream.encode(
        select.rows(world, SEGMENTS.get("everyone"), j.spec),  # type: ignore[arg-type]
        j.spec.fields,
        extension,
        project=False,
        event_level=EVENT_LEVEL_FIELDS,
    )
    assert one_member(data) == b"".join(whole)


@pytest.mark.parametrize(
    ("segment", "scope", "by_page"),
    [
        ("everyone", "SCOPE_EVENT", True),
        ("Pr0PlanUsr5x", "SCOPE_EVENT", True),  # user conditions only: every event of a member
        ("rageClicks", "SCOPE_INDIVIDUAL", True),
        ("rageClicks", "SCOPE_EVENT", False),  # some events of a member: rows are tested
        ("rageClicks", "SCOPE_SESSIONS", False),
    ],
)
def test_csv_from_the_worlds_pages_is_the_csv_of_its_rows(segment, scope, by_page):
    j = job("csv", 200, segment)
    j = dataclasses.replace(j, spec=dataclasses.replace(j.spec, scope=scope))
    maker = Maker()
    pages = select.event_pages(maker.world(j), maker.segment(j), j.spec)
    assert (pages is not None) == by_page
    rows = stream.encode_body(maker.rows(j), j.spec.fields, "csv", event_level=EVENT_LEVEL_FIELDS)
    assert b"".join(maker.body(j)) == b"".join(rows)


def test_json_commas_skip_blocks_without_rows():
    def block(text: bytes) -> Block:
        return Block(stream.deflate([text]), bool(text))

    j = job("json")
    blocks = [block(b""), block(b'{"a":1}'), block(b""), block(b'{"a":2},\n{"a":3}'), block(b"")]
    assert json.loads(one_member(b"".join(assemble(j, blocks)))) == [{"a": i} for i in (1, 2, 3)]
    assert one_member(b"".join(assemble(j, [block(b"")]))) == b"[]\n"


def test_an_export_without_rows_is_a_valid_file():
    j = job("csv", segment="LegacyFunnel")
    j = dataclasses.replace(j, spec=dataclasses.replace(j.spec, range_end_ms=ORIGIN))
    header = gzip.decompress(b"".join(file_bytes(j, Maker())))
    assert header.decode().count("\n") == 1 and header.startswith(b"IndvId,")


def test_worker_processes_make_the_same_bytes(monkeypatch):
    monkeypatch.setattr(export, "PARALLEL_MIN_EVENTS", 0)
    pool = BlockPool(2)
    try:
        for extension in ("json", "csv"):
            j = job(extension)
            single = b"".join(file_bytes(j, Maker()))
            parallel = b"".join(file_bytes(j, Maker(), pool.blocks))
            assert parallel == single
    finally:
        pool.close()


def test_a_worlds_density_reaches_the_worker_processes(monkeypatch):
    monkeypatch.setattr(export, "PARALLEL_MIN_EVENTS", 0)
    sparse = dataclasses.replace(job("ndjson"), density=0.5)
    world = World(seed=3, origin_ms=ORIGIN, population=300, density=0.5)
    pool = BlockPool(2)
    try:
        parallel = b"".join(file_bytes(sparse, Maker(), pool.blocks))
    finally:
        pool.close()
    assert parallel == b"".join(file_bytes(sparse, Maker(world)))  # the instance's own world
    assert parallel != b"".join(file_bytes(job("ndjson"), Maker()))
    assert sparse.estimated_events() == job("ndjson").estimated_events() / 2


def test_small_exports_do_not_use_the_pool():
    def refuse(_job: ExportJob):  # type: ignore[no-untyped-def]
        raise AssertionError("a small export asked for the pool")

    small = job("ndjson", population=100)  # one block
    assert gzip.decompress(b"".join(file_bytes(small, Maker(), refuse)))


def test_the_key_names_everything_the_bytes_depend_on():
    base = job()
    assert base.key() == job().key() and len(base.key()) == 32
    changed = [
        dataclasses.replace(base, seed=4),
        dataclasses.replace(base, population=301),
        dataclasses.replace(base, density=0.5),
        dataclasses.replace(base, origin_ms=ORIGIN + 1),
        dataclasses.replace(base, segment={**base.segment, "windowDays": 2}),
        dataclasses.replace(base, spec=dataclasses.replace(base.spec, timezone="Europe/Paris")),
        job("csv"),
    ]
    assert len({base.key(), *(c.key() for c in changed)}) == len(changed) + 1


TYPES = (
    ("event", "SCOPE_EVENT"),
    ("event", "SCOPE_SESSIONS"),
    ("event", "SCOPE_PAGES"),
    ("individual", "SCOPE_INDIVIDUAL"),
)


def variety() -> list[ExportJob]:
    """Every format and type, each of two of five worlds (2 blocks: 128 and 22 people)."""
    out = []
    for n, (extension, (kind, scope)) in enumerate(
        (e, t) for e in ("csv", "json", "ndjson") for t in TYPES
    ):
        for seed in (5, 6 + n % 4):
            base = job(extension, population=150)
            spec = dataclasses.replace(
                base.spec,
                kind=kind,
                scope=scope,
                range_start_ms=ORIGIN + 13 * DAY,
                fields=resolve_fields(kind, None, CUSTOM_VARS),
            )
            out.append(dataclasses.replace(base, seed=seed, spec=spec, density=0.5))
    return out


def test_the_same_files_at_once_in_threads_and_processes_among_other_worlds(monkeypatch):
    """Every file made alone (from a fresh world) is made byte-identically while the same and
    other worlds' files are made at once: by three threads sharing one Maker (whose bounded
    world cache turns over: five worlds, four kept) and one worker pool, each thread making
    every file in its own order, some here and some in the worker processes."""
    monkeypatch.setattr(export, "PARALLEL_MIN_EVENTS", 0)
    jobs = variety()

    def alone(j: ExportJob) -> bytes:
        world = World(seed=j.seed, origin_ms=ORIGIN, population=j.population, density=j.density)
        return b"".join(file_bytes(j, Maker(world)))

    expected = {j.key(): alone(j) for j in jobs}
    assert len(expected) == len(jobs) == 24
    shared = Maker()
    pool = BlockPool(2)
    wrong: list[str] = []
    failures: list[BaseException] = []

    def make_all(n: int) -> None:
        order = jobs[n:] + jobs[:n] if n % 2 else (jobs[n:] + jobs[:n])[::-1]
        try:
            for i, j in enumerate(order):
                parallel = pool.blocks if (i + n) % 2 else None
                if b"".join(file_bytes(j, shared, parallel)) != expected[j.key()]:
                    wrong.append(f"seed {j.seed} {j.spec.format} {j.spec.scope}")
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=make_all, args=(n * 7,)) for n in range(3)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        pool.close()
    assert failures == [] and wrong == []
