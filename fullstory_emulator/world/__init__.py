"""The procedural world: a fictional web shop's visitors and their FullStory events.

Everything is a pure function of (seed, origin_ms, individual index, session number), generated
lazily, so exports of any size are produced on the fly and any slice can be regenerated alone.
"""

from fullstory_emulator.world.events import EVENT_LEVEL_FIELDS, Event, Page
from fullstory_emulator.world.generator import World
from fullstory_emulator.world.population import SESSION_SPAN_MAX_MS, Individual
from fullstory_emulator.world.vocab import CUSTOM_VARS

__all__ = [
    "CUSTOM_VARS",
    "EVENT_LEVEL_FIELDS",
    "SESSION_SPAN_MAX_MS",
    "Event",
    "Individual",
    "Page",
    "World",
]
