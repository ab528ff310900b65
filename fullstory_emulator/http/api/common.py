"""What every API handler shares: the endpoint wrapper (key, rate limit and the handler's work
in one store transaction), body and query parsing that accepts both camelCase and snake_case,
and opaque pagination tokens."""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ...auth import Principal
from ...control.service import ControlView
from ...errors import (
    ApiError,
    ClientClosedRequest,
    InvalidArgument,
    PayloadTooLarge,
    RequestTimeout,
    echo,
)
from ...instance import Emulator
from ...store import off_loop
from ..pipeline import BUCKET_ATTRIBUTE, caller_of, control_view_of
from ..render import JsonRenderer

GZIP_MAGIC = b"\x1f\x8b"  # how every gzip stream starts; no JSON text can


@dataclass(frozen=True)
class Call:
    """One API request as its handler sees it, after the key and the rate limit passed."""

    request: Request
    principal: Principal
    control: ControlView
    em: Emulator
    body: dict[str, Any]  # the JSON object body, for endpoints that take one; else {}

    @property
    def render(self) -> JsonRenderer:
        renderer: JsonRenderer = self.request.app.state.renderer
        return renderer

    def json(self, data: Any) -> Response:
        return self.render.json(data)


Handler = Callable[[Call], Response]


def endpoint(
    name: str, *, json_body: bool = False
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Authenticate the caller, spend a token of the (key, `name`) bucket and run `handler`.

    The handler is synchronous and runs inside one store transaction together with the rate
    limit, so a request commits its changes at once. A body is read first (a 413 or 400 about
    it still comes after a 429, as the rate limit is checked first).
    """

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            em: Emulator = request.app.state.emulator
            principal = caller_of(request).require()
            view = control_view_of(request)
            raw: bytes | ApiError = b""
            if json_body:
                try:
                    raw = await read_body(request, em.settings.max_body_bytes)
                except ApiError as exc:
                    raw = exc

            def work() -> Response:
                with em.store.transaction():
                    # An API error is an answer, not a failure: what was spent on the way (a
                    # token, a denial) stays spent, as it would be in memory.
                    try:
                        em.limiter.take(view, principal, name)
                        if isinstance(raw, ApiError):
                            raise raw
                        body = json_object(raw) if json_body else {}
                        return handler(Call(request, principal, view, em, body))
                    except ApiError as exc:
                        error = exc
                raise error

            if em.store.blocking:
                return await off_loop(work)
            return work()

        setattr(run, BUCKET_ATTRIBUTE, name)  # so that an injected 429 names it too
        return run

    return wrap


async def read_body(request: Request, limit: int, timeout: float | None = None) -> bytes:
    """The body, refused past `limit` bytes (by its declared length or as it arrives) or when
    it takes longer than `timeout` seconds (default --read-timeout) to arrive, and refused when
    it says it is compressed (`Content-Encoding`)."""
    coding = request.headers.get("content-encoding", "").strip().lower()
    if coding not in ("", "identity"):
        raise InvalidArgument(
            f"Content-Encoding {echo(coding)}: compressed bodies are not accepted; send plain "
            "JSON without Content-Encoding"
        )
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    if timeout is None:
        timeout = request.app.state.emulator.settings.read_timeout
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
    except TimeoutError:
        raise RequestTimeout(f"the request body did not arrive within {timeout:g} s") from None
    except ClientDisconnect:
        raise ClientClosedRequest(
            "the client closed the connection before its body arrived"
        ) from None
    return bytes(body)


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type says (clients omit it)."""
    if not body.strip():
        raise InvalidArgument("request body is empty; expected a JSON object")
    if body.startswith(GZIP_MAGIC):
        raise InvalidArgument(
            "request body is gzip-compressed: compressed bodies are not accepted; send plain JSON"
        )
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"request body must be a JSON object, not {_kind(data)}")
    return data


def pick(data: dict[str, Any], camel: str, snake: str, where: str = "") -> Any:
    """A member given under either casing; both at once is ambiguous and refused."""
    if camel in data and snake in data and camel != snake:
        raise InvalidArgument(f"{where}{camel} and {where}{snake} are the same field; send one")
    return data.get(camel, data.get(snake))


def query(request: Request, camel: str, snake: str | None = None) -> str | None:
    params = request.query_params
    if camel in params:
        return params[camel]
    return params.get(snake) if snake else None


def limit_param(request: Request, *, default: int, maximum: int) -> int:
    """`limit`: unset or 0 means the default; values above the maximum are lowered to it."""
    raw = query(request, "limit", "page_size")
    if raw is None or raw == "":
        return default
    try:
        if not raw.isascii():  # int() reads "１２" as 12; the API takes ASCII digits only
            raise ValueError(raw)
        value = int(raw)
    except ValueError:
        raise InvalidArgument(
            f"limit must be an integer from 1 to {maximum}, got {echo(raw)}"
        ) from None
    if value < 0:
        raise InvalidArgument(f"limit must be an integer from 1 to {maximum}, got {value}")
    return min(value, maximum) if value else default


def encode_token(kind: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def decode_token(raw: str | None, kind: str, name: str = "paginationToken") -> int | None:
    if not raw:
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        prefix, _, number = text.partition(":")
        if prefix == kind and number.isdigit():
            return int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidArgument(
        f"{name} is not valid here; pass the next{name[0].upper()}{name[1:]} of the previous page"
    )


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
