"""Where a local process reaches a server from the interface it binds.

The server, its banner and health check, the MCP adapter and the client tools all turn a
bind address into a URL; one function makes them agree. A wildcard is reached through the
loopback of its own family: `0.0.0.0` (and the empty default) at 127.0.0.1, `::` at ::1,
which answers whether or not the socket also takes IPv4 (IPV6_V6ONLY differs by system).
"""

from __future__ import annotations

WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def loopback(host: str) -> str:
    """The address to connect to for a server bound to `host`."""
    return WILDCARDS.get(host.strip(), host.strip())


def url_host(host: str) -> str:
    """`host` as it goes into a URL: an IPv6 literal in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def local_url(scheme: str, host: str, port: int, path: str = "") -> str:
    """The URL by which this machine reaches a server bound to `host`:`port`."""
    return f"{scheme}://{url_host(loopback(host))}:{port}{path}"
