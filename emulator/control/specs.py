"""Control rules and overrides from their JSON form, and back.

The same JSON arrives in control API bodies, in scenario files and (as one header) in
`X-Emulator-Fault`; every value is checked here, and the message names the field and its range.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..contract import FAILURE_STATES
from ..durations import MAX_SECONDS
from ..errors import InvalidArgument
from ..settings import RateLimit
from ..store.records import UNSET, ControlState, FaultRule, LifecycleRule

LIMITS = {
    "status": 599,
    "latencyMs": 600_000,
    "finishAfterSeconds": MAX_SECONDS,
    "urlTtl": MAX_SECONDS,
    "exportDuration": MAX_SECONDS,
}
DEFAULT_LIMIT = 1_000_000_000
_DECIMAL = re.compile(r"\d{1,12}(?:\.\d{1,6})?", re.ASCII)
FAULT_HEADER_NAMES = {
    "status": "status",
    "retry-after": "retryAfter",
    "latency": "latencyMs",
    "truncate": "truncateAfterBytes",
    "bytes-per-second": "bytesPerSecond",
}


def number(body: Mapping[str, Any], name: str, *, low: float, integer: bool = False) -> Any:
    value = body.get(name)
    if value is None:
        return None
    high = LIMITS.get(name, DEFAULT_LIMIT)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high or (integer and value != int(value)):
        kind = "an integer" if integer else "a number"
        raise InvalidArgument(f"{name} must be {kind} from {low:g} to {high:g}, got {value!r}")
    return int(value) if integer else float(value)


MAX_TEXT = 4096  # characters of a message, path glob or header value in a rule


def text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    return checked_text(value, name)


def checked_text(value: Any, name: str) -> str:
    """A string the emulator can store and later write out: no lone surrogate, bounded."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string")
    if len(value) > MAX_TEXT:
        raise InvalidArgument(f"{name} must be at most {MAX_TEXT} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{name} must be valid Unicode (it holds a lone surrogate)") from None
    return value


def lifecycle_rule(body: Mapping[str, Any], rule_id: str) -> LifecycleRule:
    modes = [
        k
        for k in ("finishAfterSeconds", "finishAfterPolls", "immediately", "pctSequence")
        if body.get(k) not in (None, False)
    ]
    if len(modes) > 1:
        raise InvalidArgument(f"choose one of {', '.join(modes)}")
    script = body.get("pctSequence")
    script = [] if script is None else script
    if not isinstance(script, list) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 99 for p in script
    ):
        raise InvalidArgument("pctSequence must be a list of integers from 0 to 99")
    if any(b < a for a, b in itertools.pairwise(script)):
        raise InvalidArgument("pctSequence must never decrease (clients rely on it)")
    if body.get("immediately") is not None and not isinstance(body["immediately"], bool):
        raise InvalidArgument("immediately must be true or false")
    seconds = 0.0 if body.get("immediately") else number(body, "finishAfterSeconds", low=0)
    return LifecycleRule(
        id=rule_id,
        segment_id=text(body, "segmentId"),
        seconds=seconds,
        polls=number(body, "finishAfterPolls", low=0, integer=True),
        script=tuple(script),
        fail=text(body, "fail"),
        remaining=number(body, "times", low=1, integer=True),
    )


def fault_rule(body: Mapping[str, Any], rule_id: str, seed: int) -> FaultRule:
    status = number(body, "status", low=400, integer=True)  # an HTTP error status
    headers = body.get("header")
    headers = {} if headers is None else headers
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise InvalidArgument("header must be an object of header names to string values")
    for key, value in headers.items():
        checked_text(key, "header name")
        checked_text(value, f"header {key!r}")
    probability = number(body, "probability", low=0)
    if probability is not None and probability > 1:
        raise InvalidArgument("probability must be from 0 to 1")
    drop = body.get("drop", False)
    if not isinstance(drop, bool):
        raise InvalidArgument("drop must be true or false")
    rule = FaultRule(
        id=rule_id,
        method=(text(body, "method") or "").upper() or None,
        path=text(body, "path"),
        headers=tuple((k.lower(), v) for k, v in sorted(headers.items())),
        status=status,
        retry_after=number(body, "retryAfter", low=0, integer=True),
        message=text(body, "message"),
        latency_ms=number(body, "latencyMs", low=0) or 0.0,
        drop=drop,
        truncate_after_bytes=number(body, "truncateAfterBytes", low=0, integer=True),
        bytes_per_second=number(body, "bytesPerSecond", low=1, integer=True),
        remaining=number(body, "times", low=1, integer=True),
        probability=probability,
        seed=seed,
    )
    acts = (
        rule.status,
        rule.latency_ms,
        rule.drop,
        rule.truncate_after_bytes is not None,
        rule.bytes_per_second,
    )
    if not any(acts):
        raise InvalidArgument(
            "a fault needs an action: status, latencyMs, drop, truncateAfterBytes or bytesPerSecond"
        )
    return rule


def fault_header(value: str, seed: int) -> FaultRule:
    """`X-Emulator-Fault: status=429; retry-after=7`, `latency=250`, `drop`, `truncate=1024`."""
    body: dict[str, Any] = {}
    for part in value.replace(",", ";").split(";"):
        key, _, raw = part.strip().partition("=")
        key = key.strip().lower()
        if not key:
            continue
        if key == "drop" and not raw:
            body["drop"] = True
        elif key in FAULT_HEADER_NAMES and _DECIMAL.fullmatch(raw.strip()):
            body[FAULT_HEADER_NAMES[key]] = float(raw) if "." in raw else int(raw)
        else:
            raise InvalidArgument(
                f"X-Emulator-Fault: cannot read {part.strip()!r}; use status=N, retry-after=S, "
                "latency=MS, drop, truncate=BYTES or bytes-per-second=N"
            )
    return fault_rule(body, "header", seed)


def rate_limit_override(body: Mapping[str, Any], state: ControlState) -> ControlState:
    changes: dict[str, Any] = {}
    if "limit" in body:
        limit = body["limit"]
        if not isinstance(limit, str):
            raise InvalidArgument("limit must be a string such as '2/60,50' or 'off'")
        try:
            changes["rate_limit"] = RateLimit.parse(limit)
        except ValueError as exc:
            raise InvalidArgument(f"limit: {exc}") from None
    deny = number(body, "denyNext", low=0, integer=True)
    if deny is not None:
        changes["deny_next"] = deny
    retry = number(body, "retryAfter", low=1, integer=True)
    if retry is not None:
        changes["deny_retry_after"] = retry
    if not changes:
        raise InvalidArgument("send limit, denyNext and/or retryAfter")
    return replace(state, **changes)


def config_override(body: Mapping[str, Any], state: ControlState) -> ControlState:
    changes: dict[str, Any] = {}
    for name, attr in (("urlTtl", "url_ttl"), ("exportDuration", "export_duration")):
        if name in body:
            changes[attr] = UNSET if body[name] is None else number(body, name, low=0)
    if "failureState" in body:
        changes["failure_state"] = failure_state(body["failureState"])
    unknown = set(body) - {"urlTtl", "exportDuration", "failureState"}
    if unknown or not changes:
        raise InvalidArgument(
            "config takes urlTtl and/or exportDuration (seconds, or null) and/or failureState "
            f"({' or '.join(FAILURE_STATES)}, or null)"
            + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else "")
        )
    return replace(state, **changes)


def failure_state(value: Any) -> Any:
    """`failureState`: the name a failed operation's state takes, or null for the setting."""
    if value is None:
        return UNSET
    if not isinstance(value, str) or value.upper() not in FAILURE_STATES:
        raise InvalidArgument(
            f"failureState must be one of {', '.join(FAILURE_STATES)} (or null), got {value!r}"
        )
    return value.upper()


def lifecycle_json(rule: LifecycleRule) -> dict[str, Any]:
    body: dict[str, Any] = {"id": rule.id, "segmentId": rule.segment_id}
    if rule.seconds is not None:
        body["finishAfterSeconds"] = rule.seconds
    if rule.polls is not None:
        body["finishAfterPolls"] = rule.polls
    if rule.script:
        body["pctSequence"] = list(rule.script)
    return body | {"fail": rule.fail, "remaining": rule.remaining}


def fault_json(rule: FaultRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "method": rule.method,
        "path": rule.path,
        "header": dict(rule.headers),
        "status": rule.status,
        "retryAfter": rule.retry_after,
        "message": rule.message,
        "latencyMs": rule.latency_ms,
        "drop": rule.drop,
        "truncateAfterBytes": rule.truncate_after_bytes,
        "bytesPerSecond": rule.bytes_per_second,
        "remaining": rule.remaining,
        "probability": rule.probability,
    }


def describe_fault(rule: FaultRule) -> str:
    """One line for the journal and the X-Emulator-Fault answer header."""
    parts = [
        f"status={rule.status}" if rule.status else "",
        f"latency={rule.latency_ms:g}ms" if rule.latency_ms else "",
        "drop" if rule.drop else "",
        f"truncate={rule.truncate_after_bytes}" if rule.truncate_after_bytes is not None else "",
        f"bytes-per-second={rule.bytes_per_second}" if rule.bytes_per_second else "",
    ]
    return " ".join(p for p in parts if p) + ("" if rule.id == "header" else f" (rule {rule.id})")
