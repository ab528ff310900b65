"""What a careless or hostile client sends gets a short answer that says what was wrong: echoed
input is cut (saying its length), a DELETE with an empty rule id deletes nothing, control bodies
refuse members they do not take, and a compressed body is named as such."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import pytest

from tests.helpers import AUTH, Harness, assert_error

EXPORT = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"}
ID = "o" * 60_000  # an id in a URL path (httpx sends URLs up to 64 KiB)
TEXT = "t" * 900_000  # a value in a JSON body (within --max-body-bytes)
SMALL = 1_000  # bytes an error answer stays within, whatever was sent

# (name, method, path, JSON body or None, headers, status, gRPC code, the input's length)
ECHOES: list[tuple[str, str, str, Any, dict[str, str], int, int, int]] = [
    ("segmentId of an export", "POST", "/segments/v1/exports", {**EXPORT, "segmentId": TEXT},
     AUTH, 404, 5, len(TEXT)),
    ("segment", "GET", f"/segments/v1/{ID}", None, AUTH, 404, 5, len(ID)),
    ("operation", "GET", f"/operations/v1/{ID}", None, AUTH, 404, 5, len(ID)),
    ("cancel", "POST", f"/operations/v1/{ID}/cancel", None, AUTH, 404, 5, len(ID)),
    ("export results", "GET", f"/search/v1/exports/{ID}/results", None, AUTH, 404, 5, len(ID)),
    ("format", "POST", "/segments/v1/exports", {**EXPORT, "format": TEXT}, AUTH, 400, 3,
     len(TEXT)),
    ("timezone", "POST", "/segments/v1/exports", {**EXPORT, "timezone": TEXT}, AUTH, 400, 3,
     len(TEXT)),
    ("timeRange.start", "POST", "/segments/v1/exports",
     {**EXPORT, "timeRange": {"start": TEXT}}, AUTH, 400, 3, len(TEXT)),
    ("operations state", "GET", f"/operations/v1?state={ID}", None, AUTH, 400, 3, len(ID)),
    ("operations limit", "GET", f"/operations/v1?limit={ID}", None, AUTH, 400, 3, len(ID)),
    ("endpoint", "GET", f"/nowhere/{ID}", None, AUTH, 404, 5, len(ID) + len("/nowhere/")),
    ("fault rule id", "DELETE", f"/__emulator/faults/{ID}", None, AUTH, 404, 5, len(ID)),
    ("lifecycle rule id", "DELETE", f"/__emulator/lifecycle/{ID}", None, AUTH, 404, 5, len(ID)),
    ("scenario", "POST", f"/__emulator/scenarios/{ID}", None, AUTH, 404, 5, len(ID)),
    ("control operation", "POST", f"/__emulator/operations/{ID}/complete", None, AUTH, 404, 5,
     len(ID)),
    ("journal status", "GET", f"/__emulator/journal?status={ID}", None, AUTH, 400, 3, len(ID)),
    ("failureState", "POST", "/__emulator/config", {"failureState": TEXT}, AUTH, 400, 3,
     len(TEXT)),
    ("rate limit", "POST", "/__emulator/ratelimit", {"limit": TEXT}, AUTH, 400, 3, len(TEXT)),
    ("clock set", "POST", "/__emulator/clock", {"set": TEXT}, AUTH, 400, 3, len(TEXT)),
    ("a fault status as a long list", "POST", "/__emulator/faults", {"status": [1] * 100_000},
     AUTH, 400, 3, len(repr([1] * 100_000))),
    ("an unknown member's name", "POST", "/__emulator/faults", {"status": 503, TEXT: 1}, AUTH,
     400, 3, len(TEXT)),
    ("X-Emulator-Tenant", "GET", "/__emulator/faults", None,
     {**AUTH, "X-Emulator-Tenant": "t" * 150}, 400, 3, 150),
]  # fmt: skip


@pytest.mark.parametrize("case", ECHOES, ids=[case[0] for case in ECHOES])
def test_echoed_input_is_cut_and_its_length_said(harness: Harness, case: tuple[Any, ...]):
    _, method, path, body, headers, status, code, length = case
    response = harness.client.request(method, path, json=body, headers=headers)
    error = assert_error(response, status, code)
    assert len(response.content) < SMALL, response.content[:300]
    assert f"… ({length:,} characters)" in error["message"]


def test_short_input_is_still_echoed_whole(harness: Harness):
    error = assert_error(harness.client.get("/segments/v1/noSuchSegment", headers=AUTH), 404, 5)
    assert (
        error["message"] == "segment 'noSuchSegment' not found; list segments with GET /segments/v1"
    )


# -- DELETE of one rule never drops them all ------------------------------------------------------

RULES = {
    "faults": {"path": "/nowhere", "status": 503},
    "lifecycle": {"segmentId": "nowhere", "finishAfterPolls": 1},
}


@pytest.mark.parametrize("kind", sorted(RULES))
@pytest.mark.parametrize(("suffix", "named"), [("/", "''"), ("/%2F", "'/'"), ("//", "'/'")])
def test_delete_with_an_empty_id_or_a_slash_deletes_nothing(
    harness: Harness, kind: str, suffix: str, named: str
):
    added = harness.client.post(f"/__emulator/{kind}", json=RULES[kind], headers=AUTH).json()["id"]
    response = harness.client.delete(f"/__emulator/{kind}{suffix}", headers=AUTH)
    error = assert_error(response, 404, 5)
    assert error["message"].startswith(f"no {kind.rstrip('s')} rule {named}")
    listed = harness.client.get(f"/__emulator/{kind}", headers=AUTH).json()[kind]
    assert [rule["id"] for rule in listed] == [added]

    # The collection's own DELETE (no slash) still drops every rule, and one id drops one.
    again = harness.client.post(f"/__emulator/{kind}", json=RULES[kind], headers=AUTH).json()
    assert harness.client.delete(f"/__emulator/{kind}/{added}", headers=AUTH).status_code == 200
    listed = harness.client.get(f"/__emulator/{kind}", headers=AUTH).json()[kind]
    assert [rule["id"] for rule in listed] == [again["id"]]
    assert harness.client.delete(f"/__emulator/{kind}", headers=AUTH).status_code == 200
    assert harness.client.get(f"/__emulator/{kind}", headers=AUTH).json()[kind] == []


# -- control bodies take only their members -------------------------------------------------------

UNKNOWN = [
    ("faults", {"status": 503, "explode": True}, "probability"),
    ("lifecycle", {"finishAfterPolls": 1, "explode": True}, "pctSequence"),
    ("ratelimit", {"denyNext": 1, "explode": True}, "denyNext"),
    ("config", {"urlTtl": 60, "explode": True}, "failureState"),
    ("clock", {"advance": 1, "explode": True}, "freeze"),
    ("operations/{op}/fail", {"errorDetails": "x", "explode": True}, "errorDetails"),
]


@pytest.mark.parametrize(("route", "body", "allowed"), UNKNOWN, ids=[u[0] for u in UNKNOWN])
def test_control_bodies_refuse_unknown_members(
    harness: Harness, route: str, body: dict[str, Any], allowed: str
):
    path = f"/__emulator/{route}".format(op=harness.create())
    before = harness.client.get("/__emulator/faults", headers=AUTH).json()
    error = assert_error(harness.client.post(path, json=body, headers=AUTH), 400, 3)
    assert "unknown: explode" in error["message"] and allowed in error["message"]
    assert harness.client.get("/__emulator/faults", headers=AUTH).json() == before
    assert harness.client.get("/__emulator/lifecycle", headers=AUTH).json() == {"lifecycle": []}


def test_an_empty_percent_sequence_is_refused(harness: Harness):
    response = harness.client.post("/__emulator/lifecycle", json={"pctSequence": []}, headers=AUTH)
    assert "pctSequence needs at least one percent" in assert_error(response, 400, 3)["message"]
    assert harness.client.get("/__emulator/lifecycle", headers=AUTH).json() == {"lifecycle": []}


@pytest.mark.parametrize("ttl", [0, 0.5])
def test_a_url_ttl_below_a_second_is_refused_with_the_range(harness: Harness, ttl: float):
    response = harness.client.post("/__emulator/config", json={"urlTtl": ttl}, headers=AUTH)
    error = assert_error(response, 400, 3)
    assert error["message"] == f"urlTtl must be a number from 1 to 316224000, got {ttl}"
    ok = harness.client.post("/__emulator/config", json={"urlTtl": 1}, headers=AUTH)
    assert ok.status_code == 200
    assert harness.client.get("/__emulator/config", headers=AUTH).json()["urlTtl"] == 1


# -- compressed bodies ------------------------------------------------------------------------

BODIES = [("/segments/v1/exports", EXPORT), ("/__emulator/faults", RULES["faults"])]
ENCODED = [
    ("gzip bytes", gzip.compress, {}, "gzip-compressed"),
    ("Content-Encoding gzip", gzip.compress, {"Content-Encoding": "gzip"}, "'gzip'"),
    ("Content-Encoding deflate", zlib.compress, {"Content-Encoding": "deflate"}, "'deflate'"),
    ("Content-Encoding br", lambda raw: raw, {"Content-Encoding": "br"}, "'br'"),
]


@pytest.mark.parametrize(("path", "body"), BODIES, ids=[b[0] for b in BODIES])
@pytest.mark.parametrize(
    ("name", "encode", "headers", "says"), ENCODED, ids=[e[0] for e in ENCODED]
)
def test_compressed_bodies_are_refused_as_such(
    harness: Harness, path: str, body: Any, name: str, encode: Any, headers: Any, says: str
):
    raw = encode(json.dumps(body).encode())
    sent = {**AUTH, "Content-Type": "application/json", **headers}  # JSON, but compressed
    response = harness.client.post(path, content=raw, headers=sent)
    message = assert_error(response, 400, 3)["message"]
    assert "compressed bodies are not accepted" in message and "plain JSON" in message
    assert says in message
    assert harness.client.get("/__emulator/faults", headers=AUTH).json() == {"faults": []}


@pytest.mark.parametrize(("path", "body"), BODIES, ids=[b[0] for b in BODIES])
def test_identity_encoding_is_plain_json(harness: Harness, path: str, body: Any):
    headers = {**AUTH, "Content-Encoding": "identity"}
    assert harness.client.post(path, json=body, headers=headers).status_code == 200


# -- a mistyped path names the route it was probably meant to be -------------------------------

TYPOS = [
    ("POST", "/segments/v1/export", 405, 12, "allowed: GET, HEAD", "POST /segments/v1/exports"),
    ("GET", "/operation/v1/op-1", 404, 5, "no such endpoint", "GET /operations/v1/op-1"),
    ("GET", "/segment/v1", 404, 5, "no such endpoint", "GET /segments/v1"),
]


@pytest.mark.parametrize(("method", "path", "status", "code", "says", "meant"), TYPOS)
def test_a_typo_suggests_the_closest_route(
    harness: Harness, method: str, path: str, status: int, code: int, says: str, meant: str
):
    error = assert_error(harness.client.request(method, path, headers=AUTH), status, code)
    assert says in error["message"]
    assert error["message"].endswith(f"; did you mean {meant}?")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("POST", "/openapi.json", 405), ("GET", "/nothing/like/any/route", 404)],
)
def test_no_suggestion_when_nothing_is_close(harness: Harness, method: str, path: str, status):
    response = harness.client.request(method, path, headers=AUTH)
    assert response.status_code == status
    assert "did you mean" not in response.json()["message"]
