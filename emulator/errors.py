"""Error classes, raised anywhere and rendered in one place (see render.py).

API errors carry a gRPC code and an HTTP status, as FullStory's gRPC-gateway front end answers;
storage errors carry the XML code a cloud-storage download answers with.
"""

from __future__ import annotations


class ApiError(Exception):
    status = 500
    grpc_code = 13

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


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


class PayloadTooLarge(ApiError):
    status, grpc_code = 413, 3


class RateLimited(ApiError):
    status, grpc_code = 429, 8

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class Unimplemented(ApiError):
    status, grpc_code = 501, 12


class Internal(ApiError):
    status, grpc_code = 500, 13


class StorageError(Exception):
    """An error as Google Cloud Storage writes it for a signed-URL download."""

    status = 400
    code = "InvalidArgument"
    message = "Invalid argument."

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self.details = details


class ExpiredToken(StorageError):
    status, code, message = 400, "ExpiredToken", "The provided token has expired."


class SignatureDoesNotMatch(StorageError):
    status, code, message = 403, "SignatureDoesNotMatch", "Access denied."


class AccessDenied(StorageError):
    status, code, message = 403, "AccessDenied", "Access denied."


class NoSuchKey(StorageError):
    status, code, message = 404, "NoSuchKey", "The specified key does not exist."
