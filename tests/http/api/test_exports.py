"""POST /segments/v1/exports: body validation in both casings (CONTRACT §1, §5)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import AUTH, assert_error

VALID = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_CSV"}


def post(h, body, headers=None, **kwargs):
    return h.client.post("/segments/v1/exports", json=body, headers=headers or AUTH, **kwargs)


def test_minimal_body_gives_operation_id(harness):
    response = post(harness, VALID)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"operationId"} and isinstance(body["operationId"], str)


def test_help_article_example_body(harness):
    body = {
        "segmentId": "everyone",
        "format": "FORMAT_CSV",
        "type": "TYPE_EVENT",
        "timeRange": {"start": "2026-02-13T00:00:00Z", "end": "2026-02-13T23:59:59Z"},
        "segmentTimeRange": {"start": "2026-02-13T00:00:00Z", "end": "2026-02-13T23:59:59Z"},
    }
    assert post(harness, body).status_code == 200


def test_no_content_type_is_read_as_json(harness):
    response = harness.client.post(
        "/segments/v1/exports", content=json.dumps(VALID).encode(), headers=AUTH
    )
    assert response.status_code == 200, response.text
    odd = harness.client.post(
        "/segments/v1/exports",
        content=json.dumps(VALID).encode(),
        headers=AUTH | {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert odd.status_code == 200


def test_snake_case_body(harness):
    body = {
        "segment_id": "everyone",
        "type": "TYPE_EVENT",
        "format": "FORMAT_NDJSON",
        "time_range": {"start": "2026-02-01T00:00:00.000Z", "end": ""},
        "segment_time_range": {"start": "", "end": ""},
        "event_details": {"scope": "SCOPE_SESSIONS"},
    }
    assert post(harness, body).status_code == 200, post(harness, body).text


@pytest.mark.parametrize(
    "export_type", ["TYPE_INDIVIDUAL", "TYPE_EVENT", "TYPE_PAGES", "TYPE_SESSIONS"]
)
@pytest.mark.parametrize("fmt", ["FORMAT_CSV", "FORMAT_JSON", "FORMAT_NDJSON"])
def test_every_type_and_format(harness, export_type, fmt):
    assert (
        post(harness, {"segmentId": "everyone", "type": export_type, "format": fmt}).status_code
        == 200
    )


@pytest.mark.parametrize(
    "scope", ["SCOPE_EVENT", "SCOPE_EVENTS", "SCOPE_PAGES", "SCOPE_SESSIONS", "SCOPE_INDIVIDUAL"]
)
def test_every_scope(harness, scope):
    assert post(harness, VALID | {"eventDetails": {"scope": scope}}).status_code == 200


def test_full_field_list_with_wildcards(harness):
    fields = [
        "IndvId",
        "UserId",
        "SessionId",
        "PageId",
        "EventStart",
        "EventType",
        "PageUrl",
        "user_*",
        "evt_*",
        "page_*",
    ]
    assert post(harness, VALID | {"fields": fields}).status_code == 200


def test_timezone_and_millisecond_and_offset_timestamps(harness):
    body = VALID | {
        "timezone": "America/New_York",
        "timeRange": {
            "start": "2026-01-01T00:00:00.000Z",
            "end": "2026-02-01T00:00:00.123456789-05:00",
        },
    }
    assert post(harness, body).status_code == 200


BAD_BODIES = [
    ({}, "segmentId"),
    ({"type": "TYPE_EVENT", "format": "FORMAT_CSV"}, "segmentId"),
    (VALID | {"segmentId": 42}, "segmentId"),
    ({"segmentId": "everyone", "format": "FORMAT_CSV"}, "type"),
    (VALID | {"type": "TYPE_BOGUS"}, "TYPE_INDIVIDUAL"),
    (VALID | {"type": 1}, "type"),
    ({"segmentId": "everyone", "type": "TYPE_EVENT"}, "format"),
    (VALID | {"format": "FORMAT_XML"}, "FORMAT_NDJSON"),
    (VALID | {"timeRange": "yesterday"}, "timeRange"),
    (VALID | {"timeRange": {"start": "2026-01-01"}}, "timeRange.start"),
    (VALID | {"timeRange": {"start": 1700000000}}, "timeRange.start"),
    (VALID | {"timeRange": {"start": "2026-02-30T00:00:00Z"}}, "timeRange.start"),
    (
        VALID | {"timeRange": {"start": "2026-02-02T00:00:00Z", "end": "2026-02-01T00:00:00Z"}},
        "before",
    ),
    (
        VALID | {"timeRange": {"start": "2026-02-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"}},
        "before",
    ),
    (VALID | {"segmentTimeRange": {"end": "soon"}}, "segmentTimeRange.end"),
    (VALID | {"timezone": "Mars/Olympus"}, "timezone"),
    (VALID | {"timezone": 5}, "timezone"),
    (VALID | {"segmentId": 123}, "segmentId must be a string, got int"),
    (VALID | {"fields": "EventStart"}, "fields"),
    (VALID | {"fields": ["EventStart", 3]}, "fields"),
    (VALID | {"fields": ["EventStart", "EventStart"]}, "more than once"),
    (VALID | {"fields": ["EventStart", "NoSuchField"]}, "NoSuchField"),
    (VALID | {"fields": ["user_pl*"]}, "user_pl*"),
    (VALID | {"type": "TYPE_INDIVIDUAL", "fields": ["EventStart"]}, "EventStart"),
    (VALID | {"type": "TYPE_INDIVIDUAL", "fields": ["evt_*"]}, "evt_*"),
    (VALID | {"eventDetails": "SCOPE_EVENT"}, "eventDetails"),
    (VALID | {"eventDetails": {"scope": "SCOPE_WORLD"}}, "SCOPE_SESSIONS"),
    (
        VALID | {"type": "TYPE_INDIVIDUAL", "eventDetails": {"scope": "SCOPE_EVENT"}},
        "event exports only",
    ),
    (VALID | {"type": "TYPE_PAGES", "eventDetails": {"scope": "SCOPE_SESSIONS"}}, "contradicts"),
    (VALID | {"segment_id": "everyone"}, "segment_id"),
]


@pytest.mark.parametrize("body,word", BAD_BODIES)
def test_bad_bodies_are_400_naming_the_field(harness, body, word):
    err = assert_error(post(harness, body), 400, 3)
    assert word in err["message"], err["message"]


def test_unknown_segment_is_404(harness):
    err = assert_error(post(harness, VALID | {"segmentId": "noSuchSeg"}), 404, 5)
    assert "noSuchSeg" in err["message"]


@pytest.mark.parametrize(
    "raw,word",
    [
        (b"{not json", "JSON"),
        (b"[1,2]", "object"),
        (b"", "empty"),
        (b"null", "object"),
        (b'"x"', "object"),
    ],
)
def test_malformed_bodies(harness, raw, word):
    response = harness.client.post("/segments/v1/exports", content=raw, headers=AUTH)
    err = assert_error(response, 400, 3)
    assert word in err["message"]


def test_oversized_body_is_413(make_harness):
    h = make_harness(max_body_bytes=2048)
    body = VALID | {"fields": ["EventStart"] + [f"user_x{i}_str" for i in range(300)]}
    err = assert_error(post(h, body), 413, 3)
    assert "2048" in err["message"]


def test_unknown_members_are_ignored(harness):
    assert post(harness, VALID | {"somethingNew": True}).status_code == 200


def test_bad_input_stores_nothing(harness):
    post(harness, {"segmentId": "everyone"})
    harness.client.post("/segments/v1/exports", content=b"{", headers=AUTH)
    assert harness.client.get("/operations/v1", headers=AUTH).json()["operations"] == []


def test_wrong_method_is_405_in_contract_shape(harness):
    response = harness.client.get("/segments/v1/exports/x", headers=AUTH)
    assert response.status_code in (404, 405)
    response = harness.client.put("/segments/v1/exports", headers=AUTH)
    err = assert_error(response, 405, 12)
    assert "POST" in response.headers["allow"] and "PUT" in err["message"]


def test_unknown_path_is_404_json(harness):
    err = assert_error(harness.client.get("/nowhere", headers=AUTH), 404, 5)
    assert "/nowhere" in err["message"]
