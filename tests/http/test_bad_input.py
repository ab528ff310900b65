"""Bad input, one request per row, against every route: each answer is the documented one (the
contract's JSON error with its code, or the storage XML), and none is a 5xx unless documented.

`{op}` in a path is a pending operation of the caller's tenant, `{done}` a completed one,
`{export}` its searchExportId and `{signed}` its download URL's path and query.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.routing import Match, Route

from tests.helpers import AUTH, Harness, assert_error

BUCKET = "/fullstory-emulator-exports"
OBJECT = f"{BUCKET}/segment-exports/AAAAAAAAAAAAAAAAAAAA.ndjson.gz"
SIGNED = (
    "X-Goog-Algorithm=GOOG4-HMAC-SHA256&X-Goog-Credential=x%2F20260301%2Fauto%2Fstorage"
    "%2Fgoog4_request&X-Goog-Date=20260301T120000Z&X-Goog-Expires=300&X-Goog-SignedHeaders=host"
)
EXPORT = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"}
DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
HUGE = b'{"x":"' + b"a" * (1 << 20) + b'"}'
RAW_AUTH = [(b"Authorization", b"Basic \xff\xfe\xfd\xfc")]
AUTH_RAW = [(b"Authorization", AUTH["Authorization"].encode())]


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    code: int | str | None = None  # gRPC code (JSON error), storage Code (XML), None: success
    says: str = ""  # a fragment of the message
    json: Any = None
    content: bytes | None = None
    headers: Any = field(default_factory=lambda: AUTH)

    def __str__(self) -> str:
        return self.name


def export(**changes: Any) -> dict[str, Any]:
    return {**EXPORT, **changes}


def base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    return digits[n] if n < 36 else base36(n // 36) + digits[n % 36]


def compact(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def bad(name: str, method: str, path: str, status: int, code: int | str, says: str = "", **kw: Any):
    return Case(name, method, path, status, code, says, **kw)


def good(name: str, method: str, path: str, **kw: Any) -> Case:
    return Case(name, method, path, 200, None, **kw)


CASES = [
    # -- GET /segments/v1, /segments/v1/{segmentId} -----------------------------------------
    bad("limit superscript two", "GET", "/segments/v1?limit=²", 400, 3, "limit"),
    bad("limit full-width digits", "GET", "/segments/v1?limit=１２", 400, 3, "limit"),
    bad("limit negative", "GET", "/segments/v1?limit=-1", 400, 3, "limit"),
    bad(
        "random pagination token",
        "GET",
        "/segments/v1?paginationToken=zz",
        400,
        3,
        "paginationToken",
    ),
    bad("non-ASCII Authorization", "GET", "/segments/v1", 401, 16, "API key", headers=RAW_AUTH),
    bad("no key", "GET", "/segments/v1", 401, 16, "Authorization", headers={}),
    bad("unknown segment", "GET", "/segments/v1/nope", 404, 5, "nope"),
    good(
        "trailing slash answered, not redirected",
        "GET",
        "/segments/v1/",
        headers={**AUTH, "Host": "localhost:1"},  # a redirect would name it
    ),
    bad(
        "X-Emulator-Fault superscript",
        "GET",
        "/segments/v1",
        400,
        3,
        "X-Emulator-Fault",
        headers=[*AUTH_RAW, (b"X-Emulator-Fault", "status=²".encode("latin-1"))],
    ),
    bad(
        "X-Emulator-Fault 1xx status",
        "GET",
        "/segments/v1",
        400,
        3,
        "400 to 599",
        headers={**AUTH, "X-Emulator-Fault": "status=100"},
    ),
    bad(
        "X-Emulator-Fault full-width latency",
        "GET",
        "/segments/v1",
        400,
        3,
        "X-Emulator-Fault",
        headers=[*AUTH_RAW, (b"X-Emulator-Fault", "latency=１".encode())],
    ),
    # -- POST /segments/v1/exports -----------------------------------------------------------
    bad(
        "fields over the cap",
        "POST",
        "/segments/v1/exports",
        400,
        3,
        "at most 1000",
        json=export(fields=[f"user_f{n}_str" for n in range(1001)]),
    ),
    bad(
        "fields: 68,530 names in 1 MiB",
        "POST",
        "/segments/v1/exports",
        400,
        3,
        "at most 1000",
        content=compact(export(fields=[f"evt_{base36(n)}_str" for n in range(68_530)])),
    ),
    bad(
        "fields: a name too long",
        "POST",
        "/segments/v1/exports",
        400,
        3,
        "at most 256",
        json=export(fields=["user_" + "a" * 300 + "_str"]),
    ),
    bad(
        "time range: offset before year 1",
        "POST",
        "/segments/v1/exports",
        400,
        3,
        "timeRange.start",
        json=export(timeRange={"start": "0001-01-01T00:00:00+23:59"}),
    ),
    bad(
        "time range: offset after year 9999",
        "POST",
        "/segments/v1/exports",
        400,
        3,
        "timeRange.end",
        json=export(timeRange={"end": "9999-12-31T23:59:59-23:59"}),
    ),
    bad(
        "time range: full-width digits",
        "POST",
        "/segments/v1/exports",
        400,
        3,
        "segmentTimeRange.start",
        json=export(segmentTimeRange={"start": "２０２６-01-01T00:00:00Z"}),
    ),
    good(
        "time range at the end of year 9999",
        "POST",
        "/segments/v1/exports",
        json=export(timeRange={"start": "9999-12-30T00:00:00Z", "end": "9999-12-31T23:59:59Z"}),
    ),
    bad(
        "body nested 100k deep",
        "POST",
        "/segments/v1/exports",
        400,
        3,
        "not valid JSON",
        content=DEEP,
    ),
    bad(
        "body over --max-body-bytes", "POST", "/segments/v1/exports", 413, 3, "limit", content=HUGE
    ),
    bad("body not UTF-8", "POST", "/segments/v1/exports", 400, 3, "JSON", content=b"\xff\xfe{"),
    bad("body empty", "POST", "/segments/v1/exports", 400, 3, "empty", content=b""),
    bad(
        "segmentId an object",
        "POST",
        "/segments/v1/exports",
        400,
        3,
        "segmentId",
        json=export(segmentId={"a": 1}),
    ),
    bad(
        "timezone unknown",
        "POST",
        "/segments/v1/exports",
        400,
        3,
        "timezone",
        json=export(timezone="Mars/Olympus"),
    ),
    # -- /operations/v1 ----------------------------------------------------------------------
    bad("operations limit superscript", "GET", "/operations/v1?limit=²", 400, 3, "limit"),
    bad("operations state unknown", "GET", "/operations/v1?state=DONE", 400, 3, "state"),
    bad("operations type unknown", "GET", "/operations/v1?type=NOPE", 400, 3, "type"),
    bad(
        "operations random token",
        "GET",
        "/operations/v1?paginationToken=b3BzOngx",
        400,
        3,
        "paginationToken",
    ),
    bad(
        "operations limit checked for another type",
        "GET",
        "/operations/v1?type=DELETE_USER&limit=null",
        400,
        3,
        "limit",
    ),
    bad("operation unknown", "GET", "/operations/v1/nope", 404, 5, "nope"),
    bad("cancel unknown", "POST", "/operations/v1/nope/cancel", 404, 5, "nope"),
    bad(
        "cancel a completed export",
        "POST",
        "/operations/v1/{done}/cancel",
        501,
        12,
        "no longer be cancelled",
    ),
    bad("results unknown", "GET", "/search/v1/exports/nope/results", 404, 5, "nope"),
    # -- downloads ---------------------------------------------------------------------------
    bad("download without signature", "GET", OBJECT, 403, "AccessDenied", headers={}),
    bad(
        "download non-ASCII signature",
        "GET",
        f"{OBJECT}?{SIGNED}&X-Goog-Signature=%C3%A9",
        403,
        "SignatureDoesNotMatch",
        headers={},
    ),
    bad(
        "download repeated parameter",
        "GET",
        "{signed}&X-Goog-Expires=300",
        403,
        "SignatureDoesNotMatch",
        headers={},
    ),
    bad(
        "download in another bucket",
        "GET",
        "/other-bucket/segment-exports/x.ndjson.gz",
        404,
        "NoSuchBucket",
        headers={},
    ),
    bad(
        "download non-ASCII key is ignored",
        "GET",
        f"{OBJECT}?{SIGNED}&X-Goog-Signature=00",
        403,
        "SignatureDoesNotMatch",
        headers=RAW_AUTH,
    ),
    # -- public documents ---------------------------------------------------------------------
    good("the OpenAPI document", "GET", "/openapi.json", headers={}),
    good("the metrics", "GET", "/metrics", headers={}),
    bad("POST /openapi.json", "POST", "/openapi.json", 405, 12, "GET", headers={}),
    bad("POST /metrics", "POST", "/metrics", 405, 12, "GET", headers={}),
    # -- control: health, reset, clock ---------------------------------------------------------
    good("health with a non-ASCII key", "GET", "/__emulator/health", headers=RAW_AUTH),
    bad("reset with a non-ASCII key", "POST", "/__emulator/reset", 401, 16, headers=RAW_AUTH),
    bad("clock read with a non-ASCII key", "GET", "/__emulator/clock", 401, 16, headers=RAW_AUTH),
    bad(
        "clock set to year 9999",
        "POST",
        "/__emulator/clock",
        400,
        3,
        "3000-01-01",
        json={"set": "9999-12-31T23:59:58Z"},
    ),
    bad(
        "clock set with an extreme offset",
        "POST",
        "/__emulator/clock",
        400,
        3,
        "set",
        json={"set": "0001-01-01T00:00:00+23:59"},
    ),
    bad(
        "clock set with full-width digits",
        "POST",
        "/__emulator/clock",
        400,
        3,
        "set",
        json={"set": "２０２６-01-01T00:00:00Z"},
    ),
    bad(
        "clock advance past the end",
        "POST",
        "/__emulator/clock",
        400,
        3,
        "past",
        json={"set": "2999-12-31T23:59:59Z", "advance": 86400},
    ),
    bad(
        "clock advance NaN",
        "POST",
        "/__emulator/clock",
        400,
        3,
        "advance",
        content=b'{"advance": NaN}',
    ),
    bad("clock empty object", "POST", "/__emulator/clock", 400, 3, "advance", json={}),
    bad(
        "clock body nested 100k deep",
        "POST",
        "/__emulator/clock",
        400,
        3,
        "not valid JSON",
        content=DEEP_OBJECT,
    ),
    bad(
        "clock body over --max-body-bytes",
        "POST",
        "/__emulator/clock",
        413,
        3,
        "limit",
        content=HUGE,
    ),
    # -- control: lifecycle and operations -------------------------------------------------------
    bad("lifecycle empty body", "POST", "/__emulator/lifecycle", 400, 3, "empty", content=b""),
    bad(
        "lifecycle pctSequence an object",
        "POST",
        "/__emulator/lifecycle",
        400,
        3,
        "pctSequence",
        json={"pctSequence": {}},
    ),
    bad(
        "lifecycle immediately 0",
        "POST",
        "/__emulator/lifecycle",
        400,
        3,
        "immediately",
        json={"immediately": 0},
    ),
    bad(
        "lifecycle fail with a lone surrogate",
        "POST",
        "/__emulator/lifecycle",
        400,
        3,
        "surrogate",
        content=b'{"fail": "\\ud800"}',
    ),
    good("lifecycle list", "GET", "/__emulator/lifecycle"),
    good("lifecycle clear", "DELETE", "/__emulator/lifecycle"),
    bad("complete unknown", "POST", "/__emulator/operations/nope/complete", 404, 5, "nope"),
    bad(
        "complete a completed operation",
        "POST",
        "/__emulator/operations/{done}/complete",
        409,
        9,
        "already COMPLETED",
    ),
    bad(
        "fail with a lone surrogate",
        "POST",
        "/__emulator/operations/{op}/fail",
        400,
        3,
        "surrogate",
        content=b'{"errorDetails": "x\\udfff"}',
    ),
    bad(
        "fail with errorDetails a number",
        "POST",
        "/__emulator/operations/{op}/fail",
        400,
        3,
        "errorDetails",
        json={"errorDetails": 5},
    ),
    # -- control: faults ----------------------------------------------------------------------
    bad(
        "fault status 100", "POST", "/__emulator/faults", 400, 3, "400 to 599", json={"status": 100}
    ),
    bad("fault status 600", "POST", "/__emulator/faults", 400, 3, "status", json={"status": 600}),
    bad("fault without an action", "POST", "/__emulator/faults", 400, 3, "action", json={}),
    bad(
        "fault message with a lone surrogate",
        "POST",
        "/__emulator/faults",
        400,
        3,
        "surrogate",
        content=b'{"status": 503, "message": "\\ud800"}',
    ),
    bad(
        "fault header false",
        "POST",
        "/__emulator/faults",
        400,
        3,
        "header",
        json={"status": 503, "header": False},
    ),
    bad(
        "fault body over --max-body-bytes",
        "POST",
        "/__emulator/faults",
        413,
        3,
        "limit",
        content=HUGE,
    ),
    good("faults list", "GET", "/__emulator/faults"),
    good("faults clear", "DELETE", "/__emulator/faults"),
    bad("fault rule unknown", "DELETE", "/__emulator/faults/F99", 404, 5, "F99"),
    # -- control: journal, rate limits, config, scenarios ----------------------------------------
    bad("journal limit superscript", "GET", "/__emulator/journal?limit=²", 400, 3, "limit"),
    bad("journal limit 0", "GET", "/__emulator/journal?limit=0", 400, 3, "limit"),
    bad(
        "journal random page token", "GET", "/__emulator/journal?pageToken=zz", 400, 3, "pageToken"
    ),
    good("journal clear", "DELETE", "/__emulator/journal"),
    bad(
        "rate limit period overflowing",
        "POST",
        "/__emulator/ratelimit",
        400,
        3,
        "period",
        json={"limit": "1/" + "9" * 400 + ",1"},
    ),
    bad(
        "rate limit burst overflowing",
        "POST",
        "/__emulator/ratelimit",
        400,
        3,
        "burst",
        json={"limit": "1/60," + "9" * 400},
    ),
    bad("rate limit empty object", "POST", "/__emulator/ratelimit", 400, 3, "limit", json={}),
    bad("config empty object", "POST", "/__emulator/config", 400, 3, "urlTtl", json={}),
    bad(
        "config urlTtl 1e300",
        "POST",
        "/__emulator/config",
        400,
        3,
        "urlTtl",
        json={"urlTtl": 1e300},
    ),
    good("scenarios list", "GET", "/__emulator/scenarios"),
    bad("scenario unknown", "POST", "/__emulator/scenarios/nope", 404, 5, "nope"),
    # -- control: the console's routes -------------------------------------------------------
    bad(
        "tenant header with a space",
        "GET",
        "/__emulator/tenants",
        400,
        3,
        "X-Emulator-Tenant",
        headers={"X-Emulator-Tenant": "a b"},
    ),
    bad(
        "tenant header not the key's",
        "GET",
        "/__emulator/config",
        400,
        3,
        "X-Emulator-Tenant",
        headers={**AUTH, "X-Emulator-Tenant": "someone-else"},
    ),
    bad(
        "control operations limit superscript",
        "GET",
        "/__emulator/operations?limit=²",
        400,
        3,
        "limit",
    ),
    bad(
        "control operations state unknown",
        "GET",
        "/__emulator/operations?state=NOPE",
        400,
        3,
        "state",
    ),
    bad("control results unknown", "GET", "/__emulator/operations/nope/results", 404, 5, "nope"),
    bad(
        "control preview rows superscript",
        "GET",
        "/__emulator/operations/{done}/preview?rows=²",
        400,
        3,
        "rows",
    ),
    bad("control preview unknown", "GET", "/__emulator/operations/nope/preview", 404, 5, "nope"),
    bad(
        "control export without segment",
        "POST",
        "/__emulator/exports",
        400,
        3,
        "segmentId",
        json={},
    ),
    bad(
        "control export nested 100k deep",
        "POST",
        "/__emulator/exports",
        400,
        3,
        "not valid JSON",
        content=DEEP,
    ),
    bad(
        "control export extreme offset",
        "POST",
        "/__emulator/exports",
        400,
        3,
        "timeRange.start",
        json=export(timeRange={"start": "0001-01-01T00:00:00+23:59"}),
    ),
    good("control segments", "GET", "/__emulator/segments"),
    good("control config", "GET", "/__emulator/config"),
    bad("lifecycle rule unknown", "DELETE", "/__emulator/lifecycle/L99", 404, 5, "L99"),
    bad("the root", "GET", "/", 404, 5, "/__emulator/ui", headers={}),
    bad("the control root", "GET", "/__emulator", 404, 5, "/__emulator/ui", headers={}),
    good("the console", "GET", "/__emulator/ui", headers={}),
    bad(
        "a console file that does not exist",
        "GET",
        "/__emulator/ui/nope.js",
        404,
        5,
        "nope.js",
        headers={},
    ),
    bad(
        "a console path escaping its folder",
        "GET",
        "/__emulator/ui/..%2f..%2fpyproject.toml",
        404,
        5,
        "",
        headers={},
    ),
]


@pytest.fixture
def ids(harness: Harness) -> dict[str, str]:
    harness.em.store.reset(None)
    done = harness.finish(harness.create())
    signed = urlsplit(harness.location(done["results"]["searchExportId"]))
    return {
        "op": harness.create(),
        "done": done["id"],
        "export": done["results"]["searchExportId"],
        "signed": f"{signed.path}?{signed.query}",
    }


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input(harness: Harness, ids: dict[str, str], case: Case) -> None:
    path = case.path.format(**ids)
    headers = case.headers
    if case.content is not None and path.startswith("/__emulator") and headers is AUTH:
        headers = {**AUTH, "Content-Type": "application/json"}  # the control API takes JSON only
    response = harness.client.request(
        case.method,
        path,
        headers=headers,
        json=case.json if case.content is None else None,
        content=case.content,
        follow_redirects=False,
    )
    assert response.status_code < 500 or response.status_code in (501, 503), response.text
    if case.code is None:
        assert response.status_code == case.status, response.text
        assert "location" not in response.headers
    elif isinstance(case.code, str):
        assert response.status_code == case.status, response.text
        assert response.headers["content-type"] == "application/xml; charset=UTF-8"
        assert f"<Code>{case.code}</Code>" in response.text
    else:
        body = assert_error(response, case.status, case.code)
        assert case.says in body["message"]
    assert harness.client.get("/__emulator/health").status_code == 200


def test_every_route_has_a_row(harness: Harness) -> None:
    """The table covers every route the app serves (and so every documented operation)."""
    uncovered = []
    for route in harness.client.app.routes:
        if not isinstance(route, Route):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            hit = any(
                case.method == method
                and route.matches(
                    {"type": "http", "method": method, "path": urlsplit(case.path).path}
                )[0]
                == Match.FULL
                for case in CASES
            )
            if not hit:
                uncovered.append(f"{method} {route.path}")
    assert uncovered == []


def test_rows_are_distinct() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    assert json.dumps([c.status for c in CASES])  # every row says what it expects
