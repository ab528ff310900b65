"""What is particular to the PostgreSQL store: the versioned schema and replicas starting
together, `store check`, a clear error when the database cannot be reached at start, 503s while
it is away and recovery when it returns, and the read cache that replicas never see stale."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

import psycopg
import pytest

from fullstory_emulator.cli import _banner, main
from fullstory_emulator.clock import ClockState
from fullstory_emulator.instance import Emulator
from fullstory_emulator.settings import Settings
from fullstory_emulator.store import postgres
from fullstory_emulator.store.postgres import PostgresStore, StoreError, check, prepare
from fullstory_emulator.store.records import ControlState, FaultRule, LifecycleRule
from tests.helpers import AUTH, assert_error, free_port, small_settings, with_schema


@pytest.fixture
def url(postgres_url: str) -> str:
    return with_schema(postgres_url)


def version_of(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT version FROM {postgres.VERSION_TABLE}").fetchone()
        assert row is not None
        return int(row[0])


def test_replicas_starting_together_create_the_schema_once(url):
    found: list[int] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            found.append(prepare(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(found) == [0] + [postgres.SCHEMA_VERSION] * 3  # one created it
    assert version_of(url) == postgres.SCHEMA_VERSION
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT count(*) FROM {postgres.VERSION_TABLE}").fetchone()
        assert rows == (1,)


def test_an_older_schema_is_migrated_at_start(url, monkeypatch):
    prepare(url)
    store = PostgresStore(url)
    store.meta("origin_ms", lambda: "42")
    store.close()
    newer = (*postgres.MIGRATIONS, "ALTER TABLE meta ADD COLUMN note TEXT;")
    monkeypatch.setattr(postgres, "MIGRATIONS", newer)
    monkeypatch.setattr(postgres, "SCHEMA_VERSION", len(newer))
    report = check(url)
    assert (
        report.usable
        and "will be migrated from version 1 at start (to version 2)" in (report.lines[-1])
    )
    assert prepare(url) == 1
    assert version_of(url) == 2
    with psycopg.connect(url) as conn:  # the data stayed, the column came
        assert conn.execute("SELECT value, note FROM meta").fetchall() == [("42", None)]


def test_a_schema_newer_than_the_emulator_is_refused(url):
    prepare(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"UPDATE {postgres.VERSION_TABLE} SET version = 99")
    with pytest.raises(StoreError, match="version 99, newer than this emulator's 1"):
        prepare(url)
    report = check(url)
    assert not report.usable and "version 99, newer" in report.lines[-1]


def test_store_check_says_what_the_database_holds(url, capsys):
    with pytest.raises(SystemExit) as exit_code:
        main(["store", "check", "--store", url])
    assert exit_code.value.code == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("postgresql://emulator@/postgres?") and "PostgreSQL 1" in out[0]
    assert "will be created at start (to version 1)" in out[1] and out[-1] == "usable"

    Emulator.build(small_settings(store=url)).store.close()  # type: ignore[attr-defined]
    report = check(url)
    assert report.usable
    assert report.lines[-1].endswith("at version 1 (current): 0 operation(s) of 0 tenant(s)")


def test_an_unreachable_database_is_a_clear_error_at_start_and_in_check(capsys):
    url = f"postgresql://emulator:s3cret@127.0.0.1:{free_port()}/emulator?connect_timeout=2"
    with pytest.raises(ValueError) as error:
        Emulator.build(small_settings(store=url))
    message = str(error.value)
    assert message.startswith("cannot use PostgreSQL at postgresql://emulator:***@127.0.0.1:")
    assert "Connection refused" in message and "s3cret" not in message
    with pytest.raises(SystemExit) as exit_code:
        main(["store", "check", "--store", url])
    assert exit_code.value.code == 1
    out = capsys.readouterr().out
    assert "cannot connect" in out and "s3cret" not in out and out.endswith("not usable\n")


def test_the_banner_never_shows_the_password(capsys):
    url = "postgresql://emulator:s3cret@db.internal:5432/emulator"
    _banner(Settings(store=url, mcp_port=None))
    out = capsys.readouterr().out
    assert "state:          PostgreSQL postgresql://emulator:***@db.internal:5432/emulator" in out
    assert "s3cret" not in out


def test_a_lost_database_answers_503_then_recovers_without_a_restart(
    make_harness, url, postgres_server
):
    if postgres_server is None:
        pytest.skip("the PostgreSQL server is not this suite's to stop")
    h = make_harness(store=url)
    op = h.create()
    postgres_server.stop()
    try:
        time.sleep(postgres.CACHE_SECONDS)  # the cached clock and controls have expired
        for _ in range(3):
            error = assert_error(h.client.get(f"/operations/v1/{op}", headers=AUTH), 503, 14)
            assert "database" in error["message"]
        response = h.client.get(f"/operations/v1/{op}", headers=AUTH)
        assert response.headers["retry-after"] == "1"
        assert "x-emulator-worker" in response.headers
        download = h.client.get("/fullstory-emulator-exports/segment-exports/x.csv.gz")
        assert download.status_code == 503
        assert "<Code>ServiceUnavailable</Code>" in download.text
        health = h.client.get("/__emulator/health")
        assert_error(health, 503, 14)
    finally:
        postgres_server.start()
    deadline = time.monotonic() + 30
    while h.client.get(f"/operations/v1/{op}", headers=AUTH).status_code != 200:
        assert time.monotonic() < deadline, "no recovery within 30 s"
        time.sleep(0.1)
    assert h.operation(op)["state"] == "PENDING"
    assert h.create() != op  # writes work again too


def test_a_change_through_one_replica_is_seen_at_once_through_another(url):
    """Each replica caches the clock and control settings it reads; a change that widens
    them answers only once the other replicas' copies have expired."""
    one, two = PostgresStore(url), PostgresStore(url)
    try:
        start = ClockState(start=100.0, start_frozen=True, offset=0.0, frozen_at=100.0)
        clocks = [one.clock_backend(start), two.clock_backend(start)]
        assert clocks[1].load() == start and two.controls(["a"]) == [ControlState()]  # cached
        began = time.monotonic()
        clocks[0].update(lambda s: replace(s, frozen_at=500.0))
        rule = FaultRule(id="f1", status=503, remaining=1)
        one.update_control("a", lambda s: (replace(s, faults=(rule,)), None))
        assert time.monotonic() - began >= 2 * postgres.CACHE_SECONDS  # each waited
        assert clocks[1].load().frozen_at == 500.0
        assert two.controls(["a"]) == [ControlState(faults=(rule,))]
    finally:
        one.close()
        two.close()


def test_no_change_waits_on_the_event_loop(make_harness, url, monkeypatch):
    """A change that other replicas must see waits CACHE_SECONDS before it is answered: in a
    worker thread, never on the event loop, which serves every other request meanwhile."""
    waits: list[str] = []  # where each wait ran
    settle = PostgresStore._settle

    def watched(self: PostgresStore) -> None:
        try:
            asyncio.get_running_loop()
            waits.append("event loop")
        except RuntimeError:
            waits.append("thread")
        settle(self)

    monkeypatch.setattr(PostgresStore, "_settle", watched)
    h = make_harness(store=url)
    op = h.create()
    changes = [  # each widens what replicas cache (a removed rule only spends: no wait)
        ("POST", "/__emulator/clock", {"advance": 1}),
        ("POST", "/__emulator/clock", {"freeze": False}),  # the harness froze it
        ("POST", "/__emulator/faults", {"path": "/nowhere", "status": 503}),
        ("POST", "/__emulator/lifecycle", {"finishAfterPolls": 3}),
        ("POST", "/__emulator/ratelimit", {"limit": "5/60,5"}),
        ("POST", "/__emulator/config", {"urlTtl": 60}),
        ("POST", "/__emulator/scenarios/rate-limited", None),
    ]
    for method, path, body in changes:
        response = h.client.request(method, path, json=body)
        assert response.status_code == 200, (path, response.text)
    assert waits == ["thread"] * len(changes)
    h.client.post(f"/__emulator/operations/{op}/complete").raise_for_status()
    h.client.delete("/__emulator/faults").raise_for_status()
    assert waits == ["thread"] * len(changes)
    h.client.post("/__emulator/reset").raise_for_status()  # the state, then the clock
    assert waits == ["thread"] * (len(changes) + 2)


def test_only_changes_that_spend_skip_the_wait():
    rule = LifecycleRule(id="l1", seconds=5.0, remaining=2)
    fault = FaultRule(id="f1", status=503, remaining=None, probability=0.5)
    state = ControlState(lifecycle=(rule,), faults=(fault,), deny_next=2)
    spends = postgres._spends
    assert spends(state, replace(state, deny_next=1))
    assert spends(state, replace(state, lifecycle=(replace(rule, remaining=1),)))
    assert spends(state, replace(state, lifecycle=()))
    assert spends(state, replace(state, faults=(replace(fault, matched=3),)))
    assert not spends(state, replace(state, deny_next=3))
    assert not spends(state, replace(state, lifecycle=(replace(rule, remaining=3),)))
    assert not spends(state, replace(state, lifecycle=(replace(rule, remaining=None),)))
    assert not spends(state, replace(state, lifecycle=(rule, replace(rule, id="l2"))))
    assert not spends(state, replace(state, faults=(replace(fault, status=500),)))
    assert not spends(state, replace(state, url_ttl=60.0))


def _poke(url: str, sql: str, *args: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql, args)


@pytest.mark.parametrize(
    "key,value",
    [("clock", "not json"), ("clock", '{"start": "x"}'), ("origin_ms", "yesterday")],
)
def test_unreadable_kept_values_are_replaced_not_fatal(make_harness, url, key, value):
    make_harness(store=url, signing_secret=None)
    _poke(url, "UPDATE meta SET value = %s WHERE key = %s", value, key)
    again = make_harness(store=url, signing_secret=None)
    assert again.client.get("/__emulator/health").status_code == 200
    assert again.export_bytes()[:2] == b"\x1f\x8b"  # a whole export still works


def test_an_unreadable_operation_row_stops_nothing(make_harness, url):
    first = make_harness(store=url)
    good, bad = first.create(), first.create()
    _poke(url, "UPDATE operations SET record = %s WHERE id = %s", '{"id": 1}', bad)
    again = make_harness(store=url)
    assert again.client.get("/metrics").status_code == 200
    listed = again.client.get("/operations/v1", headers=AUTH).json()["operations"]
    assert [op["id"] for op in listed] == [good]
    assert again.client.get(f"/operations/v1/{bad}", headers=AUTH).status_code == 404
    assert again.client.get(f"/operations/v1/{good}", headers=AUTH).status_code == 200


def test_every_connection_in_use_is_busy_not_down(url, monkeypatch):
    """A pool whose connections are all busy answers 503 "busy" after its wait, and the next
    call goes through as soon as one is free: nothing takes it for a lost database."""
    monkeypatch.setattr(postgres, "POOL_WAIT_SECONDS", 0.3)
    store = PostgresStore(url, pool_size=2)
    held = threading.Barrier(3)
    release = threading.Event()

    def hold(tenant: str) -> None:
        with store.transaction():
            store.next_sequence(tenant)  # a row of its own: the holders do not wait on each other
            held.wait()
            release.wait(10)

    holders = [threading.Thread(target=hold, args=(t,)) for t in ("a", "b")]
    try:
        for holder in holders:
            holder.start()
        held.wait()
        with pytest.raises(postgres.StoreBusy, match="every database connection is in use"):
            store.get_operation("a", "x")
        release.set()
        for holder in holders:
            holder.join(timeout=10)
        assert store.next_sequence("a") == 2  # at once: no "database lost" pause
    finally:
        release.set()
        store.close()
