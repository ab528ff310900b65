"""What the control plane does, apart from HTTP: rules, overrides, scenarios and resets.

`tenant` None means the instance: rules and overrides that apply under every tenant. A request
reads the control settings that concern it once, as a `ControlView`, and takes from it (a fault,
a denial, a lifecycle rule) with one atomic store update, only when there is something to take.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

from ..clock import Clock
from ..errors import InvalidArgument, NotFound, PermissionDenied, echo
from ..ids import mix, text_key
from ..resources import fixture
from ..store import Store
from ..store.records import UNSET, ControlState, FaultRule, LifecycleRule
from . import rules, specs

T = TypeVar("T")
SCENARIO_PARTS = frozenset({"description", "lifecycle", "faults", "ratelimit", "config"})


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    body: Mapping[str, Any] = field(default_factory=dict)


def load_scenarios(extra: Traversable | Path | None = None) -> dict[str, Scenario]:
    """The embedded scenarios, with those of `extra` (a user's file) added over them: one with
    an embedded name replaces it. Every scenario is checked here, so a bad file fails at start."""
    scenarios = _read_scenarios(fixture("scenarios.json"), "embedded scenarios.json")
    if extra is not None:
        scenarios.update(_read_scenarios(extra, str(extra)))
    return scenarios


def _read_scenarios(source: Traversable | Path, name: str) -> dict[str, Scenario]:
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read scenarios from {name}: {exc}") from None
    items = data.get("scenarios") if isinstance(data, dict) else None
    if not isinstance(items, dict):
        raise ValueError(f'{name}: expected {{"scenarios": {{"<name>": {{...}}}}}}')
    out = {}
    for key, body in items.items():
        if not isinstance(body, dict):
            raise ValueError(f"{name}: scenario {key!r} must be an object")
        try:
            check_scenario(key, body)
        except InvalidArgument as exc:
            raise ValueError(f"{name}: {exc.message}") from None
        out[key] = Scenario(key, str(body.get("description", "")), body)
    return out


def check_scenario(name: str, body: Mapping[str, Any]) -> None:
    """Every part of a scenario parses, as it would when applied (InvalidArgument if not)."""
    unknown = set(body) - SCENARIO_PARTS
    if unknown:
        raise InvalidArgument(
            f"scenario {name!r} has unknown parts: {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(SCENARIO_PARTS))}"
        )
    try:
        for rule in _listed(body, "lifecycle"):
            specs.lifecycle_rule(rule, "check")
        for rule in _listed(body, "faults"):
            specs.fault_rule(rule, "check", 0)
        if "ratelimit" in body:
            specs.rate_limit_override(_object(body["ratelimit"], "ratelimit"), ControlState())
        if "config" in body:
            specs.config_override(_object(body["config"], "config"), ControlState())
    except InvalidArgument as exc:
        raise InvalidArgument(f"scenario {name!r}: {exc.message}") from None


def _listed(body: Mapping[str, Any], part: str) -> list[Mapping[str, Any]]:
    items = body.get(part, [])
    if not isinstance(items, list):
        raise InvalidArgument(f"{part} must be a list of rules")
    return [_object(item, part) for item in items]


def _object(value: Any, part: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{part} must be an object")
    return value


class ControlView:
    """The control settings over one tenant: its own first, then the instance's."""

    def __init__(self, store: Store, tenant: str | None) -> None:
        self._store = store
        self.tenant = tenant
        self._scopes: tuple[str | None, ...] = (tenant, None) if tenant is not None else (None,)
        self._states = store.controls(self._scopes)

    def setting(self, name: str, default: T) -> T:
        """The value of an overridable setting: the tenant's override, the instance's, or
        `default`."""
        for state in self._states:
            value = getattr(state, name)
            if value is not UNSET:
                return value  # type: ignore[no-any-return]
        return default

    def _take(
        self,
        wanted: Callable[[ControlState], bool],
        take: Callable[[ControlState], tuple[ControlState, T | None]],
    ) -> T | None:
        for scope, state in zip(self._scopes, self._states, strict=True):
            if wanted(state):  # as read; the update re-reads under the store's lock
                taken = self._store.update_control(scope, take)
                if taken is not None:
                    return taken
        return None

    def take_fault(self, method: str, path: str, headers: Mapping[str, str]) -> FaultRule | None:
        if not any(state.faults for state in self._states):  # every request asks; few have any
            return None
        return self._take(
            lambda s: any(rules.fault_matches(r, method, path, headers) for r in s.faults),
            lambda s: rules.take_fault(s, method, path, headers),
        )

    def take_denial(self) -> int | None:
        if not any(state.deny_next > 0 for state in self._states):
            return None
        return self._take(lambda s: s.deny_next > 0, rules.take_denial)

    def take_lifecycle(self, segment_id: str) -> LifecycleRule | None:
        return self._take(
            lambda s: bool(s.lifecycle), lambda s: rules.take_lifecycle(s, segment_id)
        )


def _no_rule(kind: str, rule_id: str) -> NotFound:
    """An id that names no rule; an empty one (a stray trailing slash) is never "every rule"."""
    hint = "" if rule_id.strip("/") else "; to drop every one, leave out the id and its slash"
    return NotFound(f"no {kind} rule {echo(rule_id)}{hint}")


class ControlService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        seed: int,
        scenarios: Mapping[str, Scenario],
        start_scenarios: Sequence[str] = (),
    ) -> None:
        self._store = store
        self._clock = clock
        self._seed = seed
        self.scenarios = dict(scenarios)
        self._start_scenarios = tuple(start_scenarios)

    def view(self, tenant: str | None) -> ControlView:
        return ControlView(self._store, tenant)

    def state(self, tenant: str | None) -> ControlState:
        return self._store.controls((tenant,))[0]

    # -- rules ---------------------------------------------------------------------------------
    def _add(self, tenant: str | None, kind: str, build: rules.RuleBuilder) -> str:
        return self._store.update_control(tenant, lambda s: rules.add_rule(s, kind, build))

    def add_lifecycle(self, tenant: str | None, body: Mapping[str, Any]) -> str:
        specs.lifecycle_rule(body, "check")  # validate before touching the state
        return self._add(tenant, "lifecycle", lambda rid, _: specs.lifecycle_rule(body, rid))

    def add_fault(self, tenant: str | None, body: Mapping[str, Any]) -> str:
        specs.fault_rule(body, "check", 0)
        scope_key = text_key(tenant or "")
        return self._add(
            tenant,
            "faults",
            lambda rid, n: specs.fault_rule(body, rid, mix(self._seed, scope_key, n)),
        )

    def header_fault(self, value: str) -> FaultRule:
        return specs.fault_header(value, self._seed)

    def remove_faults(self, tenant: str | None, rule_id: str | None = None) -> None:
        def drop(state: ControlState) -> tuple[ControlState, bool]:
            kept = tuple(r for r in state.faults if rule_id is not None and r.id != rule_id)
            return replace(state, faults=kept), len(kept) != len(state.faults)

        if not self._store.update_control(tenant, drop) and rule_id is not None:
            raise _no_rule("fault", rule_id)

    def remove_lifecycle(self, tenant: str | None, rule_id: str) -> None:
        def drop(state: ControlState) -> tuple[ControlState, bool]:
            kept = tuple(r for r in state.lifecycle if r.id != rule_id)
            return replace(state, lifecycle=kept), len(kept) != len(state.lifecycle)

        if not self._store.update_control(tenant, drop):
            raise _no_rule("lifecycle", rule_id)

    def clear_lifecycle(self, tenant: str | None) -> None:
        self._store.update_control(tenant, lambda s: (replace(s, lifecycle=()), None))

    # -- overrides -------------------------------------------------------------------------
    def set_rate_limit(self, tenant: str | None, body: Mapping[str, Any]) -> None:
        self._store.update_control(tenant, lambda s: (specs.rate_limit_override(body, s), None))

    def set_config(
        self,
        tenant: str | None,
        body: Mapping[str, Any],
        *,
        max_export_events_ceiling: int | None = None,
    ) -> None:
        """Set overrides; `max_export_events_ceiling` is the highest `maxExportEvents` this
        caller may set (a tenant's own key under `--control-auth tenant`), None: any."""
        specs.config_override(body, ControlState())  # validate before touching the state
        wanted = body.get("maxExportEvents")  # checked above: a number, or None (the setting)
        ceiling = max_export_events_ceiling
        if ceiling is not None and wanted is not None and wanted > ceiling:
            raise PermissionDenied(
                f"maxExportEvents {wanted} would lift this tenant's export limit above the "
                f"instance's ({ceiling}); a tenant's key may only lower it: send the admin "
                "X-Emulator-Token to raise it, or start the emulator with a larger "
                "--max-export-events"
            )
        self._store.update_control(tenant, lambda s: (specs.config_override(body, s), None))

    # -- scenarios and reset ---------------------------------------------------------------
    def apply_scenario(self, tenant: str | None, name: str) -> None:
        scenario = self.scenarios.get(name)
        if scenario is None:
            raise NotFound(f"no scenario {echo(name)}; known: {', '.join(sorted(self.scenarios))}")
        body = scenario.body
        check_scenario(name, body)  # before any part is applied
        for rule in body.get("lifecycle", []):
            self.add_lifecycle(tenant, rule)
        for rule in body.get("faults", []):
            self.add_fault(tenant, rule)
        if "ratelimit" in body:
            self.set_rate_limit(tenant, body["ratelimit"])
        if "config" in body:
            self.set_config(tenant, body["config"])

    def apply_start_scenarios(self) -> None:
        for name in self._start_scenarios:
            self.apply_scenario(None, name)

    def reset(self, tenant: str | None) -> None:
        """Back to the seeded fixtures: for one tenant, or everything (start scenarios again)."""
        self._store.reset(tenant)
        self._clock.reset(tenant)
        if tenant is None:
            self.apply_start_scenarios()
