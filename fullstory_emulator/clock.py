"""The one clock. Everything time-dependent asks it; nothing else reads the system time.

It runs at real speed from a chosen start instant, or stands still when frozen, and test authors
can move it. Each tenant may also have its own view of it (an offset, or a frozen instant), so
that parallel tests sharing one emulator can each move time without moving anyone else's.

The clock's whole state is one small record (`ClockState`) kept by a backend: in memory, or in
the store when the emulator persists its state, so that a restart or another worker process
reads the same time. Time runs on the wall clock (`time.time`), which all processes share.

Every reading lies in `EARLIEST`..`LATEST` (documented in the README): instants outside are
refused when set, and a clock (or a tenant's view, which is an offset from it) that runs past
the end stands still there. Whatever state is stored, reading it never fails, so no stored
value can stop the emulator from starting or answering.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

# The instants the emulator accepts and reaches: far enough from datetime's year 1..9999 that
# adding any bounded duration (an export's retention, a URL's lifetime) stays representable.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
_LOW, _HIGH = EARLIEST.timestamp(), LATEST.timestamp()
RANGE_TEXT = "2000-01-01T00:00:00Z to 3000-01-01T00:00:00Z"


class ClockRangeError(ValueError):
    """An instant outside EARLIEST..LATEST was asked for."""


def clamp(seconds: float) -> float:
    """`seconds` (epoch) brought into the clock's range; NaN reads as the start of it."""
    if math.isnan(seconds):
        return _LOW
    return min(max(seconds, _LOW), _HIGH)


def check_instant(instant: datetime, what: str = "the clock") -> datetime:
    """`instant`, or ClockRangeError if it lies outside the clock's range."""
    if not EARLIEST <= instant <= LATEST:
        raise ClockRangeError(f"{what} must lie from {RANGE_TEXT}, not {instant.isoformat()}")
    return instant


@dataclass(frozen=True)
class View:
    offset: float = 0.0  # seconds added to the instance clock
    frozen_at: float | None = None  # epoch seconds, when this view stands still


@dataclass(frozen=True)
class ClockState:
    start: float  # epoch seconds the clock started at (where a reset goes back to)
    start_frozen: bool
    offset: float  # the instance clock reads counter() + offset ...
    frozen_at: float | None  # ... unless frozen at this epoch second
    views: dict[str, View] = field(default_factory=dict)

    @classmethod
    def starting(cls, start: float, frozen: bool, counter_now: float) -> ClockState:
        return cls(start, frozen, start - counter_now, start if frozen else None)

    def to_json(self) -> dict[str, Any]:
        views = {t: [v.offset, v.frozen_at] for t, v in self.views.items()}
        return {
            "start": self.start,
            "startFrozen": self.start_frozen,
            "offset": self.offset,
            "frozenAt": self.frozen_at,
            "views": views,
        }

    @classmethod
    def from_json(cls, data: Any) -> ClockState:
        """The state from its JSON form; ValueError if any part of it is not what it should be."""
        try:
            views = {
                str(t): View(_number(o), None if f is None else _number(f))
                for t, (o, f) in data.get("views", {}).items()
            }
            frozen = data["frozenAt"]
            return cls(
                _number(data["start"]),
                bool(data["startFrozen"]),
                _number(data["offset"]),
                None if frozen is None else _number(frozen),
                views,
            )
        except (TypeError, KeyError, AttributeError, ValueError) as exc:
            raise ValueError(f"unreadable clock state: {exc!r}") from None


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return float(value)


class ClockBackend(Protocol):
    def load(self) -> ClockState: ...
    def update(self, change: Callable[[ClockState], ClockState]) -> ClockState: ...


class MemoryClockBackend:
    def __init__(self, initial: ClockState) -> None:
        self._state = initial
        self._lock = threading.Lock()

    def load(self) -> ClockState:
        return self._state

    def update(self, change: Callable[[ClockState], ClockState]) -> ClockState:
        with self._lock:
            self._state = change(self._state)
            return self._state


@dataclass(frozen=True)
class Reading:
    """One reading of the clock: its state as loaded and the counter at that moment, from
    which every tenant's time follows without asking the store again."""

    state: ClockState
    counter: float


class _Held:
    """The reading a request holds; replaced (not copied) when the request moves the clock, so
    that the worker threads it hands work to, which run in copies of its context, see it."""

    __slots__ = ("clock", "reading")

    def __init__(self, clock: Clock, reading: Reading) -> None:
        self.clock = clock
        self.reading = reading


# The reading of the request being handled (Clock.hold), per task and the threads it runs.
_HELD: ContextVar[_Held | None] = ContextVar("fullstory_emulator.clock.held", default=None)


class Clock:
    def __init__(
        self,
        start: datetime | None = None,
        *,
        frozen: bool = False,
        counter: Callable[[], float] = time.time,
        backend: ClockBackend | None = None,
    ) -> None:
        """`backend`, when given, already holds the state (and `start`/`frozen` are unused)."""
        self._counter = counter
        if backend is None:
            now = counter()
            begin = check_instant(start, "the start time").timestamp() if start else clamp(now)
            backend = MemoryClockBackend(ClockState.starting(begin, frozen, now))
        self._backend = backend
        self._last: ClockState | None = None  # the state last read or written by this process

    @property
    def backend(self) -> ClockBackend:
        """Where the state lives: memory, or the store that processes share."""
        return self._backend

    # -- reading ----------------------------------------------------------------------------
    def _base(self, state: ClockState, counter: float | None = None) -> float:
        if state.frozen_at is not None:
            return state.frozen_at
        return (self._counter() if counter is None else counter) + state.offset

    def _read(self, state: ClockState, tenant: str | None, counter: float | None = None) -> float:
        view = state.views.get(tenant) if tenant is not None else None
        if view is None:
            return self._base(state, counter)
        if view.frozen_at is not None:
            return view.frozen_at
        return self._base(state, counter) + view.offset

    @staticmethod
    def _instant(seconds: float) -> datetime:
        return datetime.fromtimestamp(round(clamp(seconds), 6), UTC)

    def read(self) -> Reading:
        """One reading (one load of the state): a request's, held while it is handled."""
        self._last = state = self._backend.load()
        return Reading(state, self._counter())

    def at(self, reading: Reading, tenant: str | None = None) -> datetime:
        """The tenant's time as of `reading`."""
        return self._instant(self._read(reading.state, tenant, reading.counter))

    def hold(self, reading: Reading) -> Token[_Held | None]:
        """Answer `now` and `frozen` from `reading` in this context (a request being handled,
        and the threads it hands work to) until `release`: one reading per request, however
        many parts of it ask the time. A move of the clock in that context moves the reading."""
        return _HELD.set(_Held(self, reading))

    @staticmethod
    def release(token: Token[_Held | None]) -> None:
        _HELD.reset(token)

    def _held(self) -> _Held | None:
        held = _HELD.get()
        return held if held is not None and held.clock is self else None

    def now(self, tenant: str | None = None) -> datetime:
        held = self._held()
        return self.at(held.reading if held is not None else self.read(), tenant)

    def last_known(self, tenant: str | None = None) -> datetime:
        """The time as of the state this process last read or wrote, without asking the store:
        for answers that must not wait behind a store locked elsewhere (the health check, the
        X-Emulator-Now of a control call). Exact in one process; with several, a move made by
        another shows once this one next reads the clock."""
        state = self._last
        if state is None:
            return self.now(tenant)
        return self._instant(self._read(state, tenant))

    def frozen(self, tenant: str | None = None) -> bool:
        held = self._held()
        state = held.reading.state if held is not None else self._backend.load()
        view = state.views.get(tenant) if tenant is not None else None
        if view is not None and view.frozen_at is not None:
            return True
        return state.frozen_at is not None

    # -- moving -----------------------------------------------------------------------------
    def _change(self, tenant: str | None, change: Callable[[ClockState], ClockState]) -> datetime:
        self._last = state = self._backend.update(change)
        reading = self._moved_reading(state)
        return self.at(reading, tenant)

    def _moved_reading(self, state: ClockState) -> Reading:
        """The reading after a move: a request that moved the clock answers with the time
        after (and anything it asks next sees it)."""
        reading = Reading(state, self._counter())
        held = self._held()
        if held is not None:
            held.reading = reading
        return reading

    def _moved(self, state: ClockState, tenant: str | None, target: float) -> ClockState:
        """`state` with the tenant's view (or the instance clock) reading `target` now."""
        if tenant is None:
            if state.frozen_at is not None:
                return replace(state, frozen_at=target)
            return replace(state, offset=target - self._counter())
        view = state.views.get(tenant, View())
        if view.frozen_at is not None:
            view = replace(view, frozen_at=target)
        else:
            view = replace(view, offset=target - self._base(state))
        return replace(state, views={**state.views, tenant: view})

    def set(self, instant: datetime, tenant: str | None = None) -> datetime:
        """Read `instant` from now on; ClockRangeError outside EARLIEST..LATEST."""
        target = check_instant(instant).timestamp()
        return self._change(tenant, lambda state: self._moved(state, tenant, target))

    def advance(self, seconds: float, tenant: str | None = None) -> datetime:
        """Move on by `seconds` (>= 0); ClockRangeError if that would pass LATEST."""
        if not 0 <= seconds < math.inf:
            raise ClockRangeError(f"cannot advance the clock by {seconds!r} seconds")

        def change(state: ClockState) -> ClockState:
            target = clamp(self._read(state, tenant)) + seconds
            if target > _HIGH:
                raise ClockRangeError(
                    f"advancing by {seconds:g} s would take the clock past "
                    f"{LATEST.isoformat()}; it must lie from {RANGE_TEXT}"
                )
            return self._moved(state, tenant, target)

        return self._change(tenant, change)

    def freeze(self, tenant: str | None = None) -> datetime:
        def change(state: ClockState) -> ClockState:
            if tenant is None:
                return replace(state, frozen_at=clamp(self._base(state)))
            frozen_at = clamp(self._read(state, tenant))
            view = replace(state.views.get(tenant, View()), frozen_at=frozen_at)
            return replace(state, views={**state.views, tenant: view})

        return self._change(tenant, change)

    def unfreeze(self, tenant: str | None = None) -> datetime:
        def change(state: ClockState) -> ClockState:
            if tenant is None:
                if state.frozen_at is None:
                    return state
                return replace(state, offset=state.frozen_at - self._counter(), frozen_at=None)
            view = state.views.get(tenant)
            if view is None or view.frozen_at is None:
                return state
            view = View(offset=view.frozen_at - self._base(state))
            return replace(state, views={**state.views, tenant: view})

        return self._change(tenant, change)

    def reset(self, tenant: str | None = None) -> None:
        """Forget a tenant's view, or (no tenant) every view and go back to the start."""

        def change(state: ClockState) -> ClockState:
            if tenant is not None:
                return replace(state, views={k: v for k, v in state.views.items() if k != tenant})
            return ClockState.starting(state.start, state.start_frozen, self._counter())

        self._last = state = self._backend.update(change)
        self._moved_reading(state)
