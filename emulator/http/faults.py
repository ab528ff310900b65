"""Carrying out a fault rule on a request: answer with an error, lose the connection, or cut
short or trickle out the response.

A dropped connection is real under uvicorn: the TCP transport is aborted, so the client sees a
reset, not an HTTP answer. In-process (no socket) the request raises ConnectionDropped instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from starlette.types import Message, Scope, Send

from ..errors import ApiError, StorageError
from ..store.records import FaultRule
from .render import JsonRenderer, storage_error

RAW_SEND = "fullstory_emulator.raw_send"  # the server's own send, kept for faults that drop
STORAGE_MESSAGE = "We encountered an internal error. Please try again."


class ConnectionDropped(Exception):
    """Raised in place of a dropped connection where there is no socket to drop."""


class Cut(Exception):
    """The response was truncated and its connection aborted."""


def _transport(scope: Scope) -> Any:
    """uvicorn's transport behind the server's own `send`, if this runs under uvicorn."""
    owner = getattr(scope.get(RAW_SEND), "__self__", None)
    return getattr(owner, "transport", None)


def answer(rule: FaultRule, storage: bool, renderer: JsonRenderer) -> Response:
    """The error response a fault rule with a status answers with."""
    status = rule.status or 500
    if storage:
        details = rule.message or "injected by the emulator's fault rules"
        return storage_error(
            StorageError.for_status(status, rule.message or STORAGE_MESSAGE, details)
        )
    headers = None
    if status == 429 or rule.retry_after is not None:
        headers = {"Retry-After": str(rule.retry_after or 1)}
    message = rule.message or f"injected fault: HTTP {status}"
    return renderer.error(ApiError.for_status(status, message, headers=headers))


async def drop(scope: Scope) -> None:
    transport = _transport(scope)
    if transport is None:
        raise ConnectionDropped("connection dropped by the emulator's fault rules")
    transport.abort()
    await asyncio.sleep(0)  # let the server see the connection go before the app returns


def shaped_send(scope: Scope, send: Send, rule: FaultRule) -> Send:
    """A `send` that cuts the body after N bytes (raising Cut), or trickles it at N bytes/s."""
    budget = rule.truncate_after_bytes
    rate = rule.bytes_per_second

    async def body(chunk: bytes, more: bool = True) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": more})

    async def shaped(message: Message) -> None:
        nonlocal budget
        if message["type"] != "http.response.body":
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
