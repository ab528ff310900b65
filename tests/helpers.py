"""Helpers shared by the test modules (the only module they import from each other)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from emulator.http.app import create_app
from emulator.instance import Emulator
from emulator.settings import Settings

ROOT = Path(__file__).resolve().parent.parent  # the checkout

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
KEY = "na1.test-admin-key"
AUTH = {"Authorization": f"Basic {KEY}"}


@dataclasses.dataclass
class Harness:
    client: TestClient
    em: Emulator

    def advance(self, seconds: float) -> None:
        self.em.clock.advance(seconds)

    def create(self, headers: dict[str, str] | None = None, **body: Any) -> str:
        payload = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"}
        payload.update(body)
        response = self.client.post("/segments/v1/exports", json=payload, headers=headers or AUTH)
        assert response.status_code == 200, response.text
        return response.json()["operationId"]

    def operation(self, operation_id: str) -> dict[str, Any]:
        response = self.client.get(f"/operations/v1/{operation_id}", headers=AUTH)
        assert response.status_code == 200, response.text
        return response.json()

    def finish(self, operation_id: str) -> dict[str, Any]:
        """Move the clock past the operation's end and return its final state."""
        for _ in range(200):
            op = self.operation(operation_id)
            if op["state"] != "PENDING":
                return op
            self.advance(5)
        raise AssertionError(f"operation {operation_id} never finished")

    def location(self, search_export_id: str) -> str:
        response = self.client.get(f"/search/v1/exports/{search_export_id}/results", headers=AUTH)
        assert response.status_code == 200, response.text
        return response.json()["location"]

    def export_bytes(self, **body: Any) -> bytes:
        """Run the whole workflow and return the downloaded (still gzipped) file."""
        op = self.finish(self.create(**body))
        assert op["state"] == "COMPLETED", op
        response = self.client.get(self.location(op["results"]["searchExportId"]))
        assert response.status_code == 200, response.text
        return response.content


def small_settings(**overrides: Any) -> Settings:
    base = {
        "start_time": START,
        "freeze_clock": True,
        "population": 60,
        "density": 0.25,  # a quarter of the default traffic: small exports, fast tests
        "export_duration_per_million": 0,
        "rate_limit": None,
        "signing_secret": "test-secret",
    }
    base.update(overrides)
    return Settings(**base)


def harness_factory(
    each: Callable[[int], dict[str, Any]] = lambda n: {},
) -> Iterator[Callable[..., Harness]]:
    """Makes harnesses (closing their clients afterwards); `each(n)` gives the n-th one's
    default settings, which the caller's overrides beat."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> Harness:
        settings = small_settings(**{**each(len(clients)), **overrides})
        em = Emulator.build(settings)
        client = TestClient(create_app(settings, emulator=em), base_url=settings.base_url())
        clients.append(client)
        return Harness(client, em)

    yield make
    for client in clients:
        client.close()


def assert_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    """The contract's JSON error shape, with this status and gRPC code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code and isinstance(body["message"], str) and body["message"]
    assert body["details"] == []
    return body


def parse(ts: str) -> datetime:
    """An API timestamp (RFC 3339 with microseconds) as a datetime."""
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def ms(ts: str) -> int:
    """An export row's timestamp as epoch milliseconds."""
    return int(parse(ts).timestamp() * 1000)


# -- real processes (tests/e2e) ----------------------------------------------------------------


def emulator_command() -> list[str]:
    script = Path(sys.executable).with_name("fullstory-emulator")
    if script.exists():
        return [str(script)]
    found = shutil.which("fullstory-emulator")
    if found:
        return [found]
    pytest.fail("the fullstory-emulator command is not installed (pip install -e '.[test]')")


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str, Path]:
    log = tmp_path / "emulator.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULLSTORY_EMULATOR_")}
    process = subprocess.Popen(
        [*emulator_command(), "--port", "0", "--mcp-port", "off", *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"API base URL: +(https?://[\d.]+:\d+)", log.read_text(errors="replace"))
        if match:
            base = match.group(1)
            try:
                if (
                    httpx.get(f"{base}/__emulator/health", timeout=1, verify=False).status_code
                    == 200
                ):
                    return process, base, log
            except httpx.TransportError:
                pass
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"emulator did not start:\n{log.read_text(errors='replace')}")


# The schemathesis figures, handed from tests/http/test_openapi.py to the terminal summary.
FIGURES = pytest.StashKey[str]()
