"""A download cut at half by a `truncateAfterBytes` fault resumes with a Range request into the
same bytes as an uninterrupted one: with `curl -C -`, against uvicorn on a real socket."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from emulator.server import ServerThread
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
