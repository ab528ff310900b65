"""Shared fixtures: an emulator app on a frozen clock, reached through httpx (Starlette's
TestClient is an httpx.Client over the ASGI app)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from emulator.app import create_app
from emulator.context import Emulator
from emulator.settings import Settings

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


@pytest.fixture
def make_harness() -> Iterator[Callable[..., Harness]]:
    yield from harness_factory()


@pytest.fixture
def harness(make_harness: Callable[..., Harness]) -> Harness:
    return make_harness()


def pytest_terminal_summary(terminalreporter, config) -> None:  # type: ignore[no-untyped-def]
    """Print the schemathesis figures (cases run, failures) at the end of the run."""
    from .test_openapi import FIGURES

    figures = config.stash.get(FIGURES, None)
    if figures:
        terminalreporter.write_line(figures)
