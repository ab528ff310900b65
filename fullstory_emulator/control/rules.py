"""The rules of the control plane as pure functions over its records.

A function here takes a `ControlState` and returns the state after the change together with what
was taken, so that the store can apply it atomically: a rule consumed by one request ("the next
3 requests") is never consumed twice, across threads or worker processes.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TypeVar

from ..ids import mix
from ..store.records import ControlState, FaultRule, Lifecycle, LifecycleRule

R = TypeVar("R", LifecycleRule, FaultRule)
# Builds a rule from its id and its ordinal (which seeds its draws).
RuleBuilder = Callable[[str, int], LifecycleRule | FaultRule]


def lifecycle_of(rule: LifecycleRule, default: Lifecycle) -> Lifecycle:
    """How an export governed by `rule` plays out, given how it would by default."""
    failure = rule.fail if rule.fail is not None else default.failure
    fail_at = 1.0 if rule.fail is not None else default.fail_at
    if rule.script:
        return Lifecycle(math.inf, failure, fail_at, polls=len(rule.script), script=rule.script)
    if rule.polls is not None:
        return Lifecycle(math.inf, failure, fail_at, polls=rule.polls)
    duration = default.duration if rule.seconds is None else rule.seconds
    return Lifecycle(duration, failure, fail_at)


def fault_matches(rule: FaultRule, method: str, path: str, headers: Mapping[str, str]) -> bool:
    if rule.method is not None and rule.method != method.upper():
        return False
    if rule.path is not None and not fnmatch.fnmatchcase(path, rule.path):
        return False
    return all(headers.get(name) == value for name, value in rule.headers)


def fault_fires(rule: FaultRule) -> bool:
    """Whether this match fires: a seeded draw, the same sequence every run."""
    if rule.probability is None:
        return True
    return mix(rule.seed, rule.matched) / 2**64 < rule.probability


def take_lifecycle(
    state: ControlState, segment_id: str
) -> tuple[ControlState, LifecycleRule | None]:
    """The rule for a new export of `segment_id` (segment rules first), consumed once."""
    ordered = [r for r in state.lifecycle if r.segment_id == segment_id] + [
        r for r in state.lifecycle if r.segment_id is None
    ]
    if not ordered:
        return state, None
    rule = ordered[0]
    return replace(state, lifecycle=_spend(state.lifecycle, rule)), rule


def take_fault(
    state: ControlState, method: str, path: str, headers: Mapping[str, str]
) -> tuple[ControlState, FaultRule | None]:
    """The first matching fault rule that fires; every match counts towards seeded draws."""
    rules = list(state.faults)
    for i, rule in enumerate(rules):
        if not fault_matches(rule, method, path, headers):
            continue
        fires = fault_fires(rule)
        rules[i] = rule = replace(rule, matched=rule.matched + 1)
        if fires:
            return replace(state, faults=_spend(tuple(rules), rule)), rule
    return replace(state, faults=tuple(rules)), None


def take_denial(state: ControlState) -> tuple[ControlState, int | None]:
    """One of the "refuse the next N requests" denials, as its Retry-After seconds."""
    if state.deny_next <= 0:
        return state, None
    return replace(state, deny_next=state.deny_next - 1), state.deny_retry_after


def add_rule(state: ControlState, kind: str, build: RuleBuilder) -> tuple[ControlState, str]:
    """`state` with a new lifecycle (`kind` "lifecycle") or fault ("faults") rule appended."""
    number = state.next_rule
    rule = build(f"{'L' if kind == 'lifecycle' else 'F'}{number}", number)
    state = replace(state, next_rule=number + 1)
    if isinstance(rule, LifecycleRule):
        return replace(state, lifecycle=(*state.lifecycle, rule)), rule.id
    return replace(state, faults=(*state.faults, rule)), rule.id


def _spend(rules: tuple[R, ...], rule: R) -> tuple[R, ...]:
    """`rules` with one use of `rule` spent (and the rule gone once used up)."""
    out: list[R] = []
    for r in rules:
        if r.id == rule.id:
            if r.remaining is None:
                out.append(rule)
            elif r.remaining > 1:
                out.append(replace(rule, remaining=r.remaining - 1))
        else:
            out.append(r)
    return tuple(out)
