"""Serving an ASGI app with uvicorn on a socket bound in advance, in a thread of this process.

Binding first lets `port=0` put the real port into URLs and banners before the app is built.
The emulator's server and the MCP adapter both use it; it knows neither.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Self

import uvicorn


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
