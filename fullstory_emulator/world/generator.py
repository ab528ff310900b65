"""The World: a seeded, lazily generated population and its event streams.

Nothing is stored but a bounded cache of Individuals (Faker is the one slow step); every answer
is recomputed from (seed, index, session number), so two Worlds with the same arguments agree
on every id and every row, and a World can be any size without costing memory.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fullstory_emulator.ids import id63
from fullstory_emulator.timestamps import MillisFormatter
from fullstory_emulator.world import actions as A
from fullstory_emulator.world import population as P
from fullstory_emulator.world.events import (
    EVENT_LEVEL_FIELDS,
    SESSION_LEVEL_FIELDS,
    Event,
    Page,
    page_events,
    session_pages,
)
from fullstory_emulator.world.shape import Shape
from fullstory_emulator.world.vocab import CUSTOM_VARS

if TYPE_CHECKING:
    from faker import Faker

_CACHE_SIZE = 4096
_MIN_MS = -(1 << 62)


class World:
    """The fictional shop's FullStory data, as a pure function of (seed, origin_ms, density,
    index)."""

    __slots__ = (
        "_cache",
        "_clusters",
        "_faker",
        "_lock",
        "_requests",
        "density",
        "origin_ms",
        "population",
        "seed",
        "shape",
    )

    def __init__(
        self,
        *,
        seed: int,
        origin_ms: int,
        population: int,
        density: float = 1.0,
        shape: Shape | None = None,
    ) -> None:
        if population < 0:
            raise ValueError(f"population must be >= 0, got {population}")
        if not density > 0:
            raise ValueError(f"density must be > 0, got {density}")
        self.seed = seed
        self.origin_ms = origin_ms
        self.population = population
        self.density = density  # visits per person, as a multiple of the default world's
        self.shape = shape  # a recorded org's, laid over the shop's rows (--replay)
        self._faker: Faker | None = None  # made on first use: import and set-up cost ~0.1 s
        self._cache: OrderedDict[int, P.Individual] = OrderedDict()
        # Faker's seed-then-draw is not atomic, and exports may run in threads.
        self._lock = threading.Lock()
        self._clusters = tuple(id63(seed, kind, P.TAG_CLUSTER) for kind in range(10))
        self._requests = A.Requests()  # request events' fields, shared between sessions

    def __repr__(self) -> str:
        return (
            f"World(seed={self.seed}, origin_ms={self.origin_ms}, population={self.population}, "
            f"density={self.density:g}" + (f", shape={self.shape.digest})" if self.shape else ")")
        )

    @property
    def custom_vars(self) -> dict[str, tuple[str, ...]]:
        """The custom variables of the rows, by kind: the shop's, or the org's in its shape."""
        return self.shape.custom_vars if self.shape else CUSTOM_VARS

    @property
    def event_level(self) -> frozenset[str]:
        """The row keys that can differ between the events of one page."""
        return self.shape.event_level if self.shape else EVENT_LEVEL_FIELDS

    @property
    def session_level(self) -> frozenset[str]:
        """The row keys whose value is the same on all rows of a session (none is promised in
        a recorded org's shape)."""
        return frozenset() if self.shape else SESSION_LEVEL_FIELDS

    def _check(self, index: int) -> None:
        if not 0 <= index < self.population:
            raise IndexError(f"individual index {index} outside 0..{self.population - 1}")

    def individual(self, index: int) -> P.Individual:
        self._check(index)
        with self._lock:
            cache = self._cache
            found = cache.get(index)
            if found is not None:
                cache.move_to_end(index)
                return found
            if self._faker is None:
                from faker import Faker

                self._faker = Faker("en_US")
            indv = P.make_individual(self.seed, self.origin_ms, index, self._faker, self.density)
            if self.shape is not None:
                indv = dataclasses.replace(indv, user_vars=self.shape.user_vars(self.seed, index))
            cache[index] = indv
            if len(cache) > _CACHE_SIZE:
                cache.popitem(last=False)
            return indv

    def session_starts(self, index: int, until_ms: int) -> Iterator[int]:
        """SessionStart of each session starting before until_ms; no page or event is built."""
        self._check(index)
        return P.session_starts(self.seed, self.origin_ms, index, until_ms, self.density)

    def events(self, index: int, until_ms: int) -> Iterator[Event]:
        """Every event of the individual with t < until_ms, in non-decreasing t."""
        return self.events_between(index, _MIN_MS, until_ms)

    def events_between(self, index: int, start_ms: int, until_ms: int) -> Iterator[Event]:
        """Events with start_ms <= t < until_ms; sessions that end before start_ms are skipped
        unbuilt, and the Individual (Faker) is only made if some session can overlap."""
        self._check(index)  # here, not at the first next(): bad indices fail at the call
        return page_events(self._pages(index, start_ms, until_ms), self.seed, self.shape)

    def pages_between(self, index: int, start_ms: int, until_ms: int) -> Iterator[Page]:
        """The same events as `events_between`, a page at a time and without their rows."""
        self._check(index)
        return self._pages(index, start_ms, until_ms)

    def _pages(self, index: int, start_ms: int, until_ms: int) -> Iterator[Page]:
        seed = self.seed
        profile: P.Profile | None = None
        fmt = MillisFormatter()
        earliest = start_ms - P.SESSION_SPAN_MAX_MS
        starts = P.session_starts(seed, self.origin_ms, index, until_ms, self.density)
        for n, s in enumerate(starts):
            if s <= earliest:
                continue
            if profile is None:
                profile = P.Profile(seed, self.individual(index))
            yield from session_pages(
                seed,
                index,
                n,
                s,
                profile,
                self._clusters,
                start_ms,
                until_ms,
                fmt,
                self.shape,
                self._requests,
            )
