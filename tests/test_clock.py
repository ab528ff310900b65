"""The one clock: runs from its start, freezes, moves when told."""

from __future__ import annotations

from datetime import timedelta

from emulator.clock import Clock
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
