"""A small synchronous client of FullStory's Segment Export API, for the emulator and production.

One client serves the CLI, the MCP server, the tests and real use against api.fullstory.com, so
it does what the contract says careful clients do: send the key raw after `Basic`, back off on
429 (honouring `Retry-After`) and on 5xx or dropped connections, download the signed URL without
the key, and ask for a fresh URL when cloud storage answers `ExpiredToken` (`download_export`
holds the only renewal loop).

Answers are returned as the parsed JSON (plain dicts, camelCase as on the wire) so nothing is
lost between the API and the caller; what a download did comes back as a small frozen dataclass.
Callers watch the work through hooks rather than by wrapping the transport or the file:
`on_retry` (each retry, before its wait), `on_progress` (each poll), `on_bytes` (download bytes)
and `on_renew` (an expired URL replaced); a `Sink` takes the bytes itself and may stop early.
Waiting goes through the injectable `sleep`, so tests can move an emulator's clock instead of
sleeping; `wait(timeout=...)` counts that simulated time too.

With `rate_limit` (e.g. `"2/60,50"`, FullStory's documented limit) the client keeps its own
estimate of the server's token buckets, one per endpoint, and waits for a token (telling
`on_pace`) instead of spending a request on a 429: a long run spreads its requests out.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

from ..contract import (
    COMPLETED,
    FAILURE_STATES,
    PENDING,
    SEARCH_EXPORT,
    STATES,
    TYPE_EVENT,
    EventScope,
    ExportFormat,
    ExportType,
)
from ..settings import RateLimit
from ..timestamps import format_rfc3339
from .errors import (
    DownloadError,
    DownloadExpired,
    ExportFailed,
    FullStoryError,
    NotFound,
    RateLimited,
    Unauthorized,
)

try:  # Starlette's TestClient is an httpx2.Client where that fork is installed
    import httpx2
except ImportError:  # pragma: no cover - depends on the environment
    _HTTPX: tuple[ModuleType, ...] = (httpx,)
else:
    _HTTPX = (httpx, httpx2)

if TYPE_CHECKING:
    HttpClient: TypeAlias = httpx.Client | httpx2.Client
    Response: TypeAlias = httpx.Response | httpx2.Response

TRANSPORT_ERRORS: tuple[type[Exception], ...] = tuple(m.TransportError for m in _HTTPX)
_STREAM_CONSUMED: tuple[type[Exception], ...] = tuple(m.StreamConsumed for m in _HTTPX)

__all__ = [  # with the errors of .errors, which users import from here
    "DEFAULT_API_URL",
    "EU_API_URL",
    "JSON",
    "TRANSPORT_ERRORS",
    "Download",
    "DownloadError",
    "DownloadExpired",
    "DownloadStart",
    "ExportFailed",
    "ExportResult",
    "FullStoryClient",
    "FullStoryError",
    "NotFound",
    "Pace",
    "RateBudget",
    "RateLimited",
    "Resume",
    "Retry",
    "Sink",
    "TimeRangeArg",
    "Unauthorized",
    "error_from_response",
    "filename_from_disposition",
]

DEFAULT_API_URL = "https://api.fullstory.com"
EU_API_URL = "https://api.eu1.fullstory.com"
JSON = dict[str, Any]
TimeRangeArg = Mapping[str, Any] | tuple[Any, Any] | None


@dataclass(frozen=True)
class Download:
    """What `download_export` fetched: the file's name, where it went, how much, how it went."""

    search_export_id: str
    filename: str  # from Content-Disposition, else the object name
    path: Path | None  # the file written, when `dest` was a path
    size: int  # bytes received (the whole file, unless a Sink stopped early)
    renewals: int  # fresh URLs asked for because one had expired
    complete: bool  # False when a Sink stopped the download early


@dataclass(frozen=True)
class ExportResult:
    """What `run_export` did: the final operation and where the file went."""

    operation_id: str
    operation: JSON
    search_export_id: str
    filename: str
    path: Path | None
    renewals: int


@dataclass(frozen=True)
class Retry:
    """A failed attempt the client is about to repeat, handed to `on_retry` before the wait.

    A hook may raise to give up instead (the MCP tools refuse to block on a long Retry-After).
    """

    method: str
    path: str  # the URL's path only: a signed URL's query is a credential
    attempt: int  # the attempt that failed, from 1
    delay: float  # seconds the client will wait before the next attempt
    error: FullStoryError  # the answer or transport failure; `status` None for the latter
    retry_after: float | None = None  # the server's Retry-After, when it sent one


@dataclass(frozen=True)
class Pace:
    """A wait the client takes before a request so as not to run into the rate limit, handed
    to `on_pace` before the wait."""

    endpoint: str  # method and route, e.g. "GET /operations/v1/{id}": the server's bucket key
    delay: float  # seconds until the client's estimate of that bucket holds a token again
    reason: str = ""  # why the bucket is empty, for the user who sees the wait


class RateBudget:
    """The client's estimate of the server's token buckets: one per key and endpoint, holding
    `burst` tokens and refilled at `refill` per `period` (FullStory: 2 per minute, burst 50).

    It starts full, as a rested key's bucket is; a 429 tells it the server's bucket is empty
    (the server knows better, e.g. when another process spent the same key's tokens). Times
    are the client's own seconds (`FullStoryClient.elapsed`), so a test that sleeps by moving
    an emulator's clock paces on that clock.
    """

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._buckets: dict[str, tuple[float, float]] = {}  # endpoint -> (tokens, at)
        self._refused: set[str] = set()  # endpoints emptied by a 429 and not full since

    def tokens(self, endpoint: str, now: float) -> float:
        tokens, at = self._buckets.get(endpoint, (float(self.limit.burst), now))
        return min(float(self.limit.burst), tokens + max(0.0, now - at) * self.limit.per_second)

    def delay(self, endpoint: str, now: float) -> float:
        """Seconds to wait before the next request to `endpoint` would find a token (with a
        fiftieth of a token to spare, for the server's clock and the way there)."""
        tokens = self.tokens(endpoint, now)
        if tokens >= self.limit.burst:
            self._refused.discard(endpoint)  # rested since the 429: no longer its doing
        missing = 1.0 - tokens
        return (missing + 0.02) / self.limit.per_second if missing > 1e-9 else 0.0

    def reason(self, endpoint: str) -> str:
        """Why `endpoint` has no token: a 429 said so, or this client spent the burst."""
        limit = self.limit
        refill = f"{limit.refill:g} token{'s' if limit.refill != 1 else ''} per {limit.period:g} s"
        if endpoint in self._refused:
            return (
                f"a 429 said its bucket is empty; it refills {refill} (--rate-limit "
                f"{limit}), so this waits for the next token"
            )
        return f"the burst of {limit.burst} is spent; the bucket refills {refill}"

    def spend(self, endpoint: str, now: float) -> None:
        """A request went out; `now` is when its answer came, later than the server spent it,
        so the estimate errs on the side of an emptier bucket."""
        self._buckets[endpoint] = (max(0.0, self.tokens(endpoint, now) - 1.0), now)

    def refused(self, endpoint: str, now: float, retry_after: float | None) -> None:
        """The server answered 429: its bucket is empty, and holds a token after `retry_after`."""
        wait = retry_after if retry_after is not None else 1.0 / self.limit.per_second
        self._buckets[endpoint] = (1.0 - wait * self.limit.per_second, now)
        self._refused.add(endpoint)


@runtime_checkable
class Sink(Protocol):
    """A download's destination that takes the raw (gzip) bytes as they arrive, for a caller
    that processes them itself (the MCP preview parses rows) instead of storing a file."""

    def write(self, chunk: bytes) -> bool:
        """Take the next bytes; True when the sink has enough and the download should stop."""
        ...

    def restart(self) -> None:
        """Forget what was written: the body broke off and the download starts over."""
        ...


def _retryable(status: int) -> bool:
    """429 and server errors, except 501: "cannot be done" stays so however often it is asked."""
    return status == 429 or (status >= 500 and status != 501)


def error_from_response(
    response: Response, *, attempts: int = 1, download: bool = False
) -> FullStoryError:
    """The exception an error answer stands for: JSON `message`, or storage XML Code/Message.

    `attempts` > 1 says in the message that retries were spent on it; `download` marks the
    answer to a signed URL, always a DownloadError (DownloadExpired for `ExpiredToken`).
    """
    status = response.status_code
    body = response.text
    message, code, details = "", None, ""
    content_type = response.headers.get("content-type", "")
    if "xml" in content_type or body.lstrip().startswith("<?xml"):
        try:
            root = ET.fromstring(body.encode("utf-8"))
            code = root.findtext("Code")
            message = root.findtext("Message") or ""
            details = root.findtext("Details") or ""
        except ET.ParseError:
            message = body.strip()[:500]
    else:
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            message = str(data.get("message") or data.get("error") or "")
            code = data.get("code")
        else:
            message = body.strip()[:500]
    message = message or response.reason_phrase or "error"
    where = f"{response.request.method} {response.request.url.path}"
    full = f"{message} ({where})"
    if attempts > 1:
        full += f"; gave up after {attempts} attempts"
    if code == "ExpiredToken":
        return DownloadExpired(status, full, code, details=details)
    if download:
        return DownloadError(status, full, code, details=details)
    if status == 401:
        return Unauthorized(status, full, code, details=details)
    if status == 404:
        return NotFound(status, full, code, details=details)
    if status == 429:
        return RateLimited(status, full, code, details=details, retry_after=_retry_after(response))
    return FullStoryError(status, full, code, details=details)


def _retry_after(response: Response) -> float | None:
    """`Retry-After` as seconds: an integer, or an HTTP date."""
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _timestamp(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_rfc3339(value)
    return str(value)


def _time_range(value: TimeRangeArg) -> JSON | None:
    """`{"start","end"}` from a mapping or a (start, end) pair of datetimes/strings/None."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {"start": _timestamp(value.get("start")), "end": _timestamp(value.get("end"))}
    start, end = value
    return {"start": _timestamp(start), "end": _timestamp(end)}


def filename_from_disposition(header: str | None) -> str | None:
    """The file name of a `Content-Disposition` header (`filename*=` wins over `filename=`)."""
    if not header:
        return None
    star = re.search(r"filename\*\s*=\s*([^']*)'[^']*'([^;]+)", header, re.IGNORECASE)
    if star:
        return Path(unquote(star.group(2).strip(), encoding=star.group(1) or "utf-8")).name
    plain = re.search(r'filename\s*=\s*"((?:[^"\\]|\\.)*)"|filename\s*=\s*([^;]+)', header, re.I)
    if plain:
        name = plain.group(1) if plain.group(1) is not None else plain.group(2).strip()
        return Path(name.replace('\\"', '"')).name or None
    return None


class FullStoryClient:
    """The Segment Export API: segments, exports, operations, download locations and downloads.

    `base_url`/`api_key` default to `FULLSTORY_API_URL` and `FULLSTORY_API_KEY` (an `eu1.` key
    defaults to the EU host). Pass `http` to reach an in-process app (a Starlette TestClient,
    an httpx2.Client where that fork is installed) or to configure the transport; without it
    the client owns an httpx.Client and closes it in `close()`. `sleep` is called for every
    wait (retries and polls), so a test can advance an emulator's clock instead. `on_retry`
    sees each retry before its wait (a 429, a 5xx, a dropped connection, a body cut short).
    `rate_limit` (`"2/60,50"`, a RateLimit, or None for none) paces API requests under the
    server's per-endpoint limit; `on_pace` sees each such wait before it is taken.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        http: HttpClient | None = None,
        sleep: Callable[[float], object] = time.sleep,
        max_retries: int = 5,
        backoff: float = 1.0,
        timeout: float = 30.0,
        on_retry: Callable[[Retry], object] | None = None,
        rate_limit: RateLimit | str | None = None,
        on_pace: Callable[[Pace], object] | None = None,
    ) -> None:
        self.api_key = api_key if api_key is not None else os.environ.get("FULLSTORY_API_KEY")
        if base_url is None:
            base_url = os.environ.get("FULLSTORY_API_URL")
        if base_url is None and http is not None and str(http.base_url):
            base_url = str(http.base_url)
        if base_url is None:
            eu = bool(self.api_key and self.api_key.startswith("eu1."))
            base_url = EU_API_URL if eu else DEFAULT_API_URL
        self.base_url = base_url.rstrip("/")
        self._owns_http = http is None
        self.http: HttpClient = http if http is not None else httpx.Client(timeout=timeout)
        self._sleep = sleep
        self.on_retry = on_retry
        self.max_retries = max_retries
        self.backoff = backoff
        self.slept = 0.0  # total seconds handed to `sleep`, so `wait` can time out on fake time
        if isinstance(rate_limit, str):
            rate_limit = RateLimit.parse(rate_limit)
        self.budget = RateBudget(rate_limit) if rate_limit is not None else None
        self.on_pace = on_pace
        self._born = time.monotonic()
        self._simulated = 0.0
        self._server_time: tuple[datetime, float] | None = None

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> FullStoryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        self.slept += seconds
        began = time.monotonic()
        self._sleep(seconds)
        # what the sleep did not really take: a test's sleep that moves an emulator's clock
        self._simulated += max(0.0, seconds - (time.monotonic() - began))

    def elapsed(self) -> float:
        """Seconds since the client was made: real time, plus what `sleep` was asked to wait
        but did not really take (a test's `sleep` that moves an emulator's clock)."""
        return time.monotonic() - self._born + self._simulated

    def server_time(self) -> datetime | None:
        """The server's clock now, as its last answer told it (`X-Emulator-Now`, else `Date`)
        plus the time since; None before any answer. An emulator's clock may be anywhere."""
        if self._server_time is None:
            return None
        seen, at = self._server_time
        return seen + timedelta(seconds=self.elapsed() - at)

    def _note_server_time(self, response: Response) -> None:
        raw = response.headers.get("x-emulator-now")
        try:
            if raw:
                seen = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            elif date := response.headers.get("date"):
                seen = parsedate_to_datetime(date)
            else:
                return
        except (TypeError, ValueError):
            return
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=UTC)
        self._server_time = (seen.astimezone(UTC), self.elapsed())

    def _pace(self, endpoint: str | None) -> None:
        """Wait until the budget of `endpoint` holds a token."""
        if self.budget is None or endpoint is None:
            return
        delay = self.budget.delay(endpoint, self.elapsed())
        if delay > 0:
            if self.on_pace is not None:
                self.on_pace(Pace(endpoint, delay, self.budget.reason(endpoint)))
            self._wait(delay)

    def _spent(self, endpoint: str | None) -> None:
        if self.budget is not None and endpoint is not None:
            self.budget.spend(endpoint, self.elapsed())

    def _retry(self, retry: Retry) -> None:
        if self.on_retry is not None:
            self.on_retry(retry)
        self._wait(retry.delay)

    def _exchange(
        self, method: str, url: str, *, stream: bool, anonymous: bool, options: dict[str, Any]
    ) -> Response:
        """One attempt. `anonymous` strips the credentials the http client may add by default:
        a signed URL needs none, and storage refuses a foreign one."""
        http = self.http
        request = http.build_request(method, url, **options)
        if anonymous:
            for name in ("authorization", "cookie"):
                request.headers.pop(name, None)
        # the request comes from the same client, httpx's or the fork's: mypy cannot pair them
        return http.send(request, stream=stream)  # type: ignore[arg-type]

    def _send(
        self,
        method: str,
        url: str,
        *,
        stream: bool = False,
        download: bool = False,
        endpoint: str | None = None,
        answer_errors: bool = False,
        **options: Any,
    ) -> Response:
        """Send with retries: 429 after `Retry-After`, 5xx and transport errors with backoff.

        POSTs are retried too, as the contract's clients do: a 5xx on export creation may in
        rare cases leave a duplicate export behind, which is harmless (exports are read-only).
        `download` marks a signed URL: its failures are DownloadErrors. `endpoint` names the
        rate-limit bucket every attempt spends a token of (downloads have none).
        `answer_errors` returns a final error answer instead of raising it.
        """
        failure = DownloadError if download else FullStoryError
        path = urlsplit(url).path
        attempt = 0
        while True:
            attempt += 1
            self._pace(endpoint)
            try:
                response = self._exchange(
                    method, url, stream=stream, anonymous=download, options=options
                )
            except TRANSPORT_ERRORS as exc:
                self._spent(endpoint)
                problem = f"{type(exc).__name__}: {exc}"
                if attempt > self.max_retries:
                    where = urlunsplit(urlsplit(url)._replace(query="", fragment=""))
                    raise failure(
                        None, f"{method} {where} failed after {attempt} attempts: {problem}"
                    ) from exc
                error = failure(None, f"{problem} ({method} {path})")
                self._retry(Retry(method, path, attempt, self.backoff * 2 ** (attempt - 1), error))
                continue
            self._spent(endpoint)
            if not download:
                self._note_server_time(response)
            if response.status_code < 400:
                return response
            final = not _retryable(response.status_code) or attempt > self.max_retries
            retry_after = _retry_after(response) if response.status_code == 429 else None
            if response.status_code == 429 and self.budget is not None and endpoint is not None:
                # also when giving up: the next call should wait Retry-After, not a refill
                self.budget.refused(endpoint, self.elapsed(), retry_after)
            if final and answer_errors:
                return response
            if stream:
                response.read()
                response.close()
            if final:
                raise error_from_response(response, attempts=attempt, download=download)
            delay = retry_after if retry_after is not None else self.backoff * 2 ** (attempt - 1)
            error = error_from_response(response, download=download)
            self._retry(Retry(method, path, attempt, delay, error, retry_after))

    def exchange(
        self,
        method: str,
        target: str,
        route: str | None = None,
        *,
        authorize: bool = True,
        stream: bool = False,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Response:
        """One request answered as it came, whatever its status, for a caller that inspects the
        wire itself (`fullstory-emulator conformance`): paced and retried like every other call
        (429 after `Retry-After`, 5xx with backoff), but a final error answer is returned, not
        raised.

        `target` is an API path, sent with the key unless `authorize` is False and spending a
        token of `route` (its path template), or an absolute signed URL, sent without
        credentials and outside the rate limit. The caller closes a `stream`ed answer.
        """
        if "://" in target:
            return self._send(method, target, stream=stream, download=True, answer_errors=True)
        headers = self._headers() if authorize else {"Accept": "application/json"}
        options: dict[str, Any] = {"headers": headers, "params": dict(params or {})}
        if json is not None:
            options["json"] = json
        endpoint = f"{method} {route or target}" if authorize else None
        return self._send(
            method,
            self.base_url + target,
            stream=stream,
            endpoint=endpoint,
            answer_errors=True,
            **options,
        )

    def _headers(self) -> dict[str, str]:
        if not self.api_key:
            raise Unauthorized(
                None, "no API key: pass api_key or set FULLSTORY_API_KEY (e.g. na1.xxxx)"
            )
        return {"Authorization": f"Basic {self.api_key}", "Accept": "application/json"}

    def _request(
        self,
        method: str,
        path: str,
        route: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> JSON:
        """One API call; `route` is its path template, naming its rate-limit bucket."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        options: dict[str, Any] = {"params": query, "headers": self._headers()}
        if json is not None:
            options["json"] = json
        response = self._send(method, self.base_url + path, endpoint=f"{method} {route}", **options)
        if not response.content.strip():
            return {}
        try:
            data = response.json()
        except ValueError as exc:
            raise FullStoryError(
                response.status_code, f"{method} {path} answered non-JSON: {response.text[:200]}"
            ) from exc
        return data if isinstance(data, dict) else {"value": data}

    def _pages(self, path: str, member: str, params: Mapping[str, Any]) -> Iterator[JSON]:
        token: str | None = None
        while True:
            query = {**params, "paginationToken": token}
            page = self._request("GET", path, path, params=query)
            yield from page.get(member) or []
            token = page.get("nextPaginationToken") or None
            if not token:
                return

    # -- segments ----------------------------------------------------------------------------

    def iter_segments(self, limit: int | None = None, creator: str | None = None) -> Iterator[JSON]:
        """Every segment, page after page; `limit` is the page size (the API caps it at 100)."""
        return self._pages("/segments/v1", "segments", {"limit": limit, "creator": creator})

    def list_segments(self, limit: int | None = None, creator: str | None = None) -> list[JSON]:
        """All segments (following `nextPaginationToken`); `limit` is the page size."""
        return list(self.iter_segments(limit=limit, creator=creator))

    def get_segment(self, segment_id: str) -> JSON:
        return self._request("GET", f"/segments/v1/{_quote(segment_id)}", "/segments/v1/{id}")

    # -- exports and operations ----------------------------------------------------------------

    def create_export(
        self,
        segment_id: str,
        *,
        type: ExportType = TYPE_EVENT,
        format: ExportFormat = "FORMAT_NDJSON",
        time_range: TimeRangeArg = None,
        segment_time_range: TimeRangeArg = None,
        timezone: str | None = None,
        fields: list[str] | tuple[str, ...] | None = None,
        scope: EventScope | None = None,
    ) -> str:
        """Start a segment export; returns its operation id.

        Time ranges take `{"start","end"}` or a `(start, end)` pair of datetimes, RFC 3339
        strings or None (open end); `scope` is the `eventDetails.scope` (`SCOPE_PAGES`, ...).
        Values are sent as given, so the server's own validation answers a wrong one.
        """
        body: JSON = {"segmentId": segment_id, "type": type, "format": format}
        if (tr := _time_range(time_range)) is not None:
            body["timeRange"] = tr
        if (segment_range := _time_range(segment_time_range)) is not None:
            body["segmentTimeRange"] = segment_range
        if timezone:
            body["timezone"] = timezone
        if fields is not None:
            body["fields"] = list(fields)
        if scope:
            body["eventDetails"] = {"scope": scope}
        path = "/segments/v1/exports"
        answer = self._request("POST", path, path, json=body)
        operation_id = answer.get("operationId")
        if not operation_id:
            raise FullStoryError(200, f"export created without an operationId: {answer}")
        return str(operation_id)

    def get_operation(self, operation_id: str) -> JSON:
        return self._request("GET", f"/operations/v1/{_quote(operation_id)}", "/operations/v1/{id}")

    def iter_operations(
        self,
        *,
        type: str | None = SEARCH_EXPORT,
        state: str | None = None,
        limit: int | None = None,
    ) -> Iterator[JSON]:
        """Operations, newest first, page after page; `limit` is the page size."""
        params = {"type": type, "state": state, "limit": limit}
        return self._pages("/operations/v1", "operations", params)

    def list_operations(
        self,
        *,
        type: str | None = SEARCH_EXPORT,
        state: str | None = None,
        limit: int | None = None,
    ) -> list[JSON]:
        """All operations (following `nextPaginationToken`), newest first."""
        return list(self.iter_operations(type=type, state=state, limit=limit))

    def cancel_operation(self, operation_id: str) -> JSON:
        """Cancel a pending operation; a finished one answers 501 (a FullStoryError)."""
        path = f"/operations/v1/{_quote(operation_id)}/cancel"
        return self._request("POST", path, "/operations/v1/{id}/cancel", json={})

    def wait(
        self,
        operation_id: str,
        *,
        poll_interval: float = 2.0,
        timeout: float | None = None,
        on_progress: Callable[[JSON], object] | None = None,
        first_poll_after: float = 0.0,
    ) -> JSON:
        """Poll until the operation leaves PENDING; returns it COMPLETED, raises ExportFailed for
        either failure state (ERROR or FAILED), or a FullStoryError for a state not in the
        contract.

        `timeout` counts real time and time handed to `sleep`, whichever is more, so it also
        bounds a test whose `sleep` only moves a clock. `first_poll_after` waits before the
        first poll: an export takes seconds, and a poll that can only answer PENDING spends a
        rate-limited request.
        """
        started, slept_before = time.monotonic(), self.slept
        if first_poll_after > 0:
            self._wait(first_poll_after)
        while True:
            operation = self.get_operation(operation_id)
            if on_progress is not None:
                on_progress(operation)
            state = operation.get("state")
            if state == COMPLETED:
                return operation
            if state in FAILURE_STATES:
                raise ExportFailed(operation)
            if state != PENDING:
                raise FullStoryError(
                    200,
                    f"operation {operation_id} is in state {state!r}, not one of "
                    f"{', '.join(STATES)}",
                    "UnknownState",
                )
            elapsed = max(time.monotonic() - started, self.slept - slept_before)
            if timeout is not None and elapsed + poll_interval > timeout:
                raise FullStoryError(
                    None,
                    f"operation {operation_id} still PENDING at "
                    f"{operation.get('estimatePctComplete')}% after {elapsed:g}s "
                    f"(timeout {timeout:g}s)",
                    "Timeout",
                )
            self._wait(poll_interval)

    def export_location(self, search_export_id: str) -> tuple[str, str]:
        """A fresh signed download URL and the export's expiry (RFC 3339), as the API gives."""
        path = f"/search/v1/exports/{_quote(search_export_id)}/results"
        answer = self._request("GET", path, "/search/v1/exports/{id}/results")
        if not answer.get("location"):
            raise FullStoryError(200, f"export {search_export_id} has no location: {answer}")
        return str(answer["location"]), str(answer.get("expires") or "")

    # -- the download --------------------------------------------------------------------------

    def download(
        self,
        location: str,
        dest: str | os.PathLike[str] | IO[bytes] | Sink,
        *,
        on_bytes: Callable[[int, int | None], object] | None = None,
        on_download: Callable[[DownloadStart], object] | None = None,
        resume: Resume | None = None,
    ) -> str:
        """Stream one signed URL's gzip bytes, as they are, to `dest`; returns the file name.

        `dest` is a directory (the file is named from Content-Disposition), a file path, a
        binary file object or a `Sink`. `on_bytes(received, content_length_or_None)` follows
        the transfer. No Authorization header is sent: the URL is signed, and storage would
        refuse a foreign credential. An expired URL raises DownloadExpired: `download_export`
        asks for a fresh one instead.

        A body cut short is resumed where it stopped (`Range` with `If-Range`) when the server
        allows it, else fetched again from its start (a file object is rewound, a Sink
        restarted). `on_download(start)` is told when each body starts (its total length and
        ETag); `resume` continues a download whose first bytes `dest` (a file object or Sink)
        already holds. Paths are written via a temporary file, so a failed download leaves
        nothing half-written.
        """
        return self._fetch(location, dest, on_bytes, on_download, resume)[0]

    def download_export(
        self,
        search_export_id: str,
        dest: str | os.PathLike[str] | IO[bytes] | Sink,
        *,
        max_renewals: int = 3,
        on_bytes: Callable[[int, int | None], object] | None = None,
        on_renew: Callable[[int, DownloadExpired], object] | None = None,
        on_download: Callable[[DownloadStart], object] | None = None,
        resume: Resume | None = None,
    ) -> Download:
        """Fetch the export's signed URL and download it to `dest` (as `download` does).

        When the URL has expired by the time it is used (`ExpiredToken`), a fresh one is asked
        for, up to `max_renewals` times; `on_renew(renewal, expired)` is told before each.
        """
        renewals = 0
        while True:
            location, _ = self.export_location(search_export_id)
            try:
                filename, path, size, complete = self._fetch(
                    location, dest, on_bytes, on_download, resume
                )
            except DownloadExpired as exc:
                if renewals >= max_renewals:
                    raise
                renewals += 1
                if on_renew is not None:
                    on_renew(renewals, exc)
                continue
            return Download(search_export_id, filename, path, size, renewals, complete)

    def _fetch(
        self,
        location: str,
        dest: str | os.PathLike[str] | IO[bytes] | Sink,
        on_bytes: Callable[[int, int | None], object] | None,
        on_download: Callable[[DownloadStart], object] | None = None,
        resume: Resume | None = None,
    ) -> tuple[str, Path | None, int, bool]:
        """(file name, path written, bytes, complete) of one download of `location`."""
        if not isinstance(dest, str | os.PathLike):
            held = resume.offset if resume else 0
            sink = dest if isinstance(dest, Sink) else _FileSink(dest, held)
            filename, size, complete = self._stream(location, sink, on_bytes, on_download, resume)
            return filename, None, size, complete
        target = Path(dest)
        folder = target if target.is_dir() else target.parent
        fd, tmp = tempfile.mkstemp(prefix=".download-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                filename, size, complete = self._stream(
                    location, _FileSink(out), on_bytes, on_download
                )
            if target.is_dir():
                target = target / filename
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return filename, target, size, complete

    def _stream(
        self,
        location: str,
        sink: Sink,
        on_bytes: Callable[[int, int | None], object] | None,
        on_download: Callable[[DownloadStart], object] | None = None,
        resume: Resume | None = None,
    ) -> tuple[str, int, bool]:
        """(file name, bytes, complete): the body into `sink` until it ends or the sink has
        enough. A body that breaks off is resumed where it stopped with `Range` and `If-Range`
        (the ETag), as Cloud Storage allows; a server that answers the whole file again (no
        ranges, or the file changed) starts the sink over. `resume` continues a download of
        which the sink already holds `resume.offset` bytes."""
        broken = 0
        size = resume.offset if resume else 0
        etag = resume.etag if resume else None
        while True:
            headers = {}
            if size and etag:
                headers = {"Range": f"bytes={size}-", "If-Range": etag}
            response = self._send("GET", location, stream=True, download=True, headers=headers)
            try:
                filename = filename_from_disposition(response.headers.get("content-disposition"))
                filename = filename or Path(unquote(urlsplit(location).path)).name or "export.gz"
                total = _total_length(response)
                if response.status_code != 206 or _range_start(response) != size:
                    if size:
                        sink.restart()  # the whole file again: start over
                    size = 0
                resumable = response.headers.get("accept-ranges") == "bytes"
                etag = response.headers.get("etag") if resumable else None
                if on_download is not None:
                    on_download(DownloadStart(filename, size, total, etag))
                try:
                    for chunk in _raw_chunks(response):
                        size += len(chunk)
                        enough = sink.write(chunk)
                        if on_bytes is not None:
                            on_bytes(size, total)
                        if enough:
                            return filename, size, False
                except TRANSPORT_ERRORS as exc:  # cut off mid-body: resume, or start again
                    broken += 1
                    if not etag:
                        sink.restart()
                        size = 0
                    path = urlsplit(location).path
                    if broken > self.max_retries:
                        raise DownloadError(
                            response.status_code,
                            f"download broke off after {broken} attempts: {exc} (GET {path})",
                        ) from exc
                    how = f"resuming at byte {size}" if etag else "starting over"
                    error = DownloadError(response.status_code, f"download broke off: {exc}; {how}")
                    self._retry(Retry("GET", path, broken, self.backoff * 2 ** (broken - 1), error))
                    continue
                if total is not None and size < total:
                    raise DownloadError(
                        response.status_code, f"download ended at byte {size} of {total}"
                    )
                return filename, size, True
            finally:
                response.close()

    def run_export(
        self,
        segment_id: str,
        dest: str | os.PathLike[str] | IO[bytes] | Sink,
        *,
        poll_interval: float = 2.0,
        timeout: float | None = None,
        on_progress: Callable[[JSON], object] | None = None,
        max_renewals: int = 3,
        on_bytes: Callable[[int, int | None], object] | None = None,
        on_renew: Callable[[int, DownloadExpired], object] | None = None,
        **export: Any,
    ) -> ExportResult:
        """The whole workflow: create, wait, fetch a location, download to `dest`.

        `export` takes `create_export`'s keywords; the hooks are those of `wait` and
        `download_export`, which renews an expired URL up to `max_renewals` times.
        """
        operation_id = self.create_export(segment_id, **export)
        operation = self.wait(
            operation_id, poll_interval=poll_interval, timeout=timeout, on_progress=on_progress
        )
        search_export_id = str((operation.get("results") or {}).get("searchExportId") or "")
        if not search_export_id:
            raise FullStoryError(200, f"operation {operation_id} completed without results")
        done = self.download_export(
            search_export_id,
            dest,
            max_renewals=max_renewals,
            on_bytes=on_bytes,
            on_renew=on_renew,
        )
        return ExportResult(
            operation_id, operation, search_export_id, done.filename, done.path, done.renewals
        )


class _FileSink:
    """A binary file object as a Sink: a restart rewinds it to where the download began
    (`held` bytes before its position, when it already holds the start of the file)."""

    def __init__(self, file: IO[bytes], held: int = 0) -> None:
        self.file = file
        self.start = file.tell() - held if file.seekable() else None

    def write(self, chunk: bytes) -> bool:
        self.file.write(chunk)
        return False

    def restart(self) -> None:
        if self.start is None:
            raise DownloadError(None, "download broke off; the stream cannot be rewound")
        self.file.seek(self.start)
        self.file.truncate()


@dataclass(frozen=True)
class Resume:
    """A download to continue: the sink already holds `offset` bytes of the file `etag`."""

    offset: int
    etag: str


@dataclass(frozen=True)
class DownloadStart:
    """Told to `on_download` when a download's body starts: `offset` bytes are already held
    (a resumed download), `total` is the whole file's length when the server sent it, and
    `etag` names the file when the server can resume it (Accept-Ranges: bytes)."""

    filename: str
    offset: int
    total: int | None
    etag: str | None


def _total_length(response: Response) -> int | None:
    """The whole file's length: Content-Range's `/size` on a 206, else Content-Length."""
    if response.status_code == 206:
        match = re.fullmatch(r"bytes \d+-\d+/(\d+)", response.headers.get("content-range", ""))
        return int(match.group(1)) if match else None
    length = response.headers.get("content-length", "")
    return int(length) if length.isdigit() else None


def _range_start(response: Response) -> int | None:
    match = re.fullmatch(r"bytes (\d+)-\d+/\d+", response.headers.get("content-range", ""))
    return int(match.group(1)) if match else None


def _raw_chunks(response: Response) -> Iterator[bytes]:
    """The body as sent (never gunzipped), also from a mock transport that preloaded it."""
    try:
        yield from response.iter_raw()
    except _STREAM_CONSUMED:
        yield response.content


def _quote(part: str) -> str:
    """A path segment, escaped, so an id can never reach another route."""
    return quote(str(part), safe="")
