"""Traffic's shape (fullstory_emulator/world/population.py): how many visits, when, and how it
grows.

The default world (1000 people, density 1) must hold a few hundred events in an hour of its
latest data, follow a daily and a weekly rhythm in each visitor's local time, and grow over the
data's days; `density` scales it, and all of it stays a pure function of its arguments.
"""

from __future__ import annotations

import statistics
from collections import Counter

import pytest

from fullstory_emulator.world import World
from fullstory_emulator.world import population as P

DAY = 86_400_000
HOUR = 3_600_000
START = 1_772_366_400_000  # 2026-03-01T12:00:00Z, the test clock
ORIGIN = START // DAY * DAY - 90 * DAY  # as the emulator places a 90-day world


@pytest.fixture(scope="module")
def default_world() -> World:
    return World(seed=1, origin_ms=ORIGIN, population=1000)


@pytest.fixture(scope="module")
def starts(default_world: World) -> list[tuple[int, int]]:
    """(session start, UTC offset of the visitor) of every session of the default world."""
    out = []
    for index in range(default_world.population):
        tz = P.timing(default_world.seed, ORIGIN, index)[2]
        out += [(s, tz) for s in default_world.session_starts(index, START)]
    return out


def test_an_hour_of_the_latest_data_holds_a_few_hundred_events(default_world, starts):
    last_week = [s for s, _ in starts if s >= START - 7 * DAY]
    assert 150 < len(last_week) / 7 < 350  # sessions a day
    per_hour = Counter(
        (event.t - (START - DAY)) // HOUR
        for index in range(default_world.population)
        for event in default_world.events_between(index, START - DAY, START)
    )
    hours = [per_hour[h] for h in range(24)]
    assert 5_000 < sum(hours) < 15_000
    assert statistics.median(hours) > 200 and min(hours) > 0


def test_visits_follow_a_daily_and_weekly_rhythm_in_local_time(starts):
    recent = [s + tz for s, tz in starts if s >= START - 56 * DAY]  # eight whole weeks
    by_hour = Counter(local // HOUR % 24 for local in recent)
    evening = sum(by_hour[h] for h in (19, 20, 21))
    night = sum(by_hour[h] for h in (2, 3, 4))
    assert evening > 6 * night
    weekday = Counter((local // DAY + 3) % 7 for local in recent)  # 0: Monday
    midweek = statistics.mean(weekday[d] for d in range(4))
    assert weekday[5] < 0.9 * midweek  # Saturday is slower than Monday to Thursday


def test_traffic_grows_over_the_data_but_starts_with_regulars(starts):
    first_week = sum(ORIGIN <= s < ORIGIN + 7 * DAY for s, _ in starts)
    last_week = sum(START - 7 * DAY <= s < START for s, _ in starts)
    assert 1.15 * first_week < last_week < 3 * first_week


@pytest.mark.parametrize("density", [0.25, 2.0])
def test_density_scales_visits(default_world, starts, density):
    world = World(seed=1, origin_ms=ORIGIN, population=1000, density=density)
    sessions = sum(1 for i in range(1000) for _ in world.session_starts(i, START))
    assert 0.8 * density < sessions / len(starts) < 1.2 * density
    assert world.individual(3).created_ms == next(iter(world.session_starts(3, START)))


def test_density_is_part_of_the_pure_function():
    a = World(seed=5, origin_ms=ORIGIN, population=50, density=1.5)
    b = World(seed=5, origin_ms=ORIGIN, population=50, density=1.5)
    other = World(seed=5, origin_ms=ORIGIN, population=50, density=0.5)
    rows = [[e.row for i in range(50) for e in w.events(i, START)] for w in (a, b, other)]
    assert rows[0] and rows[0] == rows[1] and rows[0] != rows[2]
    assert repr(a) == f"World(seed=5, origin_ms={ORIGIN}, population=50, density=1.5)"
    with pytest.raises(ValueError, match="density"):
        World(seed=5, origin_ms=ORIGIN, population=50, density=0)


def test_the_rhythm_table_is_a_week_of_hours_peaking_at_one():
    assert len(P.RHYTHM) == 168 and max(P.RHYTHM) == 1 << 24
    assert 0.4 < P.RHYTHM_MEAN < 0.7
