"""One pass per request: the caller is resolved once, and every answer carries the clock."""

from __future__ import annotations

from datetime import timedelta

import anyio
import httpx
import pytest

from fullstory_emulator.exports import service
from fullstory_emulator.files.export import ExportJob
from fullstory_emulator.http.pipeline import Pipeline
from tests.helpers import AUTH, START, parse


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/segments/v1"),
        ("GET", "/operations/v1"),
        ("POST", "/__emulator/clock"),
        ("GET", "/__emulator/faults"),
    ],
)
def test_the_key_is_authenticated_once_per_request(harness, monkeypatch, method, path):
    calls = []
    authenticate = harness.em.keys.authenticate

    def counting(header):
        calls.append(header)
        return authenticate(header)

    monkeypatch.setattr(harness.em.keys, "authenticate", counting)
    body = {"advance": 1} if path.endswith("clock") else None
    response = harness.client.request(method, path, headers=AUTH, json=body)
    assert response.status_code == 200, response.text
    assert calls == [AUTH["Authorization"]]


def test_answers_carry_the_tenants_clock_and_the_worker(harness):
    response = harness.client.get("/segments/v1", headers=AUTH)
    assert parse(response.headers["X-Emulator-Now"]) == START
    assert response.headers["X-Emulator-Worker"].isdigit()
    refused = harness.client.get("/segments/v1")  # no key: still stamped
    assert refused.status_code == 401 and "X-Emulator-Now" in refused.headers


def test_a_refused_key_is_refused_by_the_route_that_needs_it(harness):
    bad = {"Authorization": "Basic not-a-key"}
    assert harness.client.get("/segments/v1", headers=bad).status_code == 401
    assert harness.client.get("/__emulator/clock", headers=bad).status_code == 401
    assert harness.client.get("/__emulator/health", headers=bad).status_code == 200


def test_a_download_is_journaled_before_its_last_byte(harness):
    """A client that reads the journal as soon as its download ends sees the download: the
    entry is written before the answer's last byte, not after it. (ASGI messages, not HTTP:
    what is asserted is their order.)"""
    op = harness.finish(harness.create())
    url = httpx.URL(harness.location(op["results"]["searchExportId"]))
    journal = harness.em.store.journal
    before = len(journal(None))
    seen: list[list[dict]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": url.scheme,
        "path": url.path,
        "raw_path": url.raw_path.partition(b"?")[0],
        "query_string": url.query,
        "headers": [(b"host", url.netloc)],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", url.port or 80),
        "root_path": "",
    }

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            seen.append(journal(None)[before:])

    anyio.run(harness.client.app, scope, receive, send)
    assert len(seen) == 1
    assert [(entry["method"], entry["status"]) for entry in seen[0]] == [("GET", 200)]
    assert seen[0][0]["path"] == url.path


def test_a_download_reads_its_export_the_clock_and_its_job_key_once(harness, monkeypatch):
    op = harness.finish(harness.create())
    location = harness.location(op["results"]["searchExportId"])
    seen: dict[str, int] = {"export": 0, "clock": 0, "key": 0}

    def counting(name: str, real):
        def call(*args, **kwargs):
            seen[name] += 1
            return real(*args, **kwargs)

        return call

    exports, backend = harness.em.exports, harness.em.clock.backend
    monkeypatch.setattr(exports, "export_of", counting("export", exports.export_of))
    monkeypatch.setattr(backend, "load", counting("clock", backend.load))
    monkeypatch.setattr(ExportJob, "_digest", counting("key", ExportJob._digest))
    response = harness.client.get(location)
    assert response.status_code == 200 and response.headers["ETag"]
    assert seen == {"export": 1, "clock": 1, "key": 1}


def test_which_app_a_path_belongs_to_is_decided_once_per_request(harness, monkeypatch):
    op = harness.finish(harness.create())
    location = harness.location(op["results"]["searchExportId"])
    areas: list[str] = []
    decide = Pipeline.area_of

    def counting(self, path):
        areas.append(decide(self, path))
        return areas[-1]

    monkeypatch.setattr(Pipeline, "area_of", counting)
    assert harness.client.get("/segments/v1", headers=AUTH).status_code == 200
    assert harness.client.get(location).status_code == 200
    assert harness.client.get("/__emulator/faults").status_code == 200
    assert areas == ["api", "storage", "control"]


@pytest.mark.stores
def test_a_status_request_reads_the_clock_once_and_computes_the_status_once(harness, monkeypatch):
    """GET /operations/v1/{id} on a frozen clock: the poll, the answer, the stall hint (which
    asks whether the clock stands still and what time it is) and X-Emulator-Now all take the
    request's one reading; the status the poll computed is the answer's."""
    op = harness.create()
    loads: list[None] = []
    statuses: list[None] = []
    backend = harness.em.clock.backend
    load, status_at = backend.load, service.status_at

    def counting_load():
        loads.append(None)
        return load()

    def counting_status(*args, **kwargs):
        statuses.append(None)
        return status_at(*args, **kwargs)

    monkeypatch.setattr(backend, "load", counting_load)
    monkeypatch.setattr(service, "status_at", counting_status)
    response = harness.client.get(f"/operations/v1/{op}", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "PENDING"
    assert "X-Emulator-Hint" in response.headers  # the frozen clock was asked about
    assert parse(response.headers["X-Emulator-Now"]) == START
    assert (len(loads), len(statuses)) == (1, 1)
    loads.clear()
    for path in ("/segments/v1", "/operations/v1", f"/operations/v1/{op}/cancel"):
        method = "POST" if path.endswith("cancel") else "GET"
        assert harness.client.request(method, path, headers=AUTH).status_code == 200
        assert len(loads) == 1, path
        loads.clear()


def test_a_control_call_that_moves_the_clock_answers_with_the_time_after(harness):
    response = harness.client.post("/__emulator/clock", json={"advance": 90}, headers=AUTH)
    assert response.status_code == 200, response.text
    after = parse(response.json()["now"])
    assert after == START + timedelta(seconds=90)
    assert parse(response.headers["X-Emulator-Now"]) == after
    # the next request of that tenant reads the moved clock
    moved = harness.client.get("/segments/v1", headers=AUTH)
    assert parse(moved.headers["X-Emulator-Now"]) == after
