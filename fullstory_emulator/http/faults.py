"""Carrying out a fault rule on a request: answer with an error, lose the connection, or cut
short or trickle out the response.

A dropped connection is real under uvicorn: the TCP transport is aborted, so the client sees a
reset, not an HTTP answer. In-process (no socket) the request raises ConnectionDropped instead.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response
from starlette.types import Message, Scope, Send

from ..errors import ApiError, ExpiredToken, StorageError
from ..exports.ratelimit import exceeded
from ..settings import RateLimit
from ..store.records import FaultRule
from .render import JsonRenderer, storage_error

RAW_SEND = "fullstory_emulator.raw_send"  # the server's own send, kept for faults that drop
STORAGE_MESSAGE = "We encountered an internal error. Please try again."
# Cloud Storage's own wording per status (the code comes from errors.STORAGE_CODES).
STORAGE_MESSAGES = {
    400: "Invalid argument.",
    403: "Access denied.",
    404: "The specified key does not exist.",
    429: "The rate of requests is too high. Please reduce your request rate.",
    503: "We encountered an internal error. Please try again.",
}
# gRPC-gateway answers with the gRPC status message, lower case and terse.
API_MESSAGES = {
    400: "invalid argument",
    401: "unauthenticated: invalid or missing API key",
    403: "permission denied",
    404: "not found",
    409: "conflict",
    500: "internal error",
    501: "not implemented",
    502: "bad gateway",
    503: "the service is currently unavailable",
    504: "deadline exceeded",
}


class ConnectionDropped(Exception):
    """Raised in place of a dropped connection where there is no socket to drop."""


class Cut(Exception):
    """The response was truncated and its connection aborted."""


def _transport(scope: Scope) -> Any:
    """uvicorn's transport behind the server's own `send`, if this runs under uvicorn."""
    owner = getattr(scope.get(RAW_SEND), "__self__", None)
    return getattr(owner, "transport", None)


def answer(
    rule: FaultRule,
    storage: bool,
    renderer: JsonRenderer,
    *,
    endpoint: str,
    limit: RateLimit | None,
) -> Response:
    """The error response a fault rule with a status answers with: worded as production would
    word it (a 429 exactly as the rate limiter's own), unless the rule gives a message. What
    marks it as injected is the X-Emulator-Fault response header, never the body."""
    status = rule.status or 500
    if storage:
        message = rule.message or STORAGE_MESSAGES.get(status, STORAGE_MESSAGE)
        return storage_error(StorageError.for_status(status, message, ""))
    if status == 429:
        retry_after = rule.retry_after if rule.retry_after is not None else 1
        limited = exceeded(endpoint, retry_after, limit)
        if rule.message:
            return renderer.error(ApiError.for_status(429, rule.message, headers=limited.headers))
        return renderer.error(limited)
    headers = None if rule.retry_after is None else {"Retry-After": str(rule.retry_after)}
    message = rule.message or production_message(status)
    return renderer.error(ApiError.for_status(status, message, headers=headers))


def production_message(status: int) -> str:
    """What FullStory's front end plausibly says for a status nothing else explains."""
    if status in API_MESSAGES:
        return API_MESSAGES[status]
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "unknown error"


def _share(headers: Any, fraction: float) -> int | None:
    """That fraction of the answer's Content-Length, in whole bytes (None: no length given)."""
    for name, value in headers:
        if name.lower() == b"content-length" and value.isdigit():
            return int(int(value) * fraction)
    return None


def expired(query: str, now: datetime) -> Response:
    """The answer to a signed URL past its expiry, as Cloud Storage words it (and as the
    emulator's own signature check answers): the expiry shown is the URL's, when it has one."""
    params = dict(parse_qsl(query))
    try:
        issued = datetime.strptime(params["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        at = issued + timedelta(seconds=int(params["X-Goog-Expires"]))
    except (KeyError, ValueError):
        at = now
    at = min(at, now)
    return storage_error(
        ExpiredToken(f"Request signature expired at: {at.strftime('%Y-%m-%dT%H:%M:%S')}+00:00")
    )


async def drop(scope: Scope) -> None:
    transport = _transport(scope)
    if transport is None:
        raise ConnectionDropped("connection dropped by the emulator's fault rules")
    transport.abort()
    await asyncio.sleep(0)  # let the server see the connection go before the app returns


def shaped_send(scope: Scope, send: Send, rule: FaultRule) -> Send:
    """A `send` that cuts the body after N bytes or a fraction of its Content-Length (raising
    Cut), or trickles it at N bytes/s."""
    budget = rule.truncate_after_bytes
    rate = rule.bytes_per_second
    fraction = rule.truncate_after_fraction

    async def body(chunk: bytes, more: bool = True) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": more})

    async def shaped(message: Message) -> None:
        nonlocal budget
        if message["type"] != "http.response.body":
            if message["type"] == "http.response.start" and budget is None and fraction:
                budget = _share(message.get("headers", ()), fraction)
            await send(message)
            return
        data: bytes = message.get("body", b"")
        if budget is not None:
            if len(data) >= budget:
                await body(data[:budget])
                await drop(scope)
                raise Cut()
            budget -= len(data)
        if rate:
            step = max(1, rate // 10)
            for i in range(0, len(data), step):
                await body(data[i : i + step])
                await asyncio.sleep(step / rate)
            if not message.get("more_body", False):
                await body(b"", more=False)
            return
        await send(message)

    return shaped
