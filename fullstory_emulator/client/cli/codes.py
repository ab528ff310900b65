"""`fullstory-export`'s exit codes, and the exception that carries one out of a job."""

from __future__ import annotations

from ...contract import FAILURE_STATES

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_EXPORT_FAILED = 3
EXIT_AUTH = 4
EXIT_RATE_LIMITED = 5
EXIT_TIMEOUT = 6
EXIT_DOWNLOAD = 7
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "everything exported, or already on disk",
    EXIT_ERROR: "another API or I/O error (bad argument, unknown segment, unreachable server)",
    EXIT_USAGE: "usage: bad flags, or no API key",
    EXIT_EXPORT_FAILED: f"an export ended in {'/'.join(FAILURE_STATES)} (errorDetails on stderr)",
    EXIT_AUTH: "the API key was refused (401; 403: exports need an Admin or Architect key)",
    EXIT_RATE_LIMITED: "still rate limited (429) after the client's retries",
    EXIT_TIMEOUT: "an export was still PENDING after --timeout",
    EXIT_DOWNLOAD: "the download failed (URL kept expiring, storage error, corrupt gzip)",
    EXIT_INTERRUPTED: "interrupted; rerun the same command to resume a chunked run",
}


class Failure(Exception):
    """An error with the exit code it stands for."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
