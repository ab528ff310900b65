"""A million-event export streams from a real emulator process in flat memory (issue 2/5)."""

from __future__ import annotations

import json
import time
import zlib
from pathlib import Path

import httpx
import pytest

from tests.helpers import start

MB = 1024 * 1024


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    pytest.skip("no /proc/<pid>/status VmHWM on this system")


@pytest.mark.slow
def test_million_event_export_streams_under_150_mb(tmp_path):
    # ~590 events per individual over 90 days at the default density: 1,800 individuals make
    # about a million events
    process, base, _log = start(
        tmp_path,
        "--population",
        "1800",
        "--export-duration",
        "0.1",
        "--export-duration-per-million",
        "0",
        "--rate-limit",
        "off",
    )
    try:
        api = httpx.Client(base_url=base, headers={"Authorization": "Basic na1.memory"}, timeout=60)
        body = {
            "segmentId": "everyone",
            "type": "TYPE_EVENT",
            "format": "FORMAT_NDJSON",
            "timeRange": {"start": "", "end": ""},
            "segmentTimeRange": {"start": "", "end": ""},
        }
        operation_id = api.post("/segments/v1/exports", json=body).json()["operationId"]
        deadline = time.monotonic() + 30
        while (op := api.get(f"/operations/v1/{operation_id}").json())["state"] == "PENDING":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        export_id = op["results"]["searchExportId"]
        location = api.get(f"/search/v1/exports/{export_id}/results").json()["location"]
        before = peak_rss(process.pid)

        lines, tail, gunzip = 0, b"", zlib.decompressobj(31)
        with httpx.stream("GET", location, timeout=300) as response:
            assert response.status_code == 200
            for chunk in response.iter_raw():
                data = tail + gunzip.decompress(chunk)
                lines += data.count(b"\n")
                tail = data[data.rfind(b"\n") + 1 :]
        first = json.loads(data.splitlines()[0]) if data.strip() else None
        peak = peak_rss(process.pid)
        assert lines >= 900_000, lines
        assert first is None or first["IndvId"] > 0
        assert peak < 150 * MB, (
            f"peak RSS {peak / MB:.0f} MB (before download {before / MB:.0f} MB)"
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
