"""GET /search/v1/exports/{searchExportId}/results: a fresh signed download URL."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..auth import Principal
from ..timestamps import format_api
from .common import emulator, endpoint


@endpoint("search.exports.results")
async def export_results(request: Request, principal: Principal) -> Response:
    em = emulator(request)
    location, expires = em.exports.locate(principal, request.path_params["searchExportId"])
    return em.renderer.json({"location": location, "expires": format_api(expires)})


routes = [Route("/search/v1/exports/{searchExportId}/results", export_results, methods=["GET"])]
