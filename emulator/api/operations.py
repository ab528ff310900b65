"""GET /operations/v1, GET /operations/v1/{id}, POST /operations/v1/{id}/cancel."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..auth import Principal
from ..errors import InvalidArgument
from ..exports import OPERATION_TYPE
from ..operations import COMPLETED, PENDING, OperationRecord, Status
from ..timestamps import format_api
from .common import decode_token, emulator, encode_token, endpoint, limit_param, query


def operation_json(record: OperationRecord, status: Status) -> dict[str, Any]:
    results = None
    if status.state == COMPLETED and status.expires is not None:
        results = {
            "expires": format_api(status.expires),
            "searchExportId": record.search_export_id,
        }
    return {
        "id": record.id,
        "type": OPERATION_TYPE,
        "details": None,
        "results": results,
        "state": status.state,
        "errorDetails": status.error_details,
        "createdAt": format_api(record.created_at),
        "finishedAt": format_api(status.finished_at) if status.finished_at else None,
        "estimatePctComplete": status.pct,
        "step": status.step,
    }


@endpoint("operations.get")
async def get_operation(request: Request, principal: Principal) -> Response:
    em = emulator(request)
    record, status = em.exports.get(principal, request.path_params["operationId"], poll=True)
    return em.renderer.json(operation_json(record, status))


@endpoint("operations.list")
async def list_operations(request: Request, principal: Principal) -> Response:
    em = emulator(request)
    op_type = query(request, "type")
    if op_type not in (None, "", OPERATION_TYPE):
        raise InvalidArgument(
            f"type {op_type!r} is not an operation type; allowed: {OPERATION_TYPE}"
        )
    state = query(request, "state") or None
    states = (PENDING, COMPLETED, "ERROR", "FAILED")
    if state is not None and state not in states:
        raise InvalidArgument(f"state {state!r} is not one of {', '.join(states)}")
    page, last_seq = em.exports.list(
        principal,
        state=state,
        limit=limit_param(request, default=100, maximum=100),
        after_seq=decode_token(query(request, "paginationToken", "pagination_token"), "ops"),
    )
    body: dict[str, Any] = {"operations": [operation_json(r, s) for r, s in page]}
    if last_seq is not None:
        body["nextPaginationToken"] = encode_token("ops", last_seq)
    return em.renderer.json(body)


@endpoint("operations.cancel")
async def cancel_operation(request: Request, principal: Principal) -> Response:
    em = emulator(request)
    em.exports.cancel(principal, request.path_params["operationId"])
    return em.renderer.json({})


routes = [
    Route("/operations/v1", list_operations, methods=["GET"]),
    Route("/operations/v1/{operationId}", get_operation, methods=["GET"]),
    Route("/operations/v1/{operationId}/cancel", cancel_operation, methods=["POST"]),
]
