"""The control endpoints the console reads and acts through (fullstory_emulator/http/control.py):
tenants, operations, results, preview, exports, segments, config, one lifecycle rule, the
journal's status filter and X-Emulator-Tenant, through real HTTP on both store backends."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from fullstory_emulator.auth import DEMO_KEY, key_id, label_of
from tests.helpers import AUTH, KEY, assert_error, parse

OTHER_KEY = "na1.other-tenant-key"
OTHER = {"Authorization": f"Basic {OTHER_KEY}"}
MINE, THEIRS = key_id(KEY), key_id(OTHER_KEY)


def control(h, method, endpoint, body=None, headers=None, **params):
    response = h.client.request(
        method, f"/__emulator/{endpoint}", json=body, headers=headers or {}, params=params
    )
    assert response.status_code == 200, response.text
    return response.json()


def as_tenant(tenant):
    return {"X-Emulator-Tenant": tenant}


def tenants(h, headers=None):
    return control(h, "GET", "tenants", headers=headers)["tenants"]


@pytest.mark.stores
def test_tenants_are_those_with_operations_requests_or_settings(harness):
    assert tenants(harness) == []
    harness.create()
    harness.client.get("/segments/v1", headers=OTHER)  # a journal entry only
    control(harness, "POST", "faults", {"status": 503}, as_tenant("zz-settings-only"))
    control(harness, "POST", "clock", {"advance": 5}, as_tenant("clock-only"))  # no store record
    expected = sorted([MINE, THEIRS, "zz-settings-only"])
    assert tenants(harness) == expected
    # naming a tenant still lists them all, to choose from; a key sees only its own tenant
    assert tenants(harness, as_tenant(MINE)) == expected
    assert tenants(harness, AUTH) == [MINE]
    control(harness, "POST", "reset", headers=OTHER)
    assert tenants(harness) == [MINE, "zz-settings-only"]
    control(harness, "POST", "reset")
    assert tenants(harness) == []


def test_tenants_have_labels_a_person_recognises_never_the_key(harness):
    harness.create()
    answer = control(harness, "GET", "tenants")
    demo = key_id(DEMO_KEY)
    assert answer["default"] == {"tenant": demo, "label": "na1.emul…"}
    assert answer["labels"] == {MINE: label_of(KEY)}
    assert label_of(KEY).startswith(KEY.split(".")[0] + ".") and KEY not in str(answer)


def test_a_fresh_key_learns_its_own_tenant(harness):
    """How the console's "Use a key" finds the tenant of a key no request has used yet."""
    fresh = "eu1.never-used-before"
    answer = control(harness, "GET", "tenants", headers={"Authorization": f"Basic {fresh}"})
    assert answer["tenants"] == [key_id(fresh)]
    assert answer["labels"] == {key_id(fresh): "eu1.neve…"}
    assert answer["default"] is None  # another tenant's


def test_a_keys_file_labels_its_tenants_by_name(make_harness, tmp_path):
    h = make_harness(keys=Path("example"))
    answer = control(h, "GET", "tenants")
    assert answer["default"] == {"tenant": "demo", "label": "demo"}
    assert answer["labels"] == {}  # nothing seen yet
    h.client.get("/segments/v1", headers={"Authorization": "Basic eu1.emulator-other-org-key"})
    assert control(h, "GET", "tenants")["labels"] == {"other-org": "other-org"}
    keys = tmp_path / "keys.json"
    keys.write_text('{"keys": [{"key": "na1.reader-only-key", "role": "readonly"}]}')
    assert control(make_harness(keys=keys), "GET", "tenants")["default"] is None


@pytest.mark.stores
def test_operations_of_a_tenant_or_all_newest_first_in_the_api_shape(harness):
    first = harness.create()
    harness.advance(1)
    theirs = harness.create(headers=OTHER, format="FORMAT_CSV")
    harness.advance(1)
    second = harness.create(segmentId="rageClicks")
    everything = control(harness, "GET", "operations")["operations"]
    assert [op["id"] for op in everything] == [second, theirs, first]
    api = harness.client.get(f"/operations/v1/{first}", headers=AUTH).json()
    mine = control(harness, "GET", "operations", headers=as_tenant(MINE))["operations"]
    assert [op["id"] for op in mine] == [second, first]
    assert mine[1] == api | {
        "tenant": MINE,
        "segmentId": "everyone",
        "segmentName": "Everyone",
        "format": "FORMAT_NDJSON",
    }
    assert mine[0]["segmentName"] == "Rage Clicks"
    assert control(harness, "GET", "operations", headers=AUTH)["operations"] == mine
    assert everything[1]["tenant"] == THEIRS and everything[1]["format"] == "FORMAT_CSV"


@pytest.mark.stores
def test_operations_filter_by_state_and_limit_without_counting_polls(make_harness):
    h = make_harness(export_duration=100)
    done = h.create()
    h.advance(150)
    pending = h.create()
    h.advance(10)
    listed = control(h, "GET", "operations", state="PENDING")["operations"]
    assert [(op["id"], op["estimatePctComplete"], op["step"]) for op in listed] == [
        (pending, 10, listed[0]["step"])
    ]
    assert [op["id"] for op in control(h, "GET", "operations", state="COMPLETED")["operations"]]
    assert [op["id"] for op in control(h, "GET", "operations", limit="1")["operations"]] == [
        pending
    ]
    assert done != pending
    # finishAfterPolls counts API polls only: the console's reads do not move an export on
    control(h, "POST", "lifecycle", {"finishAfterPolls": 1}, AUTH)
    polled = h.create()
    for _ in range(3):
        control(h, "GET", "operations")
    assert h.operation(polled)["state"] == "PENDING"
    assert h.operation(polled)["state"] == "COMPLETED"


@pytest.mark.parametrize(
    "params,word",
    [({"state": "DONE"}, "state"), ({"limit": "0"}, "limit"), ({"limit": "x"}, "limit")],
)
def test_operations_reject_bad_parameters(harness, params, word):
    response = harness.client.get("/__emulator/operations", params=params)
    assert word in assert_error(response, 400, 3)["message"]


@pytest.mark.stores
def test_results_give_a_signed_url_that_downloads_the_export(harness):
    op_id = harness.create(format="FORMAT_CSV")
    pending = harness.client.get(f"/__emulator/operations/{op_id}/results")
    assert "not ready" in assert_error(pending, 404, 5)["message"]
    op = harness.finish(op_id)
    results = control(harness, "GET", f"operations/{op_id}/results")
    assert set(results) == {"location", "expires"}
    download = harness.client.get(results["location"])
    assert download.status_code == 200
    api_url = harness.location(op["results"]["searchExportId"])
    assert download.content == harness.client.get(api_url).content
    # another tenant's operation is not found under a tenant
    response = harness.client.get(f"/__emulator/operations/{op_id}/results", headers=OTHER)
    assert_error(response, 404, 5)


def cell(value):
    """A JSON value as the file writes it."""
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


@pytest.mark.stores
@pytest.mark.parametrize("fmt", ["FORMAT_CSV", "FORMAT_JSON", "FORMAT_NDJSON"])
def test_preview_is_the_first_rows_of_the_file(harness, fmt):
    op = harness.finish(harness.create(format=fmt))
    raw = gzip.decompress(
        harness.client.get(harness.location(op["results"]["searchExportId"])).content
    ).decode()
    preview = control(harness, "GET", f"operations/{op['id']}/preview", rows="5")
    columns = preview["columns"]
    assert preview["operationId"] == op["id"] and preview["format"] == fmt
    assert preview["more"] is True and len(preview["rows"]) == 5
    if fmt == "FORMAT_CSV":
        lines = list(csv.reader(io.StringIO(raw)))
        assert lines[0] == columns
        assert preview["rows"] == lines[1:6]
    else:
        rows = (
            json.loads(raw)
            if fmt == "FORMAT_JSON"
            else [json.loads(x) for x in raw.split("\n") if x]
        )
        assert preview["rows"] == [[cell(row.get(c)) for c in columns] for row in rows[:5]]
    ids = [row[columns.index(c)] for row in preview["rows"] for c in ("UserId", "SessionId")]
    assert all(i.isdigit() for i in ids) and max(map(int, ids)) > 2**53  # exact, as text


def test_preview_of_a_small_export_says_there_is_no_more(harness):
    op = harness.finish(harness.create(fields=["IndvId"], type="TYPE_INDIVIDUAL"))
    raw = gzip.decompress(
        harness.client.get(harness.location(op["results"]["searchExportId"])).content
    )
    count = len([line for line in raw.decode().split("\n") if line])
    preview = control(harness, "GET", f"operations/{op['id']}/preview", rows="200")
    assert count < 200 and len(preview["rows"]) == count and preview["more"] is False


def test_preview_needs_a_completed_export_and_a_sane_row_count(harness):
    op_id = harness.create()
    assert (
        "not ready"
        in assert_error(harness.client.get(f"/__emulator/operations/{op_id}/preview"), 404, 5)[
            "message"
        ]
    )
    harness.finish(op_id)
    for rows in ("0", "201", "ten"):
        response = harness.client.get(f"/__emulator/operations/{op_id}/preview?rows={rows}")
        assert "rows" in assert_error(response, 400, 3)["message"]
    assert_error(harness.client.get("/__emulator/operations/nope/preview"), 404, 5)


@pytest.mark.stores
def test_start_export_for_a_named_tenant(harness):
    body = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_CSV"}
    started = control(harness, "POST", "exports", body, as_tenant(MINE))
    op = harness.operation(started["operationId"])  # the key of that tenant sees it
    assert op["state"] == "PENDING"
    by_key = control(harness, "POST", "exports", body, AUTH)["operationId"]
    assert harness.operation(by_key)["id"] == by_key
    # lifecycle rules of the tenant apply, as for the API
    control(harness, "POST", "lifecycle", {"immediately": True}, as_tenant(MINE))
    quick = control(harness, "POST", "exports", body, as_tenant(MINE))["operationId"]
    assert harness.operation(quick)["state"] == "COMPLETED"


@pytest.mark.parametrize(
    "body,headers,word",
    [
        ({"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_CSV"}, {}, "tenant"),
        ({"segmentId": "everyone", "format": "FORMAT_CSV"}, as_tenant("t"), "type"),
        ({"segmentId": 7, "type": "TYPE_EVENT", "format": "FORMAT_CSV"}, as_tenant("t"), "int"),
    ],
)
def test_start_export_rejects_bad_requests(harness, body, headers, word):
    response = harness.client.post("/__emulator/exports", json=body, headers=headers)
    assert word in assert_error(response, 400, 3)["message"]
    unknown = {"segmentId": "nope", "type": "TYPE_EVENT", "format": "FORMAT_CSV"}
    response = harness.client.post("/__emulator/exports", json=unknown, headers=as_tenant("t"))
    assert_error(response, 404, 5)


def test_segments_with_definitions(harness):
    segments = control(harness, "GET", "segments")["segments"]
    api = harness.client.get("/segments/v1", params={"limit": 100}, headers=AUTH).json()
    assert [s["id"] for s in segments] == [s["id"] for s in api["segments"]]
    rage = next(s for s in segments if s["id"] == "rageClicks")
    assert rage == next(s for s in api["segments"] if s["id"] == "rageClicks") | {
        "windowDays": 30,
        "definition": {
            "id": "rageClicks",
            "name": "Rage Clicks",
            "events": [{"EventType": "thrash"}],
        },
    }


@pytest.mark.stores
def test_config_shows_what_is_in_force_and_what_this_scope_overrides(make_harness):
    h = make_harness(url_ttl=300, export_duration=2)
    assert control(h, "GET", "config") == {
        "urlTtl": 300,
        "exportDuration": 2,
        "failureState": "ERROR",
        "maxExportEvents": 10_000_000,
        "overrides": {
            "urlTtl": None,
            "exportDuration": None,
            "failureState": None,
            "maxExportEvents": None,
        },
    }
    control(h, "POST", "config", {"urlTtl": 60})
    control(h, "POST", "config", {"exportDuration": 9}, as_tenant(MINE))
    assert control(h, "GET", "config", headers=AUTH) == {
        "urlTtl": 60,
        "exportDuration": 9,
        "failureState": "ERROR",
        "maxExportEvents": 10_000_000,
        "overrides": {
            "urlTtl": None,
            "exportDuration": 9,
            "failureState": None,
            "maxExportEvents": None,
        },
    }
    assert control(h, "GET", "config")["overrides"] == {
        "urlTtl": 60,
        "exportDuration": None,
        "failureState": None,
        "maxExportEvents": None,
    }


@pytest.mark.stores
def test_remove_one_lifecycle_rule(harness):
    first = control(harness, "POST", "lifecycle", {"immediately": True}, AUTH)["id"]
    second = control(harness, "POST", "lifecycle", {"finishAfterPolls": 2}, AUTH)["id"]
    control(harness, "DELETE", f"lifecycle/{first}", headers=AUTH)
    rules = control(harness, "GET", "lifecycle", headers=AUTH)["lifecycle"]
    assert [r["id"] for r in rules] == [second]
    response = harness.client.delete(f"/__emulator/lifecycle/{first}", headers=AUTH)
    assert first in assert_error(response, 404, 5)["message"]


def test_journal_filters_by_status_and_class(harness):
    harness.create()
    harness.client.get("/segments/v1/nope", headers=AUTH)
    harness.client.get("/operations/v1", headers=AUTH)

    def statuses(**query):
        return [e["status"] for e in control(harness, "GET", "journal", **query)["requests"]]

    assert statuses() == [200, 404, 200]
    assert statuses(status="404") == [404]
    assert statuses(status="2xx") == [200, 200]
    assert statuses(status="5xx") == []
    for bad in ("99", "4x", "600", "abc"):
        response = harness.client.get("/__emulator/journal", params={"status": bad})
        assert "status" in assert_error(response, 400, 3)["message"]


def test_tenant_header_scopes_control_calls_like_a_key(harness):
    fault = {"path": "/segments/v1", "status": 429, "times": 1}
    control(harness, "POST", "faults", fault, as_tenant(MINE))
    assert harness.client.get("/segments/v1", headers=AUTH).status_code == 429
    assert harness.client.get("/segments/v1", headers=OTHER).status_code == 200
    assert control(harness, "GET", "faults", headers=AUTH)["faults"] == []  # spent
    journal = control(harness, "GET", "journal", headers=as_tenant(MINE))["requests"]
    assert [(e["status"], e["tenant"]) for e in journal] == [(429, MINE)]


@pytest.mark.parametrize(
    "headers,word",
    [
        ({**AUTH, "X-Emulator-Tenant": "someone-else"}, "not the tenant"),
        ({"X-Emulator-Tenant": "has space"}, "X-Emulator-Tenant"),
        ({"X-Emulator-Tenant": ""}, "X-Emulator-Tenant"),
        ({"X-Emulator-Tenant": "x" * 201}, "X-Emulator-Tenant"),
    ],
)
def test_tenant_header_must_be_a_tenant_id_agreeing_with_the_key(harness, headers, word):
    response = harness.client.get("/__emulator/clock", headers=headers)
    assert word in assert_error(response, 400, 3)["message"]


def test_tenant_header_agreeing_with_the_key_is_fine(harness):
    assert tenants(harness, {**AUTH, "X-Emulator-Tenant": MINE}) == [MINE]


def test_new_endpoints_need_the_control_token(make_harness):
    h = make_harness(control_token="s3cret")
    for method, path in [
        ("GET", "tenants"),
        ("GET", "operations"),
        ("GET", "operations/x/results"),
        ("GET", "operations/x/preview"),
        ("POST", "exports"),
        ("GET", "segments"),
        ("GET", "config"),
        ("DELETE", "lifecycle/L1"),
    ]:
        response = h.client.request(method, f"/__emulator/{path}", headers=as_tenant("t"))
        assert_error(response, 401, 16)
    ok = h.client.get("/__emulator/tenants", headers={"X-Emulator-Token": "s3cret"})
    assert ok.status_code == 200 and ok.json()["tenants"] == []


@pytest.mark.stores
def test_journal_last_reads_the_newest_entries_across_batches(harness):
    """The console asks for the last few hundred entries of a journal that may hold 50,000:
    they are read newest first, in batches, and answered oldest first as always."""
    store = harness.em.store
    with store.transaction():
        for i in range(1203):
            store.append_journal(
                {
                    "method": "GET",
                    "path": f"/operations/v1/{i}",
                    "query": "",
                    "headers": {},
                    "status": 429 if i % 100 == 0 else 200,
                    "durationMs": float(i),
                    "at": "2026-03-01T12:00:00.000000Z",
                    "tenant": "a" if i % 2 else "b",
                    "fault": None,
                }
            )

    def numbers(headers=None, **query):
        entries = control(harness, "GET", "journal", headers=headers, **query)["requests"]
        return [int(e["durationMs"]) for e in entries]

    assert numbers(last="5") == [1198, 1199, 1200, 1201, 1202]
    assert numbers(as_tenant("a"), last="3") == [1197, 1199, 1201]
    assert numbers(status="429", last="20") == list(range(0, 1201, 100))
    assert numbers(status="429", last="2") == [1100, 1200]
    assert numbers(path="/operations/v1/7?", last="4") == [76, 77, 78, 79]
    assert numbers(limit="1000") == list(range(1000))  # pages still run oldest first
    for bad in ({"last": "0"}, {"last": "1001"}, {"last": "x"}, {"last": "5", "limit": "5"}):
        response = harness.client.get("/__emulator/journal", params=bad)
        assert "last" in assert_error(response, 400, 3)["message"]


def test_tenant_header_under_tenant_control_auth_needs_the_admin_token(make_harness):
    """With --control-auth tenant, a key touches only its own tenant; naming another tenant
    with X-Emulator-Tenant takes the admin token, as acting on the instance does."""
    h = make_harness(control_auth="tenant", control_token="adm")
    admin = {"X-Emulator-Token": "adm"}
    assert_error(h.client.get("/__emulator/clock", headers=as_tenant(MINE)), 401, 16)
    response = h.client.get("/__emulator/clock", headers={**OTHER, **as_tenant(MINE)})
    assert "not the tenant" in assert_error(response, 400, 3)["message"]
    control(h, "POST", "clock", {"advance": 60}, {**admin, **as_tenant(MINE)})
    mine = control(h, "GET", "clock", headers=AUTH)["now"]
    theirs = control(h, "GET", "clock", headers=OTHER)["now"]
    assert parse(mine) - parse(theirs) == timedelta(seconds=60)
    answer = control(h, "GET", "tenants", headers=OTHER)  # only its own
    assert answer == {"tenants": [THEIRS], "labels": {THEIRS: "na1.othe…"}, "default": None}
