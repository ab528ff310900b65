"""What the journal and the access logs keep of a request (fullstory_emulator/http/redact.py): an
allow-list, so that no credential or URL signature is ever written down."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import httpx

from fullstory_emulator.server import bind, make_server
from fullstory_emulator.serving import UvicornThread
from tests.helpers import AUTH, KEY, small_settings

SECRETS = {
    "X-Api-Key": "na1.secret-in-x-api-key",
    "Proxy-Authorization": "Basic c2VjcmV0LXByb3h5",
    "Cookie": "session=secret-cookie",
    "X-Emulator-Token": "secret-token",
}


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_journal_keeps_no_signature_and_no_credential(harness):
    op = harness.finish(harness.create())
    url = harness.location(op["results"]["searchExportId"])
    assert harness.client.get(url, headers=SECRETS).status_code == 200
    harness.client.get("/segments/v1?limit=2&api_key=secret-param", headers={**AUTH, **SECRETS})
    for headers in (AUTH, {}):  # the tenant's journal and the instance's
        text = harness.client.get("/__emulator/journal", headers=headers).text
        signature = dict(p.split("=", 1) for p in urlsplit(url).query.split("&"))
        assert signature["X-Goog-Signature"] not in text
        for secret in [*SECRETS.values(), KEY, "secret-param", "na1.secret"]:
            assert secret not in text
    entries = harness.client.get("/__emulator/journal", headers=AUTH).json()["requests"]
    download, listing = entries[-2], entries[-1]
    assert "X-Goog-Signature=[redacted]" in download["query"]
    assert "X-Goog-Expires=300" in download["query"]  # harmless parameters stay readable
    assert listing["query"] == "limit=2&api_key=[redacted]"
    assert listing["headers"]["x-api-key"] == "[redacted]"
    assert listing["headers"]["proxy-authorization"] == "[redacted]"
    assert "authorization" not in listing["headers"]
    # A URL rebuilt from the journal does not download.
    rebuilt = f"{download['path']}?{download['query']}"
    assert harness.client.get(rebuilt).status_code == 403


def test_journal_cuts_what_it_keeps_of_huge_headers(harness):
    huge = {"User-Agent": "u" * 15_000, "X-Padding": "p" * 15_000}
    harness.client.get("/segments/v1", headers={**AUTH, **huge})
    entry = harness.client.get("/__emulator/journal", headers=AUTH).json()["requests"][-1]
    assert len(json.dumps(entry)) < 2_000
    assert entry["headers"]["user-agent"] == "u" * 256 + "…"


def test_json_access_log_redacts_the_signature(make_harness):
    h = make_harness(access_log="json")
    seen = Lines()
    logging.getLogger("fullstory_emulator.access").addHandler(seen)
    try:
        url = h.location(h.finish(h.create())["results"]["searchExportId"])
        h.client.get(url)
    finally:
        logging.getLogger("fullstory_emulator.access").removeHandler(seen)
    signature = url.rpartition("X-Goog-Signature=")[2]
    assert seen.lines and all(signature not in line for line in seen.lines)
    assert "X-Goog-Signature=[redacted]" in json.loads(seen.lines[-1])["query"]


def test_text_access_log_redacts_the_signature():
    sock, settings = bind(small_settings(port=0))
    server = make_server(settings, log_level="info")
    seen = Lines()
    logging.getLogger("uvicorn.access").addHandler(seen)
    try:
        with UvicornThread(server, sock, "redact-test"):
            base = settings.base_url()
            url = f"{base}/segments/v1?limit=1&X-Goog-Signature=abc123secret&key=na1.secretkey"
            assert httpx.get(url, headers=AUTH).status_code == 200
    finally:
        logging.getLogger("uvicorn.access").removeHandler(seen)
    line = next(line for line in seen.lines if "/segments/v1" in line)
    assert "abc123secret" not in line and "na1.secretkey" not in line
    assert "limit=1&X-Goog-Signature=[redacted]&key=[redacted]" in line


def test_journal_keeps_each_requests_own_headers_when_clients_repeat_them(harness):
    """The journal's form of a header set is remembered per distinct set: a request repeating
    an earlier set, one differing in a single value, and one repeating a header each get their
    own headers (a repeated header is journaled by its first value, as it is read)."""
    sent = [
        [("User-Agent", "first/1"), ("X-Request-Id", "a")],
        [("User-Agent", "first/1"), ("X-Request-Id", "b")],
        [("User-Agent", "first/1"), ("X-Request-Id", "a")],
        [("User-Agent", "one/1"), ("User-Agent", "two/2"), ("X-Request-Id", "c")],
    ]
    for headers in sent:
        response = harness.client.get("/segments/v1", headers=[*AUTH.items(), *headers])
        assert response.status_code == 200
    entries = harness.client.get("/__emulator/journal", headers=AUTH).json()["requests"][-4:]
    kept = [(e["headers"]["user-agent"], e["headers"]["x-request-id"]) for e in entries]
    assert kept == [("first/1", "a"), ("first/1", "b"), ("first/1", "a"), ("one/1", "c")]
    assert all("authorization" not in e["headers"] for e in entries)
