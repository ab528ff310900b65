"""Running the app under uvicorn: in the foreground (the CLI) or in a background thread (tests).

The socket is bound before the app is built, so that `port=0` still writes the real port into
download URLs and banners.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time

import uvicorn

from .app import create_app
from .settings import Settings


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


def make_server(
    settings: Settings, *, log_level: str = "info", access_log: bool = True
) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings), log_level=log_level, access_log=access_log, lifespan="off"
    )
    return uvicorn.Server(config)


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
