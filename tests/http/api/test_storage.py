"""The download (CONTRACT §6): signed URLs really verified, gzip bytes, GCS XML errors."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.helpers import AUTH

XML = "application/xml; charset=UTF-8"


def finished_url(h, **body):
    op = h.finish(h.create(**body))
    return h.location(op["results"]["searchExportId"])


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    query = {k: v for k, v in query.items() if v is not None}
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


@pytest.mark.parametrize(
    "fmt,ext", [("FORMAT_CSV", "csv"), ("FORMAT_JSON", "json"), ("FORMAT_NDJSON", "ndjson")]
)
def test_download_is_raw_gzip_with_filename(harness, fmt, ext):
    response = harness.client.get(finished_url(harness, format=fmt))  # no Authorization header
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/gzip"
    assert "content-encoding" not in response.headers
    disposition = response.headers["content-disposition"]
    assert re.fullmatch(
        rf'attachment; filename="Everyone-\d{{8}}T\d{{6}}Z\.{ext}\.gz"', disposition
    )
    assert response.content[:2] == b"\x1f\x8b"
    text = gzip.decompress(response.content).decode("utf-8")
    if ext == "csv":
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0][:4] == ["IndvId", "UserId", "SessionId", "PageId"] and len(rows) > 1
    elif ext == "json":
        rows = json.loads(text)
        assert isinstance(rows, list) and rows and isinstance(rows[0], dict)
    else:
        lines = text.splitlines()
        assert lines and all(isinstance(json.loads(line), dict) for line in lines)


@pytest.mark.stores
def test_expired_url_answers_gcs_xml_then_fresh_url_works(harness):
    url = finished_url(harness)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    harness.advance(301)
    response = harness.client.get(url)
    assert response.status_code == 400
    assert response.headers["content-type"] == XML
    from datetime import UTC, datetime

    issued = datetime.strptime(query["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    expiry = (issued + timedelta(seconds=300)).strftime("%Y-%m-%dT%H:%M:%S")
    assert response.text == (
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code>"
        "<Message>The provided token has expired.</Message>"
        f"<Details>Request signature expired at: {expiry}+00:00</Details></Error>"
    )
    export_id = harness.client.get("/operations/v1", headers=AUTH).json()["operations"][0][
        "results"
    ]["searchExportId"]
    assert harness.client.get(harness.location(export_id)).status_code == 200


def test_url_still_valid_one_second_before_expiry(harness):
    url = finished_url(harness)
    harness.advance(299)
    assert harness.client.get(url).status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        {"X-Goog-Signature": "0" * 64},
        {"X-Goog-Expires": "999999"},
        {"X-Goog-Date": "20990101T000000Z"},
        {"X-Goog-Credential": "someone-else/20260301/auto/storage/goog4_request"},
        {"X-Goog-Algorithm": "GOOG4-RSA-SHA256"},
        {"X-Goog-Date": None},
        {"extra": "param"},
    ],
)
def test_tampered_urls_are_403_signature_does_not_match(harness, change):
    response = harness.client.get(with_query(finished_url(harness), **change))
    assert response.status_code == 403
    assert response.headers["content-type"] == XML
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_other_object_with_same_signature_is_403(harness):
    url = finished_url(harness)
    parts = urlsplit(url)
    other = url.replace(parts.path, parts.path.replace(".ndjson.gz", ".csv.gz"))
    assert "<Code>SignatureDoesNotMatch</Code>" in harness.client.get(other).text


def test_unsigned_is_403_access_denied(harness):
    url = finished_url(harness)
    response = harness.client.get(url.split("?")[0])
    assert response.status_code == 403 and response.headers["content-type"] == XML
    assert "<Code>AccessDenied</Code>" in response.text


def test_unknown_object_with_valid_signature_is_404_no_such_key(harness):
    signer = harness.em.exports.signer
    url = signer.mint("segment-exports/doesNotExist.csv.gz", harness.em.clock.now(), 300)
    response = harness.client.get(url)
    assert response.status_code == 404 and response.headers["content-type"] == XML
    assert "<Code>NoSuchKey</Code>" in response.text


def test_other_instance_secret_does_not_verify(make_harness):
    a, b = make_harness(signing_secret="one"), make_harness(signing_secret="two")
    url = finished_url(a)
    b.finish(b.create())  # same seed: same ids, so only the secret differs
    assert "<Code>SignatureDoesNotMatch</Code>" in b.client.get(url).text


def test_url_outliving_export_is_capped(make_harness):
    h = make_harness(export_retention=100, url_ttl=300)
    url = finished_url(h)
    assert "X-Goog-Expires=" in url
    expires = int(parse_qs(urlsplit(url).query)["X-Goog-Expires"][0])
    assert expires <= 100


def _storage_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == XML
    assert f"<Code>{code}</Code>" in response.text


def test_a_non_ascii_signature_is_a_mismatch_in_xml(harness):
    url = finished_url(harness)
    _storage_error(
        harness.client.get(with_query(url, **{"X-Goog-Signature": "é" * 64})),
        403,
        "SignatureDoesNotMatch",
    )


@pytest.mark.parametrize("name", ["X-Goog-Signature", "X-Goog-Expires", "X-Goog-Date"])
def test_a_repeated_signed_parameter_is_a_mismatch(harness, name):
    url = finished_url(harness)
    value = parse_qs(urlsplit(url).query)[name][0]
    # the genuine value again at the end, where "last wins" would have let it through
    _storage_error(harness.client.get(f"{url}&{name}={value}"), 403, "SignatureDoesNotMatch")
    assert harness.client.get(url).status_code == 200


def test_a_path_in_another_bucket_answers_storage_xml(harness):
    url = finished_url(harness)
    other = url.replace("/fullstory-emulator-exports/", "/another-bucket/")
    _storage_error(harness.client.get(other), 404, "NoSuchBucket")
    bare = harness.client.get("/another-bucket/segment-exports/x.ndjson.gz")
    _storage_error(bare, 404, "NoSuchBucket")
