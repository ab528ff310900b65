"""The application factory: routes per area, error rendering in one place."""

from __future__ import annotations

import contextlib
import difflib
import inspect
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route, Router, request_response
from starlette.types import Receive, Scope, Send

from ..contract import STATES
from ..errors import (
    ApiError,
    Internal,
    MethodNotAllowed,
    NoSuchBucket,
    NotFound,
    StorageError,
    StoreBusy,
    echo,
)
from ..instance import Emulator
from ..logs import get_logger
from ..settings import Settings
from . import console, control, openapi, redact
from .api import exports, operations, search, segments, storage
from .faults import RAW_SEND, STORAGE_MESSAGE, ConnectionDropped
from .metrics import CONTENT_TYPE, Metrics
from .pipeline import API, CONTROL, STORAGE, Pipeline, area_of
from .render import JsonRenderer, storage_busy, storage_error

log = get_logger()  # the emulator's own messages; its access lines go to LOGGER.access


class EmulatorApp(Starlette):
    """Starlette, keeping the server's own `send` in the scope before any middleware wraps it:
    the fault rules need it to drop a connection for real."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = scope
        given[RAW_SEND] = send
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and len(path) > 1
            and path.endswith("/")
            and scope["method"] != "DELETE"
        ):
            # `/segments/v1/` is answered as `/segments/v1`, never redirected: a redirect built
            # from the Host header would send clients wherever that header says. A DELETE keeps
            # its slash: `/__emulator/faults/` names an empty rule id (a 404), and must not become
            # `/__emulator/faults`, which drops every rule.
            scope = {**scope, "path": path.rstrip("/") or "/"}
        # An error raised before a route (the store busy while the caller is looked up) was
        # answered by `crash`; Starlette raises it again for servers to log: it is no crash.
        try:
            with contextlib.suppress(ApiError, StorageError):
                await super().__call__(scope, receive, send)
        finally:
            # The server's `send` is a method of the object that holds this scope: left here,
            # every request is a reference cycle only the garbage collector frees, and its
            # collections (whose pauses were the p99) run every few dozen requests.
            given.pop(RAW_SEND, None)


class AreaRouter(Router):
    """One routing table per area (the FullStory API, storage downloads, the control plane),
    chosen once by the area the pipeline decided (`scope["state"]["area"]`): a download is
    never tried against the API's routes, nor an API call against the control plane's. The
    whole list stays `routes` (an Allow header, a did-you-mean, an injected 429's name)."""

    def __init__(self, routes: Sequence[BaseRoute], storage_prefix: str, **kwargs: Any) -> None:
        for route in routes:
            _answer_directly(route)
        super().__init__(list(routes), redirect_slashes=False, **kwargs)
        tables: dict[str, list[BaseRoute]] = {API: [], STORAGE: [], CONTROL: []}
        for route in routes:
            tables[area_of(getattr(route, "path", ""), storage_prefix)].append(route)
        self.tables = {
            area: Router(table, redirect_slashes=False) for area, table in tables.items()
        }

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        table = self.tables.get(scope.get("state", {}).get("area", ""))
        if table is None or scope["type"] != "http":  # the lifespan; a request not piped
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)  # url_for sees every route
        await table.app(scope, receive, send)


def _answer_directly(route: BaseRoute) -> None:
    """A function route answers without a second exception layer of its own: Starlette wraps
    each one in the app's exception handlers (a `Request` and a `send` wrapper per request)
    though the app's ExceptionMiddleware, around every route, already runs the same handlers
    on the same scope. A route given middleware of its own keeps Starlette's wrapping."""
    if not isinstance(route, Route) or not inspect.iscoroutinefunction(route.endpoint):
        return
    if getattr(route.app, "__qualname__", "") != request_response.__qualname__ + ".<locals>.app":
        return
    endpoint = route.endpoint

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive, send))
        await response(scope, receive, send)

    route.app = app


def create_app(settings: Settings | None = None, *, emulator: Emulator | None = None) -> Starlette:
    """A Starlette app serving the emulated API; `emulator` lets tests share or inspect state."""
    settings = settings or Settings()
    em = emulator or Emulator.build(settings)
    renderer = JsonRenderer(html_escape=settings.html_escape)
    metrics = Metrics(
        operation_states=em.exports.state_counts,
        states=STATES,
        json_logs=settings.access_log == "json",
    )

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        if isinstance(exc, StoreBusy) and _is_download(request):
            return storage_busy(exc)
        return renderer.error(exc)

    async def storage_failure(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StorageError)
        return storage_error(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            error: ApiError = MethodNotAllowed(
                f"{request.method} is not allowed on {echo(request.url.path, quote=False)}; "
                f"allowed: {allowed}{_did_you_mean(request)}",
                headers={"Allow": allowed} if allowed else None,
            )
        elif exc.status_code == 404 and _looks_like_storage(request):
            bucket = request.url.path.lstrip("/").partition("/")[0]
            return storage_error(NoSuchBucket(f"No such bucket: {echo(bucket, quote=False)}"))
        elif exc.status_code == 404:
            error = NotFound(
                f"no such endpoint: {request.method} {echo(request.url.path, quote=False)}"
                f"{_did_you_mean(request)}"
            )
        else:
            error = ApiError.for_status(exc.status_code, exc.detail)
        return renderer.error(error)

    spec = openapi.document(settings)

    async def openapi_json(request: Request) -> Response:
        return renderer.json(spec)

    async def scrape(request: Request) -> Response:
        # Counting operations by state reads them all: in a thread, never on the event loop.
        return Response(await run_in_threadpool(metrics.render), media_type=CONTENT_TYPE)

    async def crash(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ApiError):  # raised before a route, e.g. the store busy
            return await api_error(request, exc)
        if isinstance(exc, StorageError):
            return storage_error(exc)
        if not isinstance(exc, ConnectionDropped):  # a fault rule, not a crash
            log.exception("unhandled error on %s %s", request.method, request.url.path)
        details = "internal error in the emulator; see its log"
        if _is_download(request):  # storage's XML
            return storage_error(StorageError.for_status(500, STORAGE_MESSAGE, details))
        return renderer.error(Internal(details))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        """Under a server that runs the lifespan (worker processes), the emulator this app
        built is closed when the server stops; one handed in belongs to the caller."""
        yield
        if emulator is None:
            await run_in_threadpool(em.close)

    app = EmulatorApp(
        lifespan=lifespan,
        middleware=[
            Middleware(Pipeline, emulator=em, renderer=renderer, metrics=metrics),
        ],
        routes=[
            *segments.routes,
            *exports.routes,
            *operations.routes,
            *search.routes,
            *storage.routes(settings.bucket),
            *control.routes,
            *console.routes,
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/metrics", scrape, methods=["GET"]),
        ],
        exception_handlers={
            ApiError: api_error,
            StorageError: storage_failure,
            HTTPException: http_error,
            Exception: crash,
        },
    )
    app.router = AreaRouter(app.router.routes, f"/{settings.bucket}/", lifespan=lifespan)
    app.state.emulator = em
    app.state.renderer = renderer
    if settings.access_log == "json":
        _log_json_lines()
    redact.install_access_log_filter()
    return app


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path (Starlette names only the first route's)."""
    fitting = [
        route
        for route in request.app.routes
        if isinstance(route, Route)
        and route.methods
        and route.matches(request.scope)[0] != Match.NONE  # PARTIAL: the path fits, not the method
    ]
    # A literal path (`/segments/v1/exports`) is not also the template `/segments/v1/{id}`.
    literal = [route for route in fitting if route.path == request.url.path]
    methods = {method for route in literal or fitting for method in route.methods or ()}
    return ", ".join(sorted(methods))


def _is_download(request: Request) -> bool:
    """Whether the pipeline found the path to be the storage side's (its one decision)."""
    return bool(request.scope.get("state", {}).get("area") == STORAGE)


def _did_you_mean(request: Request) -> str:
    """`; did you mean POST /segments/v1/exports?`: the known route taking this method whose
    path is closest to the one asked for (a typo such as `/segments/v1/export` otherwise reads
    as a wrong method on the segment route it happens to fit). A template's `{id}` stands for
    the request's own segment there, so `/operation/v1/abc` suggests `/operations/v1/abc`."""
    path = request.url.path
    asked = path.split("/")
    best, score = "", 0.0
    for route in request.app.routes:
        if not isinstance(route, Route) or request.method not in (route.methods or ()):
            continue
        parts = route.path.split("/")
        if len(parts) == len(asked):
            parts = [a if p.startswith("{") else p for p, a in zip(parts, asked, strict=True)]
        candidate = "/".join(parts)
        if candidate == path:
            continue  # the route that fits already: a wrong method, not a typo
        ratio = difflib.SequenceMatcher(None, path, candidate).ratio()
        if ratio > score:
            best, score = candidate, ratio
    if score < 0.85:
        return ""
    return f"; did you mean {request.method} {echo(best, quote=False)}?"


def _looks_like_storage(request: Request) -> bool:
    """A download in another bucket: a signed-URL query, or the exports' object prefix."""
    if any(name.startswith("X-Goog-") for name in request.query_params):
        return True
    return request.url.path.lstrip("/").partition("/")[2].startswith("segment-exports/")


def app_from_environment() -> Starlette:
    """The app of a worker process, whose settings arrive as FULLSTORY_EMULATOR_* variables."""
    return create_app(Settings.load({}, os.environ))


def _log_json_lines() -> None:
    """Send the JSON access lines to stdout as they are, once per process."""
    logger = get_logger("access")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
