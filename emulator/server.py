"""Running the app under uvicorn: in the foreground (the CLI) or in a background thread (tests).

The socket is bound before the app is built, so that `port=0` still writes the real port into
download URLs and banners.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn

from .app import create_app
from .settings import Settings
from .tls import ensure_certificates


def bind(settings: Settings) -> tuple[socket.socket, Settings]:
    """A listening socket for `settings`, and the settings with the port actually bound."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError:
        sock.close()
        raise
    return sock, dataclasses.replace(settings, port=sock.getsockname()[1])


def data_dir(settings: Settings) -> Path:
    """Where files that must outlive the process go: --data-dir, or a fresh temporary folder."""
    return settings.data_dir or Path(tempfile.mkdtemp(prefix="fullstory-emulator-"))


def tls_options(settings: Settings) -> dict[str, str]:
    if not settings.tls:
        return {}
    files = ensure_certificates(data_dir(settings) / "tls", settings.host)
    return {"ssl_certfile": str(files.certificate), "ssl_keyfile": str(files.key)}


def make_server(
    settings: Settings, *, log_level: str = "info", access_log: bool = True
) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings),
        log_level=log_level,
        access_log=access_log and settings.access_log == "text",
        lifespan="off",
        **tls_options(settings),
    )
    return uvicorn.Server(config)


def run_workers(settings: Settings, sock: socket.socket) -> None:
    """Several uvicorn worker processes on one port, sharing state through --data-dir.

    Workers are fresh processes: they get the settings as FULLSTORY_EMULATOR_* variables and
    build the app with `emulator.app:app_from_environment`. uvicorn binds the port itself (its
    public API takes no socket), so ours, which fixed the port number, is released first.
    """
    os.environ.update(settings.to_environ())
    sock.close()
    uvicorn.run(
        "emulator.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        lifespan="off",
        access_log=settings.access_log == "text",
        **tls_options(settings),  # type: ignore[arg-type]
    )


class ServerThread:
    """A real uvicorn server on a free port, in a daemon thread of this process."""

    def __init__(self, settings: Settings) -> None:
        self._sock, self.settings = bind(dataclasses.replace(settings, port=settings.port))
        self.server = make_server(self.settings, log_level="warning", access_log=False)
        self.app = self.server.config.app
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return self.settings.base_url()

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator server thread did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
