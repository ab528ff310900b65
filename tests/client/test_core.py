"""FullStoryClient against an in-process emulator on a frozen clock.

The client reaches the app through a relay transport that records every request and can inject
what the emulator will not do on its own here (5xx, dropped connections, a body cut short, a
clock jump between two steps), so these tests need nothing but the API itself. The client's
`sleep` records the wait and moves the emulator's clock: no test really sleeps.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from fullstory_emulator.client.core import (
    Download,
    DownloadError,
    DownloadExpired,
    DownloadStart,
    ExportFailed,
    FullStoryClient,
    FullStoryError,
    NotFound,
    Pace,
    RateBudget,
    RateLimited,
    Resume,
    Retry,
    Sink,
    Unauthorized,
    filename_from_disposition,
)
from fullstory_emulator.http.app import create_app
from fullstory_emulator.instance import Emulator
from fullstory_emulator.settings import RateLimit
from tests.helpers import START, small_settings

KEY = "na1.client-test-key"
Hook = Callable[[httpx.Request], httpx.Response | None]


class _Body(httpx.SyncByteStream):
    """A body still to be read, as a network transport hands it over."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data


class _BrokenStream(httpx.SyncByteStream):
    """A body that breaks off after its first bytes, like a dropped download."""

    def __init__(self, head: bytes) -> None:
        self.head = head

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        raise httpx.ReadError("connection reset mid-body")


class _Chunks(httpx.SyncByteStream):
    """A body in several chunks that records how many were read and whether it was closed."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.read = 0
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk

    def close(self) -> None:
        self.closed = True


class Collector:
    """A Sink that keeps what it is given, stops after `stop_after` chunks, counts restarts."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.stop_after = stop_after
        self.chunks: list[bytes] = []
        self.restarts = 0

    def write(self, chunk: bytes) -> bool:
        self.chunks.append(chunk)
        return self.stop_after is not None and len(self.chunks) >= self.stop_after

    def restart(self) -> None:
        self.chunks.clear()
        self.restarts += 1


@dataclass
class Relay(httpx.BaseTransport):
    """Forwards to the app; each queued hook may answer (or raise) instead, once; `before`
    sees every request first (to move the clock at a chosen step)."""

    app: TestClient
    hooks: list[Hook] = field(default_factory=list)
    before: Callable[[httpx.Request], None] | None = None
    seen: list[tuple[str, str, int | None, str | None]] = field(default_factory=list)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization")
        if self.before is not None:
            self.before(request)
        if self.hooks:
            hook = self.hooks.pop(0)
            try:
                injected = hook(request)
            except httpx.TransportError:
                self.seen.append((request.method, request.url.path, None, auth))
                raise
            if injected is not None:
                self.seen.append((request.method, request.url.path, injected.status_code, auth))
                return injected
        answer = self.app.request(
            request.method, str(request.url), headers=dict(request.headers), content=request.read()
        )
        self.seen.append((request.method, request.url.path, answer.status_code, auth))
        return httpx.Response(
            answer.status_code, headers=answer.headers, stream=_Body(answer.content)
        )

    def paths(self) -> list[str]:
        return [f"{method} {path}" for method, path, _, _ in self.seen]


@dataclass
class Setup:
    em: Emulator
    relay: Relay
    client: FullStoryClient
    sleeps: list[float]

    def advance(self, seconds: float) -> None:
        self.em.clock.advance(seconds)


@pytest.fixture
def make() -> Iterator[Callable[..., Setup]]:
    opened: list[Any] = []

    def build(*, key: str | None = KEY, max_retries: int = 5, **overrides: Any) -> Setup:
        settings = small_settings(**overrides)
        em = Emulator.build(settings)
        app = TestClient(create_app(settings, emulator=em), base_url=settings.base_url())
        relay = Relay(app)
        http = httpx.Client(transport=relay)
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            em.clock.advance(seconds)

        client = FullStoryClient(
            settings.base_url(), key, http=http, sleep=sleep, max_retries=max_retries
        )
        opened.extend([app, http])
        return Setup(em, relay, client, sleeps)

    yield build
    for item in opened:
        item.close()


@pytest.fixture
def setup(make: Callable[..., Setup]) -> Setup:
    return make()


def _api_error(status: int, code: int, message: str, **headers: str) -> Hook:
    body = {"code": code, "message": message, "details": []}
    return lambda request: httpx.Response(status, json=body, headers=headers)


def _unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


# -- segments ------------------------------------------------------------------------------------


def test_list_segments_follows_pagination(setup):
    everything = setup.client.list_segments()
    ids = [s["id"] for s in everything]
    assert {"everyone", "rageClicks", "LegacyFunnel"} <= set(ids)

    setup.relay.seen.clear()
    paged = setup.client.list_segments(limit=2)
    assert paged == everything
    assert len(setup.relay.seen) == (len(ids) + 1) // 2  # one request per page of two
    assert all(auth == f"Basic {KEY}" for *_, auth in setup.relay.seen)

    alice = setup.client.list_segments(creator="alice@acme-outfitters.example")
    assert alice and all(s["creator"] == "alice@acme-outfitters.example" for s in alice)


def test_get_segment_and_not_found(setup):
    assert setup.client.get_segment("everyone")["name"] == "Everyone"
    with pytest.raises(NotFound) as caught:
        setup.client.get_segment("noSuchSegment")
    error = caught.value
    assert error.status == 404 and error.code == 5
    assert "noSuchSegment" in error.message and "noSuchSegment" in str(error)


# -- the workflow --------------------------------------------------------------------------------


def test_run_export_downloads_the_file(setup, tmp_path):
    progress: list[int] = []
    result = setup.client.run_export(
        "everyone", tmp_path, on_progress=lambda op: progress.append(op["estimatePctComplete"])
    )
    assert result.operation["state"] == "COMPLETED" and result.renewals == 0
    assert result.filename.startswith("Everyone-") and result.filename.endswith(".ndjson.gz")
    assert result.path == tmp_path / result.filename
    rows = [json.loads(line) for line in gzip.decompress(result.path.read_bytes()).splitlines()]
    assert rows and all("EventStart" in row for row in rows)
    assert progress[-1] == 100 and progress == sorted(progress)
    assert setup.sleeps == [2.0] * (len(progress) - 1)  # polled every 2 s of emulator time
    assert [p.split(" ", 1)[1].split("/")[1] for p in setup.relay.paths()] == [
        "segments",
        *["operations"] * len(progress),
        "search",
        "fullstory-emulator-exports",
    ]
    download = setup.relay.seen[-1]
    assert download[2] == 200 and download[3] is None  # no key sent to storage
    assert not list(tmp_path.glob(".download-*"))


def test_create_export_with_every_option(setup):
    operation_id = setup.client.create_export(
        "everyone",
        type="TYPE_EVENT",
        format="FORMAT_CSV",
        time_range=(START - timedelta(days=3), START - timedelta(days=1)),
        segment_time_range={"start": "", "end": ""},
        timezone="America/New_York",
        fields=["EventStart", "EventType", "PageUrl"],
        scope="SCOPE_PAGES",
    )
    operation = setup.client.wait(operation_id, poll_interval=1)
    location, expires = setup.client.export_location(operation["results"]["searchExportId"])
    assert "X-Goog-Signature=" in location and expires.endswith("Z")
    buffer = io.BytesIO()
    filename = setup.client.download(location, buffer)
    assert filename.endswith(".csv.gz")
    reader = csv.reader(io.StringIO(gzip.decompress(buffer.getvalue()).decode()))
    header = next(reader)
    assert set(header) == {"EventStart", "EventType", "PageUrl"}
    starts = [row[header.index("EventStart")] for row in reader]
    assert starts and all("2026-02-26T12:00:00" <= s < "2026-02-28T12:00:00" for s in starts)


def test_download_to_a_file_path(setup, tmp_path):
    operation = setup.client.wait(setup.client.create_export("rageClicks"))
    location, _ = setup.client.export_location(operation["results"]["searchExportId"])
    target = tmp_path / "out.gz"
    filename = setup.client.download(location, target)
    assert filename.startswith("Rage_Clicks-") and target.read_bytes()[:2] == b"\x1f\x8b"


def test_operations_list_get_and_cancel(setup):
    first = setup.client.create_export("everyone")
    second = setup.client.create_export("rageClicks")
    listed = setup.client.list_operations()
    assert [op["id"] for op in listed] == [second, first]  # newest first
    assert setup.client.list_operations(state="COMPLETED") == []
    assert [op["id"] for op in setup.client.list_operations(limit=1)] == [second, first]

    assert setup.client.cancel_operation(first) == {}
    cancelled = setup.client.get_operation(first)
    assert cancelled["state"] == "ERROR" and cancelled["errorDetails"] == "cancelled"
    with pytest.raises(ExportFailed, match="cancelled"):
        setup.client.wait(first)

    setup.client.wait(second)
    waits = len(setup.sleeps)
    with pytest.raises(FullStoryError) as caught:
        setup.client.cancel_operation(second)
    assert caught.value.status == 501 and "cancel" in caught.value.message
    assert len(setup.sleeps) == waits  # 501 is final: not retried


@pytest.mark.parametrize("failure_state", ["ERROR", "FAILED"])
def test_failing_segment_raises_export_failed(make, failure_state):
    setup = make(failure_state=failure_state)
    operation_id = setup.client.create_export("LegacyFunnel")
    with pytest.raises(ExportFailed) as caught:
        setup.client.wait(operation_id)
    error = caught.value
    assert error.operation["state"] == failure_state and error.code == failure_state
    assert error.error_details and error.error_details in str(error)
    assert operation_id in str(error)


def test_wait_times_out_on_emulator_time(make):
    setup = make(export_duration=3600)
    operation_id = setup.client.create_export("everyone")
    with pytest.raises(FullStoryError, match="still PENDING") as caught:
        setup.client.wait(operation_id, poll_interval=5, timeout=20)
    assert caught.value.code == "Timeout" and sum(setup.sleeps) <= 20


# -- retries -------------------------------------------------------------------------------------


def test_429_waits_for_retry_after(make):
    setup = make(rate_limit=RateLimit(1, 30, 2))
    for _ in range(3):
        assert setup.client.get_segment("everyone")["id"] == "everyone"
    statuses = [status for _, _, status, _ in setup.relay.seen]
    assert statuses == [200, 200, 429, 200]
    assert len(setup.sleeps) == 1 and 0 < setup.sleeps[0] <= 30


def test_429_gives_up_after_max_retries(make):
    setup = make(rate_limit=RateLimit(1, 60, 1))
    waits: list[float] = []  # a sleep that lets no time pass: the bucket never refills
    client = FullStoryClient(
        setup.client.base_url, KEY, http=setup.client.http, sleep=waits.append, max_retries=2
    )
    client.get_segment("everyone")
    with pytest.raises(RateLimited) as caught:
        client.get_segment("everyone")
    error = caught.value
    assert error.status == 429 and error.code == 8 and error.retry_after == waits[-1]
    assert len(waits) == 2 and "gave up after 3 attempts" in str(error)


def test_exchange_answers_errors_as_they_came_but_waits_out_a_429(make):
    """`exchange` hands back a 404 or 401 whole (status, headers, JSON text) instead of raising,
    still waits out a 429 as `Retry-After` says, and sends a URL without the key."""
    setup = make(rate_limit=RateLimit(1, 30, 1))
    client = setup.client
    missing = client.exchange("GET", "/segments/v1/noSuchSegment", "/segments/v1/{id}")
    assert missing.status_code == 404 and missing.json()["code"] == 5
    assert missing.headers["content-type"] == "application/json"
    found = client.exchange("GET", "/segments/v1/everyone", "/segments/v1/{id}")  # after a 429
    assert found.status_code == 200 and found.json()["id"] == "everyone"
    anonymous = client.exchange("GET", "/segments/v1", authorize=False)
    assert anonymous.status_code == 401 and '"code":16' in anonymous.text
    signed = client.exchange("GET", f"{client.base_url}/fullstory-emulator-exports/x.gz")
    assert signed.status_code == 403 and "<Code>AccessDenied</Code>" in signed.text  # unsigned
    statuses = [(status, auth is not None) for _, _, status, auth in setup.relay.seen]
    assert statuses == [(404, True), (429, True), (200, True), (401, False), (403, False)]
    assert len(setup.sleeps) == 1 and 0 < setup.sleeps[0] <= 30


def test_a_paced_client_waits_for_a_token_instead_of_a_429(make):
    """The emulator's bucket (burst 2, 1 per 30 s) and the client's estimate of it agree: the
    third request waits its 30 s (of emulator time) and no 429 is ever answered."""
    setup = make(rate_limit=RateLimit(1, 30, 2))
    paces: list[Pace] = []
    client = FullStoryClient(
        setup.client.base_url,
        KEY,
        http=setup.client.http,
        sleep=setup.client._sleep,
        rate_limit="1/30,2",
        on_pace=paces.append,
    )
    for _ in range(3):
        client.get_segment("everyone")
    client.list_segments()  # another endpoint: a bucket of its own
    assert [status for _, _, status, _ in setup.relay.seen] == [200, 200, 200, 200]
    assert [p.endpoint for p in paces] == ["GET /segments/v1/{id}"]
    assert 30 <= paces[0].delay <= 31 and setup.sleeps == [paces[0].delay]


def test_a_429_empties_the_estimate(make):
    """Another process spent the key's tokens: the 429 tells the client, which then waits for
    the refill before the next request instead of collecting another 429."""
    setup = make(rate_limit=RateLimit(1, 30, 50))
    setup.relay.hooks = [_api_error(429, 8, "slow down", **{"Retry-After": "12"})]
    client = FullStoryClient(
        setup.client.base_url,
        KEY,
        http=setup.client.http,
        sleep=setup.client._sleep,
        rate_limit="1/30,50",
    )
    client.get_segment("everyone")  # 429, wait 12 s, then 200 with the token it waited for
    client.get_segment("everyone")  # the bucket is empty now: 30 s more
    assert [status for _, _, status, _ in setup.relay.seen] == [429, 200, 200]
    assert setup.sleeps[0] == 12.0 and 30 <= setup.sleeps[1] <= 31


def test_a_pace_says_why_the_bucket_is_empty(make):
    """A wait the user sees names its cause: this client's own burst, or a 429."""
    setup = make(rate_limit=RateLimit(1, 30, 2))
    setup.relay.hooks = [
        lambda request: None,
        lambda request: None,
        _api_error(429, 8, "slow down", **{"Retry-After": "1"}),
    ]
    paces: list[Pace] = []
    client = FullStoryClient(
        setup.client.base_url,
        KEY,
        http=setup.client.http,
        sleep=setup.client._sleep,
        rate_limit="1/30,2",
        on_pace=paces.append,
    )
    client.get_segment("everyone")  # the burst of 2
    client.get_segment("everyone")
    client.get_segment("everyone")  # paced 30 s, then a 429 (Retry-After 1), then 200
    client.get_segment("everyone")  # paced again, because of the 429
    assert [p.reason for p in paces] == [
        "the burst of 2 is spent; the bucket refills 1 token per 30 s",
        "a 429 said its bucket is empty; it refills 1 token per 30 s (--rate-limit 1/30,2), "
        "so this waits for the next token",
    ]


def test_a_429_given_up_on_still_tells_the_estimate(make):
    """A caller that goes on after the client gave up (the recorder waits out any 429) waits
    for the server's Retry-After, neither a whole refill nor not at all."""
    setup = make(rate_limit=RateLimit(1, 30, 50))
    setup.relay.hooks = [_api_error(429, 8, "slow down", **{"Retry-After": "12"})]
    client = FullStoryClient(
        setup.client.base_url,
        KEY,
        http=setup.client.http,
        sleep=setup.client._sleep,
        max_retries=0,
        rate_limit="1/30,50",
    )
    with pytest.raises(RateLimited):
        client.get_segment("everyone")
    client.get_segment("everyone")
    assert [status for _, _, status, _ in setup.relay.seen] == [429, 200]
    assert len(setup.sleeps) == 1 and 12 <= setup.sleeps[0] <= 13


def test_rate_budget_arithmetic():
    budget = RateBudget(RateLimit(2, 60, 3))
    for _ in range(3):
        assert budget.delay("GET /x", 0.0) == 0.0
        budget.spend("GET /x", 0.0)
    assert budget.delay("GET /x", 0.0) == pytest.approx(30.6)  # one token, a fiftieth spare
    assert budget.delay("GET /x", 15.0) == pytest.approx(15.6)
    assert budget.delay("GET /y", 0.0) == 0.0  # every endpoint has its own bucket
    assert budget.tokens("GET /x", 1000.0) == 3.0  # never more than the burst
    budget.refused("GET /y", 0.0, 45.0)
    assert budget.delay("GET /y", 45.0) == 0.0  # a token once Retry-After is over
    assert budget.delay("GET /y", 30.0) == pytest.approx(15.6)


def test_server_time_comes_from_the_answers(setup):
    assert setup.client.server_time() is None
    setup.client.get_segment("everyone")
    seen = setup.client.server_time()  # the frozen emulator's X-Emulator-Now, + real time since
    assert seen is not None and timedelta(0) <= seen - START < timedelta(seconds=1)
    setup.client._wait(10)  # moves the emulator's clock: the client counts it
    later = setup.client.server_time()
    assert later is not None and timedelta(seconds=10) <= later - START < timedelta(seconds=11)


def test_wait_can_let_the_export_run_before_the_first_poll(setup):
    operation_id = setup.client.create_export("everyone")
    operation = setup.client.wait(operation_id, first_poll_after=5)
    assert operation["state"] == "COMPLETED" and setup.sleeps == [5]
    assert setup.relay.paths().count(f"GET /operations/v1/{operation_id}") == 1


def test_retry_after_is_honoured_exactly(setup):
    setup.relay.hooks = [_api_error(429, 8, "slow down", **{"Retry-After": "7"})]
    assert setup.client.get_segment("everyone")["id"] == "everyone"
    assert setup.sleeps == [7.0]


def test_5xx_backs_off_exponentially(setup):
    setup.relay.hooks = [
        _api_error(503, 14, "unavailable"),
        _api_error(500, 13, "internal"),
        _api_error(502, 13, "bad gateway"),
    ]
    assert setup.client.create_export("everyone")
    assert setup.sleeps == [1.0, 2.0, 4.0]
    assert [s for _, _, s, _ in setup.relay.seen] == [503, 500, 502, 200]


def test_5xx_gives_up_with_the_server_message(make):
    setup = make(max_retries=2)
    setup.relay.hooks = [_api_error(500, 13, "the database is on fire")] * 3
    with pytest.raises(FullStoryError) as caught:
        setup.client.get_segment("everyone")
    assert caught.value.status == 500 and caught.value.code == 13
    assert "the database is on fire" in str(caught.value)
    assert setup.sleeps == [1.0, 2.0]


def test_connection_errors_are_retried(make):
    setup = make(max_retries=1)
    setup.relay.hooks = [_unreachable]
    assert setup.client.get_segment("everyone")["id"] == "everyone"
    assert setup.sleeps == [1.0]

    setup.relay.hooks = [_unreachable, _unreachable]
    with pytest.raises(FullStoryError, match="ConnectError") as caught:
        setup.client.get_segment("everyone")
    assert caught.value.status is None


def test_a_download_cut_short_starts_again(setup, tmp_path):
    operation = setup.client.wait(setup.client.create_export("everyone"))
    location, _ = setup.client.export_location(operation["results"]["searchExportId"])

    def broken(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Disposition": 'attachment; filename="Everyone-x.ndjson.gz"'}
        return httpx.Response(200, headers=headers, stream=_BrokenStream(b"\x1f\x8b partial"))

    setup.relay.hooks = [broken]
    target = tmp_path / "file.gz"
    setup.client.download(location, target)
    assert gzip.decompress(target.read_bytes())  # the whole file, not the broken head
    assert setup.sleeps[-1] == 1.0

    buffer = io.BytesIO(b"keep:")
    buffer.seek(0, io.SEEK_END)
    setup.relay.hooks = [broken]
    setup.client.download(location, buffer)
    assert buffer.getvalue().startswith(b"keep:\x1f\x8b")
    assert gzip.decompress(buffer.getvalue()[5:])


def test_a_download_cut_short_resumes_with_a_range(setup, tmp_path):
    operation = setup.client.wait(setup.client.create_export("everyone"))
    location, _ = setup.client.export_location(operation["results"]["searchExportId"])
    whole = setup.relay.app.get(location).content
    ranges: list[str | None] = []

    def half(request: httpx.Request) -> httpx.Response:
        answer = setup.relay.app.get(str(request.url))
        cut = _BrokenStream(answer.content[: len(answer.content) // 2])
        return httpx.Response(200, headers=answer.headers, stream=cut)

    def seen(request: httpx.Request) -> None:
        if _is_download(request):
            ranges.append(request.headers.get("range"))

    setup.relay.hooks, setup.relay.before = [half], seen
    starts: list[DownloadStart] = []
    progress: list[tuple[int, int | None]] = []
    buffer = io.BytesIO()
    setup.client.download(
        location,
        buffer,
        on_download=starts.append,
        on_bytes=lambda size, total: progress.append((size, total)),
    )
    assert buffer.getvalue() == whole
    assert ranges == [None, f"bytes={len(whole) // 2}-"]
    assert [(s.offset, s.total) for s in starts] == [(0, len(whole)), (len(whole) // 2, len(whole))]
    assert starts[0].etag and starts[0].etag == starts[1].etag
    assert progress[-1] == (len(whole), len(whole))

    # a download begun earlier (the first half already on disk) continues where it was
    held = io.BytesIO(whole[:1000])
    held.seek(0, io.SEEK_END)
    setup.client.download(location, held, resume=Resume(1000, starts[0].etag))
    assert held.getvalue() == whole and ranges[-1] == "bytes=1000-"

    # a stale ETag: the server sends the whole file, and the held bytes are replaced
    stale = io.BytesIO(b"x" * 1000)
    stale.seek(0, io.SEEK_END)
    setup.client.download(location, stale, resume=Resume(1000, '"stale"'))
    assert stale.getvalue() == whole


# -- expired URLs and storage errors -------------------------------------------------------------


def _is_download(request: httpx.Request) -> bool:
    return request.url.path.startswith("/fullstory-emulator-exports/")


def test_expired_url_is_renewed(make, tmp_path):
    setup = make(url_ttl=5)
    downloads: list[str] = []

    def expire_first_url(request: httpx.Request) -> None:
        if _is_download(request):
            downloads.append(str(request.url))
            if len(downloads) == 1:
                setup.advance(60)  # the URL (5 s) is long dead when the download arrives

    setup.relay.before = expire_first_url
    result = setup.client.run_export("everyone", tmp_path)
    assert result.renewals == 1 and result.path and result.path.exists()
    assert len(downloads) == 2 and downloads[0] != downloads[1]
    steps = [(path.split("/")[1], status) for _, path, status, _ in setup.relay.seen]
    assert steps[-4:] == [
        ("search", 200),
        ("fullstory-emulator-exports", 400),
        ("search", 200),
        ("fullstory-emulator-exports", 200),
    ]


def test_expired_url_error_carries_the_storage_xml(make, tmp_path):
    setup = make(url_ttl=5)
    operation = setup.client.wait(setup.client.create_export("everyone"))
    location, _ = setup.client.export_location(operation["results"]["searchExportId"])
    setup.advance(10)
    with pytest.raises(DownloadExpired) as caught:
        setup.client.download(location, tmp_path)
    error = caught.value
    assert error.status == 400 and error.code == "ExpiredToken"
    assert error.message.startswith("The provided token has expired.")
    assert error.details.endswith("+00:00") and "Request signature expired" in str(error)
    assert not list(tmp_path.iterdir())


def test_renewal_gives_up(make, tmp_path):
    setup = make(url_ttl=5)
    setup.relay.before = lambda request: setup.advance(60) if _is_download(request) else None
    with pytest.raises(DownloadExpired):
        setup.client.run_export("everyone", tmp_path, max_renewals=1)
    statuses = [s for _, path, s, _ in setup.relay.seen if path.startswith("/fullstory-")]
    assert statuses == [400, 400]


def test_tampered_signature_is_refused(setup, tmp_path):
    operation = setup.client.wait(setup.client.create_export("everyone"))
    location, _ = setup.client.export_location(operation["results"]["searchExportId"])
    with pytest.raises(FullStoryError) as caught:
        setup.client.download(location[:-4] + "0000", tmp_path)
    assert caught.value.status == 403 and caught.value.code == "SignatureDoesNotMatch"
    assert isinstance(caught.value, DownloadError)  # storage's refusal, not the API's


# -- hooks: retries, download bytes, renewals, sinks ---------------------------------------------


def test_on_retry_sees_each_retry_before_its_wait(setup):
    retries: list[tuple[Retry, list[float]]] = []
    setup.client.on_retry = lambda retry: retries.append((retry, list(setup.sleeps)))
    setup.relay.hooks = [
        _api_error(429, 8, "slow down", **{"Retry-After": "7"}),
        _api_error(503, 14, "unavailable"),
        _unreachable,
    ]
    assert setup.client.get_segment("everyone")["id"] == "everyone"
    seen = [
        (r.method, r.path, r.attempt, r.delay, r.retry_after, r.error.status, type(r.error))
        for r, _ in retries
    ]
    assert seen == [
        ("GET", "/segments/v1/everyone", 1, 7.0, 7.0, 429, RateLimited),
        ("GET", "/segments/v1/everyone", 2, 2.0, None, 503, FullStoryError),
        ("GET", "/segments/v1/everyone", 3, 4.0, None, None, FullStoryError),
    ]
    assert [before for _, before in retries] == [[], [7.0], [7.0, 2.0]]  # told before the wait
    assert "slow down" in retries[0][0].error.message
    assert "ConnectError" in retries[2][0].error.message
    assert setup.sleeps == [7.0, 2.0, 4.0]


def test_on_retry_may_give_up_instead_of_waiting(setup):
    class TooLong(Exception):
        pass

    def refuse(retry: Retry) -> None:
        raise TooLong(retry.delay)

    setup.client.on_retry = refuse
    setup.relay.hooks = [_api_error(429, 8, "slow down", **{"Retry-After": "120"})]
    with pytest.raises(TooLong, match="120"):
        setup.client.get_segment("everyone")
    assert setup.sleeps == [] and len(setup.relay.seen) == 1


def test_download_export_reports_bytes_and_renewals(make, tmp_path):
    setup = make(url_ttl=5)
    operation = setup.client.wait(setup.client.create_export("everyone"))
    export_id = operation["results"]["searchExportId"]
    downloads: list[str] = []

    def expire_first_url(request: httpx.Request) -> None:
        if _is_download(request):
            downloads.append(str(request.url))
            if len(downloads) == 1:
                setup.advance(60)

    setup.relay.before = expire_first_url
    progress: list[tuple[int, int | None]] = []
    renewed: list[tuple[int, DownloadExpired]] = []
    done = setup.client.download_export(
        export_id,
        tmp_path,
        on_bytes=lambda size, total: progress.append((size, total)),
        on_renew=lambda renewal, expired: renewed.append((renewal, expired)),
    )
    assert isinstance(done, Download) and done.complete and done.renewals == 1
    assert done.search_export_id == export_id and done.path == tmp_path / done.filename
    assert done.size == done.path.stat().st_size == progress[-1][0]
    assert [size for size, _ in progress] == sorted({size for size, _ in progress})
    assert {total for _, total in progress} == {done.size}  # from Content-Length
    assert [(n, e.code) for n, e in renewed] == [(1, "ExpiredToken")]
    assert len(downloads) == 2 and downloads[0] != downloads[1]
    assert [p.split(" ", 1)[1].split("/")[1] for p in setup.relay.paths()][-4:] == [
        "search",
        "fullstory-emulator-exports",
        "search",
        "fullstory-emulator-exports",
    ]


def test_a_sink_can_stop_a_download_early(setup):
    body = _Chunks([b"a" * 10, b"b" * 10, b"c" * 10])

    def chunked(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Disposition": 'attachment; filename="Everyone-x.csv.gz"'}
        return httpx.Response(200, headers={**headers, "Content-Length": "30"}, stream=body)

    setup.relay.hooks = [chunked]
    sink = Collector(stop_after=2)
    assert isinstance(sink, Sink)
    progress: list[tuple[int, int | None]] = []
    filename = setup.client.download(
        "http://testserver/fullstory-emulator-exports/x?sig=1",
        sink,
        on_bytes=lambda size, total: progress.append((size, total)),
    )
    assert filename == "Everyone-x.csv.gz"
    assert sink.chunks == [b"a" * 10, b"b" * 10] and body.read == 2 and body.closed
    assert progress == [(10, 30), (20, 30)]


def test_a_sink_starts_again_when_the_body_breaks(setup):
    operation = setup.client.wait(setup.client.create_export("everyone"))

    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_BrokenStream(b"\x1f\x8b partial"))

    setup.relay.hooks = [lambda request: None, broken]  # the location answers; the body breaks
    retries: list[Retry] = []
    setup.client.on_retry = retries.append
    sink = Collector()
    done = setup.client.download_export(operation["results"]["searchExportId"], sink)
    assert sink.restarts == 1 and gzip.decompress(b"".join(sink.chunks))
    assert done.complete and done.renewals == 0 and done.path is None
    assert done.size == len(b"".join(sink.chunks))
    assert [(r.path.split("/")[1], r.attempt, r.delay) for r in retries] == [
        ("fullstory-emulator-exports", 1, 1.0)
    ]
    assert isinstance(retries[0].error, DownloadError)


def test_a_failed_download_names_no_signature(make, tmp_path):
    setup = make(max_retries=1)
    operation = setup.client.wait(setup.client.create_export("everyone"))
    location, _ = setup.client.export_location(operation["results"]["searchExportId"])
    setup.relay.hooks = [_unreachable, _unreachable]
    with pytest.raises(DownloadError, match="failed after 2 attempts") as caught:
        setup.client.download(location, tmp_path)
    assert caught.value.status is None and "ConnectError" in str(caught.value)
    assert "X-Goog-Signature" not in str(caught.value) and "/fullstory-" in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_an_unknown_operation_state_is_not_taken_for_a_failure(setup):
    operation_id = setup.client.create_export("everyone")
    answer = {"id": operation_id, "state": "CANCELLED"}
    setup.relay.hooks = [lambda request: httpx.Response(200, json=answer)]
    with pytest.raises(FullStoryError, match="'CANCELLED'") as caught:
        setup.client.wait(operation_id)
    assert not isinstance(caught.value, ExportFailed) and caught.value.code == "UnknownState"
    assert "PENDING, COMPLETED, ERROR, FAILED" in str(caught.value)


# -- errors and configuration --------------------------------------------------------------------


def test_errors_carry_the_server_message(setup):
    with pytest.raises(FullStoryError) as caught:
        setup.client.create_export("everyone", format="FORMAT_XML")
    error = caught.value
    assert error.status == 400 and error.code == 3
    assert "format" in error.message and "FORMAT_NDJSON" in error.message
    assert "POST /segments/v1/exports" in str(error)


def test_unauthorized(make):
    with pytest.raises(Unauthorized, match="FULLSTORY_API_KEY"):
        make(key="").client.list_segments()  # refused before sending
    with pytest.raises(Unauthorized) as caught:
        make(key="not a key").client.list_segments()
    assert caught.value.status == 401 and caught.value.code == 16 and caught.value.message


def test_defaults_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FULLSTORY_API_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("FULLSTORY_API_KEY", "na1.from-env")
    with FullStoryClient() as client:
        assert client.base_url == "http://127.0.0.1:9" and client.api_key == "na1.from-env"
    monkeypatch.delenv("FULLSTORY_API_URL")
    with FullStoryClient(api_key="eu1.abc") as client:
        assert client.base_url == "https://api.eu1.fullstory.com"
    monkeypatch.delenv("FULLSTORY_API_KEY")
    with FullStoryClient() as client:
        assert client.base_url == "https://api.fullstory.com" and client.api_key is None


def test_filename_from_disposition():
    assert filename_from_disposition('attachment; filename="A b-1.csv.gz"') == "A b-1.csv.gz"
    assert filename_from_disposition("attachment; filename=x.json.gz") == "x.json.gz"
    assert filename_from_disposition("attachment; filename*=UTF-8''%C3%A9t%C3%A9.gz") == "été.gz"
    assert filename_from_disposition('attachment; filename="../../etc/passwd"') == "passwd"
    assert filename_from_disposition(None) is None


def test_result_path_for_a_file_object(setup):
    buffer = io.BytesIO()
    result = setup.client.run_export("everyone", buffer)
    assert result.path is None and gzip.decompress(buffer.getvalue())
    assert isinstance(Path(result.filename), Path)
