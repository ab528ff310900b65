"""The emulator's one logger hierarchy: every message of its own goes to `fullstory_emulator`
or a child of it, so the level `server.configure_logging` sets (--log-level) governs them all
and they reach its handler; a module-named logger (`emulator.x`) would sit outside both."""

from __future__ import annotations

import logging

LOGGER = "fullstory_emulator"


def get_logger(child: str = "") -> logging.Logger:
    """`fullstory_emulator`, or its child `fullstory_emulator.<child>` (e.g. `access`)."""
    return logging.getLogger(f"{LOGGER}.{child}" if child else LOGGER)
