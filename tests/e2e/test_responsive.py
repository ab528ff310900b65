"""Nothing on the event loop waits: while an API request waits for SQLite's write lock (held by
another process, as a second emulator or a `sqlite3` shell would), the health check answers."""

from __future__ import annotations

import asyncio
import select
import socket
import sqlite3
import time
from pathlib import Path

import httpx

from tests.helpers import start, stop

KEY = "na1.responsive-key"
# Four different files (so that four are made, not one shared), large enough to take seconds.
LARGE = [
    ("TYPE_EVENT", "FORMAT_CSV"),
    ("TYPE_EVENT", "FORMAT_NDJSON"),
    ("TYPE_EVENT", "FORMAT_JSON"),
    ("TYPE_INDIVIDUAL", "FORMAT_CSV"),
]
POPULATION = "2000"
BODY = b'{"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_CSV"}'


def test_health_answers_while_an_api_request_waits_for_the_write_lock(tmp_path: Path):
    data = tmp_path / "data"
    process, base, _ = start(tmp_path, "--data-dir", str(data), "--rate-limit", "off")
    try:
        host, port = base.removeprefix("http://").split(":")
        health = httpx.Client(base_url=base, timeout=10)
        assert health.get("/__emulator/health").status_code == 200
        holder = sqlite3.connect(data / "emulator.sqlite3", isolation_level=None, timeout=5)
        holder.execute("BEGIN IMMEDIATE")  # the write lock, from another process's view
        # More waiting API requests than the store has threads (store.STORE_THREADS): the
        # health check must not queue behind them.
        apis = [socket.create_connection((host, int(port))) for _ in range(6)]
        try:
            for api in apis:
                api.sendall(
                    f"POST /segments/v1/exports HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Authorization: Basic {KEY}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(BODY)}\r\n\r\n".encode()
                    + BODY
                )
            for _ in range(10):  # the API requests' transactions are waiting meanwhile
                began = time.perf_counter()
                answer = health.get("/__emulator/health")
                took = time.perf_counter() - began
                assert answer.status_code == 200
                assert took < 0.2, f"health took {took:.3f} s behind waiting API requests"
            waiting, _, _ = select.select(apis, [], [], 0)
            assert not waiting, waiting[0].recv(4096)
            holder.execute("ROLLBACK")
            for api in apis:
                api.settimeout(10)
                assert api.recv(64).startswith(b"HTTP/1.1 200 ")
        finally:
            for api in apis:
                api.close()
            holder.close()
    finally:
        stop(process)


def test_health_answers_while_four_large_files_are_being_made(tmp_path: Path):
    """Four downloads of large, different files at once (each made on first download, on every
    core): until the first of them answers, which it does only once its file is made, the
    health check is polled over and over and answers each time within 200 ms."""
    process, base, _ = start(
        tmp_path,
        *("--population", POPULATION, "--freeze-clock", "--export-duration", "0"),
        *("--export-duration-per-million", "0", "--rate-limit", "off"),
    )
    auth = {"Authorization": f"Basic {KEY}"}
    try:
        with httpx.Client(base_url=base, timeout=60, headers=auth) as client:
            locations = []
            for kind, form in LARGE:
                body = {"segmentId": "everyone", "type": kind, "format": form}
                created = client.post("/segments/v1/exports", json=body).raise_for_status()
                operation = client.get(f"/operations/v1/{created.json()['operationId']}")
                results = operation.raise_for_status().json()["results"]
                located = client.get(f"/search/v1/exports/{results['searchExportId']}/results")
                locations.append(located.raise_for_status().json()["location"])
            took = asyncio.run(_health_while_downloading(base, locations))
        assert len(took) >= 5, f"the files were made too fast to tell ({len(took)} polls)"
        slow = [(n, round(t, 3)) for n, t in enumerate(took) if t >= 0.2]
        assert not slow, f"health polls (index, seconds) of {len(took)} over 200 ms: {slow}"
    finally:
        stop(process)


async def _health_while_downloading(base: str, locations: list[str]) -> list[float]:
    """How long each health check took, polled from when the downloads were sent until the
    first of them answered (its file made); the downloads are then read to their end."""
    took: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        first = asyncio.Event()

        async def download(url: str) -> int:
            async with client.stream("GET", url) as response:
                first.set()
                return len(b"".join([chunk async for chunk in response.aiter_raw()]))

        downloads = [asyncio.create_task(download(url)) for url in locations]
        async with httpx.AsyncClient(base_url=base, timeout=10) as health:
            while not first.is_set():
                began = time.perf_counter()
                answer = await health.get("/__emulator/health")
                if first.is_set():  # answered after a file was made: not counted
                    break
                assert answer.status_code == 200
                took.append(time.perf_counter() - began)
        sizes = await asyncio.gather(*downloads)
    assert all(size > 0 for size in sizes)
    return took
