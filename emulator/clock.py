"""The one clock. Everything time-dependent asks it; nothing else reads the system time.

It runs at real speed from a chosen start instant, or stands still when frozen, and test authors
can move it. Each tenant may also have its own view of it (an offset, or a frozen instant), so
that parallel tests sharing one emulator can each move time without moving anyone else's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass
class _View:
    offset: timedelta = timedelta(0)
    frozen_at: datetime | None = None


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
        self._initial = (anchor.astimezone(UTC), frozen)
        self._anchor, self._frozen = self._initial
        self._anchor_mono = monotonic()
        self._views: dict[str, _View] = {}

    def now(self, tenant: str | None = None) -> datetime:
        with self._lock:
            return self._now_locked(tenant)

    def _base(self) -> datetime:
        if self._frozen:
            return self._anchor
        return self._anchor + timedelta(seconds=self._monotonic() - self._anchor_mono)

    def _now_locked(self, tenant: str | None) -> datetime:
        view = self._views.get(tenant) if tenant is not None else None
        if view is None:
            return self._base()
        if view.frozen_at is not None:
            return view.frozen_at
        return self._base() + view.offset

    def frozen(self, tenant: str | None = None) -> bool:
        with self._lock:
            view = self._views.get(tenant) if tenant is not None else None
            return self._frozen if view is None or view.frozen_at is None else True

    def set(self, instant: datetime, tenant: str | None = None) -> datetime:
        instant = instant.astimezone(UTC)
        with self._lock:
            if tenant is None:
                self._anchor, self._anchor_mono = instant, self._monotonic()
            else:
                view = self._views.setdefault(tenant, _View())
                if view.frozen_at is not None:
                    view.frozen_at = instant
                else:
                    view.offset = instant - self._base()
            return self._now_locked(tenant)

    def advance(self, seconds: float, tenant: str | None = None) -> datetime:
        with self._lock:
            target = self._now_locked(tenant) + timedelta(seconds=seconds)
        return self.set(target, tenant)

    def freeze(self, tenant: str | None = None) -> datetime:
        with self._lock:
            if tenant is None:
                self._anchor, self._frozen = self._base(), True
            else:
                view = self._views.setdefault(tenant, _View())
                view.frozen_at = self._now_locked(tenant)
            return self._now_locked(tenant)

    def unfreeze(self, tenant: str | None = None) -> datetime:
        with self._lock:
            if tenant is None:
                self._anchor_mono, self._frozen = self._monotonic(), False
            elif (view := self._views.get(tenant)) is not None and view.frozen_at is not None:
                view.offset, view.frozen_at = view.frozen_at - self._base(), None
            return self._now_locked(tenant)

    def reset(self, tenant: str | None = None) -> None:
        """Forget a tenant's view, or (no tenant) every view and go back to the start."""
        with self._lock:
            if tenant is not None:
                self._views.pop(tenant, None)
                return
            self._views.clear()
            (self._anchor, self._frozen), self._anchor_mono = self._initial, self._monotonic()
