"""Control endpoints. Health answers without a key, for load balancers and HEALTHCHECK."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import __version__
from ..timestamps import format_api


async def health(request: Request) -> Response:
    em = request.app.state.emulator
    return em.renderer.json(
        {"status": "ok", "version": __version__, "now": format_api(em.clock.now())}
    )


routes = [Route("/__emulator/health", health, methods=["GET"])]
