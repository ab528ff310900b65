"""GET /search/v1/exports/{id}/results (CONTRACT §5): fresh signed URLs for finished exports."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from tests.helpers import AUTH, assert_error, parse


def test_location_shape_and_go_escaping(harness):
    op = harness.finish(harness.create())
    response = harness.client.get(
        f"/search/v1/exports/{op['results']['searchExportId']}/results", headers=AUTH
    )
    assert response.status_code == 200
    raw = response.content
    assert b"\\u0026" in raw and b"&" not in raw  # as the help article says
    body = response.json()
    assert set(body) == {"location", "expires"}
    url = urlsplit(body["location"])
    assert url.scheme == "http" and url.netloc == "127.0.0.1:8080"
    assert url.path.startswith("/fullstory-emulator-exports/") and url.path.endswith(".ndjson.gz")
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert set(query) == {
        "X-Goog-Algorithm",
        "X-Goog-Credential",
        "X-Goog-Date",
        "X-Goog-Expires",
        "X-Goog-SignedHeaders",
        "X-Goog-Signature",
    }
    assert query["X-Goog-Algorithm"] == "GOOG4-HMAC-SHA256" and query["X-Goog-Expires"] == "300"
    issued = harness.em.clock.now()
    assert query["X-Goog-Date"] == issued.strftime("%Y%m%dT%H%M%SZ")
    assert parse(body["expires"]) == issued.replace(microsecond=0) + timedelta(seconds=300)


def test_no_html_escape_setting(make_harness):
    h = make_harness(html_escape=False)
    op = h.finish(h.create())
    raw = h.client.get(
        f"/search/v1/exports/{op['results']['searchExportId']}/results", headers=AUTH
    ).content
    assert b"\\u0026" not in raw and b"&X-Goog" in raw


def test_each_call_mints_a_fresh_url(harness):
    op = harness.finish(harness.create())
    first = harness.location(op["results"]["searchExportId"])
    harness.advance(10)
    assert harness.location(op["results"]["searchExportId"]) != first


def test_url_ttl_setting(make_harness):
    h = make_harness(url_ttl=30)
    op = h.finish(h.create())
    assert "X-Goog-Expires=30&" in h.location(op["results"]["searchExportId"])


def test_unknown_pending_foreign_and_expired_exports_are_404(make_harness):
    h = make_harness(export_duration=10, export_retention=3600)
    assert_error(h.client.get("/search/v1/exports/nope/results", headers=AUTH), 404, 5)
    op_id = h.create()
    h.advance(11)
    export_id = h.operation(op_id)["results"]["searchExportId"]
    other = {"Authorization": "Basic na1.another-tenant"}
    assert_error(h.client.get(f"/search/v1/exports/{export_id}/results", headers=other), 404, 5)
    h.advance(3600)
    err = assert_error(
        h.client.get(f"/search/v1/exports/{export_id}/results", headers=AUTH), 404, 5
    )
    assert "expired" in err["message"]


def test_failed_export_has_no_results(harness):
    op = harness.finish(harness.create(segmentId="LegacyFunnel"))
    assert op["state"] == "ERROR" and op["results"] is None
