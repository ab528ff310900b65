"""The control API (fullstory_emulator/control/): clock, lifecycle, faults, journal, rate limits,
tenants, reset and scenarios, through real HTTP. In-process here; test_e2e_control.py drops real
connections on a real server."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from fullstory_emulator.http.faults import ConnectionDropped
from fullstory_emulator.settings import RateLimit
from tests.helpers import AUTH, START, assert_error, parse

OTHER = {"Authorization": "Basic na1.other-tenant-key"}


def control(h, method, path, body=None, headers=AUTH):
    response = h.client.request(method, f"/__emulator/{path}", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_health_and_now_header(harness):
    response = harness.client.get("/__emulator/health")
    assert response.json()["status"] == "ok"
    api = harness.client.get("/segments/v1", headers=AUTH)
    assert parse(api.headers["X-Emulator-Now"]) == START


def test_clock_read_set_advance_freeze(make_harness):
    h = make_harness(freeze_clock=False)
    assert control(h, "POST", "clock", {"freeze": True, "set": "2026-05-01T00:00:00Z"}) == {
        "now": "2026-05-01T00:00:00.000000Z",
        "frozen": True,
    }
    assert control(h, "POST", "clock", {"advance": 90.5})["now"] == "2026-05-01T00:01:30.500000Z"
    assert control(h, "GET", "clock")["frozen"] is True
    assert control(h, "POST", "clock", {"freeze": False})["frozen"] is False


@pytest.mark.parametrize(
    "body,word",
    [
        ({}, "advance"),
        ({"advance": -1}, "advance"),
        ({"set": "tomorrow"}, "set"),
        ({"freeze": "yes"}, "freeze"),
        ({"warp": 1}, "advance"),
    ],
)
def test_clock_rejects_bad_bodies(harness, body, word):
    err = assert_error(harness.client.post("/__emulator/clock", json=body, headers=AUTH), 400, 3)
    assert word in err["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"set": "9999-12-31T23:59:58Z"},
        {"set": "3000-01-01T00:00:01Z"},
        {"set": "1999-12-31T23:59:59Z"},
    ],
)
def test_clock_refuses_instants_outside_its_range(harness, body):
    err = assert_error(harness.client.post("/__emulator/clock", json=body, headers=AUTH), 400, 3)
    assert "2000-01-01T00:00:00Z to 3000-01-01T00:00:00Z" in err["message"]
    assert harness.client.get("/__emulator/health").status_code == 200


def test_repeated_advances_stop_at_the_end_of_the_range_and_nothing_breaks(make_harness):
    h = make_harness(freeze_clock=False)
    control(h, "POST", "clock", {"set": "2999-12-31T23:59:58Z"}, headers={})
    step = {"advance": 10 * 366 * 86400}
    err = assert_error(h.client.post("/__emulator/clock", json=step), 400, 3)
    assert "past 3000-01-01" in err["message"]
    # A tenant's view is an offset from the instance clock: set both to the end, and the view
    # reads centuries past it; it stands at the end of the range instead.
    control(h, "POST", "clock", {"set": "2999-12-31T23:59:58Z"})
    control(h, "POST", "clock", {"set": "2000-01-01T00:00:00Z"}, headers={})
    control(h, "POST", "clock", {"set": "2999-12-31T23:59:58Z"})
    control(h, "POST", "clock", {"set": "2999-12-31T23:59:58Z"}, headers={})
    assert control(h, "GET", "clock")["now"] == "3000-01-01T00:00:00.000000Z"
    op = h.create()  # an export created at the end of time still works end to end
    assert h.operation(op)["state"] in ("PENDING", "COMPLETED")
    assert h.client.get("/__emulator/health").status_code == 200
    assert control(h, "POST", "reset", headers={}) == {}


def test_advancing_301_seconds_expires_a_minted_url(harness):
    op = harness.finish(harness.create())
    url = harness.location(op["results"]["searchExportId"])
    control(harness, "POST", "clock", {"advance": 301})
    response = harness.client.get(url)
    assert response.status_code == 400 and "<Code>ExpiredToken</Code>" in response.text


def test_frozen_clock_keeps_an_export_at_the_same_percent(make_harness):
    h = make_harness(export_duration=100)
    op_id = h.create()
    control(h, "POST", "clock", {"advance": 37})
    assert {h.operation(op_id)["estimatePctComplete"] for _ in range(20)} == {37}


@pytest.mark.stores
def test_tenant_clocks_are_separate(harness):
    mine, theirs = harness.create(), harness.create(headers=OTHER)
    control(harness, "POST", "clock", {"advance": 3600})
    assert harness.operation(mine)["state"] == "COMPLETED"
    other = harness.client.get(f"/operations/v1/{theirs}", headers=OTHER).json()
    assert other["state"] == "PENDING"
    assert (
        parse(harness.client.get("/segments/v1", headers=OTHER).headers["X-Emulator-Now"]) == START
    )


@pytest.mark.stores
def test_finish_after_three_polls_completes_on_the_fourth(harness):
    control(harness, "POST", "lifecycle", {"finishAfterPolls": 3})
    op_id = harness.create()
    control(harness, "POST", "clock", {"advance": 10_000})  # the clock no longer decides
    polls = [harness.operation(op_id) for _ in range(4)]
    assert [p["state"] for p in polls] == ["PENDING"] * 3 + ["COMPLETED"]
    assert [p["estimatePctComplete"] for p in polls] == [0, 33, 66, 100]
    assert harness.operation(op_id)["finishedAt"] == polls[3]["finishedAt"]  # stable afterwards


@pytest.mark.stores
def test_scripted_percent_sequence_then_fail(harness):
    control(harness, "POST", "lifecycle", {"pctSequence": [5, 5, 60, 90], "fail": "disk full"})
    op_id = harness.create()
    polls = [harness.operation(op_id) for _ in range(5)]
    assert [p["estimatePctComplete"] for p in polls[:4]] == [5, 5, 60, 90]
    assert polls[4]["state"] == "ERROR" and polls[4]["errorDetails"] == "disk full"
    assert polls[4]["estimatePctComplete"] == 90


def test_lifecycle_rules_by_segment_and_times(harness):
    control(harness, "POST", "lifecycle", {"immediately": True, "times": 1})
    control(harness, "POST", "lifecycle", {"segmentId": "rageClicks", "fail": "nope", "times": 1})
    first = harness.operation(harness.create())
    assert first["state"] == "COMPLETED" and first["finishedAt"] == first["createdAt"]
    assert harness.operation(harness.create())["state"] == "PENDING"  # rule used up
    rage = harness.finish(harness.create(segmentId="rageClicks"))
    assert rage["state"] == "ERROR" and rage["errorDetails"] == "nope"
    assert control(harness, "GET", "lifecycle") == {"lifecycle": []}


def test_fail_next_export_for_one_tenant_only(harness):
    control(harness, "POST", "lifecycle", {"fail": "quota exceeded", "times": 1})
    theirs = harness.create(headers=OTHER)
    mine = harness.create()
    harness.advance(60)
    assert harness.operation(mine)["errorDetails"] == "quota exceeded"
    other = harness.client.get(f"/operations/v1/{theirs}", headers=OTHER).json()
    assert other["state"] == "COMPLETED"


@pytest.mark.parametrize(
    "body",
    [
        {"finishAfterPolls": 2, "immediately": True},
        {"pctSequence": [50, 10]},
        {"pctSequence": [100]},
        {"times": 0},
        {"finishAfterSeconds": "soon"},
    ],
)
def test_lifecycle_rejects_bad_rules(harness, body):
    assert_error(harness.client.post("/__emulator/lifecycle", json=body, headers=AUTH), 400, 3)


def test_direct_complete_and_fail(make_harness):
    h = make_harness(export_duration=1000)
    a, b = h.create(), h.create()
    control(h, "POST", f"operations/{a}/complete")
    control(h, "POST", f"operations/{b}/fail", {"errorDetails": "boom"})
    assert h.operation(a)["state"] == "COMPLETED"
    assert h.operation(b)["state"] == "ERROR" and h.operation(b)["errorDetails"] == "boom"
    assert_error(h.client.post(f"/__emulator/operations/{a}/fail", headers=AUTH), 409, 9)
    assert_error(h.client.post("/__emulator/operations/nope/complete", headers=AUTH), 404, 5)


@pytest.mark.stores
def test_fault_rule_yields_exactly_n_failures_then_normal_answers(harness):
    rule = control(
        harness,
        "POST",
        "faults",
        {"method": "GET", "path": "/segments/*", "status": 503, "times": 3},
    )
    statuses = [harness.client.get("/segments/v1", headers=AUTH).status_code for _ in range(5)]
    assert statuses == [503, 503, 503, 200, 200]
    body = harness.client.get("/operations/v1", headers=AUTH)
    assert body.status_code == 200  # other paths untouched
    assert control(harness, "GET", "faults") == {"faults": []}
    assert rule["id"]


def test_fault_429_carries_retry_after_and_contract_body(harness):
    control(harness, "POST", "faults", {"path": "/operations/v1/*", "status": 429, "retryAfter": 7})
    op_id = harness.create()
    response = harness.client.get(f"/operations/v1/{op_id}", headers=AUTH)
    assert_error(response, 429, 8)
    assert response.headers["Retry-After"] == "7"


def test_fault_matches_headers_and_is_per_tenant(harness):
    control(harness, "POST", "faults", {"header": {"X-Client": "etl"}, "status": 500})
    assert harness.client.get("/segments/v1", headers=AUTH).status_code == 200
    assert harness.client.get("/segments/v1", headers=AUTH | {"X-Client": "etl"}).status_code == 500
    assert (
        harness.client.get("/segments/v1", headers=OTHER | {"X-Client": "etl"}).status_code == 200
    )


@pytest.mark.stores
def test_probability_is_seeded(make_harness):
    def pattern(seed):
        h = make_harness(seed=seed)
        control(h, "POST", "faults", {"path": "/segments/v1", "status": 503, "probability": 0.5})
        return [h.client.get("/segments/v1", headers=AUTH).status_code for _ in range(40)]

    first = pattern(3)
    assert first == pattern(3) and 10 < first.count(503) < 30


def test_instance_fault_and_removal(harness):
    rule = control(harness, "POST", "faults", {"path": "/segments/v1", "status": 500}, headers={})
    assert harness.client.get("/segments/v1", headers=OTHER).status_code == 500
    control(harness, "DELETE", f"faults/{rule['id']}", headers={})
    assert harness.client.get("/segments/v1", headers=OTHER).status_code == 200
    assert_error(harness.client.delete("/__emulator/faults/F99"), 404, 5)


def test_fault_header_per_request(harness):
    r = harness.client.get(
        "/segments/v1", headers=AUTH | {"X-Emulator-Fault": "status=429; retry-after=9"}
    )
    assert r.status_code == 429 and r.headers["retry-after"] == "9"
    bad = harness.client.get("/segments/v1", headers=AUTH | {"X-Emulator-Fault": "explode"})
    assert_error(bad, 400, 3)
    with pytest.raises(ConnectionDropped):
        harness.client.get("/segments/v1", headers=AUTH | {"X-Emulator-Fault": "drop"})


def test_storage_faults_answer_xml(harness):
    op = harness.finish(harness.create())
    url = harness.location(op["results"]["searchExportId"])
    r = harness.client.get(url, headers={"X-Emulator-Fault": "status=503"})
    assert r.status_code == 503 and "<Code>ServiceUnavailable</Code>" in r.text


@pytest.mark.parametrize(
    "body",
    [
        {"status": 503, "probability": 2},
        {"path": "/x"},
        {"status": 99},
        {"header": ["x"]},
        {"drop": "yes"},
    ],
)
def test_fault_rejects_bad_rules(harness, body):
    assert_error(harness.client.post("/__emulator/faults", json=body, headers=AUTH), 400, 3)


@pytest.mark.stores
def test_journal_records_the_workflow_in_order(harness):
    op = harness.finish(harness.create())
    export_id = op["results"]["searchExportId"]
    url = harness.location(export_id)
    harness.client.get(url)
    harness.client.get("/segments/v1", headers=OTHER)  # another tenant: not in mine
    entries = control(harness, "GET", "journal")["requests"]
    steps = [(e["method"], e["path"].split("/")[1], e["status"]) for e in entries]
    assert steps[0] == ("POST", "segments", 200)
    assert ("GET", "operations", 200) in steps
    assert steps[-2:] == [("GET", "search", 200), ("GET", "fullstory-emulator-exports", 200)]
    assert all("authorization" not in e["headers"] for e in entries)
    assert {e["tenant"] for e in entries} == {entries[0]["tenant"]}
    only_ops = control(harness, "GET", "journal?path=/operations/*&method=GET")["requests"]
    assert only_ops and all(e["path"].startswith("/operations/") for e in only_ops)
    assert len(control(harness, "GET", "journal", headers={})["requests"]) == len(entries) + 1


def test_clearing_the_journal_keeps_everything_else(harness):
    op_id = harness.create()
    control(harness, "DELETE", "journal")
    assert control(harness, "GET", "journal")["requests"] == []
    assert harness.operation(op_id)["id"] == op_id


@pytest.mark.stores
def test_next_n_requests_get_429(harness):
    control(harness, "POST", "ratelimit", {"denyNext": 2, "retryAfter": 4})
    first = harness.client.get("/segments/v1", headers=AUTH)
    assert_error(first, 429, 8)
    assert first.headers["Retry-After"] == "4"
    assert harness.client.get("/segments/v1", headers=AUTH).status_code == 429
    assert harness.client.get("/segments/v1", headers=AUTH).status_code == 200
    assert harness.client.get("/segments/v1", headers=OTHER).status_code == 200


def test_rate_limit_per_tenant(harness):
    control(harness, "POST", "ratelimit", {"limit": "1/60,2"})
    codes = [harness.client.get("/segments/v1", headers=AUTH).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert harness.client.get("/segments/v1", headers=OTHER).status_code == 200
    harness.client.post("/__emulator/clock", json={"advance": 60}, headers=AUTH)
    assert harness.client.get("/segments/v1", headers=AUTH).status_code == 200
    control(harness, "POST", "ratelimit", {"limit": "off"})
    assert all(
        harness.client.get("/segments/v1", headers=AUTH).status_code == 200 for _ in range(5)
    )


def test_config_overrides_url_ttl(harness):
    control(harness, "POST", "config", {"urlTtl": 20})
    op = harness.finish(harness.create())
    assert "X-Goog-Expires=20&" in harness.location(op["results"]["searchExportId"])
    assert_error(harness.client.post("/__emulator/config", json={"warp": 1}, headers=AUTH), 400, 3)


@pytest.mark.stores
def test_reset_one_tenant_restores_seeded_state(harness):
    first = harness.create()
    theirs = harness.create(headers=OTHER)
    control(harness, "POST", "faults", {"path": "/segments/v1", "status": 500})
    control(harness, "POST", "clock", {"advance": 999})
    control(harness, "POST", "reset")
    assert harness.client.get("/operations/v1", headers=AUTH).json()["operations"] == []
    assert harness.client.get("/segments/v1", headers=AUTH).status_code == 200
    assert control(harness, "GET", "clock")["now"].startswith("2026-03-01T12:00:00")
    assert harness.create() == first  # the id sequence starts over: same ids again
    assert harness.client.get(f"/operations/v1/{theirs}", headers=OTHER).status_code == 200


def test_reset_everything(harness):
    harness.create()
    harness.create(headers=OTHER)
    control(harness, "POST", "clock", {"advance": 999}, headers={})
    control(harness, "POST", "reset", headers={})
    assert harness.client.get("/operations/v1", headers=OTHER).json()["operations"] == []
    assert parse(control(harness, "GET", "clock", headers={})["now"]) == START
    assert [e["path"] for e in control(harness, "GET", "journal", headers={})["requests"]] == [
        "/operations/v1"  # only the request made since the reset
    ]


def test_control_token(make_harness):
    h = make_harness(control_token="s3cret")
    assert_error(h.client.post("/__emulator/reset"), 401, 16)
    ok = h.client.post("/__emulator/reset", headers={"X-Emulator-Token": "s3cret"})
    assert ok.status_code == 200
    assert h.client.get("/__emulator/health").status_code == 200  # health stays open


def test_scenarios_by_api_and_at_start(make_harness):
    h = make_harness()
    names = {s["name"] for s in control(h, "GET", "scenarios")["scenarios"]}
    assert {"slow-export", "flaky-api", "rate-limited", "expired-url-mid-download"} <= names
    control(h, "POST", "scenarios/rate-limited")
    assert [h.client.get("/segments/v1", headers=AUTH).status_code for _ in range(4)] == [
        429
    ] * 3 + [200]
    assert_error(h.client.post("/__emulator/scenarios/nope", headers=AUTH), 404, 5)

    started = make_harness(scenario="stepwise-export")
    op_id = started.create()
    assert [started.operation(op_id)["estimatePctComplete"] for _ in range(6)] == [
        5,
        20,
        45,
        70,
        95,
        100,
    ]
    control(started, "POST", "reset", headers={})  # start scenarios come back after a reset
    op_id = started.create()
    assert started.operation(op_id)["estimatePctComplete"] == 5


def test_unknown_start_scenario_is_refused(make_harness):
    with pytest.raises(ValueError, match="nope"):
        make_harness(scenario="nope")


def test_control_with_bad_key_is_401(harness):
    r = harness.client.post("/__emulator/reset", headers={"Authorization": "Basic nope"})
    assert_error(r, 401, 16)


def test_download_is_journaled_for_its_tenant(harness):
    op = harness.finish(harness.create())
    harness.client.get(harness.location(op["results"]["searchExportId"]))
    entries = control(harness, "GET", "journal?path=/fullstory-emulator-exports/*")["requests"]
    assert len(entries) == 1 and entries[0]["status"] == 200
    data = gzip.decompress(
        harness.client.get(harness.location(op["results"]["searchExportId"])).content
    )
    assert json.loads(data.splitlines()[0])["IndvId"] > 0


@pytest.mark.parametrize(
    "endpoint,body",
    [
        ("clock", {"advance": 1e300}),
        ("lifecycle", {"finishAfterSeconds": 1e300}),
        ("faults", {"latencyMs": 1e12}),
        ("config", {"urlTtl": 1e300}),
        ("lifecycle", {"finishAfterPolls": 10**30}),
    ],
)
def test_extreme_values_are_refused_not_crashes(harness, endpoint, body):
    err = assert_error(
        harness.client.post(f"/__emulator/{endpoint}", json=body, headers=AUTH), 400, 3
    )
    assert next(iter(body)) in err["message"]


def test_tenant_control_mode_keeps_each_tenant_to_itself(make_harness):
    h = make_harness(control_auth="tenant", control_token="admin-secret")
    mine, theirs = h.create(), h.create(headers=OTHER)
    h.client.get("/segments/v1", headers=OTHER)
    for method, path in [("GET", "journal"), ("POST", "reset"), ("GET", "clock")]:
        response = h.client.request(method, f"/__emulator/{path}")
        assert "Authorization" in assert_error(response, 401, 16)["message"]
    wrong = {"X-Emulator-Token": "guess"}
    assert_error(h.client.get("/__emulator/journal", headers=wrong), 401, 16)
    # A key acts on its own tenant only: the other tenant's operation does not exist for it.
    assert_error(h.client.post(f"/__emulator/operations/{theirs}/complete", headers=AUTH), 404, 5)
    control(h, "POST", f"operations/{mine}/complete")
    journal = control(h, "GET", "journal")["requests"]
    assert journal and {e["tenant"] for e in journal} == {journal[0]["tenant"]}
    control(h, "POST", "faults", {"status": 503, "path": "/segments/v1"})
    assert h.client.get("/segments/v1", headers=OTHER).status_code == 200  # not theirs
    # The admin token acts on the whole instance.
    admin = {"X-Emulator-Token": "admin-secret"}
    everyone = control(h, "GET", "journal", headers=admin)["requests"]
    assert len({e["tenant"] for e in everyone}) == 2
    control(h, "POST", f"operations/{theirs}/complete", headers=admin)
    assert h.operation(mine)["state"] == "COMPLETED"
    assert h.client.get("/__emulator/health").status_code == 200  # never needs anything


def test_open_control_mode_acts_on_the_instance_without_a_key(harness):
    harness.client.get("/segments/v1", headers=OTHER)
    harness.client.get("/segments/v1", headers=AUTH)
    everyone = control(harness, "GET", "journal", headers={})["requests"]
    assert len({e["tenant"] for e in everyone}) == 2


# -- the failure state: ERROR by default, FAILED for FullStory's own clients ----------------------


def _details_of_other(h, operation_id):
    return h.client.get(f"/operations/v1/{operation_id}", headers=OTHER).json()["errorDetails"]


def _states(h, headers=AUTH):
    """Every operation's state, newest first, as the tenant lists them."""
    body = h.client.get("/operations/v1", headers=headers).json()
    return [op["state"] for op in body["operations"]]


@pytest.mark.stores
def test_failure_state_per_tenant_through_every_view(harness):
    mine, theirs = (
        harness.create(segmentId="LegacyFunnel"),
        harness.create(segmentId="LegacyFunnel", headers=OTHER),
    )
    pending = harness.create()
    harness.create()  # left pending, failed by the control API below
    control(harness, "POST", "config", {"failureState": "FAILED"})
    harness.advance(1)  # LegacyFunnel fails at 40% of 2 s
    assert harness.operation(mine)["state"] == "FAILED"
    other = harness.client.get(f"/operations/v1/{theirs}", headers=OTHER).json()
    assert other["state"] == "ERROR"  # another tenant keeps the setting
    assert harness.client.post(f"/operations/v1/{pending}/cancel", headers=AUTH).json() == {}
    ops = harness.client.get("/operations/v1", headers=AUTH).json()["operations"]
    assert [op["state"] for op in ops] == ["PENDING", "FAILED", "FAILED"]
    control(harness, "POST", f"operations/{ops[0]['id']}/fail", {"errorDetails": "boom"})
    assert _states(harness) == ["FAILED", "FAILED", "FAILED"]
    for name in ("FAILED", "ERROR"):  # either name filters failures
        listed = harness.client.get(f"/operations/v1?state={name}", headers=AUTH).json()
        assert len(listed["operations"]) == 3
    cancelled = harness.client.post(f"/operations/v1/{mine}/cancel", headers=AUTH)
    assert assert_error(cancelled, 501, 12)["message"].endswith(
        "is FAILED and can no longer be cancelled"
    )
    metrics = harness.client.get("/metrics").text
    assert 'fullstory_emulator_operations{state="FAILED"} 3.0' in metrics
    assert 'fullstory_emulator_operations{state="ERROR"} 1.0' in metrics
    control(harness, "POST", "config", {"failureState": None})  # back to the setting
    assert _states(harness) == ["ERROR", "ERROR", "ERROR"]


def test_failure_state_for_the_instance_and_tenant_overrides(make_harness):
    h = make_harness(failure_state="FAILED")  # the setting, under every override
    theirs = h.create(segmentId="LegacyFunnel", headers=OTHER)
    mine = h.create(segmentId="LegacyFunnel")
    h.advance(1)
    assert _states(h) == ["FAILED"]
    control(h, "POST", "config", {"failureState": "error"}, headers={})  # every tenant
    assert _states(h) == _states(h, OTHER) == ["ERROR"]
    control(h, "POST", "config", {"failureState": "FAILED"})  # this tenant's own wins
    assert _states(h) == ["FAILED"] and _states(h, OTHER) == ["ERROR"]
    assert h.operation(mine)["errorDetails"] == _details_of_other(h, theirs)
    control(h, "POST", "reset")  # a tenant's reset drops its override
    assert _states(h) == [] and _states(h, OTHER) == ["ERROR"]


@pytest.mark.parametrize("value", ["CANCELLED", 3, True, ""])
def test_failure_state_refuses_other_names(harness, value):
    err = assert_error(
        harness.client.post("/__emulator/config", json={"failureState": value}, headers=AUTH),
        400,
        3,
    )
    assert err["message"] == (f"failureState must be one of ERROR, FAILED (or null), got {value!r}")


def test_config_names_what_it_takes(harness):
    err = assert_error(harness.client.post("/__emulator/config", json={"warp": 1}), 400, 3)
    assert "failureState" in err["message"] and "unknown: warp" in err["message"]


def test_failed_state_scenario(harness):
    listed = control(harness, "GET", "scenarios")["scenarios"]
    assert "FAILED" in next(s["description"] for s in listed if s["name"] == "failed-state")
    control(harness, "POST", "scenarios/failed-state")
    mine = harness.create(segmentId="LegacyFunnel")
    harness.create(segmentId="LegacyFunnel", headers=OTHER)
    assert harness.finish(mine)["state"] == "FAILED"
    assert _states(harness, OTHER) == ["ERROR"]  # the scenario was applied to one tenant


# -- injected answers read like FullStory's own; a header, not the body, gives them away ----------


def test_injected_429_reads_as_the_rate_limiter_and_is_marked(make_harness):
    h = make_harness(rate_limit=RateLimit(1, 60, 1))
    op_id = h.create()
    control(h, "POST", "faults", {"path": "/operations/v1/*", "status": 429, "retryAfter": 7})
    injected = h.client.get(f"/operations/v1/{op_id}", headers=AUTH)
    assert injected.headers["Retry-After"] == "7"
    assert assert_error(injected, 429, 8)["message"] == (
        "rate limit exceeded for operations.get: 1 requests per 60 s with a burst of 1; "
        "retry after 7 s"
    )
    assert re.fullmatch(r"status=429 \(rule F\d+\)", injected.headers["X-Emulator-Fault"])
    control(h, "DELETE", "faults")
    h.client.get("/segments/v1", headers=AUTH)  # spends the segments.list bucket's one token
    real = h.client.get("/segments/v1", headers=AUTH)
    assert assert_error(real, 429, 8)["message"] == (
        "rate limit exceeded for segments.list: 1 requests per 60 s with a burst of 1; "
        "retry after 60 s"
    )
    assert "X-Emulator-Fault" not in real.headers


def test_injected_errors_never_mention_the_emulator(harness):
    cases = {
        "status=503": (503, 14, "the service is currently unavailable"),
        "status=500": (500, 13, "internal error"),
        "status=429": (429, 8, "rate limit exceeded for segments.list; retry after 1 s"),
        "status=404": (404, 5, "not found"),
        "status=418": (418, 2, "i'm a teapot"),
    }
    for header, (status, code, message) in cases.items():
        r = harness.client.get("/segments/v1", headers=AUTH | {"X-Emulator-Fault": header})
        assert assert_error(r, status, code)["message"] == message
        assert r.headers["X-Emulator-Fault"] == header
    assert "X-Emulator-Fault" not in harness.client.get("/segments/v1", headers=AUTH).headers
    unrouted = harness.client.get("/nowhere", headers=AUTH | {"X-Emulator-Fault": "status=429"})
    assert assert_error(unrouted, 429, 8)["message"].startswith("rate limit exceeded for GET ")
    control(harness, "POST", "faults", {"path": "/segments/v1", "status": 503, "message": "mine"})
    assert harness.client.get("/segments/v1", headers=AUTH).json()["message"] == "mine"


def test_injected_storage_errors_read_as_cloud_storage(harness):
    op = harness.finish(harness.create())
    url = harness.location(op["results"]["searchExportId"])
    r = harness.client.get(url, headers={"X-Emulator-Fault": "status=500"})
    assert r.status_code == 500 and r.headers["X-Emulator-Fault"] == "status=500"
    assert r.text == (
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code>"
        "<Message>We encountered an internal error. Please try again.</Message></Error>"
    )
    slow = harness.client.get(url, headers={"X-Emulator-Fault": "latency=1"})
    assert slow.status_code == 200 and slow.headers["X-Emulator-Fault"] == "latency=1ms"


def test_expired_fault_answers_a_download_as_an_expired_signed_url_once(harness):
    op = harness.finish(harness.create())
    url = harness.location(op["results"]["searchExportId"])
    control(
        harness,
        "POST",
        "faults",
        {"path": "/fullstory-emulator-exports/*", "expired": True, "times": 1},
    )
    first = harness.client.get(url)
    assert first.status_code == 400
    assert "<Code>ExpiredToken</Code>" in first.text
    assert "Request signature expired at: 2026-03-01T12:" in first.text
    assert first.headers["X-Emulator-Fault"].startswith("expired")
    assert harness.client.get(url).status_code == 200  # only the first
    # An API request is not a download: the rule has nothing to do there.
    control(harness, "POST", "faults", {"path": "/segments/v1", "expired": True})
    assert harness.client.get("/segments/v1", headers=AUTH).status_code == 200


def test_truncate_after_fraction_cuts_a_download_at_that_share_of_its_length(harness):
    op = harness.finish(harness.create())
    url = harness.location(op["results"]["searchExportId"])
    size = int(harness.client.head(url).headers["Content-Length"])
    control(
        harness,
        "POST",
        "faults",
        {"path": "/fullstory-emulator-exports/*", "truncateAfterFraction": 0.5, "times": 1},
    )
    with pytest.raises(ConnectionDropped):
        harness.client.get(url)
    cut = control(harness, "GET", "journal?last=1")["requests"][0]
    assert cut["bytes"] == size // 2 and cut["fault"].startswith("truncate=0.5x")
    assert harness.client.get(url).status_code == 200
    assert control(harness, "GET", "journal?last=1")["requests"][0]["bytes"] == size


@pytest.mark.parametrize(
    "body,word",
    [
        ({"truncateAfterFraction": 1}, "truncateAfterFraction"),
        ({"truncateAfterFraction": 0}, "truncateAfterFraction"),
        ({"truncateAfterFraction": "half"}, "truncateAfterFraction"),
        ({"expired": "yes"}, "expired"),
    ],
)
def test_fault_refuses_bad_fraction_and_expired(harness, body, word):
    error = assert_error(harness.client.post("/__emulator/faults", json=body, headers=AUTH), 400, 3)
    assert word in error["message"]


def test_journal_keeps_each_answers_retry_after_and_bytes(harness):
    control(
        harness,
        "POST",
        "faults",
        {"path": "/segments/v1", "status": 429, "retryAfter": 3, "times": 1},
    )
    harness.client.get("/segments/v1", headers=AUTH)
    ok = harness.client.get("/segments/v1", headers=AUTH)
    limited, answered = control(harness, "GET", "journal")["requests"]
    assert (limited["status"], limited["retryAfter"]) == (429, 3)
    assert (answered["status"], answered["retryAfter"]) == (200, None)
    assert answered["bytes"] == len(ok.content)
