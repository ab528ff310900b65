"""The cloud-storage side: GET or HEAD /<bucket>/<object> with a signed URL, no API key, no rate
limit.

The body is the gzip file itself, sent as raw bytes without Content-Encoding, because clients
gunzip it themselves and an HTTP stack that saw `Content-Encoding: gzip` would do it first. As
Cloud Storage does, every answer carries `Content-Length`, `ETag` and `Last-Modified`, and one
`Range: bytes=...` is honoured with 206 (416 `InvalidRange` past the end), which is how
`curl -C -` and download managers resume. The file is made (or found in the cache) in a thread,
never on the event loop.
"""

from __future__ import annotations

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ...exports.service import Download
from ...files import ranges
from ...files.cache import OpenFile
from ...instance import Emulator
from ..pipeline import caller_of, control_view_of

CHUNK_BYTES = 256 * 1024


class FileSlice(Response):
    """Part of an open file as the body (none for HEAD); the file is closed when done."""

    def __init__(
        self, opened: OpenFile, part: ranges.Slice, headers: dict[str, str], head: bool
    ) -> None:
        super().__init__(
            status_code=206 if part.partial else 200,
            headers={**headers, "Content-Length": str(part.length)},
            media_type="application/gzip",
        )
        self.opened, self.part, self.head = opened, part, head

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            if self.head:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            file = self.opened.file
            await anyio.to_thread.run_sync(file.seek, self.part.start)
            left = self.part.length
            while left > 0:
                chunk = await anyio.to_thread.run_sync(file.read, min(CHUNK_BYTES, left))
                if not chunk:
                    raise OSError("the export file ended before its recorded length")
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
            if self.part.length == 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.opened.close()


async def download(request: Request) -> Response:
    em: Emulator = request.app.state.emulator
    query = request.query_params.multi_items()
    view = control_view_of(request)  # the export's tenant, as the pipeline resolved it
    caller = caller_of(request)
    # The export the pipeline found, and the request's one clock reading.
    found = (caller.export[0], request.scope["state"]["now"]) if caller.export else None

    def check_and_open() -> tuple[Download, OpenFile]:
        """The signed URL's checks and the file, in one hop off the event loop: the checks
        read the store, and a file not kept is made here."""
        result = em.exports.download(
            request.method, request.path_params["object"], query, view, found
        )
        return result, em.exports.open_file(result)

    result, opened = await run_in_threadpool(check_and_open)
    try:
        part = ranges.select(
            opened.size,
            request.headers.get("range"),
            if_range=request.headers.get("if-range"),
            etag=result.etag,
            last_modified=result.last_modified,
        )
    except BaseException:
        opened.close()
        raise
    headers = {
        "Content-Disposition": f'attachment; filename="{result.filename}"',
        "Cache-Control": "private, max-age=0",
        "Accept-Ranges": "bytes",
        "ETag": result.etag,
        "Last-Modified": ranges.http_date(result.last_modified),
    }
    if part.partial:
        headers["Content-Range"] = part.content_range()
    return FileSlice(opened, part, headers, head=request.method == "HEAD")


def routes(bucket: str) -> list[Route]:
    return [Route(f"/{bucket}/{{object:path}}", download, methods=["GET", "HEAD"])]
