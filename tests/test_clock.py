"""The one clock: runs from its start, freezes, moves when told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fullstory_emulator.clock import EARLIEST, LATEST, Clock, ClockRangeError, ClockState
from tests.helpers import START


class FakeCounter:
    def __init__(self) -> None:
        self.value = 100.0

    def __call__(self) -> float:
        return self.value


def test_runs_from_start_at_real_speed():
    mono = FakeCounter()
    clock = Clock(START, counter=mono)
    assert clock.now() == START
    mono.value += 2.5
    assert clock.now() == START + timedelta(seconds=2.5)


def test_frozen_until_told():
    mono = FakeCounter()
    clock = Clock(START, frozen=True, counter=mono)
    mono.value += 100
    assert clock.now() == START
    assert clock.advance(30) == START + timedelta(seconds=30)
    clock.unfreeze()
    mono.value += 1
    assert clock.now() == START + timedelta(seconds=31)
    clock.freeze()
    mono.value += 50
    assert clock.now() == START + timedelta(seconds=31)
    clock.set(START)
    assert clock.now() == START and clock.frozen()


def test_default_start_is_wall_time():
    clock = Clock(counter=lambda: START.timestamp())
    assert clock.now() == START


def test_tenant_views_move_alone():
    mono = FakeCounter()
    clock = Clock(START, counter=mono)
    clock.advance(60, tenant="a")
    clock.freeze(tenant="b")
    mono.value += 10
    assert clock.now() == START + timedelta(seconds=10)
    assert clock.now("a") == START + timedelta(seconds=70)
    assert clock.now("b") == START and clock.frozen("b") and not clock.frozen("a")
    assert clock.now("unknown") == clock.now()
    clock.advance(5)  # the instance clock moves every view that is not frozen
    assert clock.now("a") == START + timedelta(seconds=75) and clock.now("b") == START
    clock.unfreeze("b")
    mono.value += 1
    assert clock.now("b") == START + timedelta(seconds=1)
    clock.reset("a")
    assert clock.now("a") == clock.now()
    clock.reset()
    assert clock.now() == START and clock.now("b") == START


def test_instants_outside_the_range_are_refused():
    clock = Clock(START, frozen=True, counter=FakeCounter())
    with pytest.raises(ClockRangeError, match="2000-01-01T00:00:00Z to 3000-01-01T00:00:00Z"):
        clock.set(datetime(9999, 12, 31, 23, 59, 58, tzinfo=UTC))
    with pytest.raises(ClockRangeError):
        clock.set(datetime(1999, 12, 31, tzinfo=UTC))
    clock.set(LATEST - timedelta(seconds=2))
    with pytest.raises(ClockRangeError, match="past"):
        clock.advance(3)
    assert clock.now() == LATEST - timedelta(seconds=2)  # a refused move changes nothing
    with pytest.raises(ClockRangeError):
        Clock(datetime(3000, 1, 2, tzinfo=UTC))


def test_a_running_clock_stands_still_at_the_end_of_its_range():
    counter = FakeCounter()
    clock = Clock(LATEST - timedelta(seconds=2), counter=counter)
    counter.value += 10**9  # thirty years later
    assert clock.now() == LATEST
    clock.advance(0)
    assert clock.now() == LATEST


def test_views_compounding_past_the_range_read_at_its_end():
    """A tenant's view is an offset from the instance clock: each move is in range, the sum is
    not; the reading stays at the end of the range instead of overflowing."""
    clock = Clock(EARLIEST, frozen=True, counter=FakeCounter())
    clock.set(LATEST, tenant="t")
    clock.set(LATEST)
    assert clock.now("t") == LATEST
    clock.freeze("t")
    assert clock.now("t") == LATEST


def test_unreadable_states_are_refused_by_the_decoder():
    good = ClockState.starting(START.timestamp(), False, 0.0).to_json()
    assert ClockState.from_json(good).start == START.timestamp()
    for bad in ({**good, "offset": "x"}, {**good, "start": None}, [], {**good, "views": 3}):
        with pytest.raises(ValueError, match="unreadable clock state"):
            ClockState.from_json(bad)
