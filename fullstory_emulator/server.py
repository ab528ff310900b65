"""Running the app under uvicorn: in the foreground (the CLI) or in a background thread (tests).

The socket is bound before the app is built, so that `port=0` still writes the real port into
download URLs and banners.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import logging
import logging.config
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, Final

import uvicorn
from starlette.applications import Starlette
from uvicorn.config import LOGGING_CONFIG

from .http.app import app_from_environment, create_app
from .instance import Emulator, open_store
from .instance import check_store as check_store  # for `fullstory-emulator store check`
from .logs import LOGGER, behind_queue, get_logger
from .serving import UvicornThread, listen, timed_protocol
from .settings import ENV_PREFIX, Settings
from .tls import ensure_certificates

# httptools (a dependency) parses HTTP where installed, else h11; measured with
# bench/api_throughput.py it doubles a bare app's requests per second and cuts the emulator's
# CPU per request. uvloop (a dependency except on Windows) where installed, else asyncio
# (uvicorn's "auto"): under wrk it cut the emulator's CPU per `GET /segments/v1/everyone` from
# ~410 to ~320 µs. It was left out while the journal entry was recorded after a streamed
# download's last byte (a client reading the journal right after could miss it, and uvloop's
# callback order made that happen); the entry is recorded before the last byte now. granian was
# faster on a bare app only, and the fault rules abort uvicorn's transport.
LOOP: Final = "auto"
HTTP: Final = "auto"
STACK: Final = {"loop": LOOP, "http": HTTP}  # as the benchmark names it
READ_TIMEOUT = ENV_PREFIX + "READ_TIMEOUT"


def bind(settings: Settings) -> tuple[socket.socket, Settings]:
    """A bound socket for `settings`, and the settings with the port actually bound."""
    sock = listen(settings.host, settings.port)
    return sock, dataclasses.replace(settings, port=sock.getsockname()[1])


def data_dir(settings: Settings) -> Path:
    """Where files that must outlive the process go: --data-dir, or a fresh temporary folder."""
    return settings.data_dir or Path(tempfile.mkdtemp(prefix="fullstory-emulator-"))


def check_state(settings: Settings) -> None:
    """Open and close the data dir's store: ValueError (naming the path and the fix) if it
    cannot be used, before any worker process tries."""
    store = open_store(settings)
    close = getattr(store, "close", None)
    if close is not None:
        close()


def tls_options(settings: Settings) -> dict[str, Any]:
    if not settings.tls:
        return {}
    files = ensure_certificates(data_dir(settings) / "tls", settings.host)
    return {"ssl_certfile": str(files.certificate), "ssl_keyfile": str(files.key)}


def make_server(
    settings: Settings, *, log_level: str | None = None, access_log: bool = True
) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings),
        log_level=log_level or settings.log_level,
        access_log=access_log and settings.access_log == "text",
        lifespan="off",
        loop=LOOP,
        http=timed_protocol(settings.read_timeout),
        **tls_options(settings),
    )
    return uvicorn.Server(config)


def settle() -> None:
    """Move what the start made (modules, the app, fixtures) out of the garbage collector's
    reach: every full collection walked those tens of thousands of objects, a 30-110 ms pause
    that was the p99 of every request in bench/api_throughput.py (about 7 ms after this)."""
    gc.collect()
    gc.freeze()


def worker_app() -> Starlette:
    """The app of a worker process, from its FULLSTORY_EMULATOR_* variables, settled."""
    app = app_from_environment()
    settle()
    return app


def emulator_of(server: uvicorn.Server) -> Emulator:
    """The emulator the server's app built (and so owns)."""
    app = server.config.app
    assert isinstance(app, Starlette)
    emulator: Emulator = app.state.emulator
    return emulator


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C raises KeyboardInterrupt."""


@dataclasses.dataclass
class Signalled:
    """Whether SIGTERM arrived inside `sigterm_as_interrupt`, for a caller whose inner code
    caught the interrupt itself (the demo's in-process client exits 130 on any interrupt)."""

    received: bool = False


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[Signalled]:
    """Inside, SIGTERM (`kill`, `docker stop`, CI runners, supervisors) stops the process the
    way Ctrl-C does: Python's default for it is to die at once, running no `finally` and no exit
    handler, which left temporary folders and the worker pool's semaphores behind. uvicorn takes
    both signals while it serves, shuts down gracefully, then raises the signal again, here."""
    signalled = Signalled()
    if threading.current_thread() is not threading.main_thread():
        yield signalled
        return

    def terminated(signum: int, frame: FrameType | None) -> None:
        signalled.received = True
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield signalled
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_workers(settings: Settings, sock: socket.socket) -> None:
    """Several uvicorn worker processes on one port, sharing state through --data-dir.

    Workers are fresh processes: they get the settings as FULLSTORY_EMULATOR_* variables and
    build the app with `worker_app`. uvicorn binds the port itself (its public API takes no
    socket), so ours, which fixed the port number, is released first. The lifespan runs in
    workers so that each closes its emulator (its pool, its store) when uvicorn stops it.
    """
    os.environ.update(settings.to_environ())
    sock.close()
    uvicorn.run(
        "fullstory_emulator.server:worker_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        lifespan="on",
        access_log=settings.access_log == "text",
        log_level=settings.log_level,
        loop=LOOP,
        http="fullstory_emulator.server:WorkerProtocol",  # by name: worker processes import it
        **tls_options(settings),
    )


def __getattr__(name: str) -> Any:
    """`WorkerProtocol`: the protocol of worker processes (uvicorn imports it by name there),
    with the header timeout their FULLSTORY_EMULATOR_* settings give; made on first use."""
    if name == "WorkerProtocol":
        timeout = os.environ.get(READ_TIMEOUT, "30")
        return timed_protocol(Settings.load({}, {READ_TIMEOUT: timeout}).read_timeout)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def configure_logging(settings: Settings) -> None:
    """uvicorn's logging with the emulator's level and access log, applied after every server
    of this process is configured.

    Each `uvicorn.Config` applies its logging to the process-wide loggers when it is made; the
    MCP adapter's (quiet, access log off) would otherwise silence the emulator's access log.
    The text access log prints whenever --access-log says so, whatever --log-level.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    level = settings.log_level.upper()
    loggers = config["loggers"]
    loggers["uvicorn"]["level"] = level
    loggers["uvicorn.error"]["level"] = level
    loggers["uvicorn.access"]["level"] = "INFO"
    if settings.access_log != "text":
        loggers["uvicorn.access"]["handlers"] = []
    loggers[LOGGER] = {"handlers": ["default"], "level": level, "propagate": False}
    logging.config.dictConfig(config)
    logging.getLogger("uvicorn.asgi").setLevel(level)
    # Access lines are written by a thread of their own.
    behind_queue(logging.getLogger("uvicorn.access"))
    behind_queue(get_logger("access"))


class ServerThread(UvicornThread):
    """The emulator on a free port (or the settings' port), in a thread: for tests and the demo.
    Stopping it closes its emulator (worker pool, temporary file cache, store)."""

    def __init__(self, settings: Settings) -> None:
        sock, self.settings = bind(settings)
        server = make_server(self.settings, log_level="warning", access_log=False)
        self.app = server.config.app
        super().__init__(server, sock, "emulator")

    def stop(self, timeout: float = 10.0) -> None:
        try:
            super().stop(timeout)
        finally:
            emulator_of(self.server).close()

    @property
    def base_url(self) -> str:
        return self.settings.base_url()
