"""Which bytes of a file a download sends: `Range` and `If-Range` as Cloud Storage reads them.

One range per request (`bytes=a-b`, `bytes=a-`, `bytes=-n`). A header that is not a single
well-formed byte range is ignored and the whole file is sent, as RFC 9110 allows; a range that
starts past the end cannot be satisfied (416 `InvalidRange`); an `If-Range` that no longer
matches the file sends the whole file, so a client never splices two different files.

Positions are compared as digit strings before any is made an int: a number of any length is
valid syntax (one past the file's end is simply beyond it), and Python refuses to convert a
string of more than 4,300 digits, which must not turn a client's Range into a 500.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from ..errors import InvalidRange, echo

_SPEC = re.compile(r"bytes=(\d*)-(\d*)", re.ASCII)  # RFC 9110's DIGIT: 0-9 only
# Longer than any file size (a 64-bit length has at most 20 digits): always past the end.
_MAX_DIGITS = 20


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
    first, last = (_canonical(digits) for digits in match.groups())
    if first == "":  # the last n bytes
        if last == "0":
            raise _unsatisfiable(range_header, size)
        return Slice(max(0, size - _capped(last, size)), size, size, partial=True)
    if last != "" and _less(last, first):
        return whole  # a-b with b < a is not a valid range: ignored
    start = _capped(first, size)
    if start >= size:
        raise _unsatisfiable(range_header, size)
    end = size if last == "" else min(_capped(last, size) + 1, size)
    return Slice(start, end, size, partial=True)


def _canonical(digits: str) -> str:
    """A number's digits without leading zeros ("0" for zero; "" stays "": not given)."""
    return digits.lstrip("0") or ("0" if digits else "")


def _less(a: str, b: str) -> bool:
    """a < b for canonical digit strings of any length, without converting them."""
    return (len(a), a) < (len(b), b)


def _capped(digits: str, size: int) -> int:
    """The canonical number, or `size` if it is larger: all a range needs of a position."""
    if len(digits) > _MAX_DIGITS:
        return size
    return min(int(digits), size)


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
