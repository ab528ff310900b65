"""Operations (CONTRACT §5): the lifecycle on the clock, list, cancel."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from fullstory_emulator.exports.lifecycle import status_at
from fullstory_emulator.store.records import Lifecycle, OperationRecord
from tests.helpers import AUTH, ROOT, START, assert_error, parse

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
KEYS = {
    "id",
    "type",
    "details",
    "results",
    "state",
    "errorDetails",
    "createdAt",
    "finishedAt",
    "estimatePctComplete",
    "step",
}


def test_pending_shape(make_harness):
    h = make_harness(export_duration=10)
    op = h.operation(h.create())
    assert set(op) == KEYS
    assert op["type"] == "SEARCH_EXPORT" and op["details"] is None
    assert op["state"] == "PENDING" and op["results"] is None and op["finishedAt"] is None
    assert op["errorDetails"] == "" and op["estimatePctComplete"] == 0
    assert isinstance(op["step"], str) and op["step"]
    assert TS.match(op["createdAt"]) and parse(op["createdAt"]) == START


@pytest.mark.stores
def test_progress_rises_as_integers_then_completes(make_harness):
    h = make_harness(export_duration=10, export_duration_per_million=0)
    op_id = h.create()
    seen = []
    for _ in range(10):
        op = h.operation(op_id)
        assert op["state"] == "PENDING"
        assert type(op["estimatePctComplete"]) is int
        seen.append(op["estimatePctComplete"])
        h.advance(1)
    assert seen == sorted(seen) and seen[0] == 0 and seen[-1] == 90
    done = h.operation(op_id)
    assert done["state"] == "COMPLETED" and done["estimatePctComplete"] == 100
    assert done["step"] == "" and done["errorDetails"] == ""
    assert parse(done["finishedAt"]) == START + timedelta(seconds=10)
    assert set(done["results"]) == {"expires", "searchExportId"}
    assert parse(done["results"]["expires"]) == START + timedelta(seconds=10, days=7)


def test_raw_json_keeps_null_fields(make_harness):
    h = make_harness(export_duration=10)
    raw = h.client.get(f"/operations/v1/{h.create()}", headers=AUTH).content
    assert b'"results":null' in raw and b'"finishedAt":null' in raw and b'"details":null' in raw
    assert b"\n" not in raw


def test_frozen_clock_keeps_percent(make_harness):
    h = make_harness(export_duration=10)
    op_id = h.create()
    h.advance(4.2)
    assert {h.operation(op_id)["estimatePctComplete"] for _ in range(5)} == {42}


@pytest.mark.stores
def test_polls_on_a_frozen_clock_carry_a_hint(make_harness, caplog):
    """Without the fallback a frozen clock keeps the export PENDING however often it is
    polled; every poll's answer says why, and the log says it once."""
    h = make_harness(export_duration=10)
    op_id = h.create()
    with caplog.at_level("WARNING", logger="fullstory_emulator"):
        answers = [h.client.get(f"/operations/v1/{op_id}", headers=AUTH) for _ in range(4)]
    assert {a.json()["state"] for a in answers} == {"PENDING"}
    hint = answers[0].headers["x-emulator-hint"]
    assert hint == (
        "the emulator's clock is frozen at 2026-03-01T12:00:00.000000Z, so this export (due "
        "at 2026-03-01T12:00:10.000000Z) stays PENDING until the clock moves: POST "
        '/__emulator/clock {"advance": 10} (pytest: sleep with handle.clock.advance, or poll '
        "with handle.client)"
    )
    assert {a.headers["x-emulator-hint"] for a in answers} == {hint}
    assert [r.getMessage() for r in caplog.records] == [f"operation {op_id}: {hint}"]
    h.advance(4)
    moved = h.client.get(f"/operations/v1/{op_id}", headers=AUTH)
    assert '{"advance": 6}' in moved.headers["x-emulator-hint"]
    h.advance(6)
    done = h.client.get(f"/operations/v1/{op_id}", headers=AUTH)
    assert done.json()["state"] == "COMPLETED" and "x-emulator-hint" not in done.headers


def test_a_running_clock_or_a_poll_driven_export_has_no_hint(make_harness):
    h = make_harness(export_duration=10, freeze_clock=False)
    running = h.client.get(f"/operations/v1/{h.create()}", headers=AUTH)
    assert running.json()["state"] == "PENDING" and "x-emulator-hint" not in running.headers
    h = make_harness(export_duration=10)
    h.client.post("/__emulator/lifecycle", json={"finishAfterPolls": 5}, headers=AUTH)
    polled = h.client.get(f"/operations/v1/{h.create()}", headers=AUTH)
    assert polled.json()["state"] == "PENDING" and "x-emulator-hint" not in polled.headers


@pytest.mark.stores
def test_a_standstill_finishes_the_export_when_told_to(make_harness):
    h = make_harness(export_duration=10, finish_stalled_after_polls=2)
    op_id = h.create()
    states = [h.operation(op_id)["state"] for _ in range(3)]
    assert states == ["PENDING", "PENDING", "COMPLETED"]
    done = h.operation(op_id)
    assert parse(done["finishedAt"]) == START and done["estimatePctComplete"] == 100
    assert done["results"]["searchExportId"]
    second = h.create()
    hint = [h.client.get(f"/operations/v1/{second}", headers=AUTH) for _ in range(2)][1]
    assert hint.headers["x-emulator-hint"].endswith(
        "; it finishes anyway on poll 3 at a standstill (2 so far)"
    )
    # a failing segment fails, as it would have by the clock
    failing = h.create(segmentId="LegacyFunnel")
    final = [h.operation(failing) for _ in range(3)][-1]
    assert final["state"] == "ERROR" and "Legacy Checkout Step" in final["errorDetails"]
    # polls with the clock moving in between never count
    moving = h.create()
    for _ in range(4):
        assert h.operation(moving)["state"] == "PENDING"
        h.advance(1)


def test_duration_grows_with_export_size(make_harness):
    h = make_harness(export_duration=1, export_duration_per_million=10_000, population=50)
    small = h.create(timeRange={"start": "2026-02-27T00:00:00Z", "end": "2026-02-28T00:00:00Z"})
    large = h.create(timeRange={"start": "2026-01-01T00:00:00Z", "end": "2026-02-28T00:00:00Z"})
    small_done = parse(h.finish(small)["finishedAt"])
    large_done = parse(h.finish(large)["finishedAt"])
    assert large_done - START > (small_done - START) * 10


@pytest.mark.parametrize("failure_state", ["ERROR", "FAILED"])
def test_fixture_segment_fails_with_details(make_harness, failure_state):
    h = make_harness(export_duration=10, failure_state=failure_state)
    op_id = h.create(segmentId="LegacyFunnel")
    h.advance(3)
    assert h.operation(op_id)["state"] == "PENDING"
    h.advance(1)
    op = h.operation(op_id)
    assert op["state"] == failure_state and op["results"] is None
    assert "Legacy Checkout Step" in op["errorDetails"]
    assert op["estimatePctComplete"] == 40 and op["finishedAt"] is not None


@pytest.mark.stores
def test_cancel_pending_then_cannot_cancel_again(make_harness):
    h = make_harness(export_duration=10)
    op_id = h.create()
    h.advance(2)
    response = h.client.post(f"/operations/v1/{op_id}/cancel", headers=AUTH)
    assert response.status_code == 200 and response.json() == {}
    op = h.operation(op_id)
    assert op["state"] == "ERROR" and op["errorDetails"] == "cancelled"
    assert op["estimatePctComplete"] == 20 and parse(op["finishedAt"]) == START + timedelta(
        seconds=2
    )
    h.advance(60)
    assert h.operation(op_id)["state"] == "ERROR"
    err = assert_error(h.client.post(f"/operations/v1/{op_id}/cancel", headers=AUTH), 501, 12)
    assert "ERROR" in err["message"]


def test_cancel_completed_is_501_and_unknown_is_404(harness):
    op = harness.finish(harness.create())
    assert_error(harness.client.post(f"/operations/v1/{op['id']}/cancel", headers=AUTH), 501, 12)
    assert_error(harness.client.post("/operations/v1/nope/cancel", headers=AUTH), 404, 5)
    assert_error(harness.client.get("/operations/v1/nope", headers=AUTH), 404, 5)


@pytest.mark.stores
def test_list_filters_and_pages(make_harness):
    h = make_harness(export_duration=10)
    done = [h.create() for _ in range(3)]
    h.advance(11)
    pending = [h.create() for _ in range(4)]
    body = h.client.get("/operations/v1", params={"type": "SEARCH_EXPORT"}, headers=AUTH).json()
    assert set(body) == {"operations"}
    assert [o["id"] for o in body["operations"]] == (done + pending)[::-1]  # newest first
    by_state = h.client.get("/operations/v1", params={"state": "COMPLETED"}, headers=AUTH).json()
    assert {o["id"] for o in by_state["operations"]} == set(done)
    ids, token = [], None
    while True:
        params = {"limit": 3} | ({"pagination_token": token} if token else {})
        page = h.client.get("/operations/v1", params=params, headers=AUTH).json()
        ids += [o["id"] for o in page["operations"]]
        token = page.get("nextPaginationToken")
        if not token:
            break
    assert ids == (done + pending)[::-1]


@pytest.mark.parametrize(
    "op_type",
    ["DELETE_USER", "DELETE_SESSION", "DELETE_SEGMENT_SESSIONS", "DELETE_SEGMENT_USERS"],
)
def test_list_of_a_documented_type_never_created_is_empty(harness, op_type):
    harness.create()  # a SEARCH_EXPORT, which must not be listed under another type
    response = harness.client.get("/operations/v1", params={"type": op_type}, headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"operations": []}


@pytest.mark.parametrize(
    "params,word",
    [
        ({"type": "BULK_DELETE"}, "SEARCH_EXPORT"),
        ({"state": "DONE"}, "PENDING"),
        ({"limit": "x"}, "limit"),
    ],
)
def test_list_rejects_bad_parameters(harness, params, word):
    err = assert_error(harness.client.get("/operations/v1", params=params, headers=AUTH), 400, 3)
    assert word in err["message"]


def test_ids_are_deterministic_for_a_seed(make_harness):
    first = [make_harness(seed=7).create() for _ in range(1)]
    h1, h2, h3 = make_harness(seed=7), make_harness(seed=7), make_harness(seed=8)
    a = [h1.create() for _ in range(3)]
    assert a == [h2.create() for _ in range(3)]
    assert a != [h3.create() for _ in range(3)]
    assert first[0] == a[0]


def test_status_is_a_pure_function_of_the_clock():
    from fullstory_emulator.store.records import ExportSpec

    spec = ExportSpec(
        "everyone", "event", "SCOPE_EVENT", "FORMAT_CSV", 0, 1, 0, 1, ("IndvId",), "UTC", 1
    )
    record = OperationRecord("op", "t", 1, START, spec, Lifecycle(duration=7.0), "ex", "Everyone")
    readings = [START + timedelta(seconds=s / 10) for s in range(0, 100)]
    first = [status_at(record, t, failure_state="ERROR", retention=60) for t in readings]
    second = [status_at(record, t, failure_state="ERROR", retention=60) for t in readings]
    assert first == second
    pcts = [s.pct for s in first]
    assert pcts == sorted(pcts) and max(pcts) == 100 and pcts.count(100) == 100 - 70


@pytest.mark.parametrize(
    "key,status",
    [
        ("na1.emulator-architect-key", 200),  # same tenant, may export: may cancel any export
        ("na1.emulator-standard-key", 403),  # same tenant, may not export: may not cancel
        ("eu1.emulator-other-org-key", 404),  # another tenant: the operation does not exist
    ],
)
def test_who_may_cancel_an_export(make_harness, key, status):
    h = make_harness(keys=ROOT / "fixtures" / "keys.json", export_duration=100)
    admin = {"Authorization": "Basic na1.emulator-demo-key"}
    op_id = h.create(headers=admin)
    response = h.client.post(
        f"/operations/v1/{op_id}/cancel", headers={"Authorization": f"Basic {key}"}
    )
    assert response.status_code == status, response.text
    state = h.client.get(f"/operations/v1/{op_id}", headers=admin).json()["state"]
    assert state == ("ERROR" if status == 200 else "PENDING")
