"""GET /search/v1/exports/{searchExportId}/results: a fresh signed download URL."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from ...timestamps import format_api
from .common import Call, endpoint


@endpoint("search.exports.results")
def export_results(call: Call) -> Response:
    export_id = call.request.path_params["searchExportId"]
    location, expires = call.em.exports.locate(call.principal, export_id, call.control)
    return call.json({"location": location, "expires": format_api(expires)})


routes = [Route("/search/v1/exports/{searchExportId}/results", export_results, methods=["GET"])]
