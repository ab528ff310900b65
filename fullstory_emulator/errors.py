"""Error classes, raised anywhere and rendered in one place (`http.render`).

API errors carry a gRPC code and an HTTP status, as FullStory's gRPC-gateway front end answers;
storage errors carry the XML code a cloud-storage download answers with. An error is complete
when it is created and is not changed afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# HTTP status -> gRPC code, as grpc-gateway maps them (2 UNKNOWN for the rest).
GRPC_CODES: Mapping[int, int] = MappingProxyType(
    {
        400: 3,
        401: 16,
        403: 7,
        404: 5,
        405: 12,
        409: 10,
        413: 3,
        415: 3,
        421: 7,
        429: 8,
        500: 13,
        501: 12,
        503: 14,
        504: 4,
    }
)
# HTTP status -> the XML error code Cloud Storage answers with.
STORAGE_CODES: Mapping[int, str] = MappingProxyType(
    {
        400: "InvalidArgument",
        403: "AccessDenied",
        404: "NoSuchKey",
        416: "InvalidRange",
        421: "MisdirectedRequest",  # the emulator's own: a Host it does not answer to
        429: "SlowDown",
        500: "InternalError",
        503: "ServiceUnavailable",
        507: "InsufficientStorage",
    }
)


ECHO_CHARS = 100  # of one piece of input an error message quotes; real ids and paths are shorter


def echo(value: object, *, quote: bool = True) -> str:
    """Input as an error message quotes it (its repr, or as is when not `quote`), cut to
    ECHO_CHARS characters and then saying its length: a 900 KB id must not come back as a 900 KB
    answer (nor fill a log or an agent's context), and the length is what tells why it failed."""
    if isinstance(value, str):
        if len(value) <= ECHO_CHARS:
            return repr(value) if quote else value
        shown = repr(value[:ECHO_CHARS]) if quote else value[:ECHO_CHARS]
        return f"{shown}… ({len(value):,} characters)"
    text = repr(value)  # a list, a number: what JSON gave where a string or a count belongs
    if len(text) <= ECHO_CHARS:
        return text
    return f"{text[:ECHO_CHARS]}… ({len(text):,} characters)"


class ApiError(Exception):
    status = 500
    grpc_code = 13

    def __init__(self, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers: Mapping[str, str] = MappingProxyType(dict(headers or {}))

    @classmethod
    def for_status(
        cls, status: int, message: str, *, headers: Mapping[str, str] | None = None
    ) -> ApiError:
        """An error answering `status`, with the gRPC code that goes with it."""
        error = cls(message, headers=headers)
        error.status, error.grpc_code = status, GRPC_CODES.get(status, 2)
        return error


class InvalidArgument(ApiError):
    status, grpc_code = 400, 3


class NotFound(ApiError):
    status, grpc_code = 404, 5


class Unauthenticated(ApiError):
    status, grpc_code = 401, 16


class PermissionDenied(ApiError):
    status, grpc_code = 403, 7


class MethodNotAllowed(ApiError):
    status, grpc_code = 405, 12


class Conflict(ApiError):
    """The request is valid but the resource's state does not allow it (e.g. completing an
    operation that has already finished)."""

    status, grpc_code = 409, 9


class PayloadTooLarge(ApiError):
    status, grpc_code = 413, 3


class UnsupportedMediaType(ApiError):
    """A control body that is not JSON: what a web page's form or text post would send."""

    status, grpc_code = 415, 3


class MisdirectedRequest(ApiError):
    """A Host the emulator does not answer to (DNS rebinding): `hosts.HostPolicy`."""

    status, grpc_code = 421, 7


class RateLimited(ApiError):
    status, grpc_code = 429, 8

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class Unimplemented(ApiError):
    status, grpc_code = 501, 12


class Internal(ApiError):
    status, grpc_code = 500, 13


class RequestTimeout(ApiError):
    """The client took longer than --read-timeout to send its body."""

    status, grpc_code = 408, 4


class ClientClosedRequest(ApiError):
    """The client went away before its body arrived: nobody reads this answer (nginx's 499),
    but it is what the journal and the metrics record instead of a crash."""

    status, grpc_code = 499, 1


class StoreBusy(ApiError):
    """The state's database cannot answer now: locked by another process for longer than the
    store waits (SQLite), or unreachable or busy (PostgreSQL). Retrying soon may work."""

    status, grpc_code = 503, 14

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class StorageError(Exception):
    """An error as Google Cloud Storage writes it for a signed-URL download."""

    status = 400
    code = "InvalidArgument"
    message = "Invalid argument."

    def __init__(self, details: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(details)
        self.details = details
        self.headers: Mapping[str, str] = MappingProxyType(dict(headers or {}))

    @classmethod
    def for_status(cls, status: int, message: str, details: str) -> StorageError:
        error = cls(details)
        error.status, error.message = status, message
        error.code = STORAGE_CODES.get(status, f"Http{status}")
        return error


class ExpiredToken(StorageError):
    status, code, message = 400, "ExpiredToken", "The provided token has expired."


class SignatureDoesNotMatch(StorageError):
    status, code, message = 403, "SignatureDoesNotMatch", "Access denied."


class AccessDenied(StorageError):
    status, code, message = 403, "AccessDenied", "Access denied."


class NoSuchKey(StorageError):
    status, code, message = 404, "NoSuchKey", "The specified key does not exist."


class NoSuchBucket(StorageError):
    status, code, message = 404, "NoSuchBucket", "The specified bucket does not exist."


class InvalidRange(StorageError):
    status, code, message = 416, "InvalidRange", "The requested range cannot be satisfied."


class InsufficientStorage(StorageError):
    """The export's file is larger than the whole file cache (`--file-cache-bytes`), so the
    emulator cannot keep it to serve it (RFC 4918's 507: the server cannot store what the
    request needs). Not the client's fault, and retrying gives the same answer."""

    status, code = 507, "InsufficientStorage"
    message = "The export file is larger than the emulator's file cache."
