"""GET /segments/v1 and GET /segments/v1/{segmentId}."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from ...world.segments import Segment
from ..render import dumps
from .common import Call, decode_token, encode_token, endpoint, limit_param, query


def segment_json(segment: Segment, org_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": segment.id, "name": segment.name, "creator": segment.creator}
    if segment.created is not None:  # built-in segments have no creation time
        body["created"] = segment.created
    body["url"] = segment.url or f"https://app.fullstory.com/ui/{org_id}/segments/{segment.id}"
    return body


@endpoint("segments.list")
def list_segments(call: Call) -> Response:
    request, em = call.request, call.em
    limit = limit_param(request, default=20, maximum=100)
    offset = decode_token(query(request, "paginationToken", "pagination_token"), "seg") or 0
    creator = (query(request, "creator") or "").strip().lower()
    matching = [s for s in em.exports.segments if not creator or s.creator.lower() == creator]
    page = matching[offset : offset + limit]
    body: dict[str, Any] = {"segments": [segment_json(s, em.settings.org_id) for s in page]}
    if offset + limit < len(matching):
        body["nextPaginationToken"] = encode_token("seg", offset + limit)
    return call.json(body)


# A segment's answer, rendered once: (segment id, org, escaping) -> (the segment, its bytes).
# The segment is compared by identity, so a segment replaced under the same id renders again.
_rendered: dict[tuple[str, str, bool], tuple[Segment, bytes]] = {}


@endpoint("segments.get")
def get_segment(call: Call) -> Response:
    em = call.em
    segment = em.exports.segment(call.request.path_params["segmentId"])
    escape = call.render.html_escape
    key = (segment.id, em.settings.org_id, escape)
    hit = _rendered.get(key)
    if hit is None or hit[0] is not segment:
        if len(_rendered) >= 1024:  # segments made and dropped by the control API, many
            _rendered.clear()
        hit = _rendered[key] = (segment, dumps(segment_json(segment, key[1]), html_escape=escape))
    return Response(hit[1], media_type="application/json")


routes = [
    Route("/segments/v1", list_segments, methods=["GET"]),
    Route("/segments/v1/{segmentId}", get_segment, methods=["GET"]),
]
