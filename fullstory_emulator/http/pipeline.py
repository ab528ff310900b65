"""The one pass every request makes before and after its route.

the guard: a Host this emulator answers to; on the control API, no foreign Origin and JSON
bodies only (hosts.HostPolicy: DNS rebinding and web pages posting here)
-> caller (key -> principal -> tenant), resolved once and put in the scope
-> the tenant's control view, read once: a fault to carry out?
-> the route (api/, control, storage), which takes the rest of its decisions from that view
-> journal entry, metrics and access log, recorded once; X-Emulator-Now on the answer
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from contextvars import Token
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..auth import Principal
from ..clock import Reading
from ..control.service import ControlView
from ..control.specs import describe_fault
from ..errors import (
    ApiError,
    MisdirectedRequest,
    PermissionDenied,
    StorageError,
    StoreBusy,
    Unauthenticated,
    UnsupportedMediaType,
)
from ..instance import Emulator
from ..store import off_loop
from ..store.records import FaultRule, OperationRecord
from ..timestamps import format_api
from . import faults, redact
from .metrics import Metrics
from .render import JsonRenderer, storage_busy, storage_error

CONTROL_PREFIX = "/__emulator"
# Which of the three the path is for, decided once per request (Pipeline.area_of) and kept in
# the scope's state as "area": the FullStory API, storage downloads, the control plane.
API, STORAGE, CONTROL = "api", "storage", "control"
UNJOURNALED = frozenset({"/metrics", "/openapi.json"})
BUCKET_ATTRIBUTE = "rate_limit_bucket"  # set on API endpoints by api.common.endpoint
# Distinct header sets whose journal form is kept, and the largest kept (_journaled_headers).
REDACTED_SETS, REDACTED_SET_BYTES = 256, 8192
WORKER = str(os.getpid()).encode()  # which process answered: X-Emulator-Worker


def area_of(path: str, storage_prefix: str) -> str:
    """The one place that tells the three apart by path (a request's, or a route's template)."""
    if path.startswith(storage_prefix):
        return STORAGE
    return CONTROL if path.startswith(CONTROL_PREFIX) else API


@dataclass(frozen=True)
class Caller:
    """Who is asking: the API key's principal and tenant, a download's owner, or nobody."""

    tenant: str | None
    principal: Principal | None = None
    refusal: ApiError | None = None  # why an Authorization header was refused
    authorization: bool = False  # whether the request carried one
    # A download without a key: the export its path names (None: none), looked up once.
    export: tuple[OperationRecord | None] | None = None

    def require(self) -> Principal:
        """The principal, for routes that need an API key."""
        if self.principal is None:
            raise self.refusal or Unauthenticated(
                "missing Authorization header; send 'Authorization: Basic <your API key>'"
            )
        return self.principal


@dataclass
class _Resolved:
    """What the pipeline learns before the route (Pipeline._resolve)."""

    caller: Caller
    reading: Reading | None = None  # the request's one clock reading (None: not yet, no store)
    view: ControlView | None = None  # the tenant's control view, off the control API
    rule: FaultRule | None = None  # the fault rule this request takes
    refused: ApiError | None = None  # a malformed X-Emulator-Fault header
    away: StoreBusy | None = None  # the store could not be reached


class _Headers(Headers):
    """A request's headers, each name's first value also kept in a dict: the pipeline asks
    for several on every request (Host, Authorization, X-Emulator-Fault, ...), and Headers
    scans the whole list, lowering each name, for each one."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope=scope)
        self._first = dict(reversed(self._list))

    def get(self, key: str, default: Any = None) -> Any:
        value = self._first.get(key.lower().encode("latin-1"))
        return default if value is None else value.decode("latin-1")

    def __getitem__(self, key: str) -> str:
        value = self._first.get(key.lower().encode("latin-1"))
        if value is None:
            raise KeyError(key)
        return value.decode("latin-1")

    def __contains__(self, key: Any) -> bool:
        return isinstance(key, str) and key.lower().encode("latin-1") in self._first


def caller_of(request: Request) -> Caller:
    caller: Caller = request.scope["state"]["caller"]
    return caller


def control_view_of(request: Request) -> ControlView:
    view: ControlView = request.scope["state"]["control"]
    return view


class Pipeline:
    def __init__(
        self, app: ASGIApp, *, emulator: Emulator, renderer: JsonRenderer, metrics: Metrics
    ) -> None:
        self.app = app
        self.em = emulator
        self.renderer = renderer
        self.metrics = metrics
        self.storage_prefix = f"/{emulator.settings.bucket}/"
        self.hosts = emulator.settings.host_policy()
        self._redacted: dict[tuple[tuple[bytes, bytes], ...], dict[str, str]] = {}

    def area_of(self, path: str) -> str:
        return area_of(path, self.storage_prefix)

    def _caller(self, headers: Headers, path: str, area: str) -> Caller:
        header = headers.get("authorization")
        if header is not None:
            try:
                principal = self.em.keys.authenticate(header)
            except ApiError as exc:
                return Caller(None, refusal=exc, authorization=True)
            return Caller(principal.tenant, principal, authorization=True)
        if area == STORAGE:
            # The server already decoded the path, as the route's `object` sees it.
            record = self.em.exports.export_of(path[len(self.storage_prefix) :])
            return Caller(record.tenant if record else None, export=(record,))
        return Caller(None)

    def _resolve(self, scope: Scope, headers: Headers, area: str) -> _Resolved:
        """All the store work before the route, in one call (one thread hop when the store may
        wait): the caller; off the control API, the tenant's control view and the fault rule it
        takes; and the request's one clock reading, unless a rule's latency holds the request
        first (its answer is judged when it is handled, after the wait); or why the store could
        not be reached."""
        try:
            caller = self._caller(headers, scope["path"], area)
        except StoreBusy as exc:
            return _Resolved(Caller(None), away=exc)
        found = _Resolved(caller)
        try:
            if area != CONTROL:
                found.view = view = self.em.control.view(caller.tenant)
                try:
                    found.rule = self._fault(scope, headers, view)
                except StoreBusy:
                    raise
                except ApiError as exc:  # a malformed X-Emulator-Fault header
                    found.refused = exc
            if found.rule is None or not found.rule.latency_ms:
                found.reading = self.em.clock.read()
        except StoreBusy as exc:
            found.away = exc
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        em = self.em
        headers = _Headers(scope)
        path: str = scope["path"]
        state = scope.setdefault("state", {})
        state["area"] = area = self.area_of(path)
        control = area == CONTROL
        began = time.perf_counter()
        status: int | None = None
        retry_after: int | None = None  # the answer's Retry-After, which a judge holds it to
        sent = 0
        refusal = self._guard(scope, headers, area)
        if refusal is not None:  # nothing to look up for a request refused
            found = _Resolved(Caller(None))
        elif em.store.blocking:
            # The control plane (health among it) on anyio's threads: never queued behind API
            # requests that wait, on the store's few, for a lock another process holds.
            hop = run_in_threadpool if control else off_loop
            found = await hop(self._resolve, scope, headers, area)
        else:
            found = self._resolve(scope, headers, area)
        caller, view, away, rule = found.caller, found.view, found.away, found.rule
        at = em.clock.last_known() if refusal is not None else None
        held: Token[Any] | None = None
        if found.reading is not None:
            held = em.clock.hold(found.reading)
            at = em.clock.at(found.reading, caller.tenant)
        state["caller"] = caller
        state["now"] = at
        if view is not None:
            state["control"] = view
        recorded = False

        def record() -> None:
            """The journal entry and metrics, once, before the answer's last byte leaves: a
            client that reads the journal right after its download sees the download. It
            awaits nothing, so a client gone (a cancelled task) cannot cut it short."""
            nonlocal recorded
            if recorded:
                return
            recorded = True
            entry = {
                "method": scope["method"],
                "path": redact.path(path),
                "query": redact.query(scope.get("query_string", b"")),
                "headers": self._journaled_headers(headers),
                "status": status,
                "retryAfter": retry_after,
                "bytes": sent,
                "durationMs": round((time.perf_counter() - began) * 1000, 3),
                "at": format_api(at) if at else None,
                "tenant": caller.tenant,
                "fault": state.get("fault"),
            }
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.observe(entry, template, sent, area == STORAGE)
            # A refused request is counted, not journaled: a page elsewhere must not be able
            # to fill the journal, and it reached nothing of the tenant's.
            if not control and path not in UNJOURNALED and refusal is None:
                em.store.append_journal(entry)  # buffered: it never waits for the database

        async def stamped(message: Message) -> None:
            nonlocal status, retry_after, sent
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                if not message.get("more_body", False):
                    record()
            elif message["type"] == "http.response.start":
                status = message["status"]
                retry_after = _retry_after(message.get("headers", ()))
                extra = []
                # A control call may have moved the clock: its answer tells the time after
                # (the request's reading, moved with it).
                now = em.clock.now(caller.tenant) if control and held is not None else at
                if now is not None:  # none when the store could not tell it
                    extra.append((b"x-emulator-now", format_api(now).encode()))
                extra.append((b"x-emulator-worker", WORKER))
                if state.get("fault"):  # an injected answer says so, in a header only
                    extra.append((b"x-emulator-fault", state["fault"].encode("latin-1")))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            if refusal is not None:
                await refusal(scope, receive, stamped)
            elif found.refused is not None:
                await self.renderer.error(found.refused)(scope, receive, stamped)
            elif away is None and rule is not None:
                state["fault"] = describe_fault(rule)
                if rule.latency_ms:
                    await asyncio.sleep(rule.latency_ms / 1000)
                    # Handled now: the one clock reading is taken after the wait.
                    try:
                        if em.store.blocking:
                            reading = await off_loop(em.clock.read)
                        else:
                            reading = em.clock.read()
                        held = em.clock.hold(reading)
                        state["now"] = at = em.clock.at(reading, caller.tenant)
                    except StoreBusy as exc:
                        away = exc
                if away is not None:
                    await self._unavailable(away, area)(scope, receive, stamped)
                else:
                    assert view is not None  # a rule is taken through the tenant's view
                    await self._with_faults(scope, receive, stamped, rule, view)
            elif away is not None:
                await self._unavailable(away, area)(scope, receive, stamped)
            else:
                await self.app(scope, receive, stamped)
        finally:
            record()  # a client gone still leaves its entry
            if held is not None:
                em.clock.release(held)

    def _journaled_headers(self, headers: Headers) -> dict[str, str]:
        """The headers as the journal keeps them, redacted once per distinct set: a client
        sends the same ones request after request. The entry is serialised as it is recorded,
        so one dict serves them all. The cache is bounded (sets of at most REDACTED_SET_BYTES,
        REDACTED_SETS of them), in memory only, and never shown."""
        raw = tuple(headers.raw)
        kept = self._redacted.get(raw)
        if kept is None:
            kept = redact.headers(headers.items())
            if sum(len(name) + len(value) for name, value in raw) <= REDACTED_SET_BYTES:
                if len(self._redacted) >= REDACTED_SETS:
                    self._redacted.clear()
                self._redacted[raw] = kept
        return kept

    async def _with_faults(
        self, scope: Scope, receive: Receive, send: Send, rule: FaultRule, view: ControlView
    ) -> None:
        """Carry out the rule taken (its latency already waited)."""
        if rule.drop:
            await faults.drop(scope)
            return
        storage = scope["state"]["area"] == STORAGE
        if rule.expired and storage:
            now = scope["state"]["now"]  # the request's one clock reading
            query = scope.get("query_string", b"").decode("latin-1")
            await faults.expired(query, now)(scope, receive, send)
            return
        if rule.status:
            answer = faults.answer(
                rule,
                storage,
                self.renderer,
                endpoint=_endpoint_name(scope),
                limit=view.setting("rate_limit", self.em.limiter.limit),
            )
            await answer(scope, receive, send)
            return
        try:
            await self.app(scope, receive, faults.shaped_send(scope, send, rule))
        except faults.Cut:
            return

    def _guard(self, scope: Scope, headers: Headers, area: str) -> Response | None:
        """The refusal of a request no one should make of a local emulator, or None: a Host it
        does not answer to (421, on every path: a rebinding domain reads its answers), and on
        the control API a foreign Origin (403) or a body that is not JSON (415), which a web
        page can send to another site without asking the browser's permission (CORS)."""
        host = headers.get("host")
        if not self.hosts.allows_host(host):
            message = self.hosts.host_refusal(host or "")
            if area == STORAGE:
                return storage_error(StorageError.for_status(421, "Misdirected request.", message))
            return self.renderer.error(MisdirectedRequest(message))
        if area != CONTROL:
            return None
        origin = headers.get("origin")
        if origin is not None and not self.hosts.allows_origin(origin, scope["scheme"], host):
            return self.renderer.error(PermissionDenied(self.hosts.origin_refusal(origin)))
        if _has_body(headers) and not _is_json(headers.get("content-type")):
            sent = headers.get("content-type")
            shown = repr(sent[:100]) if sent is not None else "none"
            return self.renderer.error(
                UnsupportedMediaType(
                    "Content-Type must be application/json on the control API (got "
                    f"{shown}): a form or text body is what a web page elsewhere could post"
                )
            )
        return None

    def _unavailable(self, exc: StoreBusy, area: str) -> Response:
        """A 503 in the contract's shape: JSON for the API, Cloud Storage XML for downloads."""
        if area == STORAGE:
            return storage_busy(exc)
        return self.renderer.error(exc)

    def _fault(self, scope: Scope, headers: Headers, view: ControlView) -> FaultRule | None:
        header = headers.get("x-emulator-fault")
        if header is not None:
            return self.em.control.header_fault(header)
        return view.take_fault(scope["method"], scope["path"], headers)


def _retry_after(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"retry-after" and value.isdigit():
            return int(value)
    return None


def _has_body(headers: Headers) -> bool:
    """Whether the request carries content: a non-zero Content-Length, or a chunked body."""
    length = headers.get("content-length")
    if length is not None:
        digits = length.strip()
        return not (digits.isascii() and digits.isdigit()) or int(digits) > 0
    return "transfer-encoding" in headers


def _is_json(content_type: str | None) -> bool:
    """`application/json`, with or without parameters such as `; charset=utf-8`."""
    if content_type is None:
        return False
    return content_type.partition(";")[0].strip().lower() == "application/json"


def _endpoint_name(scope: Scope) -> str:
    """The rate-limit bucket name of the route a request is for (as `api.common.endpoint`
    names it), else `METHOD path`: how an injected 429 names what was limited."""
    for route in getattr(scope.get("app"), "routes", ()):
        if route.matches(scope)[0] == Match.FULL:
            name = getattr(getattr(route, "endpoint", None), BUCKET_ATTRIBUTE, None)
            if isinstance(name, str):
                return name
    return f"{scope['method']} {scope['path']}"
