"""Prometheus metrics and structured access logs, fed by the journal middleware.

Counters live in a registry of the app's own (no process-global state). Operations by state are
computed from the store when scraped, so they agree across worker processes; request counters
are per process (with --workers, each scrape sees the worker that answered it).
"""

from __future__ import annotations

import json
import logging
from collections import Counter as Tally
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .context import Emulator

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
access_log = logging.getLogger("fullstory_emulator.access")


class _Operations(Collector):
    def __init__(self, emulator: Emulator) -> None:
        self.em = emulator

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "fullstory_emulator_operations", "Export operations by current state", labels=["state"]
        )
        exports = self.em.exports
        states = Tally(exports.status(record).state for record in self.em.store.operations(None))
        for state in ("PENDING", "COMPLETED", self.em.settings.failure_state):
            gauge.add_metric([state], states.get(state, 0))
        yield gauge


class Metrics:
    def __init__(self, emulator: Emulator) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "fullstory_emulator_requests", "HTTP requests by route and status",
            ["route", "method", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "fullstory_emulator_request_duration_seconds", "Time to answer, by route", ["route"],
            registry=self.registry,
        )  # fmt: skip
        self.downloaded = Counter(
            "fullstory_emulator_downloaded_bytes", "Export bytes sent to clients",
            registry=self.registry,
        )  # fmt: skip
        self.rate_limited = Counter(
            "fullstory_emulator_rate_limited", "429 answers served", registry=self.registry
        )
        self.registry.register(_Operations(emulator))
        self.json_logs = emulator.settings.access_log == "json"

    def observe(self, entry: dict[str, Any], route: str, sent: int, storage: bool) -> None:
        status = entry["status"]
        self.requests.labels(route, entry["method"], str(status or "dropped")).inc()
        self.latency.labels(route).observe(entry["durationMs"] / 1000)
        if status == 429:
            self.rate_limited.inc()
        if storage and sent:
            self.downloaded.inc(sent)
        if self.json_logs:
            access_log.info(json.dumps({
                "at": entry["at"], "method": entry["method"], "path": entry["path"],
                "query": entry["query"], "route": route, "status": status,
                "durationMs": entry["durationMs"], "bytes": sent, "tenant": entry["tenant"],
                "fault": entry["fault"],
            }))  # fmt: skip

    def render(self) -> bytes:
        return generate_latest(self.registry)
