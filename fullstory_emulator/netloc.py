"""Where a local process reaches a server from the interface it binds.

The server, its banner and health check, the MCP adapter and the client tools all turn a
bind address into a URL; one function makes them agree. A wildcard is reached at 127.0.0.1:
`0.0.0.0` and the empty default are IPv4, and `serving.listen` makes `::` take IPv4 too (it
clears IPV6_V6ONLY, whose default differs by system). 127.0.0.1 rather than ::1, because a
container often binds `::` with no IPv6 address on its loopback (Docker's default).
"""

from __future__ import annotations

WILDCARDS = ("", "0.0.0.0", "::")


def loopback(host: str) -> str:
    """The address to connect to for a server bound to `host`."""
    host = host.strip()
    return "127.0.0.1" if host in WILDCARDS else host


def url_host(host: str) -> str:
    """`host` as it goes into a URL: an IPv6 literal in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def local_url(scheme: str, host: str, port: int, path: str = "") -> str:
    """The URL by which this machine reaches a server bound to `host`:`port`."""
    return f"{scheme}://{url_host(loopback(host))}:{port}{path}"
