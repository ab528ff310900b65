"""Bytes on the wire: JSON as FullStory's Go server writes it, and storage errors as XML."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

import orjson
from starlette.responses import Response

from ..errors import ApiError, StorageError, StoreBusy

# What Go's encoder escapes inside strings, as UTF-8 bytes and their escapes.
_GO_ESCAPES = (
    (b"&", b"\\u0026"),
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def dumps(data: Any, *, html_escape: bool = True) -> bytes:
    """Compact JSON; with `html_escape`, `&<>` become `\\u0026` etc., as Go's encoder writes them.

    The characters can only occur inside JSON strings, so escaping the encoded bytes is exact.
    """
    try:
        body = orjson.dumps(data)
    except orjson.JSONEncodeError:  # a lone surrogate, an integer past 64 bits: the slow way
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        body = text.encode("utf-8", "replace")  # a lone surrogate (from anywhere) becomes "?"
    if html_escape:
        for raw, escaped in _GO_ESCAPES:
            if raw in body:
                body = body.replace(raw, escaped)
    return body


class JsonRenderer:
    """Renders API answers with the instance's escaping setting."""

    def __init__(self, *, html_escape: bool) -> None:
        self.html_escape = html_escape

    def json(
        self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        return Response(
            dumps(data, html_escape=self.html_escape),
            status_code=status,
            headers=headers,
            media_type="application/json",
        )

    def error(self, exc: ApiError) -> Response:
        body = {"code": exc.grpc_code, "message": exc.message, "details": []}
        return self.json(body, status=exc.status, headers=exc.headers)


def storage_error(exc: StorageError) -> Response:
    """One line of XML, as Google Cloud Storage answers a failed signed-URL request."""
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{exc.code}</Code><Message>{escape(exc.message)}</Message>"
        + (f"<Details>{escape(exc.details)}</Details>" if exc.details else "")
        + "</Error>"
    )
    return Response(
        body.encode("utf-8"),
        status_code=exc.status,
        headers={**exc.headers, "Content-Type": "application/xml; charset=UTF-8"},
    )


def storage_busy(exc: StoreBusy) -> Response:
    """The store unreachable during a download: Cloud Storage's 503 XML, with the API's
    Retry-After."""
    response = storage_error(
        StorageError.for_status(503, "Service unavailable; retry.", exc.message)
    )
    response.headers.update(exc.headers)
    return response
