"""What every API handler shares: the authenticated, rate-limited endpoint wrapper, body and
query parsing that accepts both camelCase and snake_case, and opaque pagination tokens."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..auth import Principal
from ..context import Emulator
from ..errors import InvalidArgument, PayloadTooLarge

Handler = Callable[[Request, Principal], Awaitable[Response]]


def emulator(request: Request) -> Emulator:
    return request.app.state.emulator


def endpoint(name: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Authenticate the caller and spend a token of the (key, `name`) bucket before `handler`."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def run(request: Request) -> Response:
            em = emulator(request)
            principal = em.keys.authenticate(request.headers.get("authorization"))
            request.state.tenant = principal.tenant
            em.limiter.take(principal.tenant, principal.key_id, name)
            return await handler(request, principal)

        return run

    return wrap


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type says (clients omit it)."""
    limit = emulator(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
    if not body.strip():
        raise InvalidArgument("request body is empty; expected a JSON object")
    try:
        data = json.loads(bytes(body))
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
        value = int(raw)
    except ValueError:
        raise InvalidArgument(
            f"limit must be an integer from 1 to {maximum}, got {raw!r}"
        ) from None
    if value < 0:
        raise InvalidArgument(f"limit must be an integer from 1 to {maximum}, got {value}")
    return min(value, maximum) if value else default


def encode_token(kind: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def decode_token(raw: str | None, kind: str) -> int | None:
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
        "paginationToken is not valid here; pass the nextPaginationToken of the previous page"
    )


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
