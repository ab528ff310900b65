"""`fullstory-emulator --replay DIR` as a user starts it: the banner says what is replayed, the
recorded segments and rows are served, and a folder that does not load stops the start with
one line naming the file and the field."""

from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from fullstory_emulator.recording import Catalogue, FieldProfile, Poll, RecordedExport, Timeline
from tests.helpers import AUTH, emulator_command, start, stop, write_recording

ROWS = [
    {"IndvId": 11, "EventStart": "2026-01-05T10:00:00.000Z", "EventType": "navigate",
     "PageUrl": "https://example.de/ä?x=1&y=<2>", "user_tier_str": "gold"},
    {"IndvId": 12, "EventStart": "2026-01-05T10:30:00.000Z", "EventType": "custom",
     "EventCustomName": "Bestellt & bezahlt", "evt_total_real": 12.5},
]  # fmt: skip
SEGMENT = {"id": "AbC123dEf456", "name": "Käufer", "creator": "ana@example.de", "url": "u://x"}


def folder(root: Path) -> Path:
    data = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in ROWS)
    recorded = RecordedExport(
        segment_id=SEGMENT["id"],
        type="TYPE_EVENT",
        start="2026-01-05T10:00:00Z",
        end="2026-01-05T11:00:00Z",
        file="rows.ndjson",
        rows=2,
        timeline=Timeline((Poll(1.0, "PENDING", 50),), 2.0, "COMPLETED"),
    )
    catalogue = Catalogue(
        {
            "IndvId": FieldProfile("integer", 2, 0.0, minimum=11, maximum=12),
            "EventStart": FieldProfile("string", 2, 0.0),
            "user_tier_str": FieldProfile("string", 1, 0.0, ("gold",)),
        },
        ("example.de",),
        ("/ä",),
    )
    return write_recording(
        root, segments=[SEGMENT], catalogue=catalogue, exports=[(recorded, data)]
    )


def test_replaying_a_folder(tmp_path):
    replay = folder(tmp_path / "org")
    process, base, log = start(tmp_path, "--replay", str(replay), "--start-time",
                               "2026-01-06T00:00:00Z")  # fmt: skip
    try:
        banner = log.read_text()
        assert f"replaying:      {replay}" in banner
        assert f"{SEGMENT['id']} TYPE_EVENT 2026-01-05T10:00:00Z .. 2026-01-05T11:00:00Z" in banner
        with httpx.Client(base_url=base, headers=AUTH, timeout=10) as api:
            assert api.get("/segments/v1").json() == {"segments": [SEGMENT]}
            body = {
                "segmentId": SEGMENT["id"],
                "type": "TYPE_EVENT",
                "format": "FORMAT_NDJSON",
                "timeRange": {"start": "2026-01-05T10:00:00Z", "end": "2026-01-05T11:00:00Z"},
            }
            op_id = api.post("/segments/v1/exports", json=body).json()["operationId"]
            states = []
            for _ in range(5):
                op = api.get(f"/operations/v1/{op_id}").json()
                states.append((op["state"], op["estimatePctComplete"]))
                if op["state"] != "PENDING":
                    break
                time.sleep(0.05)
            assert states == [("PENDING", 50), ("COMPLETED", 100)]
            export_id = op["results"]["searchExportId"]
            location = api.get(f"/search/v1/exports/{export_id}/results").json()["location"]
            data = gzip.decompress(httpx.get(location, timeout=10).content)
            assert data == (replay / "exports" / "rows.ndjson").read_bytes()
    finally:
        process.terminate()
        process.wait(10)


def test_a_folder_that_does_not_load_stops_the_start(tmp_path):
    replay = folder(tmp_path / "org")
    manifest = json.loads((replay / "recording.json").read_text())
    manifest["exports"][0]["timeline"]["finalState"] = "DONE"
    (replay / "recording.json").write_text(json.dumps(manifest))
    result = subprocess.run(
        [*emulator_command(), "--port", "0", "--mcp-port", "off", "--replay", str(replay)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("fullstory-emulator: ")
    assert str(replay / "recording.json") in line and "timeline.finalState" in line


# A hostile folder through the real command: each gives one line naming the file, exit status 2,
# no traceback, in bounded memory and time (/dev/zero read whole took 9 GB; a FIFO hung).
HOSTILE = {  # case: (the file named, the damage)
    "dev-zero": (
        "recording.json",
        lambda root, tmp: _relink(root / "recording.json", Path("/dev/zero")),
    ),
    "dev-urandom": (
        "fields.json",
        lambda root, tmp: _relink(root / "fields.json", Path("/dev/urandom")),
    ),
    "fifo": (
        "segments.json",
        lambda root, tmp: ((root / "segments.json").unlink(), os.mkfifo(root / "segments.json")),
    ),
    "outside": (
        "exports/rows.ndjson",
        lambda root, tmp: _relink(
            root / "exports" / "rows.ndjson", _outside(tmp, root / "exports" / "rows.ndjson")
        ),
    ),
    "100000-deep": (
        "recording.json",
        lambda root, tmp: (root / "recording.json").write_bytes(b"[" * 100_000 + b"]" * 100_000),
    ),
    "two-workers": (  # each worker read the rows, died with a traceback, and was restarted
        "exports/rows.ndjson",
        lambda root, tmp: (root / "exports" / "rows.ndjson").write_bytes(b'{"a": 1}\n{"a": [\n'),
    ),
}
ARGS = {"two-workers": ("--workers", "2")}
MEMORY_CAP = 2 << 30  # address space: a process reading /dev/zero whole fails rather than swaps
MAX_RSS_KB = 400_000


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_folder_stops_the_start_in_one_line(tmp_path, case):
    replay = folder(tmp_path / "org")
    name, damage = HOSTILE[case]
    damage(replay, tmp_path)
    named = replay / name
    stderr = tmp_path / "stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULLSTORY_EMULATOR_")}
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [
                *emulator_command(),
                "--port",
                "0",
                "--mcp-port",
                "off",
                "--replay",
                str(replay),
                *ARGS.get(case, ()),
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP)),
        )
    try:
        status, usage = _wait(process, timeout=30)
    finally:
        stop(process)
    text = stderr.read_text(errors="replace")
    assert "Traceback" not in text, text
    (line,) = text.strip().splitlines()
    assert line.startswith(f"fullstory-emulator: {named}: "), line
    assert status == 2, (status, line)
    assert usage.ru_maxrss < MAX_RSS_KB, usage.ru_maxrss


def _wait(process: subprocess.Popen, timeout: float) -> tuple[int, resource.struct_rusage]:
    """The process's exit status and its own resource usage (so its peak memory), or a failure
    once `timeout` passes (a start that hangs on a FIFO fails instead of hanging the test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage
        time.sleep(0.05)
    pytest.fail(f"the emulator did not stop within {timeout} s")


def _relink(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


def _outside(tmp_path: Path, path: Path) -> Path:
    """A copy of `path` outside the recording folder."""
    copy = tmp_path / "elsewhere.ndjson"
    copy.write_bytes(path.read_bytes())
    return copy
