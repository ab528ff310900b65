"""What can go wrong talking to FullStory, as one tree of exceptions.

Every error the client raises is a `FullStoryError`, so one `except` catches them all; the
subclasses name what a caller can act on (renew a URL, wait out a rate limit, fix the key)::

    FullStoryError            an error answer, or a request that could not be made
    ├── Unauthorized          401: no key, or one the server does not know
    ├── NotFound              404: segment, operation, export or storage object
    ├── RateLimited           429 after the retries; .retry_after
    ├── ExportFailed          the operation ended in ERROR/FAILED; .operation, .error_details
    └── DownloadError         cloud storage refused the signed URL, or the body kept breaking
        └── DownloadExpired   the signed URL expired (ExpiredToken): ask for a new one

`status` is the HTTP status (None when no answer came), `code` the gRPC code of a JSON error or
storage's XML `<Code>`. The names are also importable from `fullstory_emulator.client.core`, where
they were first defined.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


class FullStoryError(Exception):
    """An error answer of the API or of cloud storage, or a request that could not be made.

    `status` is the HTTP status (None when no answer came), `code` the gRPC code of a JSON error
    (an int) or the storage XML `<Code>` (a str), `message` the server's own words.
    """

    def __init__(
        self,
        status: int | None,
        message: str,
        code: int | str | None = None,
        *,
        details: str = "",
    ) -> None:
        self.status = status
        self.message = message
        self.code = code
        self.details = details
        prefix = f"HTTP {status}" if status is not None else "request failed"
        if code is not None:
            prefix += f" ({code})"
        text = f"{prefix}: {message}"
        super().__init__(f"{text} [{details}]" if details else text)


class Unauthorized(FullStoryError):
    """401: no key, or one the server does not know."""


class NotFound(FullStoryError):
    """404: unknown segment, operation, export or storage object."""


class RateLimited(FullStoryError):
    """429 that outlived the retries; `retry_after` is the server's last `Retry-After`."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class DownloadError(FullStoryError):
    """Cloud storage refused the signed URL (its XML `<Code>` in `code`), or the body kept
    breaking off: the export is there, fetching its file failed."""


class DownloadExpired(DownloadError):
    """The signed URL expired (storage `ExpiredToken`); ask for a new location."""


class ExportFailed(FullStoryError):
    """The export operation ended in a failure state (ERROR or FAILED, the contract's
    FAILURE_STATES); `error_details` is the server's reason."""

    def __init__(self, operation: JSON) -> None:
        self.operation = operation
        self.error_details = str(operation.get("errorDetails") or "")
        state = operation.get("state")
        reason = self.error_details or "no errorDetails given"
        super().__init__(
            None, f"export operation {operation.get('id')} ended in {state}: {reason}", state
        )
