"""Control rules and overrides from their JSON form, and back.

The same JSON arrives in control API bodies, in scenario files and (as one header) in
`X-Emulator-Fault`; every value is checked here, and the message names the field and its range.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..contract import FAILURE_STATES
from ..durations import MAX_SECONDS
from ..errors import InvalidArgument, echo
from ..settings import MAX_EXPORT_EVENTS, RateLimit
from ..store.records import UNSET, ControlState, FaultRule, LifecycleRule

LIFECYCLE_MEMBERS = (
    "segmentId",
    "finishAfterSeconds",
    "finishAfterPolls",
    "immediately",
    "pctSequence",
    "fail",
    "times",
)
FAULT_MEMBERS = (
    "method",
    "path",
    "header",
    "status",
    "retryAfter",
    "message",
    "latencyMs",
    "drop",
    "truncateAfterBytes",
    "truncateAfterFraction",
    "expired",
    "bytesPerSecond",
    "times",
    "probability",
)
RATE_LIMIT_MEMBERS = ("limit", "denyNext", "retryAfter")
CONFIG_MEMBERS = ("urlTtl", "exportDuration", "failureState", "maxExportEvents")
LIMITS = {
    "status": 599,
    "latencyMs": 600_000,
    "finishAfterSeconds": MAX_SECONDS,
    "urlTtl": MAX_SECONDS,
    "exportDuration": MAX_SECONDS,
    "maxExportEvents": MAX_EXPORT_EVENTS,
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
        raise InvalidArgument(
            f"{name} must be {kind} from {_plain(low)} to {_plain(high)}, got {echo(value)}"
        )
    return int(value) if integer else float(value)


def _plain(bound: float) -> str:
    """A bound as a person writes it: 316224000, not 3.16224e+08."""
    return str(int(bound)) if bound == int(bound) else f"{bound:g}"


MAX_TEXT = 4096  # characters of a message, path glob or header value in a rule


def members(body: Mapping[str, Any], allowed: Sequence[str], what: str) -> None:
    """Refuse the members a body does not take, naming them and those it does: a misspelt
    `satus` would otherwise make another rule than the one meant, without a word."""
    unknown = [name for name in body if name not in allowed]
    if unknown:
        named = ", ".join(echo(name, quote=False) for name in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise InvalidArgument(f"{what} takes {', '.join(allowed)}; unknown: {named}{more}")


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
    members(body, LIFECYCLE_MEMBERS, "a lifecycle rule")
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
    if body.get("pctSequence") == []:
        raise InvalidArgument(
            "pctSequence needs at least one percent (the first poll's); leave it out for none"
        )
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
    members(body, FAULT_MEMBERS, "a fault rule")
    status = number(body, "status", low=400, integer=True)  # an HTTP error status
    headers = body.get("header")
    headers = {} if headers is None else headers
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise InvalidArgument("header must be an object of header names to string values")
    for key, value in headers.items():
        checked_text(key, "header name")
        checked_text(value, f"header {echo(key)}")
    probability = number(body, "probability", low=0)
    if probability is not None and probability > 1:
        raise InvalidArgument("probability must be from 0 to 1")
    drop = body.get("drop", False)
    if not isinstance(drop, bool):
        raise InvalidArgument("drop must be true or false")
    expired = body.get("expired", False)
    if not isinstance(expired, bool):
        raise InvalidArgument("expired must be true or false")
    fraction = number(body, "truncateAfterFraction", low=0)
    if fraction is not None and not 0 < fraction < 1:
        raise InvalidArgument(
            f"truncateAfterFraction must be a number between 0 and 1 (exclusive), got {fraction!r}"
        )
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
        truncate_after_fraction=fraction,
        expired=expired,
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
        rule.truncate_after_fraction is not None,
        rule.expired,
        rule.bytes_per_second,
    )
    if not any(acts):
        raise InvalidArgument(
            "a fault needs an action: status, latencyMs, drop, truncateAfterBytes, "
            "truncateAfterFraction, expired or bytesPerSecond"
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
                f"X-Emulator-Fault: cannot read {echo(part.strip())}; use status=N, retry-after=S, "
                "latency=MS, drop, truncate=BYTES or bytes-per-second=N"
            )
    return fault_rule(body, "header", seed)


def rate_limit_override(body: Mapping[str, Any], state: ControlState) -> ControlState:
    members(body, RATE_LIMIT_MEMBERS, "ratelimit")
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
    members(body, CONFIG_MEMBERS, "config")
    changes: dict[str, Any] = {}
    # A signed URL lives at least a second (X-Goog-Expires is 1 or more); an export may take none.
    for name, attr, low in (("urlTtl", "url_ttl", 1), ("exportDuration", "export_duration", 0)):
        if name in body:
            changes[attr] = UNSET if body[name] is None else number(body, name, low=low)
    if "failureState" in body:
        changes["failure_state"] = failure_state(body["failureState"])
    if "maxExportEvents" in body:
        changes["max_export_events"] = max_export_events(body)
    if not changes:
        raise InvalidArgument(
            "config takes urlTtl and/or exportDuration (seconds, or null), failureState "
            f"({' or '.join(FAILURE_STATES)}, or null) and/or maxExportEvents (an integer "
            f"from 1 to {MAX_EXPORT_EVENTS}, or null)"
        )
    return replace(state, **changes)


def max_export_events(body: Mapping[str, Any]) -> Any:
    """`maxExportEvents`: the largest export, in estimated events, or null for the setting."""
    if body["maxExportEvents"] is None:
        return UNSET
    return number(body, "maxExportEvents", low=1, integer=True)


def failure_state(value: Any) -> Any:
    """`failureState`: the name a failed operation's state takes, or null for the setting."""
    if value is None:
        return UNSET
    if not isinstance(value, str) or value.upper() not in FAILURE_STATES:
        raise InvalidArgument(
            f"failureState must be one of {', '.join(FAILURE_STATES)} (or null), got {echo(value)}"
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
        "truncateAfterFraction": rule.truncate_after_fraction,
        "expired": rule.expired,
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
        f"truncate={rule.truncate_after_fraction:g}x"
        if rule.truncate_after_fraction is not None
        else "",
        "expired" if rule.expired else "",
        f"bytes-per-second={rule.bytes_per_second}" if rule.bytes_per_second else "",
    ]
    return " ".join(p for p in parts if p) + ("" if rule.id == "header" else f" (rule {rule.id})")
