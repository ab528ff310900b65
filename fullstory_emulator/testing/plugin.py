"""A pytest plugin: FullStory emulator fixtures and a handle to steer them from a test.

Registered through the `pytest11` entry point, so installing the package is enough. Three
fixtures hand a test an `EmulatorHandle`:

- `fullstory_emulator`: a real uvicorn server in a thread, fresh for each test;
- `fullstory_emulator_session`: one server for the session, but a fresh tenant (an API key
  derived from the test's id) per test, reset afterwards, so tests never see each other's state;
- `fullstory_emulator_asgi`: the app in-process behind a Starlette TestClient, no socket.

Defaults, chosen so tests are repeatable, honest and quick: seed 1, 100 individuals, a clock
frozen at `2026-03-01T12:00:00Z` (time moves only when the test says, or when the bound client
"sleeps"), and the contract's rate limit (2/60 s, burst 50) left on. A client of the user's own
that really sleeps cannot move that clock, so its export finishes anyway on the third poll that
finds the clock standing still (`finish_stalled_after_polls=2`; the second poll's answer says
why in `X-Emulator-Hint`, and the server logs it). `@pytest.mark.fullstory_emulator(
seed=..., start_time=..., api_key=..., **settings_fields)` or an override of the
`fullstory_emulator_settings` fixture change the function-scoped and in-process emulators; an
override of `fullstory_emulator_session_settings` changes the session server.

A fourth, `fullstory_exercise`, grades a client of the user's own instead: called with a
command (or a callable taking the API URL and key), it runs it through FullStory's failure
modes on a private emulator and returns the report of `fullstory-emulator exercise`
(docs/grading.md).

The handle speaks only HTTP to the control API (`/__emulator/*`), so it behaves the same for a
thread, another process or an in-process app, and every control call sends the handle's key so
it acts on that key's tenant alone. Heavy imports (the app, httpx) wait until a fixture is used,
so merely having the package installed costs other test suites nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

from ..timestamps import format_rfc3339

if TYPE_CHECKING:
    from ..client.core import FullStoryClient, HttpClient
    from ..settings import RateLimit, Settings
    from .exercise import Report, Target

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DEFAULT_API_KEY = "na1.pytest-admin"
# A client that really sleeps cannot move the frozen clock: its export finishes anyway on the
# third poll that finds the clock standing still (the second carries an X-Emulator-Hint).
STALLED_POLLS = 2
# A test needs rows, not volume: a tenth of the server's default world keeps a day's export
# (about 300 events) to a few hundredths of a second. `population=1000` in the marker for more.
POPULATION = 100
MARKER = "fullstory_emulator"


@dataclass(frozen=True)
class JournalEntry:
    """One request the emulator saw, as the journal reports it (secrets are never kept)."""

    method: str
    path: str
    status: int
    query: Any = None
    duration_ms: float = 0.0
    at: str = ""
    tenant: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    fault: Any = None  # the fault rule that hit this request, if any
    retry_after: int | None = None  # the answer's Retry-After, in seconds
    bytes: int = 0  # body bytes sent

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JournalEntry:
        return cls(
            method=str(data.get("method", "")),
            path=str(data.get("path", "")),
            status=int(data.get("status") or 0),
            query=data.get("query"),
            duration_ms=float(data.get("durationMs") or 0.0),
            at=str(data.get("at") or ""),
            tenant=data.get("tenant"),
            headers=dict(data.get("headers") or {}),
            fault=data.get("fault"),
            retry_after=data.get("retryAfter"),
            bytes=int(data.get("bytes") or 0),
        )

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _timestamp(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    return format_rfc3339(value)


def _parse_time(text: str) -> datetime:
    from ..timestamps import parse_rfc3339

    return parse_rfc3339(text)


class EmulatorClock:
    """The emulator's clock as the handle's tenant sees it (its own view on a shared server)."""

    def __init__(self, handle: EmulatorHandle) -> None:
        self._handle = handle

    def now(self) -> datetime:
        return _parse_time(self._handle.control("GET", "/clock")["now"])

    @property
    def frozen(self) -> bool:
        return bool(self._handle.control("GET", "/clock")["frozen"])

    def _post(self, body: dict[str, Any]) -> datetime:
        return _parse_time(self._handle.control("POST", "/clock", body)["now"])

    def advance(self, seconds: float) -> datetime:
        return self._post({"advance": seconds})

    def set(self, instant: datetime | str) -> datetime:
        return self._post({"set": _timestamp(instant)})

    def freeze(self) -> datetime:
        return self._post({"freeze": True})

    def unfreeze(self) -> datetime:
        return self._post({"freeze": False})


class EmulatorHandle:
    """A test's grip on one emulator tenant: the API client, the clock, faults and the journal.

    `http` reaches the emulator (for the in-process variant it is the only way in); `client` is
    a `FullStoryClient` on it whose `sleep` advances the emulator clock instead of sleeping, and
    records each wait in `sleeps`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        http: HttpClient,
        *,
        control_token: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        from ..client.core import FullStoryClient

        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.http = http
        self.settings = settings
        self.control_token = control_token
        self.clock = EmulatorClock(self)
        self.sleeps: list[float] = []
        self.client: FullStoryClient = FullStoryClient(
            self.base_url, api_key, http=http, sleep=self._sleep
        )

    def __repr__(self) -> str:
        return f"EmulatorHandle({self.base_url!r}, api_key={self.api_key!r})"

    def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def control(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One control request on this tenant; raises FullStoryError with the server's message."""
        from ..client.core import error_from_response

        headers = {"Authorization": f"Basic {self.api_key}"}
        if self.control_token:
            headers["X-Emulator-Token"] = self.control_token
        query = {k: v for k, v in (params or {}).items() if v is not None}
        response = self.http.request(
            method,
            f"{self.base_url}/__emulator{path}",
            headers=headers,
            params=query,
            json=body,
        )
        if response.status_code >= 400:
            raise error_from_response(response)
        if not response.content.strip():
            return {}
        data = response.json()
        return data if isinstance(data, dict) else {"value": data}

    # -- exports ---------------------------------------------------------------------------------

    def set_lifecycle(self, **policy: Any) -> str:
        """How the next exports play out: `segment_id`, `finish_after_seconds` |
        `finish_after_polls` | `immediately` | `pct_sequence`, `fail` (errorDetails), `times`."""
        body = {_camel(k): v for k, v in policy.items() if v is not None}
        return str(self.control("POST", "/lifecycle", body)["id"])

    def clear_lifecycle(self) -> None:
        self.control("DELETE", "/lifecycle")

    def fail_next_export(
        self, message: str = "export failed (injected by the test)", segment_id: str | None = None
    ) -> str:
        """The next export (of `segment_id`, or any) ends in the failure state with `message`."""
        return self.set_lifecycle(segment_id=segment_id, fail=message, times=1)

    def complete(self, operation_id: str) -> dict[str, Any]:
        return self.control("POST", f"/operations/{quote(operation_id, safe='')}/complete")

    def fail(self, operation_id: str, message: str = "failed by the test") -> dict[str, Any]:
        path = f"/operations/{quote(operation_id, safe='')}/fail"
        return self.control("POST", path, {"errorDetails": message})

    # -- faults and rate limits ------------------------------------------------------------------

    def add_fault(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        header: Mapping[str, str] | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        message: str | None = None,
        latency_ms: float | None = None,
        drop: bool = False,
        truncate_after_bytes: int | None = None,
        bytes_per_second: int | None = None,
        times: int | None = None,
        probability: float | None = None,
    ) -> str:
        """A fault rule for matching requests (`path` is a glob); returns its id."""
        fields = {
            "method": method,
            "path": path,
            "header": dict(header) if header else None,
            "status": status,
            "retry_after": retry_after,
            "message": message,
            "latency_ms": latency_ms,
            "drop": drop or None,
            "truncate_after_bytes": truncate_after_bytes,
            "bytes_per_second": bytes_per_second,
            "times": times,
            "probability": probability,
        }
        body = {_camel(k): v for k, v in fields.items() if v is not None}
        return str(self.control("POST", "/faults", body)["id"])

    def faults(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "/faults").get("faults") or [])

    def remove_fault(self, rule_id: str) -> None:
        self.control("DELETE", f"/faults/{quote(rule_id, safe='')}")

    def clear_faults(self) -> None:
        self.control("DELETE", "/faults")

    def rate_limit(
        self,
        limit: str | RateLimit | None = None,
        deny_next: int | None = None,
        retry_after: int | None = None,
    ) -> dict[str, Any]:
        """The tenant's bucket (`"2/60,50"`, a RateLimit or `"off"`), and "deny the next n API
        requests" (with `Retry-After: retry_after`)."""
        spec = None if limit is None else str(limit)
        fields = {"limit": spec, "denyNext": deny_next, "retryAfter": retry_after}
        return self.control(
            "POST", "/ratelimit", {k: v for k, v in fields.items() if v is not None}
        )

    def configure(
        self,
        *,
        url_ttl: float | None = None,
        export_duration: float | None = None,
        max_export_events: int | None = None,
    ) -> dict[str, Any]:
        """Per-tenant `urlTtl`/`exportDuration`/`maxExportEvents` (`POST /__emulator/config`,
        beyond the spec)."""
        fields = {
            "urlTtl": url_ttl,
            "exportDuration": export_duration,
            "maxExportEvents": max_export_events,
        }
        return self.control("POST", "/config", {k: v for k, v in fields.items() if v is not None})

    # -- the journal, scenarios, reset -----------------------------------------------------------

    def requests(
        self, path: str | None = None, method: str | None = None, limit: int | None = None
    ) -> list[JournalEntry]:
        """Requests of this tenant, oldest first (the first `limit` of them); `path` is a glob
        such as `/operations/v1/*`. Follows the journal's pages."""
        entries: list[JournalEntry] = []
        token = None
        while limit is None or len(entries) < limit:
            params = {"path": path, "method": method, "pageToken": token}
            answer = self.control("GET", "/journal", params=params)
            entries += [JournalEntry.from_json(entry) for entry in answer.get("requests") or []]
            token = answer.get("nextPageToken")
            if not token:
                break
        return entries if limit is None else entries[:limit]

    def clear_journal(self) -> None:
        self.control("DELETE", "/journal")

    def scenarios(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "/scenarios").get("scenarios") or [])

    def load_scenario(self, name: str) -> dict[str, Any]:
        return self.control("POST", f"/scenarios/{quote(name, safe='')}")

    def reset(self) -> None:
        """Back to the seeded fixtures, for this tenant only."""
        self.control("POST", "/reset")
        self.sleeps.clear()

    def close(self) -> None:
        self.client.close()


# -- settings ------------------------------------------------------------------------------------


def default_settings(**overrides: Any) -> Settings:
    """The plugin's defaults (seed 1, frozen clock at START, contract rate limit), overridden.

    `start_time` may be an RFC 3339 string and `rate_limit` a spec such as `"off"`.
    """
    from ..settings import RateLimit, Settings

    values: dict[str, Any] = {
        "port": 0,
        "seed": 1,
        "start_time": START,
        "freeze_clock": True,
        "finish_stalled_after_polls": STALLED_POLLS,
        "population": POPULATION,
    }
    values.update(overrides)
    if isinstance(values.get("start_time"), str):
        values["start_time"] = _parse_time(values["start_time"])
    if isinstance(values.get("rate_limit"), str):
        values["rate_limit"] = RateLimit.parse(values["rate_limit"])
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER}: unknown setting(s) {', '.join(unknown)}; "
            f"known: api_key, {', '.join(sorted(known))}"
        )
    return Settings(**values)


def _marker_kwargs(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The marker's keywords, the closest marker winning per keyword."""
    merged: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{MARKER} takes keyword arguments only")
        merged.update(marker.kwargs)
    return merged


@pytest.fixture
def fullstory_emulator_settings(request: pytest.FixtureRequest) -> Settings:
    """Settings of the function-scoped and in-process emulators; override to change them."""
    kwargs = _marker_kwargs(request)
    kwargs.pop("api_key", None)
    return default_settings(**kwargs)


@pytest.fixture
def fullstory_emulator_api_key(request: pytest.FixtureRequest) -> str:
    """The key the handle uses (marker `api_key=`); with no keys file any `na1.*` is an admin."""
    return str(_marker_kwargs(request).get("api_key", DEFAULT_API_KEY))


@pytest.fixture(scope="session")
def fullstory_emulator_session_settings() -> Settings:
    """Settings of the session-wide server; override (session scope) to change them.

    Its control API runs with `--control-auth tenant`: each test's handle acts on its own
    tenant only, and nothing can touch the others' without the (random) admin token."""
    return default_settings(control_auth="tenant", control_token=secrets.token_urlsafe(16))


# -- fixtures ------------------------------------------------------------------------------------


def _threaded(settings: Settings, api_key: str) -> Iterator[EmulatorHandle]:
    import httpx

    from ..server import ServerThread

    with ServerThread(settings) as server, httpx.Client(timeout=30) as http:
        handle = EmulatorHandle(
            server.base_url,
            api_key,
            http,
            control_token=getattr(server.settings, "control_token", None),
            settings=server.settings,
        )
        yield handle


@pytest.fixture
def fullstory_emulator(
    fullstory_emulator_settings: Settings, fullstory_emulator_api_key: str
) -> Iterator[EmulatorHandle]:
    """A fresh emulator server (uvicorn, in a thread) for this test."""
    yield from _threaded(fullstory_emulator_settings, fullstory_emulator_api_key)


@pytest.fixture(scope="session")
def _fullstory_emulator_server(
    fullstory_emulator_session_settings: Settings,
) -> Iterator[EmulatorHandle]:
    yield from _threaded(fullstory_emulator_session_settings, DEFAULT_API_KEY)


# What a marker can change for one test on the shared session server: its own tenant's settings.
SESSION_MARKER_KEYS = ("api_key", "url_ttl", "export_duration", "rate_limit")


@pytest.fixture
def fullstory_emulator_session(
    _fullstory_emulator_server: EmulatorHandle, request: pytest.FixtureRequest
) -> Iterator[EmulatorHandle]:
    """The session's server, seen through a tenant of this test's own (reset afterwards).

    The marker applies to that tenant what a tenant can have of its own (`api_key`, `url_ttl`,
    `export_duration`, `rate_limit`); anything else belongs to the shared server, and asking
    for it is an error rather than silently ignored."""
    server = _fullstory_emulator_server
    wanted = _marker_kwargs(request)
    shared = sorted(set(wanted) - set(SESSION_MARKER_KEYS))
    if shared:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER}({', '.join(f'{k}=...' for k in shared)}) cannot apply to "
            "fullstory_emulator_session: its one server is shared by the whole session, and a "
            f"test's own tenant can only change {', '.join(SESSION_MARKER_KEYS)}. Use the "
            "fullstory_emulator fixture (a server of the test's own), or override "
            "fullstory_emulator_session_settings for the session"
        )
    # A key per test, from its id: unique, and the same on every run.
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]
    handle = EmulatorHandle(
        server.base_url,
        str(wanted.get("api_key", f"na1.pytest-{digest}")),
        server.http,
        control_token=server.control_token,
        settings=server.settings,
    )
    try:
        if "url_ttl" in wanted or "export_duration" in wanted:
            handle.configure(
                url_ttl=wanted.get("url_ttl"), export_duration=wanted.get("export_duration")
            )
        if "rate_limit" in wanted:
            handle.rate_limit(wanted["rate_limit"] or "off")
        yield handle
    finally:
        handle.reset()


def _in_process_client(app: Any, base_url: str) -> HttpClient:
    """A TestClient over `app` on which a fault's dropped connection (in-process, an exception)
    surfaces as an httpx transport error, as it would over a socket."""
    from starlette import testclient
    from starlette.testclient import TestClient

    from ..http.faults import ConnectionDropped

    if TYPE_CHECKING:  # what Starlette's own annotations name
        import httpx2 as hx
    else:  # httpx, or the httpx2 fork when installed: whichever TestClient uses
        hx = testclient.httpx

    def dropped(exc: Exception, request: hx.Request) -> hx.TransportError:
        return hx.RemoteProtocolError(str(exc), request=request)

    class GuardedStream(hx.SyncByteStream):
        """A streamed body whose drop (raised while it is read) becomes a transport error."""

        def __init__(self, inner: Any, request: hx.Request) -> None:
            self.inner, self.request = inner, request

        def __iter__(self) -> Iterator[bytes]:
            try:
                yield from self.inner
            except ConnectionDropped as exc:
                raise dropped(exc, self.request) from exc

        def close(self) -> None:
            try:
                self.inner.close()
            except ConnectionDropped as exc:
                raise dropped(exc, self.request) from exc

    class InProcessClient(TestClient):
        def send(self, request: hx.Request, **kwargs: Any) -> hx.Response:
            try:
                response = super().send(request, **kwargs)
            except ConnectionDropped as exc:
                raise dropped(exc, request) from exc
            if not response.is_stream_consumed:
                response.stream = GuardedStream(response.stream, request)
            return response

    return InProcessClient(app, base_url=base_url)


@pytest.fixture
def fullstory_emulator_asgi(
    fullstory_emulator_settings: Settings, fullstory_emulator_api_key: str
) -> Iterator[EmulatorHandle]:
    """The emulator in-process: a Starlette TestClient over the app, no socket, no thread."""
    from ..http.app import create_app

    settings = fullstory_emulator_settings
    if not settings.public_url:
        settings = dataclasses.replace(settings, public_url="http://testserver")
    with _in_process_client(create_app(settings), settings.base_url()) as http:
        yield EmulatorHandle(
            settings.base_url(),
            fullstory_emulator_api_key,
            http,
            control_token=getattr(settings, "control_token", None),
            settings=settings,
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(seed=..., start_time=..., api_key=..., **settings): Settings fields (and the "
        "handle's API key) of the fullstory_emulator and fullstory_emulator_asgi fixtures; "
        f"fullstory_emulator_session takes {', '.join(SESSION_MARKER_KEYS)} (its tenant's own)",
    )


__all__ = [
    "DEFAULT_API_KEY",
    "START",
    "EmulatorClock",
    "EmulatorHandle",
    "JournalEntry",
    "default_settings",
]


@pytest.fixture
def fullstory_exercise() -> Callable[..., Report]:
    """Grade a client: `fullstory_exercise(["./my-client", "--out", "x"], scenarios=["happy",
    "rate-limited"], timeout=30)` or `fullstory_exercise(my_function)` (called as
    `my_function(url, key)`, its return value the exit code). Assert `report.passed`, or on a
    scenario: `report["failed"].outcome == "gave-up"`; `report.table()` says what to fix."""
    from .exercise import exercise

    def run(
        target: Target, scenarios: Sequence[str] | None = None, *, timeout: float = 30.0
    ) -> Report:
        return exercise(target, scenarios, timeout=timeout)

    return run
