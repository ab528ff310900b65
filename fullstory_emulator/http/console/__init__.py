"""The web console at /__emulator/ui: static HTML, CSS and one JavaScript file, shipped in the
package and served from memory, with no build step and nothing fetched from elsewhere.

Everything the page shows or changes goes through the control API (`http/control.py`), with
the same token, so whatever a person does here a script can do too. The assets themselves hold
no data, so they need no token; `GET /` in a browser leads here.
"""

from __future__ import annotations

from importlib.resources import files

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ...errors import NotFound, echo

UI = "/__emulator/ui"
TYPES = {
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}
# The page runs only its own script and style, talks only to this origin, and is never framed.
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


def _load() -> dict[str, bytes]:
    static = files(__name__) / "static"
    return {name: (static / name).read_bytes() for name in TYPES}


ASSETS = _load()


def _asset(name: str) -> Response:
    return Response(ASSETS[name], media_type=TYPES[name], headers=HEADERS)


async def page(request: Request) -> Response:
    return _asset("index.html")


async def asset(request: Request) -> Response:
    name = request.path_params["asset"]
    if name not in ASSETS or name == "index.html":
        raise NotFound(f"no console file {echo(name)}; the console is at {UI}")
    return _asset(name)


async def home(request: Request) -> Response:
    """A browser asking for `/` (or `/__emulator`) is sent to the console; other clients get
    the 404 they always did."""
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse(UI, status_code=302)
    path = echo(request.url.path, quote=False)
    raise NotFound(f"no such endpoint: {request.method} {path}; the console is at {UI}")


routes = [
    Route("/", home, methods=["GET"]),
    Route("/__emulator", home, methods=["GET"]),
    Route(UI, page, methods=["GET"]),
    Route(f"{UI}/{{asset}}", asset, methods=["GET"]),
]
