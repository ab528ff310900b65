"""Faults that only mean something on a real socket: dropped connections, truncated and slowed
downloads, against uvicorn serving the app in a thread."""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator

import httpx
import pytest

from fullstory_emulator.server import ServerThread
from tests.helpers import AUTH, small_settings


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread(small_settings(port=0, population=200)) as running:
        yield running


def finished_location(api: httpx.Client) -> str:
    open_range = {"start": "", "end": ""}
    body = {
        "segmentId": "everyone",
        "type": "TYPE_EVENT",
        "format": "FORMAT_NDJSON",
        "timeRange": open_range,
        "segmentTimeRange": open_range,
    }
    op_id = api.post("/segments/v1/exports", json=body).json()["operationId"]
    api.post("/__emulator/clock", json={"advance": 60})
    export_id = api.get(f"/operations/v1/{op_id}").json()["results"]["searchExportId"]
    return api.get(f"/search/v1/exports/{export_id}/results").json()["location"]


def test_dropped_connection_is_a_real_dropped_connection(server):
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=5) as api:
        api.post("/__emulator/faults", json={"path": "/segments/v1", "drop": True, "times": 1})
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            api.get("/segments/v1")
        assert api.get("/segments/v1").status_code == 200  # exactly once
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            api.get("/segments/v1", headers={"X-Emulator-Fault": "drop"})
        journal = api.get("/__emulator/journal?path=/segments/v1").json()["requests"]
        assert [e["status"] for e in journal] == [None, 200, None]
        assert journal[0]["fault"].startswith("drop")


def test_truncated_download_fails_to_gunzip(server):
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=10) as api:
        location = finished_location(api)
        whole = httpx.get(location, timeout=60).content  # the first download makes the file
        api.post(
            "/__emulator/faults",
            json={"path": "/fullstory-emulator-exports/*", "truncateAfterBytes": 20000, "times": 1},
        )
        received = b""
        errors = (httpx.RemoteProtocolError, httpx.ReadError)
        with pytest.raises(errors), httpx.stream("GET", location) as response:
            assert response.status_code == 200
            for chunk in response.iter_raw():
                received += chunk
        assert 0 < len(received) <= 20000 < len(whole)
        with pytest.raises(zlib.error):
            zlib.decompressobj(31).decompress(received) and zlib.decompress(received, 31)
        assert httpx.get(location).content == whole  # the next download is whole again


def test_slowed_download_takes_its_time(server):
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=30) as api:
        location = finished_location(api)
        size = len(httpx.get(location, timeout=60).content)  # makes the file
        rate = max(1, size // 2)  # about two seconds' worth
        api.post(
            "/__emulator/faults",
            json={"path": "/fullstory-emulator-exports/*", "bytesPerSecond": rate, "times": 1},
        )
        began = time.monotonic()
        slow = httpx.get(location, timeout=30)
        assert slow.status_code == 200 and len(slow.content) == size
        assert time.monotonic() - began >= 1.5


def test_latency_delays_the_answer(server):
    with httpx.Client(base_url=server.base_url, headers=AUTH, timeout=10) as api:
        began = time.monotonic()
        assert (
            api.get("/segments/v1", headers={"X-Emulator-Fault": "latency=300"}).status_code == 200
        )
        assert time.monotonic() - began >= 0.3
