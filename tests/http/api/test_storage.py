"""The download (CONTRACT §6): signed URLs really verified, gzip bytes, GCS XML errors."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from starlette.testclient import TestClient

from tests.helpers import AUTH, Harness

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


# -- Cloud Storage's headers, HEAD and ranges --------------------------------------------------


def test_download_has_length_etag_and_last_modified(harness):
    op = harness.finish(harness.create())
    url = harness.location(op["results"]["searchExportId"])
    response = harness.client.get(url)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["accept-ranges"] == "bytes"
    assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["etag"])
    finished = datetime.strptime(op["finishedAt"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert response.headers["last-modified"] == format_datetime(
        finished.replace(microsecond=0), usegmt=True
    )
    assert "content-range" not in response.headers


def test_head_answers_the_headers_without_the_body(harness):
    url = finished_url(harness, format="FORMAT_CSV")
    whole = harness.client.get(url)
    head = harness.client.head(url)  # a URL signed for GET also verifies for HEAD
    assert head.status_code == 200 and head.content == b""
    for name in ("content-length", "etag", "last-modified", "content-disposition", "content-type"):
        assert head.headers[name] == whole.headers[name], name


def test_head_with_a_bad_signature_is_403_without_a_body(harness):
    response = harness.client.head(with_query(finished_url(harness), **{"X-Goog-Signature": "0"}))
    assert response.status_code == 403 and response.content == b""


@pytest.mark.parametrize(
    "header,start,end",
    [
        ("bytes=0-9", 0, 10),
        ("bytes=10-19", 10, 20),
        ("bytes=100-", 100, None),
        ("bytes=-7", -7, None),
        ("bytes=0-", 0, None),  # the whole file, but still a 206: what download managers probe
        ("bytes=5-99999999", 5, None),  # an end past the file is cut to it
    ],
)
def test_a_range_is_206_with_content_range(harness, header, start, end):
    url = finished_url(harness)
    whole = harness.client.get(url).content
    size = len(whole)
    response = harness.client.get(url, headers={"Range": header})
    assert response.status_code == 206
    expected = whole[start:end]
    first = start % size
    assert response.content == expected
    assert response.headers["content-length"] == str(len(expected))
    assert response.headers["content-range"] == f"bytes {first}-{first + len(expected) - 1}/{size}"
    assert response.headers["etag"] == harness.client.get(url).headers["etag"]


@pytest.mark.parametrize("offset", [0, 1, 1000])
def test_a_range_past_the_end_is_416_invalid_range(harness, offset):
    url = finished_url(harness)
    size = len(harness.client.get(url).content)
    response = harness.client.get(url, headers={"Range": f"bytes={size + offset}-"})
    assert response.status_code == 416
    assert response.headers["content-type"] == XML
    assert response.headers["content-range"] == f"bytes */{size}"
    assert response.text == (
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>InvalidRange</Code>"
        "<Message>The requested range cannot be satisfied.</Message>"
        f"<Details>Request range not satisfiable: bytes={size + offset}- (object size {size})"
        "</Details></Error>"
    )


HUGE = "9" * 5000  # past Python's 4,300-digit limit on int("...")


@pytest.mark.parametrize(
    "header", [f"bytes={HUGE}-", f"bytes={HUGE}-{HUGE}", f"bytes={HUGE}-{HUGE}9"]
)
def test_a_range_starting_at_a_huge_number_is_416_not_500(harness, header):
    url = finished_url(harness)
    size = len(harness.client.get(url).content)
    response = harness.client.get(url, headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-type"] == XML
    assert response.headers["content-range"] == f"bytes */{size}"
    assert response.text == (
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>InvalidRange</Code>"
        "<Message>The requested range cannot be satisfied.</Message>"
        f"<Details>Request range not satisfiable: bytes={'9' * 94}… ({len(header):,} characters)"
        f" (object size {size})</Details></Error>"
    )


@pytest.mark.parametrize("header", [f"bytes=0-{HUGE}", f"bytes=-{HUGE}", f"bytes=-000{HUGE}"])
def test_a_range_ending_or_reaching_back_a_huge_number_is_the_whole_file(harness, header):
    url = finished_url(harness)
    whole = harness.client.get(url).content
    response = harness.client.get(url, headers={"Range": header})
    assert response.status_code == 206 and response.content == whole
    assert response.headers["content-range"] == f"bytes 0-{len(whole) - 1}/{len(whole)}"


def test_a_huge_end_before_a_huger_start_is_ignored(harness):
    url = finished_url(harness)
    whole = harness.client.get(url).content
    response = harness.client.get(url, headers={"Range": f"bytes=1{HUGE}-{HUGE}"})
    assert response.status_code == 200 and response.content == whole


@pytest.mark.parametrize(
    "header", ["bytes=0-1,5-9", "bytes=9-3", "items=0-9", "bytes=abc", "bytes=-"]
)
def test_a_range_that_is_not_one_byte_range_is_ignored(harness, header):
    url = finished_url(harness)
    whole = harness.client.get(url).content
    response = harness.client.get(url, headers={"Range": header})
    assert response.status_code == 200 and response.content == whole
    assert "content-range" not in response.headers


def test_if_range_sends_the_range_only_for_the_same_file(harness):
    url = finished_url(harness)
    whole = harness.client.get(url)
    etag, modified = whole.headers["etag"], whole.headers["last-modified"]
    for validator in (etag, modified):
        same = harness.client.get(url, headers={"Range": "bytes=4-", "If-Range": validator})
        assert same.status_code == 206 and same.content == whole.content[4:]
    for validator in ('"0123"', f"W/{etag}", "Sun, 01 Mar 2026 00:00:00 GMT"):
        other = harness.client.get(url, headers={"Range": "bytes=4-", "If-Range": validator})
        assert other.status_code == 200 and other.content == whole.content


def test_a_range_needs_a_good_signature_too(harness):
    url = with_query(finished_url(harness), **{"X-Goog-Signature": "0" * 64})
    response = harness.client.get(url, headers={"Range": "bytes=0-9"})
    assert response.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in response.text


@pytest.mark.stores
def test_two_ranges_make_the_whole_file_and_are_journaled(harness):
    url = finished_url(harness, format="FORMAT_JSON")
    whole = harness.client.get(url).content
    half = len(whole) // 2
    head = harness.client.get(url, headers={"Range": f"bytes=0-{half - 1}"})
    rest = harness.client.get(url, headers={"Range": f"bytes={half}-"})
    assert head.content + rest.content == whole
    assert json.loads(gzip.decompress(head.content + rest.content))
    journal = harness.client.get(
        "/__emulator/journal?path=/fullstory-emulator-exports/*", headers=AUTH
    ).json()["requests"]
    assert [e["status"] for e in journal] == [200, 206, 206]
    assert journal[-1]["headers"]["range"] == f"bytes={half}-"


def test_a_slowed_range_is_still_exact(harness):
    url = finished_url(harness)
    whole = harness.client.get(url).content
    response = harness.client.get(
        url, headers={"Range": "bytes=0-99", "X-Emulator-Fault": "bytes-per-second=1000"}
    )
    assert response.status_code == 206 and response.content == whole[:100]


def test_the_file_is_made_once_and_remade_identically_after_eviction(make_harness):
    kept = make_harness()
    url = finished_url(kept)
    first = kept.client.get(url)
    files = list(kept.em.exports.files.directory.glob("*.gz"))
    assert [f.name for f in files] == [first.headers["etag"].strip('"') + ".gz"]
    files[0].write_bytes(b"changed on disk")  # proof that the next download reads the cache
    assert kept.client.get(url).content == b"changed on disk"

    one_kept = make_harness(file_cache_bytes=len(first.content) * 3 // 2)  # room for one file
    url = finished_url(one_kept)
    other = finished_url(one_kept, format="FORMAT_CSV")
    again, csv = one_kept.client.get(url), one_kept.client.get(other)
    cached = one_kept.em.exports.files.directory.glob("*.gz")
    assert [f.name for f in cached] == [csv.headers["etag"].strip('"') + ".gz"]  # NDJSON went
    remade = one_kept.client.get(url)
    assert again.content == remade.content == first.content
    assert again.headers["etag"] == remade.headers["etag"] == first.headers["etag"]


def test_concurrent_downloads_through_a_small_cache_are_all_whole_files(make_harness):
    """A dozen downloads at once of seven exports, through a cache with room for one file at a
    time: each download's eviction unlinks files others have just made, and every download is
    still a 200 with the file's bytes (it was a 500 in JSON in most runs of this test)."""

    def exports(h: Harness) -> list[str]:
        return [
            finished_url(h, timeRange={"start": f"2026-02-{day:02d}T00:00:00Z", "end": ""})
            for day in range(20, 27)
        ]

    probe = make_harness()  # the same files, made alike: their sizes
    sizes = sorted(len(probe.client.get(url).content) for url in exports(probe))
    h = make_harness(file_cache_bytes=sizes[-1] + sizes[0] // 2)  # one fits, never two
    urls = exports(h)
    wanted = [h.client.get(url).content for url in urls]
    assert sorted(map(len, wanted)) == sizes
    answers: list[tuple[int, int, bytes]] = []
    start = threading.Barrier(12)

    def download(n: int) -> None:
        start.wait()
        for round_ in range(8):
            i = (n + round_) % len(urls)
            response = h.client.get(urls[i])
            answers.append((i, response.status_code, response.content))

    threads = [threading.Thread(target=download, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 96
    assert [(i, status) for i, status, _ in answers if status != 200] == []
    assert all(body == wanted[i] for i, _, body in answers)


def test_a_crash_while_serving_a_download_answers_storage_xml(harness, monkeypatch, caplog):
    url = finished_url(harness)

    def broken(download):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(harness.em.exports, "open_file", broken)
    base = str(harness.client.base_url)
    client = TestClient(harness.client.app, base_url=base, raise_server_exceptions=False)
    response = client.get(url)  # no lifespan: the harness's emulator stays open
    client.close()
    assert response.status_code == 500
    assert response.headers["content-type"] == XML
    assert response.text == (
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code>"
        "<Message>We encountered an internal error. Please try again.</Message>"
        "<Details>internal error in the emulator; see its log</Details></Error>"
    )
    assert "disk on fire" in caplog.text


def test_etag_differs_for_different_files_and_is_stable_across_instances(make_harness):
    a, b = make_harness(), make_harness()
    ndjson_a = a.client.get(finished_url(a)).headers["etag"]
    ndjson_b = b.client.get(finished_url(b)).headers["etag"]
    csv_b = b.client.get(finished_url(b, format="FORMAT_CSV")).headers["etag"]
    assert ndjson_a == ndjson_b != csv_b
    other_seed = make_harness(seed=2)
    assert other_seed.client.get(finished_url(other_seed)).headers["etag"] != ndjson_a


def test_files_outlive_a_restart_in_the_data_dir(tmp_path, make_harness):
    first = make_harness(data_dir=tmp_path / "data")
    url = finished_url(first)
    body = first.client.get(url).content
    (kept,) = (tmp_path / "data" / "files").glob("*.gz")
    assert kept.read_bytes() == body
    restarted = make_harness(data_dir=tmp_path / "data")
    kept.write_bytes(b"kept")  # the restarted instance serves the kept file, not a new one
    assert restarted.client.get(url).content == b"kept"


def test_a_large_export_is_made_while_it_is_pending(make_harness, monkeypatch):
    from fullstory_emulator.exports import service

    monkeypatch.setattr(service, "PARALLEL_MIN_EVENTS", 0)  # every export counts as large
    h = make_harness(export_duration=60)
    op_id = h.create()
    files = h.em.exports.files
    deadline = time.monotonic() + 30
    while not list(files.directory.glob("*.gz")):  # made in the background, still PENDING
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert h.operation(op_id)["state"] == "PENDING"
    (made,) = files.directory.glob("*.gz")
    made.write_bytes(b"made while pending")
    url = h.location(h.finish(op_id)["results"]["searchExportId"])
    assert h.client.get(url).content == b"made while pending"


def test_a_burst_of_large_exports_leaves_a_bounded_backlog(make_harness, monkeypatch):
    """Files are made ahead of their download one at a time, with at most
    BACKGROUND_PENDING waiting: a burst of creations must not keep the emulator making files
    for hours after it. The waiting ones that gave way are made by their first download."""
    from fullstory_emulator.exports import service

    monkeypatch.setattr(service, "PARALLEL_MIN_EVENTS", 0)  # every export counts as large
    h = make_harness(export_duration=60, rate_limit=None)
    exports = h.em.exports
    opened: list[str] = []
    finished: list[str] = []
    release = threading.Event()
    real_open = exports._open

    def slow_open(job):  # the first file takes until the burst is over
        opened.append(job.key())
        release.wait(30)
        try:
            return real_open(job)
        finally:
            finished.append(job.key())

    class Counted(deque):  # the maker's queue, counting what it took
        taken = 0

        def popleft(self):
            self.taken += 1
            return super().popleft()

    waiting = Counted(maxlen=service.BACKGROUND_PENDING)
    monkeypatch.setattr(exports, "_pending", waiting)
    monkeypatch.setattr(exports, "_open", slow_open)
    ops = [
        h.create(timeRange={"start": f"2026-02-{day:02d}T00:00:00Z", "end": "2026-02-28T00:00:00Z"})
        for day in range(1, 13)
    ]
    release.set()
    # Settled when nothing waits and every job the maker took has been made: then nothing else
    # can come (no export is created after the burst), without waiting to see.
    deadline = time.monotonic() + 30
    while waiting or waiting.taken > len(finished) or not finished:
        assert time.monotonic() < deadline, opened
        time.sleep(0.02)
    assert len(opened) == 1 + service.BACKGROUND_PENDING
    records = {r.id: r for r in h.em.store.operations(None)}
    everyone = exports.segment("everyone")
    assert opened[1:] == [exports.job(records[op], everyone).key() for op in ops[-2:]]
    # an export whose file gave way is made by its download, the same bytes as ever
    url = h.location(h.finish(ops[5])["results"]["searchExportId"])
    assert h.client.get(url).status_code == 200
