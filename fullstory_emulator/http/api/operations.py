"""GET /operations/v1, GET /operations/v1/{id}, POST /operations/v1/{id}/cancel."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from ...contract import COMPLETED, OPERATION_TYPES, SEARCH_EXPORT, STATES
from ...errors import InvalidArgument, echo
from ...exports.lifecycle import Status
from ...logs import get_logger
from ...store.records import OperationRecord
from ...timestamps import format_api
from .common import Call, decode_token, encode_token, endpoint, limit_param, query

log = get_logger()  # says each hint once, for a user who reads logs


def operation_json(record: OperationRecord, status: Status) -> dict[str, Any]:
    results = None
    if status.state == COMPLETED and status.expires is not None:
        results = {
            "expires": format_api(status.expires),
            "searchExportId": record.search_export_id,
        }
    return {
        "id": record.id,
        "type": SEARCH_EXPORT,
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
def get_operation(call: Call) -> Response:
    operation_id = call.request.path_params["operationId"]
    record, status = call.em.exports.get(call.principal, operation_id, call.control, poll=True)
    response = call.json(operation_json(record, status))
    hint = call.em.exports.stall_hint(record, status)
    if hint is not None:
        response.headers["X-Emulator-Hint"] = hint
        if call.em.exports.first_hint(record):
            log.warning("operation %s: %s", record.id, hint)
    return response


@endpoint("operations.list")
def list_operations(call: Call) -> Response:
    request = call.request
    op_type = query(request, "type")
    if op_type not in (None, "", *OPERATION_TYPES):
        raise InvalidArgument(
            f"type {echo(op_type)} is not an operation type; allowed: {', '.join(OPERATION_TYPES)}"
        )
    state = query(request, "state") or None
    if state is not None and state not in STATES:
        raise InvalidArgument(f"state {echo(state)} is not one of {', '.join(STATES)}")
    limit = limit_param(request, default=100, maximum=100)  # checked whatever the type
    after_seq = decode_token(query(request, "paginationToken", "pagination_token"), "ops")
    if op_type not in (None, "", SEARCH_EXPORT):  # documented, but never created here
        return call.json({"operations": []})
    page, last_seq = call.em.exports.list(
        call.principal, call.control, state=state, limit=limit, after_seq=after_seq
    )
    body: dict[str, Any] = {"operations": [operation_json(r, s) for r, s in page]}
    if last_seq is not None:
        body["nextPaginationToken"] = encode_token("ops", last_seq)
    return call.json(body)


@endpoint("operations.cancel")
def cancel_operation(call: Call) -> Response:
    call.em.exports.cancel(call.principal, call.request.path_params["operationId"], call.control)
    return call.json({})


routes = [
    Route("/operations/v1", list_operations, methods=["GET"]),
    Route("/operations/v1/{operationId}", get_operation, methods=["GET"]),
    Route("/operations/v1/{operationId}/cancel", cancel_operation, methods=["POST"]),
]
