"""The `fullstory-emulator` command as a real process, driven with a plain HTTP client through
the whole four-step workflow, an expired URL and a 429 (DEVELOPERS.md: one suite on uvicorn)."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import emulator_command, start, stop

KEY = "na1.e2e-admin-key"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    process, base, log = start(
        tmp_path,
        "--seed",
        "3",
        "--url-ttl",
        "2",
        "--export-duration",
        "0.5",
        "--rate-limit",
        "1/60,6",
        "--population",
        "80",
    )
    try:
        yield base, log
    finally:
        stop(process)


def test_whole_workflow_against_a_real_process(emulator):
    base, _ = emulator
    with httpx.Client(base_url=base, headers={"Authorization": f"Basic {KEY}"}, timeout=10) as api:
        # 1. create
        created = api.post(
            "/segments/v1/exports",
            content=json.dumps(
                {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"}
            ),
        )  # no Content-Type, as some clients send it
        assert created.status_code == 200, created.text
        operation_id = created.json()["operationId"]

        # 2. poll until COMPLETED, moving the emulator's clock between polls (no sleeping)
        for _ in range(20):
            op = api.get(f"/operations/v1/{operation_id}").json()
            assert isinstance(op["estimatePctComplete"], int)
            if op["state"] != "PENDING":
                break
            assert api.post("/__emulator/clock", json={"advance": 0.2}).status_code == 200
        assert op["state"] == "COMPLETED", op
        export_id = op["results"]["searchExportId"]

        # 3. a signed URL; 4. download without the API key
        results = api.get(f"/search/v1/exports/{export_id}/results")
        assert b"\\u0026" in results.content
        location = results.json()["location"]
        download = httpx.get(location, timeout=30)
        assert download.status_code == 200
        assert "content-encoding" not in download.headers
        assert download.headers["content-disposition"].endswith('.ndjson.gz"')
        rows = [json.loads(line) for line in gzip.decompress(download.content).splitlines()]
        assert rows and all(row["IndvId"] > 0 for row in rows)

        # the URL lives 2 s from its whole-second X-Goog-Date, then answers the storage XML 400:
        # 3 s later on the emulator's clock, which the download's owner (this key) is on
        assert api.post("/__emulator/clock", json={"advance": 3}).status_code == 200
        expired = httpx.get(location, timeout=10)
        assert expired.status_code == 400
        assert expired.headers["content-type"] == "application/xml; charset=UTF-8"
        assert "<Code>ExpiredToken</Code>" in expired.text
        assert "+00:00</Details>" in expired.text

        # a fresh URL works again (the results endpoint has its own bucket)
        fresh = api.get(f"/search/v1/exports/{export_id}/results").json()["location"]
        again = httpx.get(fresh, timeout=30)
        assert again.status_code == 200 and again.content == download.content

        # burst of 6 on one endpoint, then 429 with Retry-After
        statuses = [api.get("/segments/v1").status_code for _ in range(7)]
        assert statuses[:6] == [200] * 6 and statuses[6] == 429
        limited = api.get("/segments/v1")
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) > 0
        assert limited.json()["code"] == 8


def test_bad_flag_is_reported(tmp_path):
    result = subprocess.run(
        [*emulator_command(), "--rate-limit", "lots"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0 and "rate limit" in result.stderr


def test_env_settings_and_flags_win(tmp_path):
    env = os.environ | {"FULLSTORY_EMULATOR_SEED": "oops"}
    result = subprocess.run(
        [*emulator_command(), "--port", "0"], capture_output=True, text=True, timeout=30, env=env
    )
    assert result.returncode != 0 and "FULLSTORY_EMULATOR_SEED" in result.stderr


def test_unreadable_fixture_is_reported(tmp_path):
    missing = tmp_path / "nope.json"
    result = subprocess.run(
        [*emulator_command(), "--port", "0", "--segments", str(missing)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0 and "nope.json" in result.stderr


def test_mcp_server_starts_beside_the_api(tmp_path):
    import anyio
    from mcp import Client

    process, _base, log = start(tmp_path, "--mcp-port", "0")
    try:
        url = re.search(r"MCP server: +(http://\S+/mcp)", log.read_text()).group(1)

        async def tools() -> list[str]:
            async with Client(url, read_timeout_seconds=20) as client:
                return [tool.name for tool in (await client.list_tools()).tools]

        names = anyio.run(tools)
        assert {"listsegments", "getsegment", "createsegmentexport", "getoperationstatus"} <= set(
            names
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_allowed_hosts_reach_both_ports_of_a_real_process(tmp_path):
    """--allowed-hosts from the command line, on the API's port and the MCP port beside it."""
    process, base, log = start(tmp_path, "--allowed-hosts", "emulator.test", "--mcp-port", "0")
    try:
        mcp = re.search(r"MCP server: +(http://\S+/mcp)", log.read_text()).group(1)
        health = f"{base}/__emulator/health"
        assert httpx.get(health, headers={"Host": "emulator.test:80"}).status_code == 200
        refused = httpx.get(health, headers={"Host": "evil.example"})
        assert refused.status_code == 421 and "--allowed-hosts" in refused.json()["message"]
        # the MCP port answers once the SDK is loaded (a request meanwhile waits in the backlog)
        assert (
            httpx.post(mcp, json={}, headers={"Host": "evil.example"}, timeout=30).status_code
            == 421
        )
        allowed = httpx.post(mcp, json={}, headers={"Host": "emulator.test"}, timeout=30)
        assert allowed.status_code not in (403, 421), allowed.text
    finally:
        stop(process)


def _wait_for(log: Path, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while text not in (output := log.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"{text!r} never appeared in:\n{output}"
        time.sleep(0.05)
    return output


def _interrupt(process: subprocess.Popen, log: Path) -> str:
    """Ctrl-C, as a terminal sends it: the process ends quietly, with 0 or 130."""
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    output = log.read_text(errors="replace")
    assert code in (0, 130) and "Traceback" not in output, output
    return output


def test_access_log_prints_beside_mcp_and_ctrl_c_is_quiet(tmp_path):
    process, base, log = start(tmp_path, "--mcp-port", "0")  # the MCP server, as by default
    try:
        assert httpx.get(
            f"{base}/segments/v1", headers={"Authorization": f"Basic {KEY}"}
        ).is_success
        _wait_for(log, '"GET /segments/v1 HTTP/1.1" 200')
    finally:
        _interrupt(process, log)


def test_log_level_and_tls_banner(tmp_path):
    process, base, log = start(tmp_path, "--tls", "--log-level", "warning")
    try:
        assert base.startswith("https://")
        output = log.read_text()
        assert f"listening on https://127.0.0.1:{base.rsplit(':', 1)[1]}" in output
        httpx.get(f"{base}/segments/v1", headers={"Authorization": f"Basic {KEY}"}, verify=False)
        output = _wait_for(log, '"GET /segments/v1 HTTP/1.1" 200')  # the access log's own say
    finally:
        output = _interrupt(process, log)
    assert "Started server process" not in output  # INFO, below --log-level warning
