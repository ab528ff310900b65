"""GET /segments/v1 and /segments/v1/{id} (CONTRACT §5), and segment fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fullstory_emulator.world.segments import SegmentCatalog, SegmentFileError
from tests.helpers import AUTH, assert_error


def write_segments(path: Path, count: int) -> Path:
    segments = [{"id": "everyone", "name": "Everyone"}] + [
        {
            "id": f"seg{i:04d}abcd",
            "name": f"Segment {i}",
            "creator": "alice@example.com" if i % 3 == 0 else "bob@example.com",
            "created": "2026-01-01T00:00:00.000Z",
        }
        for i in range(count - 1)
    ]
    path.write_text(json.dumps({"segments": segments, "replaceDefaults": True}))
    return path


def test_list_default_page(harness):
    response = harness.client.get("/segments/v1", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"segments"}  # one page: no token
    ids = [s["id"] for s in body["segments"]]
    assert ids[:2] == ["everyone", "rageClicks"]
    for segment in body["segments"]:
        assert set(segment) <= {"id", "name", "creator", "created", "url"}
        assert (
            segment["url"] == f"https://app.fullstory.com/ui/o-EMU42-na1/segments/{segment['id']}"
        )
    everyone = body["segments"][0]
    assert "created" not in everyone  # built-in segments have no creation time
    custom = next(s for s in body["segments"] if s["id"] == "htIXCSMv9Q9M")
    assert custom["created"] == "2026-01-12T14:30:10.631Z"
    assert custom["creator"] == "alice@acme-outfitters.example"


def test_pagination_walks_every_segment_once(make_harness, tmp_path):
    h = make_harness(segments=write_segments(tmp_path / "s.json", 230))
    seen, token, pages = [], None, 0
    while True:
        params = {"limit": 100} | ({"paginationToken": token} if token else {})
        body = h.client.get("/segments/v1", params=params, headers=AUTH).json()
        pages += 1
        seen += [s["id"] for s in body["segments"]]
        token = body.get("nextPaginationToken")
        if not token:
            break
    assert pages == 3 and len(seen) == 230 and len(set(seen)) == 230


def test_default_limit_is_20_and_max_is_100(make_harness, tmp_path):
    h = make_harness(segments=write_segments(tmp_path / "s.json", 150))
    assert len(h.client.get("/segments/v1", headers=AUTH).json()["segments"]) == 20
    body = h.client.get("/segments/v1", params={"limit": 500}, headers=AUTH).json()
    assert len(body["segments"]) == 100 and "nextPaginationToken" in body


def test_snake_case_token_and_creator_filter(make_harness, tmp_path):
    h = make_harness(segments=write_segments(tmp_path / "s.json", 40))
    first = h.client.get(
        "/segments/v1", params={"limit": 5, "creator": "ALICE@example.com"}, headers=AUTH
    ).json()
    assert all(s["creator"] == "alice@example.com" for s in first["segments"])
    second = h.client.get(
        "/segments/v1",
        params={
            "limit": 5,
            "creator": "alice@example.com",
            "pagination_token": first["nextPaginationToken"],
        },
        headers=AUTH,
    ).json()
    assert {s["id"] for s in first["segments"]}.isdisjoint(s["id"] for s in second["segments"])
    assert len(first["segments"]) + len(second["segments"]) == 10


@pytest.mark.parametrize(
    "params", [{"limit": "abc"}, {"limit": "-1"}, {"paginationToken": "garbage!"}]
)
def test_bad_list_parameters_are_400(harness, params):
    body = assert_error(harness.client.get("/segments/v1", params=params, headers=AUTH), 400, 3)
    assert ("limit" in body["message"]) or ("paginationToken" in body["message"])


def test_get_one_and_unknown(harness):
    body = harness.client.get("/segments/v1/htIXCSMv9Q9M", headers=AUTH).json()
    assert body["name"] == "Visited checkout"
    err = assert_error(harness.client.get("/segments/v1/nope", headers=AUTH), 404, 5)
    assert "nope" in err["message"]


def test_catalog_rejects_bad_definitions():
    bad = [
        ({"segments": [{"id": "a"}]}, "name"),
        (
            {"segments": [{"id": "a", "name": "A", "events": [{"EventType": {"regex": "x"}}]}]},
            "operator",
        ),
        ({"segments": [{"id": "a", "name": "A", "windowDays": 0}]}, "windowDays"),
        (
            {"segments": [{"id": "a", "name": "A", "fail": {"message": "x", "atPercent": 101}}]},
            "atPercent",
        ),
        ({"segments": [{"id": "a", "name": "A"}, {"id": "a", "name": "B"}]}, "unique"),
        ({"nope": []}, "segments"),
    ]
    for data, word in bad:
        with pytest.raises(SegmentFileError, match=word):
            SegmentCatalog.parse(data, "test")


def test_condition_operators():
    catalog = SegmentCatalog.parse(
        {
            "segments": [
                {
                    "id": "x",
                    "name": "X",
                    "events": [
                        {"PageUrl": {"contains": "/checkout"}, "EventType": "navigate"},
                        {"ReqStatus": {"gte": 500}},
                        {"AppName": {"exists": True}},
                    ],
                    "user": {"user_plan_str": {"in": ["pro", "enterprise"]}},
                }
            ]
        },
        "test",
    )
    seg = catalog.get("x")
    assert seg.event_matches({"PageUrl": "https://s/checkout", "EventType": "navigate"})
    assert not seg.event_matches({"PageUrl": "https://s/checkout", "EventType": "click"})
    assert seg.event_matches({"ReqStatus": 503}) and not seg.event_matches({"ReqStatus": 404})
    assert seg.event_matches({"AppName": "Shop"}) and not seg.event_matches({"AppName": ""})
    assert seg.user_matches({"user_plan_str": "pro"}) and not seg.user_matches({})


def test_segment_file_adds_to_and_overrides_the_embedded_ones(make_harness, tmp_path):
    path = tmp_path / "mine.json"
    mine = [
        {
            "id": "myCartAbandon",
            "name": "Cart abandoners",
            "creator": "me@example.com",
            "created": "2026-02-01T00:00:00Z",
            "events": [{"EventType": "abandon"}],
        },
        {"id": "everyone", "name": "All the people"},
    ]
    path.write_text(json.dumps({"segments": mine}))
    h = make_harness(segments=path)
    body = h.client.get("/segments/v1", params={"limit": 100}, headers=AUTH).json()
    names = {s["id"]: s["name"] for s in body["segments"]}
    assert names["everyone"] == "All the people" and names["myCartAbandon"] == "Cart abandoners"
    assert "htIXCSMv9Q9M" in names and next(iter(names)) == "everyone"
    op = h.finish(h.create(segmentId="myCartAbandon", timeRange={"start": "", "end": ""}))
    assert op["state"] == "COMPLETED"


def test_unreadable_segment_file_is_reported(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{")
    with pytest.raises(SegmentFileError, match=r"broken\.json"):
        SegmentCatalog.load(path)


def test_each_emulator_answers_its_own_segment_under_a_shared_id(make_harness, tmp_path):
    """A segment's answer is rendered once and kept by id: two emulators in one process (as in
    tests, or the demo) with different segments under the same id, org and escaping still
    answer each its own."""
    answers = []
    for name in ("Everyone & more", "Everyone else"):
        path = tmp_path / f"{len(answers)}.json"
        path.write_text(json.dumps({"segments": [{"id": "everyone", "name": name}]}))
        h = make_harness(segments=path)
        for _ in range(2):  # the second answer comes from what the first rendered
            response = h.client.get("/segments/v1/everyone", headers=AUTH)
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            answers.append(response.content)
    assert answers[0] == answers[1] and answers[2] == answers[3]
    assert b'"name":"Everyone \\u0026 more"' in answers[0]  # Go's escaping, as before
    assert b'"name":"Everyone else"' in answers[2]
