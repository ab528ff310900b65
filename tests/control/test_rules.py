"""Control rules as pure functions: what a request takes, and what stays for the next one."""

from __future__ import annotations

import math

from fullstory_emulator.control import rules
from fullstory_emulator.store.records import ControlState, FaultRule, Lifecycle, LifecycleRule


def fault(rule_id: str, **fields: object) -> FaultRule:
    return FaultRule(id=rule_id, status=503, **fields)  # type: ignore[arg-type]


def test_a_counted_fault_is_spent_then_gone():
    state = ControlState(faults=(fault("F1", path="/segments/*", remaining=2),))
    taken = []
    for _ in range(3):
        state, rule = rules.take_fault(state, "GET", "/segments/v1", {})
        taken.append(rule.id if rule else None)
    assert taken == ["F1", "F1", None]
    assert state.faults == ()


def test_a_fault_matches_method_path_glob_and_headers():
    rule = fault("F1", method="POST", path="/operations/v1/*", headers=(("x-test", "1"),))
    assert rules.fault_matches(rule, "post", "/operations/v1/abc", {"x-test": "1"})
    assert not rules.fault_matches(rule, "GET", "/operations/v1/abc", {"x-test": "1"})
    assert not rules.fault_matches(rule, "POST", "/segments/v1", {"x-test": "1"})
    assert not rules.fault_matches(rule, "POST", "/operations/v1/abc", {})


def test_probability_draws_are_seeded_and_count_every_match():
    state = ControlState(faults=(fault("F1", probability=0.5, seed=7),))
    fired = []
    for _ in range(200):
        state, rule = rules.take_fault(state, "GET", "/x", {})
        fired.append(rule is not None)
    assert state.faults[0].matched == 200
    again = ControlState(faults=(fault("F1", probability=0.5, seed=7),))
    replay = []
    for _ in range(200):
        again, rule = rules.take_fault(again, "GET", "/x", {})
        replay.append(rule is not None)
    assert fired == replay and 60 < sum(fired) < 140


def test_segment_lifecycle_rules_come_before_general_ones():
    general = LifecycleRule(id="L1", seconds=5)
    special = LifecycleRule(id="L2", segment_id="rageClicks", polls=3, remaining=1)
    state = ControlState(lifecycle=(general, special))
    state, first = rules.take_lifecycle(state, "rageClicks")
    state, second = rules.take_lifecycle(state, "rageClicks")
    assert (first, second) == (special, general)
    assert state.lifecycle == (general,)  # unlimited rules stay


def test_lifecycle_of_a_rule():
    default = Lifecycle(duration=2.0, failure="boom", fail_at=0.5)
    assert rules.lifecycle_of(LifecycleRule(id="L", seconds=9), default) == Lifecycle(
        9, "boom", 0.5
    )
    polled = rules.lifecycle_of(LifecycleRule(id="L", polls=3, fail="no"), default)
    assert (polled.duration, polled.polls, polled.failure, polled.fail_at) == (
        math.inf,
        3,
        "no",
        1.0,
    )
    scripted = rules.lifecycle_of(LifecycleRule(id="L", script=(10, 50)), default)
    assert (scripted.polls, scripted.script) == (2, (10, 50))


def test_denials_count_down():
    state = ControlState(deny_next=2, deny_retry_after=9)
    state, first = rules.take_denial(state)
    state, second = rules.take_denial(state)
    state, third = rules.take_denial(state)
    assert (first, second, third) == (9, 9, None)


def test_new_rules_get_increasing_ids():
    state = ControlState()
    state, a = rules.add_rule(state, "lifecycle", lambda rid, n: LifecycleRule(id=rid))
    state, b = rules.add_rule(state, "faults", lambda rid, n: fault(rid, seed=n))
    assert (a, b) == ("L1", "F2")
    assert state.faults[0].seed == 2 and state.next_rule == 3
