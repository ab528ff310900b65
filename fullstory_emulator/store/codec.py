"""JSON forms of the stored records, for stores that keep them outside the process."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from ..settings import RateLimit
from .records import (
    UNSET,
    ControlState,
    ExportSpec,
    FaultRule,
    Lifecycle,
    LifecycleRule,
    OperationRecord,
)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def encode_operation(record: OperationRecord) -> dict[str, Any]:
    data = dataclasses.asdict(record)
    for name in ("created_at", "cancelled_at", "finished_at", "polled_at"):
        data[name] = _time(getattr(record, name))
    return data


def decode_operation(data: dict[str, Any]) -> OperationRecord:
    spec = dict(data["spec"], fields=tuple(data["spec"]["fields"]))
    life = dict(data["lifecycle"], script=tuple(data["lifecycle"]["script"]))
    return OperationRecord(
        **{
            **data,
            "spec": ExportSpec(**spec),
            "lifecycle": Lifecycle(**life),
            "created_at": _parse_time(data["created_at"]),
            "cancelled_at": _parse_time(data["cancelled_at"]),
            "finished_at": _parse_time(data["finished_at"]),
            "polled_at": _parse_time(data.get("polled_at")),
        }
    )


def _override(value: Any) -> Any:
    if value is UNSET:
        return {"unset": True}
    if isinstance(value, RateLimit):
        return {"rateLimit": str(value)}
    return {"value": value}


def _restore(data: dict[str, Any]) -> Any:
    if data.get("unset"):
        return UNSET
    if "rateLimit" in data:
        return RateLimit.parse(data["rateLimit"])
    return data["value"]


def encode_control(state: ControlState) -> dict[str, Any]:
    return {
        "lifecycle": [dataclasses.asdict(r) for r in state.lifecycle],
        "faults": [dataclasses.asdict(r) for r in state.faults],
        "rate_limit": _override(state.rate_limit),
        "deny_next": state.deny_next,
        "deny_retry_after": state.deny_retry_after,
        "url_ttl": _override(state.url_ttl),
        "export_duration": _override(state.export_duration),
        "failure_state": _override(state.failure_state),
        "max_export_events": _override(state.max_export_events),
        "next_rule": state.next_rule,
    }


def decode_control(data: dict[str, Any]) -> ControlState:
    return ControlState(
        lifecycle=tuple(
            LifecycleRule(**{**r, "script": tuple(r["script"])}) for r in data["lifecycle"]
        ),
        faults=tuple(
            FaultRule(**{**r, "headers": tuple(tuple(h) for h in r["headers"])})
            for r in data["faults"]
        ),
        rate_limit=_restore(data["rate_limit"]),
        deny_next=data["deny_next"],
        deny_retry_after=data["deny_retry_after"],
        url_ttl=_restore(data["url_ttl"]),
        export_duration=_restore(data["export_duration"]),
        # absent from state written before these overrides existed
        failure_state=_restore(data.get("failure_state", {"unset": True})),
        max_export_events=_restore(data.get("max_export_events", {"unset": True})),
        next_rule=data["next_rule"],
    )
