"""The journal: every API and download request, as test authors want to assert on it.

It is the outermost middleware, so it sees faults too, and it stamps every response with the
clock as the request's tenant sees it (`X-Emulator-Now`).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..timestamps import format_api

if TYPE_CHECKING:
    from ..context import Emulator

CONTROL_PREFIX = "/__emulator"
UNJOURNALED = frozenset({"/metrics", "/openapi.json"})
SECRET_HEADERS = frozenset({"authorization", "x-emulator-token", "cookie"})
RAW_SEND = "fullstory_emulator.raw_send"  # the server's own send, for faults that drop
WORKER = str(os.getpid()).encode()  # which process answered: X-Emulator-Worker


class JournalMiddleware:
    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.em = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        em = self.em
        headers = Headers(scope=scope)
        path = scope["path"]
        state = scope.setdefault("state", {})
        state["tenant"] = tenant = em.tenant_of(headers, path)
        at = em.clock.now(tenant)
        began = time.perf_counter()
        outcome: dict[str, Any] = {"status": None, "sent": 0}

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.body":
                outcome["sent"] += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                now = format_api(em.clock.now(state.get("tenant")))
                extra = [(b"x-emulator-now", now.encode()), (b"x-emulator-worker", WORKER)]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, stamped)
        finally:
            entry = {
                "method": scope["method"],
                "path": path,
                "query": unquote(scope.get("query_string", b"").decode("latin-1")),
                "headers": {k: v for k, v in headers.items() if k not in SECRET_HEADERS},
                "status": outcome["status"],
                "durationMs": round((time.perf_counter() - began) * 1000, 3),
                "at": format_api(at),
                "tenant": state.get("tenant"),
                "fault": state.get("fault"),
            }
            storage = path.startswith(f"/{em.settings.bucket}/")
            em.metrics.observe(entry, em.route_of(scope), outcome["sent"], storage)
            if not path.startswith(CONTROL_PREFIX) and path not in UNJOURNALED:
                em.store.append_journal(entry)
