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
from typing import Self

import uvicorn

from .app import create_app
from .settings import Settings
from .tls import ensure_certificates

# httptools (a dependency) parses HTTP where installed, else h11; measured with
# bench/api_throughput.py it doubles a bare app's requests per second and cuts the emulator's
# CPU per request. The loop stays asyncio: uvloop gains little here (the emulator's own work
# dominates) and changes callback order so that a client reading the journal right after a
# streamed download can miss its entry (tests/test_pytest_plugin.py flakes). granian was
# faster on a bare app only, and the fault rules abort uvicorn's transport.
STACK: dict[str, str] = {"loop": "asyncio", "http": "auto"}


def bind(settings: Settings) -> tuple[socket.socket, Settings]:
    """A bound socket for `settings`, and the settings with the port actually bound."""
    sock = listen(settings.host, settings.port)
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
        **STACK,
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
        **STACK,  # type: ignore[arg-type]
        **tls_options(settings),  # type: ignore[arg-type]
    )


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (port 0: any free one), not yet listening.

    The protocol is named: asyncio sets TCP_NODELAY only on connections accepted from an
    IPPROTO_TCP socket, and without it Nagle and the client's delayed ACK add ~40 ms to every
    request on a kept-alive connection (uvicorn writes a response's head and body separately).
    TCP_NODELAY on the listening socket too, which Linux passes on to accepted connections,
    whatever the loop or server does.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class UvicornThread:
    """A uvicorn server on an already bound socket, in a daemon thread of this process."""

    def __init__(self, server: uvicorn.Server, sock: socket.socket, name: str) -> None:
        self.server = server
        self._sock = sock
        self._name = name
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=name
        )

    def start(self, timeout: float = 10.0) -> Self:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self._name} server thread did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServerThread(UvicornThread):
    """The emulator on a free port (or the settings' port), in a thread: for tests and the demo."""

    def __init__(self, settings: Settings) -> None:
        sock, self.settings = bind(settings)
        server = make_server(self.settings, log_level="warning", access_log=False)
        self.app = server.config.app
        super().__init__(server, sock, "emulator")

    @property
    def base_url(self) -> str:
        return self.settings.base_url()
