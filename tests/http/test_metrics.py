"""Prometheus /metrics and JSON access logs (http/metrics.py)."""

from __future__ import annotations

import json
import logging
import re

import pytest

from tests.helpers import AUTH


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in the exposition text."""
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        sample, _, label_text = head.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if sample == name and found == labels:
            return float(value)
    return 0.0


def test_requests_operations_bytes_and_429s(make_harness):
    h = make_harness(rate_limit=None)
    for _ in range(3):
        h.client.get("/segments/v1", headers=AUTH)
    h.client.get("/segments/v1/nope", headers=AUTH)
    done = h.finish(h.create())
    h.create()
    body = h.client.get(h.location(done["results"]["searchExportId"])).content
    h.client.get("/segments/v1", headers=AUTH | {"X-Emulator-Fault": "status=429"})
    response = h.client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    labels = {"route": "/segments/v1", "method": "GET"}
    assert metric(text, "fullstory_emulator_requests_total", **labels, status="200") == 3
    assert (
        metric(
            text,
            "fullstory_emulator_requests_total",
            route="/segments/v1/{segmentId}",
            method="GET",
            status="404",
        )
        == 1
    )
    assert metric(text, "fullstory_emulator_operations", state="COMPLETED") == 1
    assert metric(text, "fullstory_emulator_operations", state="PENDING") == 1
    assert metric(text, "fullstory_emulator_downloaded_bytes_total") == len(body)
    assert metric(text, "fullstory_emulator_rate_limited_total") == 1
    assert "fullstory_emulator_request_duration_seconds_bucket" in text


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


def test_json_access_log_lines(make_harness):
    h = make_harness(access_log="json")
    seen = Lines()
    logging.getLogger("fullstory_emulator.access").addHandler(seen)
    try:
        h.client.get("/segments/v1?limit=2", headers=AUTH)
    finally:
        logging.getLogger("fullstory_emulator.access").removeHandler(seen)
    lines = seen.lines
    assert lines[-1]["path"] == "/segments/v1" and lines[-1]["status"] == 200
    assert lines[-1]["route"] == "/segments/v1" and lines[-1]["query"] == "limit=2"
    assert "Authorization" not in json.dumps(lines[-1]) and lines[-1]["tenant"]


@pytest.mark.stores
def test_counting_operations_reads_each_tenant_s_clock_once(harness, monkeypatch):
    for _ in range(30):
        harness.create()
    harness.create(headers={"Authorization": "Basic na1.other-tenant-key"})
    reads = []
    real = harness.em.clock.now
    monkeypatch.setattr(
        harness.em.clock, "now", lambda tenant=None: reads.append(tenant) or real(tenant)
    )
    text = harness.client.get("/metrics").text
    assert metric(text, "fullstory_emulator_operations", state="PENDING") == 31
    assert len(reads) <= 4  # one per tenant (and the request's own), not one per operation


def test_each_request_is_counted_once_across_the_batches_and_scrapes(make_harness):
    """Requests are gathered and moved into the metrics in batches (every 256, and at each
    scrape): 600 requests with two scrapes between them are each counted exactly once."""
    h = make_harness(rate_limit=None)
    labels = {"route": "/segments/v1/{segmentId}", "method": "GET"}
    seen = []
    for count in (100, 300, 200):
        for _ in range(count):
            assert h.client.get("/segments/v1/everyone", headers=AUTH).status_code == 200
        text = h.client.get("/metrics").text
        seen.append(
            (
                metric(text, "fullstory_emulator_requests_total", **labels, status="200"),
                metric(
                    text,
                    "fullstory_emulator_request_duration_seconds_count",
                    route=labels["route"],
                ),
            )
        )
    assert seen == [(100, 100), (400, 400), (600, 600)]
