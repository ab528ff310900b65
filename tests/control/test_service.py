"""The control view: the tenant's setting before the instance's, read once, and a write only
when there is something to take."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fullstory_emulator.clock import Clock
from fullstory_emulator.control.service import ControlService
from fullstory_emulator.store.memory import MemoryStore
from fullstory_emulator.store.records import ControlState

T = TypeVar("T")


class CountingStore(MemoryStore):
    """A memory store that counts reads and writes of control state."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.writes = 0

    def controls(self, scopes: Sequence[str | None]) -> list[ControlState]:
        self.reads += 1
        return super().controls(scopes)

    def update_control(
        self, tenant: str | None, update: Callable[[ControlState], tuple[ControlState, T]]
    ) -> T:
        self.writes += 1
        return super().update_control(tenant, update)


def service(store: MemoryStore) -> ControlService:
    return ControlService(store, Clock(), seed=1, scenarios={})


def test_the_tenants_setting_wins_over_the_instances():
    store = CountingStore()
    control = service(store)
    control.set_config(None, {"urlTtl": 60})
    control.set_config("t1", {"urlTtl": 30})
    assert control.view("t1").setting("url_ttl", 300.0) == 30
    assert control.view("t2").setting("url_ttl", 300.0) == 60
    assert control.view(None).setting("url_ttl", 300.0) == 60
    control.set_config(None, {"urlTtl": None})
    assert control.view("t2").setting("url_ttl", 300.0) == 300.0


def test_a_view_reads_once_and_writes_only_to_take_something():
    store = CountingStore()
    control = service(store)
    store.reads = store.writes = 0
    view = control.view("t1")
    assert view.take_fault("GET", "/segments/v1", {}) is None
    assert view.take_denial() is None
    assert view.take_lifecycle("everyone") is None
    assert view.setting("export_duration", 2.0) == 2.0
    assert (store.reads, store.writes) == (1, 0)


def test_a_view_takes_the_tenants_rule_before_the_instances():
    store = CountingStore()
    control = service(store)
    instance_rule = control.add_fault(None, {"status": 500, "times": 1})
    tenant_rule = control.add_fault("t1", {"status": 503, "times": 1})
    taken: list[Any] = []
    for _ in range(3):
        rule = control.view("t1").take_fault("GET", "/x", {})
        taken.append(rule.id if rule else None)
    assert taken == [tenant_rule, instance_rule, None]


def test_reset_of_the_instance_applies_start_scenarios_again():
    store = MemoryStore()
    scenarios = {"deny": _scenario()}
    control = ControlService(store, Clock(), seed=1, scenarios=scenarios, start_scenarios=["deny"])
    control.apply_start_scenarios()
    control.set_config(None, {"urlTtl": 5})
    control.reset(None)
    state = control.state(None)
    assert state.deny_next == 3 and state.url_ttl != 5


def _scenario() -> Any:
    from fullstory_emulator.control.service import Scenario

    return Scenario("deny", "three 429s", {"ratelimit": {"denyNext": 3}})
