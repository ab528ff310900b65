"""What of a request may be recorded (journal) or logged (access logs): an allow-list.

Headers and query parameters the emulator knows to be harmless are kept (cut to a bounded
length); any other is kept by name only, its value replaced, so that a credential in a header
or parameter nobody thought of (`X-Api-Key`, `Proxy-Authorization`, a signed URL's
`X-Goog-Signature`) is never written down. Whatever is kept is also bounded in size, so a
client sending huge headers cannot grow the journal without bound.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import parse_qsl

REDACTED = "[redacted]"
MAX_VALUE_CHARS = 256  # a kept header or parameter value, cut beyond this
MAX_ITEMS = 32  # headers or parameters kept per request; the rest are counted, not kept
MAX_PATH_CHARS = 1024
KEPT_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "host",
        "if-match",
        "if-none-match",
        "if-range",
        "range",
        "traceparent",
        "tracestate",
        "transfer-encoding",
        "user-agent",
        "x-emulator-fault",
        "x-request-id",
        "x-correlation-id",
    }
)
OMITTED_HEADERS = frozenset({"authorization", "x-emulator-token"})
KEPT_PARAMS = frozenset(
    {
        "limit",
        "page_size",
        "paginationToken",
        "pagination_token",
        "type",
        "state",
        "creator",
        "X-Goog-Algorithm",
        "X-Goog-Credential",
        "X-Goog-Date",
        "X-Goog-Expires",
        "X-Goog-SignedHeaders",
    }
)


def _cut(text: str, limit: int = MAX_VALUE_CHARS) -> str:
    if len(text) <= limit and text.isascii():  # the common case, on every request
        return text
    text = text.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates
    return text if len(text) <= limit else text[:limit] + "…"


def headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Request headers as the journal keeps them: known ones cut short, the API key and the
    control token not at all, any other by name only."""
    out: dict[str, str] = {}
    dropped = 0
    for name, value in items:
        name = _cut(name.lower(), 64)
        if name in out:
            continue
        if len(out) >= MAX_ITEMS:
            dropped += 1
            continue
        if name in KEPT_HEADERS:
            out[name] = _cut(value)
        elif name in OMITTED_HEADERS:
            continue
        else:
            out[name] = REDACTED
    if dropped:
        out["x-emulator-dropped-headers"] = str(dropped)
    return out


def query(raw: bytes) -> str:
    """The query string, decoded, with every parameter not known to be harmless redacted."""
    text = raw.decode("latin-1")
    if not text:
        return ""
    parts = []
    for n, (name, value) in enumerate(parse_qsl(text, keep_blank_values=True)):
        if n >= MAX_ITEMS:
            parts.append("…")
            break
        kept = value if name in KEPT_PARAMS else REDACTED
        parts.append(f"{_cut(name, 64)}={_cut(kept)}")
    return "&".join(parts)


def path(raw: str) -> str:
    return _cut(raw, MAX_PATH_CHARS)


def target(full_path: str) -> str:
    """`/path?query` as an access log line may show it."""
    base, sep, rest = full_path.partition("?")
    return path(base) + (sep + query(rest.encode("latin-1", "replace")) if sep else "")


class AccessLogFilter(logging.Filter):
    """Redacts the request target of uvicorn's text access lines (`--access-log text`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], target(args[2]), args[3], args[4])
        return True


def install_access_log_filter() -> None:
    """Once per process: uvicorn's access logger redacts what it prints."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogFilter) for f in logger.filters):
        logger.addFilter(AccessLogFilter())
