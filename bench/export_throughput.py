"""Export throughput: events per second and peak RSS, as ratios to a gzip baseline.

For each size and format this runs, in a fresh process so that peak RSS is the export's own:

- total:    the emulator's pipeline (generation, serialisation, ISA-L gzip), as a download runs it;
- gen+ser:  the same without compression;
- baseline: zlib at the same level (1) and at gzip's default (6), timed on exactly the same
            bytes in the same 64 KiB batches (the bytes are regenerated, not held, and only the
            compress calls are timed).

The machines are shared and noisy, so the figures to compare are the ratios, each measured in
the same run. Usage:

    python bench/export_throughput.py                      # 100k, 1M, 5M events x 3 formats
    python bench/export_throughput.py --sizes 100k --formats ndjson
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime

from emulator.files import select, stream
from emulator.files.fields import resolve_fields
from emulator.store.records import ExportSpec
from emulator.timestamps import to_ms
from emulator.world import CUSTOM_VARS, EVENT_LEVEL_FIELDS, World
from emulator.world.segments import SegmentCatalog

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


def pieces(world: World, spec: ExportSpec, counter: list[int]) -> Iterator[bytes]:
    segment = SegmentCatalog.load().get("everyone")
    assert segment is not None

    def counted() -> Iterator[dict]:
        for row in select.rows(world, segment, spec):
            counter[0] += 1
            yield row

    return stream.encode(
        counted(), spec.fields, spec.extension, project=False, event_level=EVENT_LEVEL_FIELDS
    )


def batches(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The same 64 KiB input batches gzip_stream compresses."""
    batch, size = [], 0
    for piece in chunks:
        batch.append(piece)
        size += len(piece)
        if size >= stream.BATCH_BYTES:
            yield b"".join(batch)
            batch, size = [], 0
    yield b"".join(batch)


def run_case(seed: int, events: int, extension: str) -> dict:
    world = calibrated_world(seed, events)
    spec = spec_for(world, extension)

    counter = [0]
    began = time.perf_counter()
    compressed = sum(len(c) for c in stream.gzip_stream(pieces(world, spec, counter)))
    total = time.perf_counter() - began
    rows = counter[0]

    began = time.perf_counter()
    raw = sum(len(p) for p in pieces(world, spec, [0]))
    gen_ser = time.perf_counter() - began

    baseline = {}
    for level in (1, 6):
        spent = 0.0
        compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
        for batch in batches(pieces(world, spec, [0])):
            t0 = time.perf_counter()
            compressor.compress(batch)
            spent += time.perf_counter() - t0
        t0 = time.perf_counter()
        compressor.flush()
        baseline[level] = spent + time.perf_counter() - t0

    return {
        "events": rows,
        "format": extension,
        "raw_mb": raw / 1e6,
        "gzip_mb": compressed / 1e6,
        "total_s": total,
        "gen_ser_s": gen_ser,
        "zlib1_s": baseline[1],
        "zlib6_s": baseline[6],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100k,1M,5M")
    parser.add_argument("--formats", default="ndjson,json,csv")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--case", nargs=2, metavar=("EVENTS", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.seed, int(args.case[0]), args.case[1])))
        return
    print(
        "| events | format | events/s | total / zlib-1 | gen+ser / zlib-1 | total / zlib-6 "
        "| peak RSS MB | raw MB | gzip MB |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for size in (parse_size(s) for s in args.sizes.split(",")):
        for extension in args.formats.split(","):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--seed",
                    str(args.seed),
                    "--case",
                    str(size),
                    extension,
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout)
            print(
                f"| {r['events']:,} | {r['format']} | {r['events'] / r['total_s']:,.0f} "
                f"| {r['total_s'] / r['zlib1_s']:.2f} | {r['gen_ser_s'] / r['zlib1_s']:.2f} "
                f"| {r['total_s'] / r['zlib6_s']:.2f} | {r['peak_rss_mb']:.0f} "
                f"| {r['raw_mb']:.0f} | {r['gzip_mb']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
