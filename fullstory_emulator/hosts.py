"""Which `Host` and `Origin` headers the emulator answers: its guard against DNS rebinding and
against web pages that post to it (cross-site request forgery).

A page on any site can make the developer's browser send a "simple" request (a form post, a
`fetch` with a text body) to `http://127.0.0.1:8080`, and a rebinding domain can even read the
answer, its name resolving to 127.0.0.1 under the page's own origin. So, as the MCP SDK,
Jupyter and webpack's dev server do: on a loopback bind only loopback names (and the names the
user allows) are answered, and the control API takes no request from a foreign `Origin`.

One decision, shared by the API's request pipeline and the MCP port; each renders its refusal
in its own shape. No HTTP library here: headers arrive as text.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

ANY_HOST = "*"
FLAG = "--allowed-hosts"
_NAME = re.compile(r"\.?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def parse_allowed_hosts(text: str) -> tuple[str, ...] | None:
    """`--allowed-hosts`: names (any port) added to the ones always answered, `.example.com`
    for a domain and its subdomains, `*` for any; empty: the default (see `HostPolicy`)."""
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        return None
    names = []
    for entry in entries:
        name = _entry(entry)
        if name not in names:
            names.append(name)
    return tuple(names)


def _entry(entry: str) -> str:
    lowered = entry.lower()
    if lowered == ANY_HOST:
        return ANY_HOST
    if lowered.startswith("[") and lowered.endswith("]"):
        lowered = lowered[1:-1]
    if ":" in lowered:
        try:
            return str(ipaddress.IPv6Address(lowered))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not a host name: give names without a port (any port is "
                "answered), e.g. 'fullstory,host.docker.internal,.example.com', or '*'"
            ) from None
    if not _NAME.fullmatch(lowered):
        raise ValueError(
            f"{entry!r} is not a host name such as 'fullstory', 'host.docker.internal', "
            "'192.168.1.5' or '.example.com' (that domain and its subdomains), or '*'"
        )
    return lowered.rstrip(".") if not lowered.startswith(".") else lowered


def split_authority(authority: str) -> tuple[str, int | None] | None:
    """A `Host` header's (or a URL's netloc's) name, lowercased without brackets or a final
    dot, and its port; None when it is no host[:port]."""
    text = authority.strip().lower()
    port_text = ""
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    else:
        name, _, port_text = text.partition(":")
        if ":" in port_text:
            return None  # an IPv6 address without brackets is no Host
    if not name or (port_text and not (port_text.isascii() and port_text.isdigit())):
        return None
    port = int(port_text) if port_text else None
    if port is not None and port > 65535:
        return None
    return name.rstrip(".") or name, port


def is_loopback(name: str) -> bool:
    """`localhost`, 127.x.y.z or ::1: what never leaves this machine."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class HostPolicy:
    """The names one server answers to and the origins its control calls may come from."""

    any_host: bool
    names: frozenset[str] = frozenset()  # answered beside the loopback names, any port
    domains: tuple[str, ...] = ()  # `.example.com`: that domain and its subdomains
    explicit: frozenset[str] = frozenset()  # names the user allowed: their origins too
    origins: frozenset[str] = frozenset()  # --public-url's origin
    listed: tuple[str, ...] = ()  # what the refusal says is answered
    # Host headers already judged (a client sends the same one on every request), bounded.
    _judged: dict[str, bool] = field(default_factory=dict, init=False, compare=False, repr=False)

    @classmethod
    def build(
        cls, bind: str, allowed: tuple[str, ...] | None = None, public_url: str | None = None
    ) -> HostPolicy:
        """On a loopback bind, without `allowed`: loopback names and `public_url`'s host only.
        On any other bind (0.0.0.0 in a container, where Compose service names and mapped
        ports arrive as Host), without `allowed`: any host, as binding there was the user's
        choice. With `allowed`: loopback names, `public_url`'s host, the bound address and
        those names, wherever it binds; `*` among them: any host."""
        names: set[str] = set()
        origins: set[str] = set()
        if public_url:
            try:
                parts = urlsplit(public_url)
            except ValueError:  # not a URL: it names no host to answer
                parts = urlsplit("")
            split = split_authority(parts.netloc.rpartition("@")[2]) if parts.netloc else None
            if split is not None:
                names.add(split[0])
                origins.add(_origin(parts.scheme.lower(), *split))
        bound = bind.strip().lower().strip("[]")
        if bound and bound not in ("0.0.0.0", "::"):
            names.add(bound)
        explicit = set(allowed or ())
        any_host = ANY_HOST in explicit or (allowed is None and not is_loopback(bound or "::1"))
        explicit.discard(ANY_HOST)
        domains = tuple(sorted(name for name in explicit if name.startswith(".")))
        plain = {name for name in explicit if not name.startswith(".")}
        others = sorted(name for name in names | plain if not is_loopback(name))
        return cls(
            any_host=any_host,
            names=frozenset(names | plain),
            domains=domains,
            explicit=frozenset(plain),
            origins=frozenset(origins),
            listed=("localhost", "127.*", "[::1]", *others, *domains),
        )

    def allows_host(self, header: str | None) -> bool:
        """Whether a request with this `Host` is answered (none at all, HTTP/1.0: yes; no
        browser sends one without it)."""
        if header is None or self.any_host:
            return True
        judged = self._judged.get(header)
        if judged is None:
            if len(self._judged) >= 256:  # many names (a scan): judge them afresh
                self._judged.clear()
            judged = self._judged[header] = self._judge_host(header)
        return judged

    def _judge_host(self, header: str) -> bool:
        split = split_authority(header)
        if split is None:
            return False
        name = split[0]
        return (
            name in self.names
            or name in _LOOPBACK_NAMES  # the usual ones without parsing an address
            or is_loopback(name)
            or self._in_domain(name)
        )

    def allows_origin(self, origin: str, scheme: str, host: str | None) -> bool:
        """Whether a control call from a page of `origin` is taken: the request's own origin
        (`scheme`://`host`), `--public-url`'s, or one of a name the user allowed by name;
        never `null` (a sandboxed frame, a file, a redirect's hidden origin)."""
        try:
            parts = urlsplit(origin.strip().lower())
        except ValueError:  # "http://[::1": no URL at all
            return False
        if parts.scheme not in _DEFAULT_PORTS or not parts.netloc or parts.path:
            return False
        theirs = split_authority(parts.netloc)
        if theirs is None:
            return False
        own = split_authority(host) if host else None
        seen = _origin(parts.scheme, *theirs)
        if own is not None and seen == _origin(scheme.lower(), *own):
            return True
        return seen in self.origins or theirs[0] in self.explicit or self._in_domain(theirs[0])

    def _in_domain(self, name: str) -> bool:
        return any(name == domain[1:] or name.endswith(domain) for domain in self.domains)

    def host_refusal(self, header: str) -> str:
        """Why a request with this `Host` was refused, and how to allow it."""
        shown = header if len(header) <= 100 else header[:100] + "..."
        return (
            f"Host {shown!r} is not a name this emulator answers to (it answers "
            f"{', '.join(self.listed)}): a page whose domain resolves to this machine (DNS "
            f"rebinding) must not reach it. To reach it under that name, start it with "
            f"{FLAG} NAME (or FULLSTORY_EMULATOR_ALLOWED_HOSTS; '*' for any)"
        )

    @staticmethod
    def origin_refusal(origin: str) -> str:
        """Why a control call from this `Origin` was refused, and how to allow it."""
        shown = origin if len(origin) <= 100 else origin[:100] + "..."
        return (
            f"Origin {shown!r} is not this emulator's own: a web page elsewhere may not steer "
            "the control API (the console, served here, may). Scripts send no Origin; to "
            f"allow a page of another host, start the emulator with {FLAG} NAME"
        )


def _origin(scheme: str, name: str, port: int | None) -> str:
    port = port if port is not None else _DEFAULT_PORTS.get(scheme, 0)
    shown = f"[{name}]" if ":" in name else name
    return f"{scheme}://{shown}:{port}"
