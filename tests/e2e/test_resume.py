"""A download cut at half by a `truncateAfterBytes` fault resumes with a Range request into the
same bytes as an uninterrupted one: with `curl -C -` and with `fullstory-export` (in one run, and
across an interrupted run and its rerun), against uvicorn on a real socket."""

from __future__ import annotations

import gzip
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fullstory_emulator.server import ServerThread
from tests.helpers import AUTH, small_settings

BUCKET = "/fullstory-emulator-exports/*"


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread(small_settings(port=0, population=300)) as running:
        yield running


def finished_location(api: httpx.Client, fmt: str) -> str:
    open_range = {"start": "", "end": ""}
    body = {
        "segmentId": "everyone",
        "type": "TYPE_EVENT",
        "format": fmt,
        "timeRange": open_range,
        "segmentTimeRange": open_range,
    }
    op_id = api.post("/segments/v1/exports", json=body).json()["operationId"]
    api.post("/__emulator/clock", json={"advance": 60})
    export_id = api.get(f"/operations/v1/{op_id}").json()["results"]["searchExportId"]
    return api.get(f"/search/v1/exports/{export_id}/results").json()["location"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("fmt", ["FORMAT_NDJSON", "FORMAT_CSV"])
def test_curl_resumes_a_download_cut_at_half(server, tmp_path, fmt):
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30) as api:
        location = finished_location(api, fmt)
        whole = httpx.get(location, timeout=30).content
        half = len(whole) // 2
        api.post(
            "/__emulator/faults", json={"path": BUCKET, "truncateAfterBytes": half, "times": 1}
        )
        target = tmp_path / "export.gz"
        curl = ["curl", "--silent", "--show-error", "--output", str(target)]
        cut = subprocess.run([*curl, location], capture_output=True, text=True, timeout=60)
        assert cut.returncode != 0  # curl saw fewer bytes than Content-Length promised
        assert target.stat().st_size == half
        resumed = subprocess.run(
            [*curl, "--continue-at", "-", "--fail", location],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert resumed.returncode == 0, resumed.stderr
        assert target.read_bytes() == whole
        assert gzip.decompress(target.read_bytes())
        journal = api.get(f"/__emulator/journal?path={BUCKET}").json()["requests"]
        assert [e["status"] for e in journal] == [200, 200, 206]  # the cut one had started
        assert journal[1]["fault"].startswith(f"truncate={half}")
        assert journal[2]["headers"]["range"] == f"bytes={half}-"


# -- fullstory-export ----------------------------------------------------------------------------


@pytest.fixture
def running() -> Iterator[ServerThread]:
    """A running clock and exports that finish at once, for a client that polls."""
    settings = small_settings(
        port=0, population=300, freeze_clock=False, export_duration=0, url_ttl=600
    )
    with ServerThread(settings) as server:
        yield server


def export_command(base_url: str, out: Path, *extra: str) -> list[str]:
    script = Path(sys.executable).with_name("fullstory-export")
    return [
        str(script),
        "run",
        "--api-url",
        base_url,
        "--api-key",
        AUTH["Authorization"].removeprefix("Basic "),
        "--format",
        "FORMAT_CSV",
        "--start",
        "",
        "--end",
        "",
        "--segment-start",
        "",
        "--segment-end",
        "",
        "--poll-interval",
        "0.05",
        "--out",
        str(out),
        "--json",
        *extra,
    ]


def uninterrupted(api: httpx.Client) -> bytes:
    """The file of the one export the command made, downloaded whole."""
    (operation,) = api.get("/operations/v1").json()["operations"]
    export_id = operation["results"]["searchExportId"]
    location = api.get(f"/search/v1/exports/{export_id}/results").json()["location"]
    return httpx.get(location, timeout=30).content


def test_fullstory_export_resumes_a_body_cut_at_half(running, tmp_path):
    with httpx.Client(base_url=running.base_url, headers=AUTH, timeout=30) as api:
        # the first download is cut once, at half of a file of about this size
        probe = finished_location(api, "FORMAT_CSV")
        half = len(httpx.get(probe, timeout=30).content) // 2
        api.post("/__emulator/reset", json={})
        api.post(
            "/__emulator/faults", json={"path": BUCKET, "truncateAfterBytes": half, "times": 1}
        )
        out = tmp_path / "export.csv.gz"
        done = subprocess.run(
            export_command(running.base_url, out), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert out.read_bytes() == uninterrupted(api)
        journal = api.get(f"/__emulator/journal?path={BUCKET}").json()["requests"]
        assert [e["status"] for e in journal][:2] == [200, 206]
        assert journal[1]["headers"]["range"] == f"bytes={half}-"
        assert not list(tmp_path.glob("*.part*"))


def test_a_rerun_resumes_the_part_an_interrupted_run_left(running, tmp_path):
    with httpx.Client(base_url=running.base_url, headers=AUTH, timeout=30) as api:
        size = len(httpx.get(finished_location(api, "FORMAT_CSV"), timeout=30).content)
        api.post("/__emulator/reset", json={})
        rate = max(1, size // 4)  # about four seconds for the whole file
        api.post("/__emulator/faults", json={"path": BUCKET, "bytesPerSecond": rate, "times": 1})
        out = tmp_path / "export.csv.gz"
        part = tmp_path / "export.csv.gz.part"
        first = subprocess.Popen(
            export_command(running.base_url, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size > rate):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=30) == 130
        held = part.stat().st_size
        assert 0 < held < size
        saved = json.loads((tmp_path / "export.csv.gz.part.json").read_text())
        assert saved["etag"].startswith('"')

        again = subprocess.run(
            export_command(running.base_url, out), capture_output=True, text=True, timeout=120
        )
        assert again.returncode == 0, again.stderr
        events = [json.loads(line) for line in again.stdout.splitlines()]
        names = [e["event"] for e in events]
        assert "created" not in names  # the same export, not a new one
        assert events[names.index("resuming")]["offset"] == held
        assert out.read_bytes() == uninterrupted(api)
        journal = api.get(f"/__emulator/journal?path={BUCKET}").json()["requests"]
        (ranged,) = [e for e in journal if "range" in e["headers"]]
        # 206: its If-Range (the saved ETag, redacted in the journal) matched the file
        assert ranged["status"] == 206 and ranged["headers"]["range"] == f"bytes={held}-"
        assert not part.exists() and not (tmp_path / "export.csv.gz.part.json").exists()
