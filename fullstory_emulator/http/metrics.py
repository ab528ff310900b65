"""Prometheus metrics and structured access logs, fed by the request pipeline.

Counters live in a registry of the app's own (no process-global state). Operations by state are
counted from the store when scraped, so they agree across worker processes; request counters
are per process (with --workers, each scrape sees the worker that answered it).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..logs import get_logger

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
access_log = get_logger("access")
FLUSH_EVERY = 256  # requests gathered before they are moved into the metrics
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _Operations(Collector):
    def __init__(self, count: Callable[[], Mapping[str, int]], states: tuple[str, ...]) -> None:
        self._count = count
        self._states = states

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "fullstory_emulator_operations", "Export operations by current state", labels=["state"]
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """What registering needs to know, without counting anything (so that start-up reads
        no operation)."""
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = self._family()
        counts = self._count()
        for state in self._states:
            gauge.add_metric([state], counts.get(state, 0))
        yield gauge


class _Json:
    """A line encoded only when the log writes it (behind its queue, off the request path)."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __str__(self) -> str:
        return json.dumps(self.data)


class Metrics:
    def __init__(
        self,
        *,
        operation_states: Callable[[], Mapping[str, int]],
        states: tuple[str, ...],
        json_logs: bool,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "fullstory_emulator_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fullstory_emulator_request_duration_seconds",
            "Time to answer, by route",
            ["route"],
            registry=self.registry,
        )
        self.downloaded = Counter(
            "fullstory_emulator_downloaded_bytes",
            "Export bytes sent to clients",
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "fullstory_emulator_rate_limited", "429 answers served", registry=self.registry
        )
        self.registry.register(_Operations(operation_states, states))
        self.json_logs = json_logs
        # Labelled children, looked up once: `labels()` validates and locks on every call.
        self._counted: dict[tuple[str, str, str], Any] = {}
        self._timed: dict[str, Any] = {}
        # Requests observed, not yet in the metrics: (route, method, status), seconds, bytes.
        self._pending: list[tuple[tuple[str, str, str], float, int]] = []
        self._swap = threading.Lock()

    def observe(self, entry: dict[str, Any], route: str, sent: int, storage: bool) -> None:
        """Count a request: gathered in a list and moved into the Prometheus metrics by
        `flush` (at each scrape, and every FLUSH_EVERY requests), as their locks and label
        lookups cost more per request than an append."""
        status = entry["status"]
        method = entry["method"] if entry["method"] in METHODS else "OTHER"  # bounded labels
        key = (route, method, str(status or "dropped"))
        self._pending.append((key, entry["durationMs"] / 1000, sent if storage else 0))
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()
        if self.json_logs:
            line = {
                "at": entry["at"],
                "method": entry["method"],
                "path": entry["path"],
                "query": entry["query"],
                "route": route,
                "status": status,
                "durationMs": entry["durationMs"],
                "bytes": sent,
                "tenant": entry["tenant"],
                "fault": entry["fault"],
            }
            access_log.info("%s", _Json(line))  # made into text by the log's own thread

    def flush(self) -> None:
        """Move the requests `observe` gathered into the metrics (from any thread: the list
        is swapped under a lock, so each batch is counted once)."""
        with self._swap:
            pending, self._pending = self._pending, []
        counts: dict[tuple[str, str, str], int] = {}
        downloaded = 0
        for key, seconds, sent in pending:
            counts[key] = counts.get(key, 0) + 1
            route = key[0]
            timer = self._timed.get(route)
            if timer is None:
                timer = self._timed[route] = self.latency.labels(route)
            timer.observe(seconds)
            downloaded += sent
        for key, count in counts.items():
            counter = self._counted.get(key)
            if counter is None:
                counter = self._counted[key] = self.requests.labels(*key)
            counter.inc(count)
            if key[2] == "429":
                self.rate_limited.inc(count)
        if downloaded:
            self.downloaded.inc(downloaded)

    def render(self) -> bytes:
        self.flush()
        return generate_latest(self.registry)
