"""What is particular to the SQLite store: how few write transactions a request opens. (What
every store does is tests/store/test_store.py; the tests marked `stores` elsewhere run on every
backend, see tests/conftest.py.)"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from emulator.settings import RateLimit
from tests.helpers import AUTH, Harness, harness_factory


@pytest.fixture
def make_harness(tmp_path) -> Iterator[Callable[..., Harness]]:
    yield from harness_factory(lambda n: {"data_dir": tmp_path / f"data{n}"})


@pytest.fixture
def harness(make_harness) -> Harness:
    return make_harness()


def _transactions(harness: Harness, request: Callable[[], object]) -> list[str]:
    """The write statements the store's connection ran while `request` was answered (not
    counting the timer that writes idle journal entries)."""
    statements: list[str] = []

    def trace(statement: str) -> None:
        if threading.current_thread().name != "journal-flush":
            statements.append(statement)

    db = harness.em.store._db  # type: ignore[attr-defined]
    db.set_trace_callback(trace)
    try:
        request()
    finally:
        db.set_trace_callback(None)
    return [s for s in statements if s.split()[0].upper() in ("BEGIN", "COMMIT", "ROLLBACK")]


def test_an_api_request_commits_at_most_one_write_transaction(make_harness):
    h = make_harness(rate_limit=RateLimit(2, 60, 50), export_duration=60)
    operation = h.create()
    get = lambda: h.client.get(f"/operations/v1/{operation}", headers=AUTH)  # noqa: E731
    create = lambda: h.create()  # noqa: E731
    # A poll spends a rate-limit token: one transaction (which also writes the journal).
    assert _transactions(h, get) == ["BEGIN IMMEDIATE", "COMMIT"]
    # A creation takes a sequence number, a token and stores the operation: still one.
    assert _transactions(h, create) == ["BEGIN IMMEDIATE", "COMMIT"]


def test_a_request_that_changes_nothing_opens_no_write_transaction(make_harness):
    h = make_harness(rate_limit=None, export_duration=60)
    operation = h.create()
    assert _transactions(h, lambda: h.operation(operation)) == []
    assert _transactions(h, lambda: h.client.get("/segments/v1", headers=AUTH)) == []
