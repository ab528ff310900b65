"""POST /segments/v1/exports: validate the body in either casing, then create the operation."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.responses import Response
from starlette.routing import Route

from ...contract import EXPORT_TYPES, FORMATS, SCOPE_ALIASES, SCOPES, TYPE_INDIVIDUAL
from ...errors import InvalidArgument, echo
from ...exports.spec import ExportRequest, TimeRange
from ...files.fields import MAX_FIELDS
from ...timestamps import parse_rfc3339, to_ms
from .common import Call, endpoint, pick


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string, got {type(value).__name__}")
    return value


def _enum(
    value: Any, name: str, allowed: tuple[str, ...], aliases: dict[str, str] | None = None
) -> str:
    if value is None or value == "":
        raise InvalidArgument(f"{name} is required; one of {', '.join(allowed)}")
    if isinstance(value, str):
        canonical = (aliases or {}).get(value, value)
        if canonical in allowed:
            return canonical
    raise InvalidArgument(f"{name} {echo(value)} is not one of {', '.join(allowed)}")


def _time_range(value: Any, name: str) -> TimeRange | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgument(f'{name} must be an object {{"start": ..., "end": ...}}')
    bounds: list[int | None] = []
    for part in ("start", "end"):
        raw = value.get(part)
        if raw is None or raw == "":
            bounds.append(None)
            continue
        text = _string(raw, f"{name}.{part}")
        try:
            bounds.append(to_ms(parse_rfc3339(text)))
        except ValueError as exc:
            raise InvalidArgument(f"{name}.{part}: {exc}") from None
    start, end = bounds
    if start is not None and end is not None and start >= end:
        raise InvalidArgument(f"{name}.start must be before {name}.end (the end is exclusive)")
    return TimeRange(start, end)


def _fields(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument("fields must be an array of field names (strings)")
    if len(value) > MAX_FIELDS:  # before any per-name work
        raise InvalidArgument(f"fields lists {len(value)} names; at most {MAX_FIELDS}")
    return tuple(value) or None  # protobuf: an empty repeated field is the same as none


def _timezone(value: Any) -> str:
    if value is None or value == "":
        return "UTC"
    name = _string(value, "timezone")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        raise InvalidArgument(
            f"timezone {echo(name)} is not an IANA time zone name such as 'UTC' or "
            "'America/New_York'"
        ) from None
    return name


def parse_request(body: dict[str, Any]) -> ExportRequest:
    segment_id = pick(body, "segmentId", "segment_id")
    if segment_id is None or segment_id == "":
        raise InvalidArgument("segmentId is required: a segment id such as 'everyone'")
    export_type = _enum(body.get("type"), "type", EXPORT_TYPES)
    details = pick(body, "eventDetails", "event_details")
    scope = None
    if details is not None:
        if not isinstance(details, dict):
            raise InvalidArgument('eventDetails must be an object {"scope": "SCOPE_..."}')
        if export_type == TYPE_INDIVIDUAL:
            raise InvalidArgument(
                "eventDetails applies to event exports only; for every event of matching "
                "individuals send type TYPE_EVENT with eventDetails.scope SCOPE_INDIVIDUAL"
            )
        if details.get("scope") not in (None, ""):
            scope = _enum(details["scope"], "eventDetails.scope", SCOPES, SCOPE_ALIASES)
    return ExportRequest(
        segment_id=_string(segment_id, "segmentId"),
        type=export_type,
        format=_enum(body.get("format"), "format", FORMATS),
        time_range=_time_range(pick(body, "timeRange", "time_range"), "timeRange"),
        segment_time_range=_time_range(
            pick(body, "segmentTimeRange", "segment_time_range"), "segmentTimeRange"
        ),
        timezone=_timezone(body.get("timezone")),
        fields=_fields(body.get("fields")),
        scope=scope,
    )


@endpoint("segments.exports.create", json_body=True)
def create_export(call: Call) -> Response:
    record = call.em.exports.create(call.principal, parse_request(call.body), call.control)
    return call.json({"operationId": record.id})


routes = [Route("/segments/v1/exports", create_export, methods=["POST"])]
