"""What is particular to the SQLite store: how few write transactions a request opens. (What
every store does is tests/store/test_store.py; the tests marked `stores` elsewhere run on every
backend, see tests/conftest.py.)"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from fullstory_emulator.clock import ClockState
from fullstory_emulator.settings import RateLimit
from fullstory_emulator.store import sql as sql_store
from fullstory_emulator.store import sqlite as sqlite_store
from fullstory_emulator.store.records import Bucket, ControlState
from fullstory_emulator.store.sql import SQLClockBackend
from tests.helpers import AUTH, Harness, assert_error, harness_factory


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


def test_a_poll_does_not_queue_behind_another_threads_write_transaction(make_harness):
    """A request that writes nothing reads through its thread's own connection: it never waits
    for the writing connection, which another request's transaction holds until it commits."""
    h = make_harness(rate_limit=None, export_duration=60)
    operation = h.create()
    store = h.em.store
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        with store.transaction():
            store.next_sequence("another")  # BEGIN IMMEDIATE: the writing connection is taken
            holding.set()
            done.wait(10)
            holding.clear()  # (after 10 s: the poll below waited for this)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        polled = h.operation(operation)
        assert holding.is_set(), "the poll waited for the other transaction to end"
        assert polled["id"] == operation and polled["state"] == "PENDING"
    finally:
        done.set()
        holder.join()


def test_an_unchanged_operation_is_decoded_once_however_often_it_is_polled(
    make_harness, monkeypatch
):
    h = make_harness(rate_limit=None, export_duration=60)
    operation = h.create()
    decoded: list[object] = []
    decode = sql_store.decode_operation
    monkeypatch.setattr(
        sql_store, "decode_operation", lambda data: decoded.append(data) or decode(data)
    )
    first = h.operation(operation)
    assert [h.operation(operation) for _ in range(3)] == [first] * 3
    assert len(decoded) == 1
    h.advance(61)  # the answer still follows the clock
    assert h.operation(operation)["state"] == "COMPLETED"
    h.operation(h.create())
    assert len(decoded) == 2  # another row is read for itself


def test_the_journal_is_summed_by_bytes_only_once_an_eighth_of_its_bound_was_written(
    make_harness,
):
    """The sum reads every entry of the journal: not every 1000 entries, as the count is."""
    h = make_harness(journal_max_bytes=1 << 20)
    store = h.em.store
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    try:
        for n in range(1200):  # ~100 KB: under an eighth of the bound
            store.append_journal({"tenant": "t", "path": "/p", "n": n})
        store.flush_journal()
        assert not [s for s in statements if "SUM(" in s]
        assert [s for s in statements if "DELETE FROM journal" in s]  # the count, at 1000
        for n in range(2000):  # past an eighth
            store.append_journal({"tenant": "t", "path": "/p", "pad": "x" * 100, "n": n})
        store.flush_journal()
        assert [s for s in statements if "SUM(" in s]
    finally:
        store._db.set_trace_callback(None)  # type: ignore[attr-defined]
    assert len(store.journal("t")) == 3200


def _poke(data, key: str, value: str) -> None:
    with sqlite3.connect(data / "emulator.sqlite3") as db:
        db.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))


def test_a_clock_saved_at_the_end_of_time_does_not_stop_a_start(make_harness, tmp_path):
    data = tmp_path / "far"
    make_harness(data_dir=data)
    late = 253402300798.0  # 9999-12-31T23:59:58Z, as an older version could save it
    state = {"start": late, "startFrozen": True, "offset": 0, "frozenAt": late, "views": {}}
    _poke(data, "clock", json.dumps(state))
    again = make_harness(data_dir=data)
    assert again.client.get("/__emulator/health").json()["now"] == "3000-01-01T00:00:00.000000Z"
    assert again.client.get("/segments/v1", headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    "key,value",
    [
        ("clock", "not json"),
        ("clock", '{"start": "x"}'),
        ("origin_ms", "yesterday"),
        ("origin_ms", "1" * 40),
        ("signing_secret", "zz"),
    ],
)
def test_unreadable_kept_values_are_replaced_not_fatal(make_harness, tmp_path, key, value):
    data = tmp_path / "odd"
    make_harness(data_dir=data, signing_secret=None)
    _poke(data, key, value)
    again = make_harness(data_dir=data, signing_secret=None)
    assert again.client.get("/__emulator/health").status_code == 200
    assert again.export_bytes()[:2] == b"\x1f\x8b"  # a whole export still works


def test_an_unreadable_operation_row_stops_nothing(make_harness, tmp_path):
    data = tmp_path / "bad-row"
    first = make_harness(data_dir=data)
    good, bad = first.create(), first.create()
    with sqlite3.connect(data / "emulator.sqlite3") as db:
        db.execute("UPDATE operations SET record = ? WHERE id = ?", ('{"id": 1}', bad))
    again = make_harness(data_dir=data)  # before: the metrics collector read it at start-up
    assert again.client.get("/metrics").status_code == 200
    listed = again.client.get("/operations/v1", headers=AUTH).json()["operations"]
    assert [op["id"] for op in listed] == [good]
    assert again.client.get(f"/operations/v1/{bad}", headers=AUTH).status_code == 404
    assert again.client.get(f"/operations/v1/{good}", headers=AUTH).status_code == 200


def test_a_page_of_operations_reads_only_its_rows(harness, monkeypatch):
    for _ in range(60):
        harness.create()
    decoded = []
    real = sql_store.decode_operation  # the SQL stores' one decoder
    monkeypatch.setattr(sql_store, "decode_operation", lambda d: decoded.append(1) or real(d))
    first = harness.client.get("/operations/v1?limit=1", headers=AUTH).json()
    assert len(first["operations"]) == 1 and 1 <= len(decoded) <= 2
    decoded.clear()
    token = first["nextPaginationToken"]
    page = harness.client.get(f"/operations/v1?limit=5&paginationToken={token}", headers=AUTH)
    assert len(page.json()["operations"]) == 5 and 5 <= len(decoded) <= 6


def test_a_database_locked_by_another_process_answers_503_not_500(make_harness, monkeypatch):
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_SECONDS", 0.2)
    h = make_harness()
    url = h.location(h.finish(h.create())["results"]["searchExportId"])
    other = sqlite3.connect(h.em.settings.data_dir / "emulator.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        began = time.monotonic()
        body = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"}
        busy = h.client.post("/segments/v1/exports", json=body, headers=AUTH)
        assert time.monotonic() - began < 2
        # A request that writes nothing needs no write lock: it still answers.
        assert h.client.get("/segments/v1", headers=AUTH).status_code == 200
        error = assert_error(busy, 503, 14)
        assert "locked by another process" in error["message"]
        assert busy.headers["Retry-After"] == "1"
        assert_error(h.client.post("/__emulator/faults", json={"status": 503}), 503, 14)
        download = h.client.get(url)
        assert download.status_code in (200, 503)  # a download only reads; if it must wait, XML
        if download.status_code == 503:
            assert "<Code>ServiceUnavailable</Code>" in download.text
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert h.client.get("/segments/v1", headers=AUTH).status_code == 200


def test_only_a_change_of_the_clock_or_settings_makes_them_be_read_again(tmp_path, monkeypatch):
    """The clock and control settings are read on every request and cached; a spent token or a
    poll written by any process leaves the copy alone, a change of them by any process not."""
    path = tmp_path / "state.sqlite3"
    store, other = sqlite_store.SQLiteStore(path), sqlite_store.SQLiteStore(path)
    try:
        clock = store.clock_backend(ClockState(100.0, True, 0.0, 100.0))
        store.update_control("a", lambda s: (replace(s, deny_next=3), None))
        reads: list[str] = []
        decode, load = sql_store.decode_control, SQLClockBackend._decode
        monkeypatch.setattr(sql_store, "decode_control", lambda d: reads.append("c") or decode(d))
        monkeypatch.setattr(
            SQLClockBackend, "_decode", lambda s, r: reads.append("t") or load(s, r)
        )
        assert clock.load().start == 100.0 and store.controls(["a"])[0].deny_next == 3
        assert reads == ["t", "c"]
        for writer in (store, other, store):
            with writer.transaction():
                writer.update_bucket(("a", "key", "exports"), lambda b: Bucket(1.0, 2.0))
                writer.next_sequence("a")
            assert clock.load().start == 100.0 and store.controls(["a"])[0].deny_next == 3
        assert reads == ["t", "c"]
        other.update_control("a", lambda s: (replace(s, deny_next=1), None))
        reads.clear()
        assert store.controls(["a"]) == [ControlState(deny_next=1)]
        assert clock.load().start == 100.0
        assert reads == ["c", "t"]  # (a change of either makes both be read again)
    finally:
        store.close()
        other.close()


def test_polls_that_commit_do_not_start_a_journal_timer_each(make_harness, monkeypatch):
    """Each poll commits (it spends a token) and writes the entries buffered before it; the
    timer that writes idle entries runs out instead of being cancelled there, so the next
    entry finds it running instead of starting a thread of its own."""
    h = make_harness(rate_limit=RateLimit(1000, 60, 1000), export_duration=60)
    operation = h.create()
    store = h.em.store
    started: list[float] = []
    start_timer = store._timer  # type: ignore[attr-defined]

    def counted(seconds: float) -> threading.Timer:
        started.append(seconds)
        return start_timer(seconds)

    monkeypatch.setattr(store, "_timer", counted)
    polls = 30
    for _ in range(polls):
        assert h.client.get(f"/operations/v1/{operation}", headers=AUTH).status_code == 200
    assert len(started) <= polls // 3  # one per 0.2 s of polling, not one per poll
    store.flush_journal()
    paths = [e["path"] for e in store.journal(None) if e["path"].startswith("/operations/")]
    assert len(paths) == polls
