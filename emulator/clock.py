"""The one clock. Everything time-dependent asks it; nothing else reads the system time.

It runs at real speed from a chosen start instant, or stands still when frozen, and can be moved
by test authors. Readings are UTC datetimes truncated to microseconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class Clock:
    def __init__(
        self,
        start: datetime | None = None,
        *,
        frozen: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        anchor = start if start is not None else datetime.fromtimestamp(wall(), UTC)
        self._anchor = anchor.astimezone(UTC)
        self._anchor_mono = monotonic()
        self._frozen = frozen

    def now(self) -> datetime:
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> datetime:
        if self._frozen:
            return self._anchor
        return self._anchor + timedelta(seconds=self._monotonic() - self._anchor_mono)

    @property
    def frozen(self) -> bool:
        return self._frozen

    def set(self, instant: datetime) -> None:
        with self._lock:
            self._anchor = instant.astimezone(UTC)
            self._anchor_mono = self._monotonic()

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._anchor = self._now_locked() + timedelta(seconds=seconds)
            self._anchor_mono = self._monotonic()
            return self._anchor

    def freeze(self) -> None:
        with self._lock:
            self._anchor = self._now_locked()
            self._frozen = True

    def unfreeze(self) -> None:
        with self._lock:
            self._anchor_mono = self._monotonic()
            self._frozen = False
