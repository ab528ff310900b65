"""A shared-service emulator (issue 5/5): restarts after SIGKILL lose nothing acknowledged,
workers share state, and HTTPS works for a client that trusts only the generated CA."""

from __future__ import annotations

import signal
import ssl
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import emulator_command, free_port, start, stop

KEY = "na1.persistence-key"
AUTH = {"Authorization": f"Basic {KEY}"}
BODY = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_CSV"}


def test_sigkill_during_a_burst_loses_no_acknowledged_operation(tmp_path: Path):
    data = tmp_path / "data"
    args = (
        "--data-dir",
        str(data),
        "--rate-limit",
        "off",
        "--export-duration",
        "1",
        "--population",
        "40",
        "--port",
        str(free_port()),
    )
    process, base, _ = start(tmp_path, *args)
    api = httpx.Client(base_url=base, headers=AUTH, timeout=10)
    finished = api.post("/segments/v1/exports", json=BODY).json()["operationId"]
    api.post("/__emulator/clock", json={"advance": 5})
    export_id = api.get(f"/operations/v1/{finished}").json()["results"]["searchExportId"]
    location = api.get(f"/search/v1/exports/{export_id}/results").json()["location"]
    before = httpx.get(location).content

    acknowledged: list[str] = []
    lock = threading.Lock()
    go = threading.Event()

    def burst() -> None:
        with httpx.Client(base_url=base, headers=AUTH, timeout=5) as client:
            go.wait()
            for _ in range(200):
                try:
                    response = client.post("/segments/v1/exports", json=BODY)
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    with lock:
                        acknowledged.append(response.json()["operationId"])

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    go.set()
    while len(acknowledged) < 30:  # kill it in the middle of the burst
        threading.Event().wait(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    for thread in threads:
        thread.join(timeout=10)
    assert len(acknowledged) >= 30

    process, base, _ = start(tmp_path, *args)
    try:
        api = httpx.Client(base_url=base, headers=AUTH, timeout=10)
        states = {op["id"]: op["state"] for op in _all_operations(api)}
        assert set(acknowledged) | {finished} <= set(states)
        assert states[finished] == "COMPLETED"
        assert httpx.get(location).content == before  # a URL minted before the restart
        api.post("/__emulator/clock", json={"advance": 5})
        assert all(
            api.get(f"/operations/v1/{op}").json()["state"] == "COMPLETED"
            for op in acknowledged[:10]
        )
    finally:
        stop(process, timeout=15)


def _all_operations(api: httpx.Client) -> list[dict]:
    out, token = [], None
    while True:
        params = {"paginationToken": token} if token else {}
        page = api.get("/operations/v1", params=params).json()
        out += page["operations"]
        token = page.get("nextPaginationToken")
        if not token:
            return out


def test_workers_share_operations_and_the_rate_limit_burst(tmp_path: Path):
    process, base, _ = start(
        tmp_path, "--workers", "2", "--data-dir", str(tmp_path / "d"), "--rate-limit", "1/3600,12"
    )
    try:
        fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection per request
        with httpx.Client(base_url=base, headers=AUTH, timeout=10, limits=fresh) as api:
            pids: dict[int, list[httpx.Response]] = {}
            deadline = time.monotonic() + 30  # the second worker may still be starting
            while len(pids) < 2 and time.monotonic() < deadline:
                health = api.get("/__emulator/health")
                pids.setdefault(health.json()["pid"], []).append(health)
                time.sleep(0.01)
            assert len(pids) == 2, "both workers should answer"
            created = api.post("/segments/v1/exports", json=BODY).json()["operationId"]
            seen_by = set()
            for _ in range(10):
                response = api.get(f"/operations/v1/{created}")
                assert response.status_code == 200
                seen_by.add(response.headers["x-emulator-worker"])
            assert len(seen_by) == 2  # read through both workers
            codes = [api.get("/segments/v1").status_code for _ in range(14)]
            assert codes.count(200) == 12 and codes[-1] == 429  # one burst across workers
    finally:
        stop(process, timeout=15)


def test_https_with_only_the_generated_ca(tmp_path: Path):
    data = tmp_path / "tls-data"
    process, base, log = start(tmp_path, "--tls", "--data-dir", str(data))
    try:
        assert base.startswith("https://")
        ca = data / "tls" / "ca.pem"
        assert str(ca) in log.read_text() and "SSL_CERT_FILE" in log.read_text()
        context = ssl.create_default_context(cafile=str(ca))
        with httpx.Client(base_url=base, headers=AUTH, verify=context, timeout=10) as api:
            op = api.post("/segments/v1/exports", json=BODY).json()["operationId"]
            api.post("/__emulator/clock", json={"advance": 5})
            export_id = api.get(f"/operations/v1/{op}").json()["results"]["searchExportId"]
            location = api.get(f"/search/v1/exports/{export_id}/results").json()["location"]
            assert location.startswith("https://")
            assert api.get(location, timeout=60).status_code == 200  # the first makes the file
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/__emulator/health", verify=ssl.create_default_context())
    finally:
        stop(process, timeout=15)


@pytest.mark.parametrize(
    "damage,workers,says",
    [
        ("a file where the directory should be", "1", "cannot use the data directory"),
        ("garbage", "1", "file is not a database"),
        ("garbage", "2", "file is not a database"),
        ("zero bytes", "1", "is empty (0 bytes)"),
    ],
)
def test_a_broken_data_dir_is_one_clear_line(tmp_path: Path, damage, workers, says):
    data = tmp_path / "data"
    if damage == "a file where the directory should be":
        data.write_text("not a directory")
        named = data
    else:
        data.mkdir()
        named = data / "emulator.sqlite3"
        named.write_bytes(b"" if damage == "zero bytes" else b"certainly not SQLite\n" * 300)
    args = ["--port", "0", "--mcp-port", "off", "--data-dir", str(data), "--workers", workers]
    result = subprocess.run(
        [*emulator_command(), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fullstory-emulator: "), result.stderr
    assert says in lines[0] and str(named) in lines[0]
    assert ("delete" in lines[0]) or ("point --data-dir elsewhere" in lines[0])
