"""Timestamp parsing and formatting in the two shapes the wire uses.

Internally the emulator keeps instants as integer epoch milliseconds (cheap to compare and to
generate in bulk) or as aware UTC datetimes at the API edge.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

from .errors import echo

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,  # \d is 0-9 only: full-width and other Unicode digits are not RFC 3339
)


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (any fraction up to nanoseconds, `Z` or an offset) to UTC.

    Raises ValueError with a human message; callers wrap it in an API error naming the field.
    """
    match = _RFC3339.fullmatch(text)
    if not match:
        raise ValueError(f"{echo(text)} is not an RFC 3339 timestamp such as 2024-01-01T00:00:00Z")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    if offset in ("Z", "z"):
        tz = UTC
    else:
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"{text!r} has an invalid UTC offset")
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    try:
        value = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tzinfo=tz
        )
        return value.astimezone(UTC)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid date and time: {exc}") from None
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(f"{text!r} lies outside the years 1 to 9999 in UTC") from None


def format_rfc3339(value: datetime, *, digits: int = 6, trim: bool = False) -> str:
    """`value` in UTC with `digits` (0, 3 or 6) of fraction, truncated, and `Z`; a naive
    datetime is read as UTC. `trim` leaves the fraction out of a whole second (the client's
    bundle bounds: 2026-03-01T00:30:00Z). The one formatter of the server and the client tools,
    so that what one writes the other reads back unchanged."""
    if digits not in (0, 3, 6):
        raise ValueError(f"digits must be 0, 3 or 6, not {digits}")
    v = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    v = v if v.tzinfo is UTC else v.astimezone(UTC)
    if not digits or (trim and not v.microsecond):
        spec = "seconds"
    else:
        spec = "milliseconds" if digits == 3 else "microseconds"  # both truncate
    return v.isoformat(timespec=spec)[:-6] + "Z"  # less "+00:00"; in C, once per request


_last_api: tuple[datetime | None, str] = (None, "")  # the last value format_api formatted


def format_api(value: datetime) -> str:
    """The API's shape: UTC with microseconds, e.g. 2020-09-22T22:40:52.174736Z.

    The last value's text is kept (datetimes are immutable; one tuple, swapped whole): a
    request's one clock reading is formatted for X-Emulator-Now and again for its journal
    entry."""
    global _last_api
    last, text = _last_api
    if value is last:
        return text
    text = format_rfc3339(value)
    _last_api = (value, text)
    return text


def to_ms(value: datetime) -> int:
    """Epoch milliseconds, floored."""
    delta = value - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


class MillisFormatter:
    """Formats epoch milliseconds as export timestamps (2020-08-27T06:20:26.900Z), fast.

    Exports format millions of timestamps; caching the date part per day makes that a few
    integer operations and one string join instead of a datetime round trip.
    """

    __slots__ = ("_day", "_prefix")

    def __init__(self) -> None:
        self._day: int | None = None  # not -1: that is 1969-12-31
        self._prefix = ""

    def __call__(self, ms: int) -> str:
        day, rem = divmod(ms, 86_400_000)
        if day != self._day:
            self._day = day
            # isoformat, not strftime: a fifth of the cost, paid once per session (measured)
            self._prefix = date.fromordinal(_EPOCH_ORDINAL + day).isoformat() + "T"
        seconds, millis = divmod(rem, 1000)
        minutes, second = divmod(seconds, 60)
        hour, minute = divmod(minutes, 60)
        return f"{self._prefix}{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def format_ms(ms: int) -> str:
    """One-off export timestamp formatting; use MillisFormatter in loops."""
    return MillisFormatter()(ms)
