"""Fault injection: make matching requests fail, wait, lose their connection, or receive a
download cut short or trickled out. Rules come from the control API (per tenant or for the
instance) or from one request's `X-Emulator-Fault` header.

A dropped connection is real under uvicorn: the TCP transport is aborted, so the client sees a
reset, not an HTTP answer. In-process (no socket) the request raises ConnectionDropped instead.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ApiError, StorageError
from ..render import storage_error
from .journal import CONTROL_PREFIX, RAW_SEND
from .state import FaultRule, parse_fault_header

if TYPE_CHECKING:
    from ..context import Emulator

GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 429: 8, 500: 13, 501: 12, 503: 14, 504: 4}
STORAGE_CODES = {429: "SlowDown", 500: "InternalError", 503: "ServiceUnavailable"}


class ConnectionDropped(Exception):
    """Raised in place of a dropped connection where there is no socket to drop."""


class _Cut(Exception):
    """Internal: the download was truncated and its connection aborted."""


def _transport(scope: Scope) -> Any:
    """uvicorn's transport behind the server's own `send`, if this runs under uvicorn."""
    owner = getattr(scope.get(RAW_SEND), "__self__", None)
    return getattr(owner, "transport", None)


def describe(rule: FaultRule) -> str:
    parts = [
        f"status={rule.status}" if rule.status else "",
        f"latency={rule.latency_ms:g}ms" if rule.latency_ms else "",
        "drop" if rule.drop else "",
        f"truncate={rule.truncate_after_bytes}" if rule.truncate_after_bytes is not None else "",
        f"bytes-per-second={rule.bytes_per_second}" if rule.bytes_per_second else "",
    ]
    return " ".join(p for p in parts if p) + ("" if rule.id == "header" else f" (rule {rule.id})")


class FaultMiddleware:
    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.em = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        storage = scope["path"].startswith(f"/{self.em.settings.bucket}/")
        try:
            rule = self._rule(scope, headers)
        except ApiError as exc:
            await self.em.renderer.error(exc)(scope, receive, send)
            return
        if rule is None:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["fault"] = describe(rule)
        if rule.latency_ms:
            await asyncio.sleep(rule.latency_ms / 1000)
        if rule.drop:
            await self._drop(scope)
            return
        if rule.status:
            await self._answer(rule, storage)(scope, receive, send)
            return
        try:
            await self.app(scope, receive, self._shaped_send(scope, send, rule))
        except _Cut:
            return

    def _rule(self, scope: Scope, headers: Headers) -> FaultRule | None:
        state = scope.get("state", {})
        header = headers.get("x-emulator-fault")
        if header is not None:
            return parse_fault_header(header, self.em.settings.seed)
        return self.em.take_fault(state.get("tenant"), scope["method"], scope["path"], headers)

    def _answer(self, rule: FaultRule, storage: bool) -> Any:
        status = rule.status or 500
        if storage:
            error = StorageError(rule.message or "injected by the emulator's fault rules")
            error.status, error.code = status, STORAGE_CODES.get(status, f"Http{status}")
            error.message = rule.message or "We encountered an internal error. Please try again."
            return storage_error(error)
        api_error = ApiError(rule.message or f"injected fault: HTTP {status}")
        api_error.status, api_error.grpc_code = status, GRPC_CODES.get(status, 2)
        if status == 429 or rule.retry_after is not None:
            api_error.headers = {"Retry-After": str(rule.retry_after or 1)}
        return self.em.renderer.error(api_error)

    async def _drop(self, scope: Scope) -> None:
        transport = _transport(scope)
        if transport is None:
            raise ConnectionDropped("connection dropped by the emulator's fault rules")
        transport.abort()
        await asyncio.sleep(0)  # let the server see the connection go before the app returns

    def _shaped_send(self, scope: Scope, send: Send, rule: FaultRule) -> Send:
        """A `send` that cuts the body after N bytes, or trickles it at N bytes per second."""
        budget = rule.truncate_after_bytes
        rate = rule.bytes_per_second

        async def shaped(message: Message) -> None:
            nonlocal budget
            if message["type"] != "http.response.body":
                await send(message)
                return
            body: bytes = message.get("body", b"")
            if budget is not None:
                if len(body) >= budget:
                    await send({"type": "http.response.body", "body": body[:budget],
                                "more_body": True})  # fmt: skip
                    await self._drop(scope)
                    raise _Cut()
                budget -= len(body)
            if rate:
                step = max(1, rate // 10)
                for i in range(0, len(body), step):
                    await send({"type": "http.response.body", "body": body[i : i + step],
                                "more_body": True})  # fmt: skip
                    await asyncio.sleep(step / rate)
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        return shaped
