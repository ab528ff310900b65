"""What test authors can change at run time, per tenant or for the whole instance.

Everything here is an immutable record; the store swaps whole records under its lock, so a rule
consumed by one request ("the next 3 requests") is never consumed twice.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import InvalidArgument
from ..ids import mix
from ..operations import Lifecycle
from ..settings import RateLimit

UNSET: Any = object()  # a field not overridden here


@dataclass(frozen=True)
class LifecycleRule:
    """How upcoming exports play out, instead of the clock-driven default."""

    id: str
    segment_id: str | None = None
    seconds: float | None = None
    polls: int | None = None
    script: tuple[int, ...] = ()
    fail: str | None = None
    remaining: int | None = None  # None: every export from now on

    def lifecycle(self, default: Lifecycle) -> Lifecycle:
        failure = self.fail if self.fail is not None else default.failure
        fail_at = 1.0 if self.fail is not None else default.fail_at
        if self.script:
            return Lifecycle(math.inf, failure, fail_at, polls=len(self.script), script=self.script)
        if self.polls is not None:
            return Lifecycle(math.inf, failure, fail_at, polls=self.polls)
        duration = default.duration if self.seconds is None else self.seconds
        return Lifecycle(duration, failure, fail_at)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "segmentId": self.segment_id}
        if self.seconds is not None:
            body["finishAfterSeconds"] = self.seconds
        if self.polls is not None:
            body["finishAfterPolls"] = self.polls
        if self.script:
            body["pctSequence"] = list(self.script)
        return body | {"fail": self.fail, "remaining": self.remaining}


@dataclass(frozen=True)
class FaultRule:
    """A matcher (method, path glob, headers) and what to do to the requests it matches."""

    id: str
    method: str | None = None
    path: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    status: int | None = None
    retry_after: int | None = None
    message: str | None = None
    latency_ms: float = 0.0
    drop: bool = False
    truncate_after_bytes: int | None = None
    bytes_per_second: int | None = None
    remaining: int | None = None
    probability: float | None = None
    seed: int = 0
    matched: int = 0  # how many requests matched: the index of the next probability draw

    def matches(self, method: str, path: str, headers: Mapping[str, str]) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        if self.path is not None and not fnmatch.fnmatchcase(path, self.path):
            return False
        return all(headers.get(name) == value for name, value in self.headers)

    def draw(self) -> bool:
        """Whether this match fires: a seeded draw, the same sequence every run."""
        if self.probability is None:
            return True
        return mix(self.seed, self.matched) / 2**64 < self.probability

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "method": self.method, "path": self.path,
            "header": dict(self.headers), "status": self.status, "retryAfter": self.retry_after,
            "message": self.message, "latencyMs": self.latency_ms, "drop": self.drop,
            "truncateAfterBytes": self.truncate_after_bytes,
            "bytesPerSecond": self.bytes_per_second, "remaining": self.remaining,
            "probability": self.probability,
        }  # fmt: skip


@dataclass(frozen=True)
class ControlState:
    """The control settings of one tenant (or of the instance, under every tenant)."""

    lifecycle: tuple[LifecycleRule, ...] = ()
    faults: tuple[FaultRule, ...] = ()
    rate_limit: Any = UNSET  # RateLimit, None (off) or UNSET
    deny_next: int = 0
    deny_retry_after: int = 1
    url_ttl: Any = UNSET  # seconds or UNSET
    export_duration: Any = UNSET
    next_rule: int = 1

    def take_lifecycle(self, segment_id: str) -> tuple[ControlState, LifecycleRule | None]:
        """The rule for a new export of `segment_id` (segment rules first), consumed once."""
        ordered = [r for r in self.lifecycle if r.segment_id == segment_id] + [
            r for r in self.lifecycle if r.segment_id is None
        ]
        if not ordered:
            return self, None
        rule = ordered[0]
        return replace(self, lifecycle=_spend(self.lifecycle, rule)), rule

    def take_fault(
        self, method: str, path: str, headers: Mapping[str, str]
    ) -> tuple[ControlState, FaultRule | None]:
        rules = list(self.faults)
        for i, rule in enumerate(rules):
            if not rule.matches(method, path, headers):
                continue
            fires = rule.draw()
            rules[i] = rule = replace(rule, matched=rule.matched + 1)
            if fires:
                return replace(self, faults=_spend(tuple(rules), rule)), rule
        return replace(self, faults=tuple(rules)), None

    def take_denial(self) -> tuple[ControlState, int | None]:
        if self.deny_next <= 0:
            return self, None
        return replace(self, deny_next=self.deny_next - 1), self.deny_retry_after


def _spend(rules: tuple[Any, ...], rule: Any) -> tuple[Any, ...]:
    """`rules` with one use of `rule` spent (and the rule gone once used up)."""
    out = []
    for r in rules:
        if r.id == rule.id:
            if r.remaining is None:
                out.append(rule)
            elif r.remaining > 1:
                out.append(replace(rule, remaining=r.remaining - 1))
        else:
            out.append(r)
    return tuple(out)


# -- parsing control bodies -------------------------------------------------------------------


LIMITS = {"latencyMs": 600_000, "finishAfterSeconds": 10 * 366 * 86400, "urlTtl": 10 * 366 * 86400,
          "exportDuration": 10 * 366 * 86400}  # fmt: skip
DEFAULT_LIMIT = 1_000_000_000


def _number(body: Mapping[str, Any], name: str, *, low: float, integer: bool = False) -> Any:
    value = body.get(name)
    if value is None:
        return None
    high = LIMITS.get(name, DEFAULT_LIMIT)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not low <= value <= high or (integer and value != int(value)):
        kind = "an integer" if integer else "a number"
        raise InvalidArgument(f"{name} must be {kind} from {low:g} to {high:g}, got {value!r}")
    return int(value) if integer else float(value)


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string")
    return value


def lifecycle_rule(body: Mapping[str, Any], rule_id: str) -> LifecycleRule:
    modes = [k for k in ("finishAfterSeconds", "finishAfterPolls", "immediately", "pctSequence")
             if body.get(k) not in (None, False)]  # fmt: skip
    if len(modes) > 1:
        raise InvalidArgument(f"choose one of {', '.join(modes)}")
    script = body.get("pctSequence") or []
    if not isinstance(script, list) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 99 for p in script
    ):
        raise InvalidArgument("pctSequence must be a list of integers from 0 to 99")
    if any(b < a for a, b in itertools.pairwise(script)):
        raise InvalidArgument("pctSequence must never decrease (clients rely on it)")
    if body.get("immediately") not in (None, True, False):
        raise InvalidArgument("immediately must be true or false")
    seconds = 0.0 if body.get("immediately") else _number(body, "finishAfterSeconds", low=0)
    return LifecycleRule(
        id=rule_id,
        segment_id=_text(body, "segmentId"),
        seconds=seconds,
        polls=_number(body, "finishAfterPolls", low=0, integer=True),
        script=tuple(script),
        fail=_text(body, "fail"),
        remaining=_number(body, "times", low=1, integer=True),
    )


def fault_rule(body: Mapping[str, Any], rule_id: str, seed: int) -> FaultRule:
    status = _number(body, "status", low=100, integer=True)
    if status is not None and status > 599:
        raise InvalidArgument("status must be an HTTP status from 100 to 599")
    headers = body.get("header") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise InvalidArgument("header must be an object of header names to string values")
    probability = _number(body, "probability", low=0)
    if probability is not None and probability > 1:
        raise InvalidArgument("probability must be from 0 to 1")
    drop = body.get("drop", False)
    if not isinstance(drop, bool):
        raise InvalidArgument("drop must be true or false")
    rule = FaultRule(
        id=rule_id,
        method=(_text(body, "method") or "").upper() or None,
        path=_text(body, "path"),
        headers=tuple((k.lower(), v) for k, v in sorted(headers.items())),
        status=status,
        retry_after=_number(body, "retryAfter", low=0, integer=True),
        message=_text(body, "message"),
        latency_ms=_number(body, "latencyMs", low=0) or 0.0,
        drop=drop,
        truncate_after_bytes=_number(body, "truncateAfterBytes", low=0, integer=True),
        bytes_per_second=_number(body, "bytesPerSecond", low=1, integer=True),
        remaining=_number(body, "times", low=1, integer=True),
        probability=probability,
        seed=seed,
    )
    if not (rule.status or rule.latency_ms or rule.drop or rule.truncate_after_bytes is not None
            or rule.bytes_per_second):  # fmt: skip
        raise InvalidArgument(
            "a fault needs an action: status, latencyMs, drop, truncateAfterBytes or bytesPerSecond"
        )
    return rule


def parse_fault_header(value: str, seed: int) -> FaultRule:
    """`X-Emulator-Fault: status=429; retry-after=7`, `latency=250`, `drop`, `truncate=1024`."""
    names = {
        "status": "status", "retry-after": "retryAfter", "latency": "latencyMs",
        "truncate": "truncateAfterBytes", "bytes-per-second": "bytesPerSecond",
    }  # fmt: skip
    body: dict[str, Any] = {}
    for part in value.replace(",", ";").split(";"):
        key, _, raw = part.strip().partition("=")
        key = key.strip().lower()
        if not key:
            continue
        if key == "drop" and not raw:
            body["drop"] = True
        elif key in names and raw.strip().replace(".", "", 1).isdigit():
            body[names[key]] = float(raw) if "." in raw else int(raw)
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
    deny = _number(body, "denyNext", low=0, integer=True)
    if deny is not None:
        changes["deny_next"] = deny
    retry = _number(body, "retryAfter", low=1, integer=True)
    if retry is not None:
        changes["deny_retry_after"] = retry
    if not changes:
        raise InvalidArgument("send limit, denyNext and/or retryAfter")
    return replace(state, **changes)


def config_override(body: Mapping[str, Any], state: ControlState) -> ControlState:
    changes: dict[str, Any] = {}
    for name, attr in (("urlTtl", "url_ttl"), ("exportDuration", "export_duration")):
        if name in body:
            changes[attr] = UNSET if body[name] is None else _number(body, name, low=0)
    unknown = set(body) - {"urlTtl", "exportDuration"}
    if unknown or not changes:
        raise InvalidArgument("config takes urlTtl and/or exportDuration (seconds, or null)")
    return replace(state, **changes)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    body: Mapping[str, Any] = field(default_factory=dict)
