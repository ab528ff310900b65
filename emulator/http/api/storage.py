"""The cloud-storage side: GET /<bucket>/<object> with a signed URL, no API key, no rate limit.

The body is the gzip file itself, sent as raw bytes without Content-Encoding, because clients
gunzip it themselves and an HTTP stack that saw `Content-Encoding: gzip` would do it first.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ...instance import Emulator


async def download(request: Request) -> Response:
    em: Emulator = request.app.state.emulator
    query = request.query_params.multi_items()
    result = em.exports.download(request.method, request.path_params["object"], query)
    return StreamingResponse(
        result.chunks,
        media_type="application/gzip",
        headers={
            "Content-Disposition": f'attachment; filename="{result.filename}"',
            "Cache-Control": "private, max-age=0",
        },
    )


def routes(bucket: str) -> list[Route]:
    return [Route(f"/{bucket}/{{object:path}}", download, methods=["GET"])]
