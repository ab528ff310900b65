"""Serving an ASGI app with uvicorn on a socket bound in advance, in a thread of this process.

Binding first lets `port=0` put the real port into URLs and banners before the app is built.
The emulator's server and the MCP adapter both use it; it knows neither.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import Self

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol


def no_delay(transport: asyncio.BaseTransport) -> None:
    """TCP_NODELAY on an accepted connection, whoever bound the listening socket: uvicorn's own
    (`--workers`) is made without IPPROTO_TCP, so asyncio leaves Nagle on, and every request on
    a kept-alive connection then waits ~40 ms for the client's delayed ACK (see `listen`)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # the peer may already be gone
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _HeaderDeadline:
    """Closes a connection whose request line and headers have not all arrived
    `header_timeout` seconds after it opened (or after its previous answer): a client trickling
    headers ("slow loris") cannot hold a connection open indefinitely. Mixed into uvicorn's
    protocols, which call `connection_made`, `on_response_complete` and `connection_lost`.

    Arming and disarming only move a deadline: one timer per connection wakes at most once per
    timeout and is set again for the deadline it finds. A timer made and cancelled per request
    cost ~5% of a kept-alive connection's CPU per request (bench/api_throughput.py)."""

    header_timeout = 30.0
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _header_timer: asyncio.TimerHandle | None = None
    _header_deadline: float | None = None  # loop time by which the headers must be in

    def _arm(self) -> None:
        self._header_deadline = deadline = self.loop.time() + self.header_timeout
        if self._header_timer is None:
            self._header_timer = self.loop.call_at(deadline, self._headers_late)

    def _disarm(self) -> None:
        self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_timer = None
        deadline = self._header_deadline
        if deadline is None:
            return  # the headers came in; the next _arm sets a timer again
        if self.loop.time() < deadline:  # armed again since this timer was set
            self._header_timer = self.loop.call_at(deadline, self._headers_late)
        elif not self.transport.is_closing():
            self.transport.close()

    def _cancel_header_timer(self) -> None:
        self._header_deadline = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        no_delay(transport)
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection has as long

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)  # type: ignore[misc]


class TimedH11Protocol(_HeaderDeadline, H11Protocol):
    conn: h11.Connection

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._disarm()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # no httptools wheel here: h11 it is
    TimedHttpToolsProtocol: type[asyncio.Protocol] | None = None
else:

    class TimedHttpToolsProtocol(_HeaderDeadline, HttpToolsProtocol):  # type: ignore[no-redef]
        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()


def timed_protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """The protocol class to give uvicorn (`http=`) with this header timeout: httptools where
    installed (it doubles the requests per second bench/api_throughput.py measures), else h11."""
    base = TimedHttpToolsProtocol or TimedH11Protocol
    return type(base.__name__, (base,), {"header_timeout": header_timeout})


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (port 0: any free one), not yet listening.

    The protocol is named: asyncio sets TCP_NODELAY only on connections accepted from an
    IPPROTO_TCP socket, and without it Nagle and the client's delayed ACK add ~40 ms to every
    request on a kept-alive connection (uvicorn writes a response's head and body separately).
    TCP_NODELAY on the listening socket too, which Linux passes on to accepted connections,
    whatever the loop or server does. `::` takes IPv4 too, whatever the system's default
    (IPV6_V6ONLY differs), so that it is reached at 127.0.0.1 as `netloc.loopback` says.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if host.strip() == "::":
        with contextlib.suppress(OSError):  # a system without IPv4 keeps its IPv6-only socket
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
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
