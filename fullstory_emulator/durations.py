"""Durations as people type them, read the same way by the server and by the client tools.

A bare number is seconds, everywhere a flag or field says SECONDS (`--export-duration 2`,
`--url-ttl 300`); a unit makes it explicit: `500ms`, `90s`, `30m`, `2h`, `7d`, `1w`, or a sum
such as `1h30m`. Where a bare number once meant something else (`fullstory-export --chunk 30`
was thirty minutes) it is refused rather than silently read as seconds, so an old command line
fails loudly instead of making sixty times as many exports.

Every duration is at most ten years (`MAX_SECONDS`): the clock plus any duration must stay a
representable instant, whichever side adds them.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

MAX_SECONDS = 10 * 366 * 86400
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_NUMBER = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", re.ASCII)
EXAMPLES = "500ms, 90s, 30m, 1h30m or 7d"


def parse_seconds(text: str, *, bare: bool = True) -> float:
    """`text` as seconds, from 0 to ten years. `bare=False` refuses a number without a unit
    (see the module docstring). Raises ValueError with a message that shows what is allowed."""
    value = text.strip().lower()
    if _NUMBER.fullmatch(value):
        if not bare:
            raise ValueError(
                f"{text!r} needs a unit, such as {value}s for seconds or {value}m for minutes"
            )
        seconds = float(value)
    else:
        compact = re.sub(r"\s+", "", value)
        parts = _PART.findall(compact)
        if not parts or "".join(n + u for n, u in parts) != compact:
            examples = f"300, {EXAMPLES}" if bare else EXAMPLES
            raise ValueError(f"{text!r} is not a duration such as {examples}")
        seconds = sum(float(n) * UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds > MAX_SECONDS:
        raise ValueError(f"{text!r} is longer than ten years ({MAX_SECONDS} s)")
    return seconds


def parse_timedelta(text: str, *, bare: bool = False) -> timedelta:
    """`parse_seconds` as a timedelta, for the client's bundle lengths and time offsets."""
    return timedelta(seconds=parse_seconds(text, bare=bare))
