"""The emulator's one logger hierarchy: every message of its own goes to `fullstory_emulator`
or a child of it, so the level `server.configure_logging` sets (--log-level) governs them all
and they reach its handler; a module-named logger (`emulator.x`) would sit outside both.

Access lines are formatted and written off the request path: `behind_queue` hands a logger's
records to a thread of their own, so a request pays for putting one record on a queue."""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue

LOGGER = "fullstory_emulator"


def get_logger(child: str = "") -> logging.Logger:
    """`fullstory_emulator`, or its child `fullstory_emulator.<child>` (e.g. `access`)."""
    return logging.getLogger(f"{LOGGER}.{child}" if child else LOGGER)


class _Enqueue(logging.handlers.QueueHandler):
    """Hands the record over as it is: the standard `prepare` formats it in the caller's
    thread, which is the cost this handler exists to move (and uvicorn's access formatter
    needs the record's arguments, which `prepare` clears)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def behind_queue(logger: logging.Logger) -> None:
    """Move `logger`'s handlers behind a queue and a listener thread (once; the listener is
    stopped, writing what is queued, when the process exits)."""
    handlers = list(logger.handlers)
    if not handlers or any(isinstance(handler, _Enqueue) for handler in handlers):
        return
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, *handlers, respect_handler_level=True)
    for handler in handlers:
        logger.removeHandler(handler)
    logger.addHandler(_Enqueue(records))
    listener.start()
    atexit.register(listener.stop)
