"""Export throughput: events per second and peak RSS, as ratios to a gzip baseline, on one core
and on every core.

For each size and format this runs, in a fresh process so that peak RSS is the export's own:

- total:    the emulator's pipeline (generation, serialisation, ISA-L gzip) in one process, as a
            download makes a small file;
- gen+ser:  the same without compression;
- baseline: zlib at the same level (1) and at gzip's default (6), timed on exactly the same
            bytes in the same 64 KiB batches (the bytes are regenerated, not held, and only the
            compress calls are timed);
- parallel: the same file made by N worker processes (blocks of individuals), as a download
            makes a large one; its bytes are checked equal to the one-process file's, and the
            peak RSS of the whole process tree (the parent and its workers, sampled every 20 ms)
            is reported.

The machines are shared and noisy, so the figures to compare are the ratios, each measured in
the same run. Usage:

    python bench/export_throughput.py                      # 100k, 1M, 5M events x 3 formats
    python bench/export_throughput.py --sizes 100k --formats ndjson --workers 2
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import resource
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from fullstory_emulator.files import select, stream
from fullstory_emulator.files.export import ExportJob, Maker, file_bytes
from fullstory_emulator.files.fields import resolve_fields
from fullstory_emulator.files.pool import BlockPool
from fullstory_emulator.store.records import ExportSpec
from fullstory_emulator.timestamps import to_ms
from fullstory_emulator.world import CUSTOM_VARS, World
from fullstory_emulator.world.segments import SegmentCatalog

START = to_ms(datetime(2026, 3, 1, tzinfo=UTC))
DAY = 86_400_000
FORMATS = {"ndjson": "FORMAT_NDJSON", "json": "FORMAT_JSON", "csv": "FORMAT_CSV"}


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * scale)


def calibrated_world(seed: int, events: int) -> World:
    """A world whose all-time `everyone` export holds about `events` events."""
    origin = START - 90 * DAY
    probe_size = 3000  # people vary a lot (1 to 60 sessions): a small probe misjudges the mean
    probe = World(seed=seed, origin_ms=origin, population=probe_size)
    per_person = sum(1 for i in range(probe_size) for _ in probe.events(i, START)) / probe_size
    return World(seed=seed, origin_ms=origin, population=max(1, round(events / per_person)))


def spec_for(world: World, extension: str) -> ExportSpec:
    columns = resolve_fields("event", None, CUSTOM_VARS)
    return ExportSpec(
        segment_id="everyone",
        kind="event",
        scope="SCOPE_EVENT",
        format=FORMATS[extension],
        range_start_ms=world.origin_ms,
        range_end_ms=START,
        segment_start_ms=world.origin_ms,
        segment_end_ms=START,
        fields=columns,
        timezone="UTC",
        as_of_ms=START,
    )


def pieces(job: ExportJob, maker: Maker) -> Iterator[bytes]:
    """The uncompressed file, as the download path makes it (without the few framing bytes)."""
    head = stream.header(job.spec.fields, job.spec.extension)
    return itertools.chain([head] if head else [], maker.body(job))


def count_rows(world: World, spec: ExportSpec) -> int:
    segment = SegmentCatalog.load().get("everyone")
    assert segment is not None
    return sum(1 for _ in select.rows(world, segment, spec))


def batches(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The same 64 KiB input batches the compressor is fed."""
    batch, size = [], 0
    for piece in chunks:
        batch.append(piece)
        size += len(piece)
        if size >= stream.BATCH_BYTES:
            yield b"".join(batch)
            batch, size = [], 0
    yield b"".join(batch)


def tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and all its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(status.split("VmRSS:")[1].split()[0]) * 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, IndexError, ValueError):
            continue
    return total


class PeakSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, tree_rss(os.getpid()))


def run_case(seed: int, events: int, extension: str, workers: int) -> dict:
    world = calibrated_world(seed, events)
    spec = spec_for(world, extension)
    segment = SegmentCatalog.load().get("everyone")
    assert segment is not None
    job = ExportJob(
        world.seed, world.origin_ms, world.population, segment.definition, spec, world.density
    )

    began = time.perf_counter()
    single = hashlib.sha256()
    compressed = 0
    for chunk in file_bytes(job, Maker(world, [segment])):
        single.update(chunk)
        compressed += len(chunk)
    total = time.perf_counter() - began

    maker = Maker(world, [segment])
    began = time.perf_counter()
    raw = sum(len(p) for p in pieces(job, maker))
    gen_ser = time.perf_counter() - began
    rows = count_rows(world, spec)

    baseline = {}
    for level in (1, 6):
        spent = 0.0
        compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
        for batch in batches(pieces(job, maker)):
            t0 = time.perf_counter()
            compressor.compress(batch)
            spent += time.perf_counter() - t0
        t0 = time.perf_counter()
        compressor.flush()
        baseline[level] = spent + time.perf_counter() - t0
    rss_single = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    parallel_s = tree_peak = None
    if workers > 1:
        pool = BlockPool(workers)
        sampler = PeakSampler()
        sampler.start()
        began = time.perf_counter()  # the pool's start-up counts: a cold download pays it too
        made = hashlib.sha256()
        for chunk in file_bytes(job, Maker(), pool.blocks):
            made.update(chunk)
        parallel_s = time.perf_counter() - began
        sampler.done.set()
        sampler.join()
        pool.close()
        tree_peak = sampler.peak / 1024 / 1024
        assert made.digest() == single.digest(), "worker processes made different bytes"

    return {
        "events": rows,
        "format": extension,
        "raw_mb": raw / 1e6,
        "gzip_mb": compressed / 1e6,
        "total_s": total,
        "gen_ser_s": gen_ser,
        "zlib1_s": baseline[1],
        "zlib6_s": baseline[6],
        "peak_rss_mb": rss_single,
        "workers": workers,
        "parallel_s": parallel_s,
        "tree_peak_mb": tree_peak,
    }


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1M,5M")
    parser.add_argument("--formats", default="ndjson,json,csv")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--workers", type=int, default=usable_cores(), help="worker processes (1: skip parallel)"
    )
    parser.add_argument("--case", nargs=2, metavar=("EVENTS", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.seed, int(args.case[0]), args.case[1], args.workers)))
        return
    print(
        "| events | format | events/s | total / zlib-1 | gen+ser / zlib-1 | total / zlib-6 "
        f"| peak RSS MB | events/s, {args.workers} procs | speed-up | tree peak RSS MB "
        "| raw MB | gzip MB |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in (parse_size(s) for s in args.sizes.split(",")):
        for extension in args.formats.split(","):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--seed",
                    str(args.seed),
                    "--workers",
                    str(args.workers),
                    "--case",
                    str(size),
                    extension,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout)
            rate = r["events"] / r["total_s"]
            if r["parallel_s"]:
                many = r["events"] / r["parallel_s"]
                parallel = f"{many:,.0f} | {many / rate:.2f} | {r['tree_peak_mb']:.0f}"
            else:
                parallel = "– | – | –"
            print(
                f"| {r['events']:,} | {r['format']} | {rate:,.0f} "
                f"| {r['total_s'] / r['zlib1_s']:.2f} | {r['gen_ser_s'] / r['zlib1_s']:.2f} "
                f"| {r['total_s'] / r['zlib6_s']:.2f} | {r['peak_rss_mb']:.0f} | {parallel} "
                f"| {r['raw_mb']:.0f} | {r['gzip_mb']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
