"""What the control API does, apart from HTTP: add rules, change overrides, apply scenarios.

`tenant` None means the instance: rules and overrides that apply under every tenant.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument, NotFound
from ..fixtures_path import fixture
from ..ids import mix, text_key
from .state import (
    ControlState,
    Scenario,
    config_override,
    fault_rule,
    lifecycle_rule,
    rate_limit_override,
)

if TYPE_CHECKING:
    from ..context import Emulator


def _with_new_rule(
    em: Emulator, tenant: str | None, field: str, build: Callable[[str, int], Any]
) -> str:
    def add(state: ControlState) -> tuple[ControlState, str]:
        number = state.next_rule
        prefix = "L" if field == "lifecycle" else "F"
        rule = build(f"{prefix}{number}", mix(em.settings.seed, text_key(tenant or ""), number))
        rules = (*getattr(state, field), rule)
        return replace(state, **{field: rules, "next_rule": number + 1}), rule.id

    return em.store.update_control(tenant, add)


def add_lifecycle(em: Emulator, tenant: str | None, body: Mapping[str, Any]) -> str:
    lifecycle_rule(body, "check")  # validate before touching the state
    return _with_new_rule(em, tenant, "lifecycle", lambda rid, _: lifecycle_rule(body, rid))


def add_fault(em: Emulator, tenant: str | None, body: Mapping[str, Any]) -> str:
    fault_rule(body, "check", 0)
    return _with_new_rule(em, tenant, "faults", lambda rid, seed: fault_rule(body, rid, seed))


def remove_faults(em: Emulator, tenant: str | None, rule_id: str | None = None) -> None:
    def drop(state: ControlState) -> tuple[ControlState, bool]:
        kept = tuple(r for r in state.faults if rule_id is not None and r.id != rule_id)
        return replace(state, faults=kept), len(kept) != len(state.faults)

    if not em.store.update_control(tenant, drop) and rule_id is not None:
        raise NotFound(f"no fault rule {rule_id!r}")


def clear_lifecycle(em: Emulator, tenant: str | None) -> None:
    em.store.update_control(tenant, lambda s: (replace(s, lifecycle=()), None))


def set_rate_limit(em: Emulator, tenant: str | None, body: Mapping[str, Any]) -> None:
    em.store.update_control(tenant, lambda s: (rate_limit_override(body, s), None))


def set_config(em: Emulator, tenant: str | None, body: Mapping[str, Any]) -> None:
    em.store.update_control(tenant, lambda s: (config_override(body, s), None))


def load_scenarios() -> dict[str, Scenario]:
    data = json.loads(fixture("scenarios.json").read_text(encoding="utf-8"))
    return {
        name: Scenario(name, str(body.get("description", "")), body)
        for name, body in data["scenarios"].items()
    }


def apply_scenario(em: Emulator, tenant: str | None, name: str) -> None:
    scenario = em.scenarios.get(name)
    if scenario is None:
        raise NotFound(f"no scenario {name!r}; known: {', '.join(sorted(em.scenarios))}")
    body = scenario.body
    unknown = set(body) - {"description", "lifecycle", "faults", "ratelimit", "config"}
    if unknown:
        raise InvalidArgument(f"scenario {name!r} has unknown parts: {', '.join(sorted(unknown))}")
    for rule in body.get("lifecycle", []):
        add_lifecycle(em, tenant, rule)
    for rule in body.get("faults", []):
        add_fault(em, tenant, rule)
    if "ratelimit" in body:
        set_rate_limit(em, tenant, body["ratelimit"])
    if "config" in body:
        set_config(em, tenant, body["config"])
