"""The `Store` protocol, one suite over every backend: memory, SQLite and PostgreSQL.

`opened()` opens the backend's store; for SQLite and PostgreSQL a second call opens the same
database again, which is what a restart, a worker process or another replica sees.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fullstory_emulator.clock import ClockState, View
from fullstory_emulator.store import Store
from fullstory_emulator.store.memory import MemoryStore
from fullstory_emulator.store.records import (
    UNSET,
    Bucket,
    ControlState,
    ExportSpec,
    FaultRule,
    Lifecycle,
    OperationRecord,
)
from fullstory_emulator.store.sqlite import SQLiteStore
from tests.helpers import AUTH, with_schema

BACKENDS = ("memory", "sqlite", "postgresql")
DURABLE = ("sqlite", "postgresql")
CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    yield from _opener(request, tmp_path)


@pytest.fixture(params=DURABLE)
def reopened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    yield from _opener(request, tmp_path)


def _opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    stores: list[Any] = []
    if request.param == "postgresql":
        url = with_schema(request.getfixturevalue("postgres_url"))
        from fullstory_emulator.store.postgres import PostgresStore

        def make() -> Store:
            stores.append(PostgresStore(url))
            return stores[-1]  # type: ignore[no-any-return]
    elif request.param == "sqlite":

        def make() -> Store:
            stores.append(SQLiteStore(tmp_path / "store.sqlite3"))
            return stores[-1]  # type: ignore[no-any-return]
    else:
        memory = MemoryStore()

        def make() -> Store:
            return memory

    yield make
    for store in stores:
        store.close()


def operation(tenant: str, seq: int, **changes: Any) -> OperationRecord:
    spec = ExportSpec(
        segment_id="everyone",
        kind="event",
        scope="SCOPE_EVENT",
        format="FORMAT_CSV",
        range_start_ms=0,
        range_end_ms=1_000,
        segment_start_ms=0,
        segment_end_ms=1_000,
        fields=("EventStart", "UserId"),
        timezone="UTC",
        as_of_ms=1_000,
    )
    record = OperationRecord(
        id=f"op-{tenant}-{seq}",
        tenant=tenant,
        seq=seq,
        created_at=CREATED,
        spec=spec,
        lifecycle=Lifecycle(duration=2.0, script=(10, 50)),
        search_export_id=f"export-{tenant}-{seq}",
        segment_name="Everyone",
    )
    return replace(record, **changes)


def test_sequences_count_per_tenant(opened):
    store = opened()
    assert [store.next_sequence("a") for _ in range(3)] == [1, 2, 3]
    assert store.next_sequence("b") == 1
    assert store.next_sequence("a") == 4


def test_operations_are_found_by_id_tenant_and_export(opened):
    store = opened()
    for seq in (1, 2, 3):
        store.add_operation(operation("a", seq))
    store.add_operation(operation("b", 1))
    assert store.get_operation("a", "op-a-2") == operation("a", 2)
    assert store.get_operation("b", "op-a-2") is None  # another tenant's id
    assert [r.id for r in store.operations("a")] == ["op-a-1", "op-a-2", "op-a-3"]
    assert sorted(r.id for r in store.operations(None)) == [
        "op-a-1",
        "op-a-2",
        "op-a-3",
        "op-b-1",
    ]
    assert store.operation_by_export("export-b-1") == operation("b", 1)
    assert store.operation_by_export("export-c-1") is None


def test_pages_of_operations_newest_first_and_any_tenants_by_id(opened):
    store = opened()
    for seq in range(1, 8):
        store.add_operation(operation("a", seq))
    store.add_operation(operation("b", 1))
    assert [r.seq for r in store.operations_page("a", None, 3)] == [7, 6, 5]
    assert [r.seq for r in store.operations_page("a", 5, 3)] == [4, 3, 2]
    assert [r.seq for r in store.operations_page("a", 2, 3)] == [1]
    assert store.operations_page("c", None, 3) == []
    assert store.find_operation("op-b-1") == operation("b", 1)
    assert store.find_operation("op-c-1") is None


def test_update_operation_replaces_the_whole_record(opened):
    store = opened()
    store.add_operation(operation("a", 1))
    finished = datetime(2026, 3, 1, 12, 5, tzinfo=UTC)
    after = store.update_operation("a", "op-a-1", lambda r: replace(r, polls=r.polls + 1))
    after = store.update_operation("a", "op-a-1", lambda r: replace(r, finished_at=finished))
    assert after == operation("a", 1, polls=1, finished_at=finished)
    assert opened().get_operation("a", "op-a-1") == after
    assert store.update_operation("a", "missing", lambda r: r) is None


def test_an_update_runs_its_function_once(opened):
    """A poll's update computes the operation's status: once per poll, not once to see whether
    anything changes and again under the lock."""
    store = opened()
    store.add_operation(operation("a", 1))
    seen: list[int] = []

    def poll(record: OperationRecord) -> OperationRecord:
        seen.append(record.polls)
        return replace(record, polls=record.polls + 1)

    assert store.update_operation("a", "op-a-1", poll) == operation("a", 1, polls=1)
    assert seen == [0]
    assert store.update_operation("a", "op-a-1", lambda r: seen.append(r.polls) or r)
    assert seen == [0, 1]  # and a function that changes nothing, once too


def test_an_update_raced_by_another_writer_runs_again_on_its_record(reopened):
    store, other = reopened(), reopened()
    store.add_operation(operation("a", 1))
    seen: list[int] = []

    def poll(record: OperationRecord) -> OperationRecord:
        seen.append(record.polls)
        if len(seen) == 1:  # another process writes between this read and this write
            other.update_operation("a", "op-a-1", lambda r: replace(r, polls=r.polls + 10))
        return replace(record, polls=record.polls + 1)

    assert store.update_operation("a", "op-a-1", poll) == operation("a", 1, polls=11)
    assert seen == [0, 10]
    assert other.get_operation("a", "op-a-1") == operation("a", 1, polls=11)


def test_concurrent_updates_of_one_operation_lose_none(opened):
    stores = [opened(), opened()]
    stores[0].add_operation(operation("a", 1))

    def work(store: Store) -> None:
        for _ in range(10):
            store.update_operation("a", "op-a-1", lambda r: replace(r, polls=r.polls + 1))

    threads = [threading.Thread(target=work, args=(stores[n % 2],)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    record = stores[1].get_operation("a", "op-a-1")
    assert record is not None and record.polls == 60


def test_buckets_start_empty_then_keep_what_was_written(opened):
    store = opened()
    seen: list[Bucket | None] = []

    def spend(bucket: Bucket | None) -> Bucket:
        seen.append(bucket)
        tokens = 5.0 if bucket is None else bucket.tokens
        return Bucket(tokens - 1, 100.0 + len(seen))

    key = ("a", "key-1", "exports")
    assert store.update_bucket(key, spend) == Bucket(4.0, 101.0)
    assert opened().update_bucket(key, spend) == Bucket(3.0, 102.0)
    assert store.update_bucket(("a", "key-2", "exports"), spend) == Bucket(4.0, 103.0)
    assert seen == [None, Bucket(4.0, 101.0), None]


def test_controls_per_scope_with_results(opened):
    store = opened()
    assert store.controls(["a", None]) == [ControlState(), ControlState()]
    fault = FaultRule(id="f1", path="/segments/*", status=503, remaining=2)

    def add(state: ControlState) -> tuple[ControlState, str]:
        return replace(state, faults=(*state.faults, fault), next_rule=2), "f1"

    assert store.update_control("a", add) == "f1"
    assert store.update_control(None, lambda s: (replace(s, deny_next=3, url_ttl=60.0), 7)) == 7
    tenant, instance = opened().controls(["a", None])
    assert tenant == ControlState(faults=(fault,), next_rule=2)
    assert (instance.deny_next, instance.url_ttl, instance.export_duration) == (3, 60.0, UNSET)
    assert store.controls(["b"]) == [ControlState()]


def test_journal_filters_by_tenant_and_clears(opened):
    store = opened()
    for n, tenant in enumerate(["a", "b", "a", None]):
        store.append_journal({"n": n, "tenant": tenant, "path": f"/p{n}"})
    assert [e["n"] for e in store.journal(None)] == [0, 1, 2, 3]
    assert [e["n"] for e in opened().journal("a")] == [0, 2]  # written, for every process
    store.clear_journal("a")
    assert [e["n"] for e in store.journal(None)] == [1, 3]
    store.clear_journal(None)
    assert store.journal(None) == []


def test_a_journal_timer_that_fires_as_the_store_closes_writes_nothing(tmp_path):
    """A request that ends during shutdown buffers its entry and starts the flush timer; when
    the timer fires after the store closed, it must not begin a transaction on the closed
    database (an exception in the journal-flush thread)."""
    store = SQLiteStore(tmp_path / "store.sqlite3")
    store.close()
    store.append_journal({"tenant": None, "path": "/late"})
    store._flush_quietly()  # the timer firing, without waiting for it


def test_journal_pages_continue_where_the_last_ended(opened):
    store = opened()
    for n in range(12):
        store.append_journal({"n": n, "tenant": "a" if n % 3 else "b", "path": f"/p{n}"})
    first, after = store.journal_page("a", 0, 3)
    assert [e["n"] for e in first] == [1, 2, 4] and after is not None
    rest, end = store.journal_page("a", after, 100)
    assert [e["n"] for e in rest] == [5, 7, 8, 10, 11] and end is None
    even, _ = store.journal_page(None, 0, 100, match=lambda e: e["n"] % 2 == 0)
    assert [e["n"] for e in even] == [0, 2, 4, 6, 8, 10]


def test_journal_keeps_each_writers_order_under_concurrent_transactions(opened):
    stores = [opened(), opened()]

    def work(n: int) -> None:
        store = stores[n % 2]
        for i in range(30):
            store.append_journal({"tenant": "a", "writer": n, "i": i})
            if i % 3 == 0:
                with store.transaction():  # a write transaction carries what is buffered
                    store.next_sequence(f"t{n}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    seen, after = [], 0
    while True:  # read in pages, as the control API does, while the other writes its buffer
        page, last = stores[0].journal_page("a", after, 7)
        stores[1].journal_page("a", 0, 1)  # flushes its buffered entries
        seen += page
        if last is None:
            break
        after = last
    for n in range(4):
        assert [e["i"] for e in seen if e["writer"] == n] == list(range(30))


def test_journal_newest_first_and_the_tenants_held(opened):
    store = opened()
    for n in range(1203):  # more than one batch of the database stores
        store.append_journal({"n": n, "tenant": "a" if n % 2 else None})
    newest = store.journal_newest("a")
    assert [next(newest)["n"] for _ in range(3)] == [1202 - 1, 1202 - 3, 1202 - 5]
    assert [e["n"] for e in store.journal_newest(None)] == list(range(1202, -1, -1))
    store.add_operation(operation("b", 1))
    store.next_sequence("c")
    store.update_control("d", lambda s: (replace(s, deny_next=1), None))
    store.update_control("e", lambda s: (s, None))  # nothing held for "e"
    assert opened().tenants() == ["a", "b", "c", "d"]


def test_reset_of_one_tenant_or_all(opened):
    store = opened()
    for tenant in ("a", "b"):
        store.next_sequence(tenant)
        store.add_operation(operation(tenant, 1))
        store.update_bucket((tenant, "k", "e"), lambda b: Bucket(1.0, 1.0))
        store.update_control(tenant, lambda s: (replace(s, deny_next=1), None))
        store.append_journal({"tenant": tenant})
    store.update_control(None, lambda s: (replace(s, deny_next=2), None))
    store.meta("origin_ms", lambda: "42")

    store.reset("a")
    assert store.operations("a") == [] and store.next_sequence("a") == 1
    assert store.controls(["a", "b", None]) == [
        ControlState(),
        ControlState(deny_next=1),
        ControlState(deny_next=2),
    ]
    assert store.update_bucket(("a", "k", "e"), lambda b: Bucket(0.0 if b else 9.0, 2.0)).tokens
    assert [e["tenant"] for e in store.journal(None)] == ["b"]
    assert len(store.operations("b")) == 1

    store.reset(None)
    assert store.operations(None) == [] and store.journal(None) == []
    assert store.controls(["b", None]) == [ControlState(), ControlState()]
    assert store.meta("origin_ms", lambda: "7") == "42"  # the world's origin stays


def test_meta_keeps_the_first_value_unless_it_is_unreadable(opened):
    store = opened()
    assert store.meta("secret", lambda: "first") == "first"
    assert opened().meta("secret", lambda: "second") == "first"
    assert opened().meta("secret", lambda: "third", lambda v: v.startswith("t")) == "third"
    assert store.meta("secret", lambda: "fourth") == "third"


def test_the_clock_state_is_kept_and_updated(opened):
    first = ClockState(start=100.0, start_frozen=True, offset=0.0, frozen_at=100.0)
    clock = opened().clock_backend(first)
    assert clock.load() == first
    moved = clock.update(lambda s: replace(s, frozen_at=250.0, views={"a": View(offset=5.0)}))
    assert moved == replace(first, frozen_at=250.0, views={"a": View(offset=5.0)})
    assert clock.load() == moved


def test_one_clock_for_every_process_and_the_first_start_wins(reopened):
    first = ClockState(start=100.0, start_frozen=True, offset=0.0, frozen_at=100.0)
    moved = reopened().clock_backend(first).update(lambda s: replace(s, frozen_at=250.0))
    other = reopened().clock_backend(replace(first, start=999.0, frozen_at=999.0))
    assert other.load() == moved


def test_a_failed_transaction_leaves_nothing(reopened):
    store = reopened()
    with pytest.raises(RuntimeError), store.transaction():
        store.add_operation(operation("a", 1))
        with store.transaction():  # nested: joins the outer one
            store.update_control("a", lambda s: (replace(s, deny_next=5), None))
        assert store.get_operation("a", "op-a-1") is not None  # visible inside
        raise RuntimeError("undone")
    again = reopened()
    assert again.get_operation("a", "op-a-1") is None
    assert again.controls(["a"]) == [ControlState()]


def test_a_read_does_not_wait_for_another_threads_transaction(reopened):
    """Reads (the event loop's among them: the clock, the control settings) go on while
    another thread holds a write transaction open, and see what was committed."""
    store = reopened()
    store.add_operation(operation("a", 1))
    clock = store.clock_backend(
        ClockState(start=100.0, start_frozen=True, offset=0.0, frozen_at=100.0)
    )
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.transaction():
            store.update_control("a", lambda s: (replace(s, deny_next=1), None))
            holding.set()
            release.wait(30)

    seen: list[Any] = []

    def read() -> None:
        seen.extend([store.get_operation("a", "op-a-1"), store.controls(["a"]), clock.load().start])

    holder, reader = threading.Thread(target=hold), threading.Thread(target=read)
    holder.start()
    try:
        assert holding.wait(30)
        reader.start()
        reader.join(10)
        answered = not reader.is_alive()
    finally:
        release.set()
        holder.join(30)
        reader.join(30)
    assert answered, "a read waited for another thread's transaction"
    assert seen == [operation("a", 1), [ControlState()], 100.0]
    assert store.controls(["a"]) == [ControlState(deny_next=1)]


def test_concurrent_spending_never_spends_a_token_twice(opened):
    """Eight threads over two opened stores (two replicas, for a database) spend one bucket and
    draw sequence numbers at once: every token is spent once and no number is drawn twice."""
    stores = [opened(), opened()]
    key = ("a", "key", "exports")
    spent: list[bool] = []
    numbers: list[int] = []
    lock = threading.Lock()

    def work(store: Store) -> None:
        for _ in range(5):
            calls: list[bool] = []

            def spend(bucket: Bucket | None, calls: list[bool] = calls) -> Bucket:
                tokens = 30.0 if bucket is None else bucket.tokens
                calls.append(tokens >= 1.0)
                return Bucket(tokens - 1.0 if tokens >= 1.0 else tokens, 0.0)

            with store.transaction():
                store.update_bucket(key, spend)
                number = store.next_sequence("a")
            with lock:
                spent.extend(calls)
                numbers.append(number)

    threads = [threading.Thread(target=work, args=(stores[n % 2],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(spent) == 40  # each update ran its function once, on the row as it was
    assert spent.count(True) == 30 and spent.count(False) == 10
    assert stores[0].update_bucket(key, lambda b: b or Bucket(-1, 0)).tokens == 0.0
    assert sorted(numbers) == list(range(1, 41))


# -- a restart (SQLite) or another replica (PostgreSQL) of a whole emulator -------------------


@pytest.fixture(params=DURABLE)
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings naming one database, to build several emulators on."""
    if request.param == "sqlite":
        return {"data_dir": tmp_path / "kept"}
    return {"store": with_schema(request.getfixturevalue("postgres_url"))}


def test_state_survives_a_restart(make_harness, durable):
    first = make_harness(**durable, signing_secret=None, export_duration=10)
    done = first.create()
    pending = first.create(segmentId="rageClicks")
    first.advance(11)
    url = first.location(first.operation(done)["results"]["searchExportId"])
    later = first.create()
    rule = {"path": "/segments/v1", "status": 503, "times": 1}
    first.client.post("/__emulator/faults", json=rule, headers=AUTH)

    second = make_harness(**durable, signing_secret=None, export_duration=10)
    assert second.operation(done)["state"] == "COMPLETED"
    assert second.operation(pending)["state"] == "COMPLETED"
    assert second.operation(later)["state"] == "PENDING"  # the clock carried on where it was
    assert second.client.get(url).status_code == 200  # same secret: old URLs still download
    assert second.client.get("/segments/v1", headers=AUTH).status_code == 503  # the rule stayed
    assert first.client.get("/segments/v1", headers=AUTH).status_code == 200  # spent once
    assert second.create() not in (done, pending, later)  # the id sequence carried on


def test_start_scenarios_apply_once_per_database(make_harness, durable):
    make_harness(**durable, scenario="rate-limited")
    again = make_harness(**durable, scenario="rate-limited")
    codes = [again.client.get("/segments/v1", headers=AUTH).status_code for _ in range(4)]
    assert codes == [429, 429, 429, 200]  # three denials, not six
