"""/openapi.json: the emulated FullStory API exactly as served, and (tagged apart) the control
API. Built from the same enums the handlers validate with, so the two cannot drift."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from .. import __version__
from ..clock import RANGE_TEXT
from ..contract import (
    EXPORT_TYPES,
    FAILURE_STATES,
    FORMATS,
    OPERATION_TYPES,
    SCOPE_ALIASES,
    SCOPES,
    SEARCH_EXPORT,
    STATES,
)
from ..control.specs import DEFAULT_LIMIT, LIMITS, MAX_TEXT
from ..durations import MAX_SECONDS
from ..files.fields import MAX_FIELDS, MAX_NAME_CHARS
from ..settings import Settings

FULLSTORY, CONTROL, STORAGE = "FullStory Segment Export", "Emulator control", "Cloud storage"
ERRORS = {
    400: "Invalid argument: the message names the field and the allowed values",
    401: "Missing or unknown API key",
    403: "The key's role may not do this",
    404: "Not found",
    405: "Method not allowed on this path",
    408: "The request body did not arrive within --read-timeout",
    409: "The resource's state does not allow it (e.g. the operation already finished)",
    413: "Request body too large (--max-body-bytes)",
    415: "A control API body that is not application/json (what a web page elsewhere could post)",
    421: "A Host the emulator does not answer to (DNS rebinding; --allowed-hosts adds names)",
    429: "Rate limited; Retry-After says when to try again",
    501: "Not possible (e.g. cancelling a finished operation)",
    503: "The emulator's state (--data-dir) is locked by another process; Retry-After says when",
}
TEN_YEARS = MAX_SECONDS
ORIGIN_REFUSED = (
    "A call from a foreign Origin (a web page elsewhere), or a key whose role may not do this"
)
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer", "minimum": 0}}}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def op(
    summary: str,
    tag: str,
    ok: dict[str, Any],
    errors: list[int],
    *,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    secured: bool = True,
    body_required: bool = True,
    operation_id: str,
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok}
    if body is not None:
        errors = [*errors, 408, 413]
    for status in sorted({*errors, 421, 503}):
        error = json_body(ref("Error"), ERRORS[status])
        if status in (429, 503):
            error["headers"] = RETRY_AFTER
        responses[str(status)] = error
    out: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "operationId": operation_id,
        "responses": responses,
    }
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": body}},
        }
    if not secured:
        out["security"] = []
    return out


def query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def path(name: str, description: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": description,
    }


TIMESTAMP = {"type": "string", "format": "date-time"}
OPTIONAL_TIMESTAMP = {
    "anyOf": [TIMESTAMP, {"type": "string", "maxLength": 0}],
    "description": "RFC 3339, or an empty string for an open end",
}
PAGE_TOKEN = query(
    "paginationToken",
    {"type": "string"},
    "the nextPaginationToken of the previous page, as it was given: an opaque token, so any "
    "other string is refused with 400",
)
EMPTY = {"type": "string", "maxLength": 0}
LIMIT = {"anyOf": [{"type": "integer", "minimum": 0}, EMPTY]}  # empty or 0: the default


def whole_or_empty(low: int, high: int) -> dict[str, Any]:
    """A whole number in a range, or empty for "not given", as the control routes read it."""
    return {"anyOf": [{"type": "integer", "minimum": low, "maximum": high}, EMPTY]}


def enum_or_empty(values: list[str]) -> dict[str, Any]:
    """An enum whose empty value means "not given", as the handlers read it."""
    return {"type": "string", "enum": ["", *values]}


def schemas() -> dict[str, Any]:
    time_range = {
        "type": "object",
        "properties": {"start": OPTIONAL_TIMESTAMP, "end": OPTIONAL_TIMESTAMP},
        "description": "start inclusive, end exclusive; filters events on EventStart",
    }
    return {
        "Error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "integer", "description": "gRPC status code"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {}},
            },
        },
        "Segment": {
            "type": "object",
            "required": ["id", "name", "creator", "url"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "creator": {"type": "string"},
                "created": {**TIMESTAMP, "description": "absent for built-in segments"},
                "url": {"type": "string"},
            },
        },
        "SegmentList": {
            "type": "object",
            "required": ["segments"],
            "properties": {
                "segments": {"type": "array", "items": ref("Segment")},
                "nextPaginationToken": {"type": "string"},
            },
        },
        "TimeRange": time_range,
        "CreateExportRequest": {
            "type": "object",
            "required": ["segmentId", "type", "format"],
            "description": "Members may also be sent in snake_case (segment_id, time_range, ...). "
            "Refused with 400 although the schema cannot say so: a range whose start is not "
            "before its end, eventDetails with TYPE_INDIVIDUAL or a scope that contradicts the "
            "type, field names outside the catalog.",
            "properties": {
                "segmentId": {"type": "string", "minLength": 1},
                "type": {"type": "string", "enum": list(EXPORT_TYPES)},
                "format": {"type": "string", "enum": list(FORMATS)},
                "timeRange": ref("TimeRange"),
                "segmentTimeRange": ref("TimeRange"),
                "timezone": {
                    "type": "string",
                    "enum": ["", *sorted(available_timezones())],
                    "description": "IANA name; empty or absent: UTC",
                },
                "fields": {
                    "type": "array",
                    "items": {"type": "string", "maxLength": MAX_NAME_CHARS},
                    "uniqueItems": True,
                    "maxItems": MAX_FIELDS,
                    "description": "export columns: names of the catalog, custom variables "
                    "<kind>_<name>_<type> or the tokens user_*, evt_*, page_* (names outside "
                    "these are refused with 400); at most 1000",
                },
                "eventDetails": {
                    "type": "object",
                    "properties": {"scope": {"type": "string", "enum": [*SCOPES, *SCOPE_ALIASES]}},
                },
            },
        },
        "CreateExportResponse": {
            "type": "object",
            "required": ["operationId"],
            "properties": {"operationId": {"type": "string"}},
        },
        "Operation": {
            "type": "object",
            "required": [
                "id",
                "type",
                "details",
                "results",
                "state",
                "errorDetails",
                "createdAt",
                "finishedAt",
                "estimatePctComplete",
                "step",
            ],
            "properties": {
                "id": {"type": "string"},
                "type": {"type": "string", "enum": [SEARCH_EXPORT]},
                "details": {"nullable": True},
                "results": {
                    "type": "object",
                    "nullable": True,
                    "required": ["expires", "searchExportId"],
                    "properties": {"expires": TIMESTAMP, "searchExportId": {"type": "string"}},
                },
                "state": {
                    "type": "string",
                    "enum": list(STATES),
                    "description": "a failed operation reports ERROR or FAILED, as configured "
                    "(--failure-state, or failureState in POST /__emulator/config); "
                    "FullStory's own clients recognise FAILED",
                },
                "errorDetails": {"type": "string"},
                "createdAt": TIMESTAMP,
                "finishedAt": {**TIMESTAMP, "nullable": True},
                "estimatePctComplete": {"type": "integer", "minimum": 0, "maximum": 100},
                "step": {"type": "string"},
            },
        },
        "OperationList": {
            "type": "object",
            "required": ["operations"],
            "properties": {
                "operations": {"type": "array", "items": ref("Operation")},
                "nextPaginationToken": {"type": "string"},
            },
        },
        "ExportResults": {
            "type": "object",
            "required": ["location", "expires"],
            "properties": {"location": {"type": "string"}, "expires": TIMESTAMP},
        },
        "Empty": {"type": "object", "maxProperties": 0},
        "Id": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
        "Clock": {
            "type": "object",
            "required": ["now", "frozen"],
            "properties": {"now": TIMESTAMP, "frozen": {"type": "boolean"}},
        },
    }


def fullstory_paths(bucket: str) -> dict[str, Any]:
    storage_error = {
        "description": "Cloud-storage error (ExpiredToken, SignatureDoesNotMatch, "
        "AccessDenied, NoSuchKey)",
        "content": {"application/xml": {"schema": {"type": "string"}}},
    }
    goog = [
        "X-Goog-Algorithm",
        "X-Goog-Credential",
        "X-Goog-Date",
        "X-Goog-Expires",
        "X-Goog-SignedHeaders",
        "X-Goog-Signature",
    ]
    return {
        "/segments/v1": {
            "get": op(
                "List segments",
                FULLSTORY,
                json_body(ref("SegmentList")),
                [400, 401, 429],
                params=[
                    query("limit", LIMIT, "page size; default 20, at most 100"),
                    PAGE_TOKEN,
                    query("creator", {"type": "string"}, "creator's email"),
                ],
                operation_id="listSegments",
            )
        },
        "/segments/v1/{segmentId}": {
            "get": op(
                "Get a segment",
                FULLSTORY,
                json_body(ref("Segment")),
                [401, 404, 429],
                params=[path("segmentId")],
                operation_id="getSegment",
            )
        },
        "/segments/v1/exports": {
            "post": op(
                "Create a segment export",
                FULLSTORY,
                json_body(ref("CreateExportResponse")),
                [400, 401, 403, 404, 413, 429],
                body=ref("CreateExportRequest"),
                operation_id="createSegmentExport",
            )
        },
        "/operations/v1": {
            "get": op(
                "List operations",
                FULLSTORY,
                json_body(ref("OperationList")),
                [400, 401, 429],
                params=[
                    query("type", enum_or_empty(list(OPERATION_TYPES))),
                    query("state", enum_or_empty(list(STATES))),
                    query("limit", LIMIT, "default and at most 100"),
                    PAGE_TOKEN,
                ],
                operation_id="listOperations",
            )
        },
        "/operations/v1/{operationId}": {
            "get": op(
                "Get an operation's status",
                FULLSTORY,
                json_body(ref("Operation")),
                [401, 404, 429],
                params=[path("operationId")],
                operation_id="getOperation",
            )
        },
        "/operations/v1/{operationId}/cancel": {
            "post": op(
                "Cancel an operation",
                FULLSTORY,
                json_body(ref("Empty")),
                [401, 404, 429, 501],
                params=[path("operationId")],
                operation_id="cancelOperation",
            )
        },
        "/search/v1/exports/{searchExportId}/results": {
            "get": op(
                "Get a download URL for an export",
                FULLSTORY,
                json_body(ref("ExportResults")),
                [401, 404, 429],
                params=[path("searchExportId")],
                operation_id="getExportResults",
            )
        },
        f"/{bucket}/{{object}}": {
            "get": {
                "summary": "Download an export (the signed URL from the results endpoint)",
                "tags": [STORAGE],
                "operationId": "downloadExport",
                "security": [],
                "parameters": [path("object")] + [query(name, {"type": "string"}) for name in goog],
                "responses": {
                    "200": {
                        "description": "the gzip file as raw bytes (no Content-Encoding)",
                        "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
                        "content": {
                            "application/gzip": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    "400": storage_error,
                    "403": storage_error,
                    "404": storage_error,
                    "507": {
                        "description": "InsufficientStorage: the file is larger than the "
                        "whole file cache (--file-cache-bytes), so it is not kept or made "
                        "again; the Details say which settings to change",
                        "content": {"application/xml": {"schema": {"type": "string"}}},
                    },
                    "421": storage_error,
                },
            }
        },
    }


def control_paths() -> dict[str, Any]:
    def control(
        summary: str,
        ok: dict[str, Any],
        *,
        body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None,
        errors: list[int] | None = None,
        body_required: bool = True,
        name: str,
    ) -> dict[str, Any]:
        out = op(
            summary,
            CONTROL,
            ok,
            [*([400, 401, 404] if errors is None else errors), *([415] if body else [])],
            body=body,
            params=params,
            secured=False,
            body_required=body_required,
            operation_id=name,
        )
        out["description"] = (
            "With `Authorization: Basic <API key>` it acts on that key's tenant, with "
            "`X-Emulator-Tenant: <tenant id>` on that tenant; with neither, on the whole "
            "instance (under `--control-auth tenant`, the last two only with the admin "
            "X-Emulator-Token)."
        )
        if name != "health":
            out["parameters"] = [*out.get("parameters", []), TENANT_PARAM]
        # The Origin check (hosts.HostPolicy) applies to every control call, health too.
        out["responses"]["403"] = json_body(ref("Error"), ORIGIN_REFUSED)
        return out

    anything = {"type": "object"}
    empty = json_body(ref("Empty"))

    def maybe(schema: dict[str, Any]) -> dict[str, Any]:
        return {**schema, "nullable": True}  # null: as if the member were not sent

    def count(low: int, high: int = DEFAULT_LIMIT) -> dict[str, Any]:
        return maybe({"type": "integer", "minimum": low, "maximum": high})

    def seconds(name: str, low: int = 0) -> dict[str, Any]:
        return maybe({"type": "number", "minimum": low, "maximum": LIMITS[name]})

    text = maybe({"type": "string", "maxLength": MAX_TEXT})
    # Every control body refuses members it does not take (400 naming them), as specs.members
    lifecycle_body = {
        "type": "object",
        "additionalProperties": False,
        "description": "at most one of finishAfterSeconds, finishAfterPolls, immediately and "
        "pctSequence; pctSequence never decreases (both refused with 400 otherwise)",
        "properties": {
            "segmentId": text,
            "finishAfterSeconds": seconds("finishAfterSeconds"),
            "finishAfterPolls": count(0),
            "immediately": maybe({"type": "boolean"}),
            "pctSequence": maybe(
                {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "integer", "minimum": 0, "maximum": 99},
                }
            ),
            "fail": text,
            "times": count(1),
        },
    }
    action = (
        "a fault needs an action: status, latencyMs > 0, drop: true, truncateAfterBytes, "
        "truncateAfterFraction, expired: true (downloads only: answered as a signed URL past its "
        "expiry, 400 ExpiredToken) or "
    )
    fault_body = {
        "type": "object",
        "additionalProperties": False,
        "description": action + "bytesPerSecond",
        "properties": {
            "method": text,
            "path": text,
            "header": maybe(
                {
                    "type": "object",
                    "additionalProperties": {"type": "string", "maxLength": MAX_TEXT},
                }
            ),
            "status": count(400, 599),
            "retryAfter": count(0),
            "message": text,
            "latencyMs": seconds("latencyMs"),
            "drop": {"type": "boolean"},
            "truncateAfterBytes": count(0),
            "truncateAfterFraction": maybe(
                {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "exclusiveMinimum": True,
                    "exclusiveMaximum": True,
                }
            ),
            "expired": {"type": "boolean"},
            "bytesPerSecond": count(1),
            "times": count(1),
            "probability": maybe({"type": "number", "minimum": 0, "maximum": 1}),
        },
        "anyOf": [
            {"required": ["status"], "properties": {"status": {"type": "integer"}}},
            {
                "required": ["latencyMs"],
                "properties": {
                    "latencyMs": {"type": "number", "minimum": 0, "exclusiveMinimum": True}
                },
            },
            {"required": ["drop"], "properties": {"drop": {"enum": [True]}}},
            {
                "required": ["truncateAfterBytes"],
                "properties": {"truncateAfterBytes": {"type": "integer"}},
            },
            {
                "required": ["truncateAfterFraction"],
                "properties": {"truncateAfterFraction": {"type": "number"}},
            },
            {"required": ["expired"], "properties": {"expired": {"enum": [True]}}},
            {"required": ["bytesPerSecond"], "properties": {"bytesPerSecond": {"type": "integer"}}},
        ],
    }
    clock_body = {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "description": f"the clock lies from {RANGE_TEXT}: a `set` outside, or an advance "
        "past the end, is refused with 400",
        "properties": {
            "advance": {"type": "number", "minimum": 0, "maximum": TEN_YEARS},
            "set": TIMESTAMP,
            "freeze": {"type": "boolean"},
        },
    }
    ratelimit_body = {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "description": "limit 'N/SECONDS,BURST' (rate up to 1e6, period 0.001 s to ten years, "
        "burst 1 to 1e6) or 'off'; at least one of limit, denyNext, retryAfter",
        "properties": {
            "limit": {"type": "string"},
            "denyNext": count(0),
            "retryAfter": count(1),
        },
        "anyOf": [
            {"required": ["limit"], "properties": {"limit": {"type": "string"}}},
            {"required": ["denyNext"], "properties": {"denyNext": {"type": "integer"}}},
            {"required": ["retryAfter"], "properties": {"retryAfter": {"type": "integer"}}},
        ],
    }
    config_body = {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "urlTtl": seconds("urlTtl", low=1),
            "exportDuration": seconds("exportDuration"),
            "failureState": {
                "type": "string",
                "enum": [*FAILURE_STATES, None],
                "nullable": True,
                "description": "the state a failed operation reports: ERROR (the "
                "emulator's default) or FAILED (what FullStory's own clients, "
                "hauser and the SDKs, recognise)",
            },
            "maxExportEvents": {
                **count(1, LIMITS["maxExportEvents"]),
                "description": "the largest export this scope may create, in estimated "
                "events (--max-export-events); a larger one is refused with 400. Under "
                "--control-auth tenant a tenant's key may not set it above the instance's "
                "(403): only the admin token may",
            },
        },
    }
    paths: dict[str, Any] = {
        "/__emulator/health": {
            "get": control("Health", json_body(anything), errors=[], name="health")
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "tags": [CONTROL],
                "operationId": "metrics",
                "security": [],
                "responses": {
                    "200": {
                        "description": "text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/__emulator/reset": {"post": control("Back to the seeded fixtures", empty, name="reset")},
        "/__emulator/clock": {
            "get": control("Read the clock", json_body(ref("Clock")), name="getClock"),
            "post": control(
                "Move, set, freeze or unfreeze the clock",
                json_body(ref("Clock")),
                body=clock_body,
                name="moveClock",
            ),
        },
        "/__emulator/lifecycle": {
            "get": control("List lifecycle rules", json_body(anything), name="listLifecycle"),
            "post": control(
                "Add a lifecycle rule",
                json_body(ref("Id")),
                body=lifecycle_body,
                name="addLifecycle",
            ),
            "delete": control("Drop the lifecycle rules", empty, name="clearLifecycle"),
        },
        "/__emulator/operations/{operationId}/complete": {
            "post": control(
                "Complete a pending operation now",
                empty,
                params=[path("operationId")],
                errors=[400, 401, 404, 409],
                name="completeOperation",
            )
        },
        "/__emulator/operations/{operationId}/fail": {
            "post": control(
                "Fail a pending operation now",
                empty,
                params=[path("operationId")],
                body={
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"errorDetails": text},
                },
                body_required=False,
                errors=[400, 401, 404, 409],
                name="failOperation",
            )
        },
        "/__emulator/faults": {
            "get": control("List fault rules", json_body(anything), name="listFaults"),
            "post": control(
                "Add a fault rule", json_body(ref("Id")), body=fault_body, name="addFault"
            ),
            "delete": control("Drop every fault rule", empty, name="clearFaults"),
        },
        "/__emulator/faults/{ruleId}": {
            "delete": control(
                "Drop one fault rule", empty, params=[path("ruleId")], name="removeFault"
            )
        },
        "/__emulator/journal": {
            "get": control(
                "Recorded requests",
                json_body(anything),
                params=[
                    query("path", {"type": "string"}, "glob"),
                    query("method", {"type": "string"}),
                    query("status", {"type": "string"}, "a status (429) or a class (4xx)"),
                    query(
                        "limit",
                        {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 1000}, EMPTY]},
                        "page size, at most and by default 1000",
                    ),
                    query(
                        "pageToken",
                        {"type": "string"},
                        "the nextPageToken of the previous page (an opaque token: any other "
                        "string is refused with 400)",
                    ),
                    query(
                        "last",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                        "the newest N matching entries instead of a page",
                    ),
                ],
                name="journal",
            ),
            "delete": control("Forget the journal", empty, name="clearJournal"),
        },
        "/__emulator/ratelimit": {
            "post": control(
                "Change the rate limit, or refuse the next N requests",
                empty,
                body=ratelimit_body,
                name="rateLimit",
            )
        },
        "/__emulator/config": {
            "post": control(
                "Override urlTtl, exportDuration, failureState or maxExportEvents (null "
                "restores the setting)",
                empty,
                body=config_body,
                errors=[400, 401, 403, 404],
                name="config",
            )
        },
        "/__emulator/scenarios": {
            "get": control("Named scenarios", json_body(anything), name="listScenarios")
        },
        "/__emulator/scenarios/{name}": {
            "post": control("Apply a scenario", empty, params=[path("name")], name="applyScenario")
        },
    }
    for route, item in console_paths(control).items():
        paths.setdefault(route, {}).update(item)
    return paths


TENANT_PARAM = {
    "name": "X-Emulator-Tenant",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,200}$"},
    "description": "the tenant to act on (GET /__emulator/tenants lists them), for callers "
    "that hold no API key of it, such as the console; sent with an API key, it must name that "
    "key's tenant (else 400)",
}


def console_paths(control: Any) -> dict[str, Any]:
    """The control endpoints the console reads and acts through, and the console's own pages."""
    strings = {"type": "array", "items": {"type": "string"}}
    console_operation = {
        "allOf": [
            ref("Operation"),
            {
                "type": "object",
                "required": ["tenant", "segmentId", "segmentName", "format"],
                "properties": {
                    "tenant": {"type": "string"},
                    "segmentId": {"type": "string"},
                    "segmentName": {"type": "string"},
                    "format": {"type": "string", "enum": list(FORMATS)},
                },
            },
        ]
    }
    html = {
        "description": "the console page",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    not_found = json_body(ref("Error"), ERRORS[404])
    redirect = {
        "description": "a browser (Accept: text/html) is sent to the console",
        "headers": {"Location": {"schema": {"type": "string"}}},
    }

    def page(
        summary: str, name: str, responses: dict[str, Any], params: list[Any] | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "summary": summary,
            "tags": [CONTROL],
            "operationId": name,
            "security": [],
            "responses": responses,
        }
        if params:
            out["parameters"] = params
        return out

    return {
        "/__emulator/tenants": {
            "get": control(
                "The tenants the emulator holds anything for (with a key: that key's tenant), "
                "the labels a person knows them by (a keys file's tenant name, or a key's "
                "region and first characters, never the key), and the demo key's tenant, "
                "where exports start when none is chosen (null if the demo key may not export)",
                json_body(
                    {
                        "type": "object",
                        "required": ["tenants", "labels", "default"],
                        "properties": {
                            "tenants": strings,
                            "labels": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                            "default": {
                                "type": "object",
                                "nullable": True,
                                "required": ["tenant", "label"],
                                "properties": {
                                    "tenant": {"type": "string"},
                                    "label": {"type": "string"},
                                },
                            },
                        },
                    }
                ),
                name="listTenants",
            )
        },
        "/__emulator/operations": {
            "get": control(
                "Operations of the tenant (or every tenant), newest first",
                json_body(
                    {
                        "type": "object",
                        "required": ["operations"],
                        "properties": {"operations": {"type": "array", "items": console_operation}},
                    }
                ),
                params=[
                    query("state", enum_or_empty(list(STATES)), "empty or absent: any"),
                    query("limit", whole_or_empty(1, 1000), "empty or absent: 100"),
                ],
                name="listAllOperations",
            )
        },
        "/__emulator/operations/{operationId}/results": {
            "get": control(
                "A fresh signed download URL for a completed export",
                json_body(ref("ExportResults")),
                params=[path("operationId")],
                name="operationResults",
            )
        },
        "/__emulator/operations/{operationId}/preview": {
            "get": control(
                "The first rows of a completed export, decoded from its file",
                json_body(
                    {
                        "type": "object",
                        "required": ["operationId", "format", "columns", "rows", "more"],
                        "properties": {
                            "operationId": {"type": "string"},
                            "format": {"type": "string", "enum": list(FORMATS)},
                            "columns": strings,
                            "rows": {
                                "type": "array",
                                "items": strings,
                                "description": "cells in column order, as the file writes them",
                            },
                            "more": {"type": "boolean", "description": "the file has more rows"},
                        },
                    }
                ),
                params=[
                    path("operationId"),
                    query("rows", whole_or_empty(1, 200), "empty or absent: 20"),
                ],
                name="previewOperation",
            )
        },
        "/__emulator/exports": {
            "post": control(
                "Start an export for the tenant (the body of POST /segments/v1/exports)",
                json_body(ref("CreateExportResponse")),
                body=ref("CreateExportRequest"),
                name="startExport",
            )
        },
        "/__emulator/segments": {
            "get": control(
                "Every segment with its definition",
                json_body(
                    {
                        "type": "object",
                        "required": ["segments"],
                        "properties": {
                            "segments": {
                                "type": "array",
                                "items": {
                                    "allOf": [
                                        ref("Segment"),
                                        {
                                            "type": "object",
                                            "required": ["windowDays", "definition"],
                                            "properties": {
                                                "windowDays": {"type": "integer"},
                                                "definition": {"type": "object"},
                                            },
                                        },
                                    ]
                                },
                            }
                        },
                    }
                ),
                name="listSegmentDefinitions",
            )
        },
        "/__emulator/config": {
            "get": control(
                "The settings in force, and this scope's own overrides",
                json_body(
                    {
                        "type": "object",
                        "required": [
                            "urlTtl",
                            "exportDuration",
                            "failureState",
                            "maxExportEvents",
                            "overrides",
                        ],
                        "properties": {
                            "urlTtl": {"type": "number"},
                            "exportDuration": {"type": "number"},
                            "failureState": {"type": "string"},
                            "maxExportEvents": {"type": "integer"},
                            "overrides": {"type": "object"},
                        },
                    }
                ),
                name="getConfig",
            )
        },
        "/__emulator/lifecycle/{ruleId}": {
            "delete": control(
                "Drop one lifecycle rule",
                json_body(ref("Empty")),
                params=[path("ruleId")],
                name="removeLifecycle",
            )
        },
        "/": {
            "get": page(
                "A browser is sent to the console", "home", {"302": redirect, "404": not_found}
            )
        },
        "/__emulator": {
            "get": page(
                "A browser is sent to the console",
                "controlHome",
                {"302": redirect, "404": not_found},
            )
        },
        "/__emulator/ui": {"get": page("The web console", "console", {"200": html})},
        "/__emulator/ui/{asset}": {
            "get": page(
                "The console's stylesheet and script",
                "consoleAsset",
                {
                    "200": {
                        "description": "console.css or console.js",
                        "content": {
                            "text/css": {"schema": {"type": "string"}},
                            "text/javascript": {"schema": {"type": "string"}},
                        },
                    },
                    "404": not_found,
                },
                params=[path("asset")],
            )
        },
    }


def document(settings: Settings) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "fullstory-emulator",
            "version": __version__,
            "description": "FullStory's Segment Export API as the emulator serves it, the "
            "signed-URL download, and the emulator's own control API.",
        },
        "servers": [{"url": settings.base_url()}],
        "tags": [{"name": FULLSTORY}, {"name": STORAGE}, {"name": CONTROL}],
        "security": [{"apiKey": []}],
        "paths": {**fullstory_paths(settings.bucket), **control_paths()},
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Basic <API key>`: the raw key, not base64 of user:pass",
                }
            },
        },
    }
