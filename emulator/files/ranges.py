"""Which bytes of a file a download sends: `Range` and `If-Range` as Cloud Storage reads them.

One range per request (`bytes=a-b`, `bytes=a-`, `bytes=-n`). A header that is not a single
well-formed byte range is ignored and the whole file is sent, as RFC 9110 allows; a range that
starts past the end cannot be satisfied (416 `InvalidRange`); an `If-Range` that no longer
matches the file sends the whole file, so a client never splices two different files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from ..errors import InvalidRange, echo

_SPEC = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True)
class Slice:
    """Bytes `start` to `end` (exclusive) of a file of `size` bytes; `partial` when a Range
    asked for them (a 206, even if they are the whole file)."""

    start: int
    end: int
    size: int
    partial: bool = False

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


def http_date(moment: datetime) -> str:
    """`Last-Modified`'s format: `Sun, 01 Mar 2026 12:00:00 GMT`."""
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def select(
    size: int,
    range_header: str | None,
    *,
    if_range: str | None = None,
    etag: str = "",
    last_modified: datetime | None = None,
) -> Slice:
    """The part of the file to send; raises InvalidRange for a range past its end."""
    whole = Slice(0, size, size)
    if range_header is None:
        return whole
    if if_range is not None and not _if_range_holds(if_range.strip(), etag, last_modified):
        return whole
    match = _SPEC.fullmatch(range_header.strip().replace(" ", ""))
    if match is None or match.group(1) == match.group(2) == "":
        return whole  # not one byte range: ignored
    first, last = match.groups()
    if first == "":  # the last n bytes
        count = int(last)
        if count == 0:
            raise _unsatisfiable(range_header, size)
        return Slice(max(0, size - count), size, size, partial=True)
    start = int(first)
    end = size if last == "" else int(last) + 1
    if last != "" and end <= start:
        return whole  # a-b with b < a is not a valid range: ignored
    if start >= size:
        raise _unsatisfiable(range_header, size)
    return Slice(start, min(end, size), size, partial=True)


def _if_range_holds(value: str, etag: str, last_modified: datetime | None) -> bool:
    if value.startswith(('"', "W/")):
        return value == etag  # a weak validator never matches (strong comparison)
    return last_modified is not None and value == http_date(last_modified)


def _unsatisfiable(range_header: str, size: int) -> InvalidRange:
    return InvalidRange(
        f"Request range not satisfiable: {echo(range_header.strip(), quote=False)} "
        f"(object size {size})",
        headers={"Content-Range": f"bytes */{size}"},
    )
