"""The SQLite store (emulator/sqlstore.py): the same behaviour as the memory store, and state
that survives a restart. The imported tests below run again here on a SQLite-backed harness."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from .conftest import AUTH, Harness, harness_factory
from .test_control import (  # noqa: F401 - collected again, on SQLite
    test_fault_rule_yields_exactly_n_failures_then_normal_answers,
    test_finish_after_three_polls_completes_on_the_fourth,
    test_journal_records_the_workflow_in_order,
    test_next_n_requests_get_429,
    test_probability_is_seeded,
    test_reset_one_tenant_restores_seeded_state,
    test_scripted_percent_sequence_then_fail,
    test_tenant_clocks_are_separate,
)
from .test_operations import (  # noqa: F401
    test_cancel_pending_then_cannot_cancel_again,
    test_list_filters_and_pages,
    test_progress_rises_as_integers_then_completes,
)
from .test_ratelimit import test_refill_follows_the_clock  # noqa: F401
from .test_storage import test_expired_url_answers_gcs_xml_then_fresh_url_works  # noqa: F401


@pytest.fixture
def make_harness(tmp_path) -> Iterator[Callable[..., Harness]]:
    yield from harness_factory(lambda n: {"data_dir": tmp_path / f"data{n}"})


@pytest.fixture
def harness(make_harness) -> Harness:
    return make_harness()


def test_state_survives_a_restart(make_harness, tmp_path):
    data = tmp_path / "kept"
    first = make_harness(data_dir=data, signing_secret=None, export_duration=10)
    done = first.create()
    pending = first.create(segmentId="rageClicks")
    first.advance(11)
    url = first.location(first.operation(done)["results"]["searchExportId"])
    later = first.create()
    rule = {"path": "/segments/v1", "status": 503, "times": 1}
    first.client.post("/__emulator/faults", json=rule, headers=AUTH)

    second = make_harness(data_dir=data, signing_secret=None, export_duration=10)
    assert second.operation(done)["state"] == "COMPLETED"
    assert second.operation(pending)["state"] == "COMPLETED"
    assert second.operation(later)["state"] == "PENDING"  # the clock carried on where it was
    assert second.client.get(url).status_code == 200  # same secret: old URLs still download
    assert second.client.get("/segments/v1", headers=AUTH).status_code == 503  # the rule stayed
    assert second.create() not in (done, pending, later)  # the id sequence carried on


def test_start_scenarios_apply_once_per_data_dir(make_harness, tmp_path):
    data = tmp_path / "scenario"
    make_harness(data_dir=data, scenario="rate-limited")
    again = make_harness(data_dir=data, scenario="rate-limited")
    codes = [again.client.get("/segments/v1", headers=AUTH).status_code for _ in range(4)]
    assert codes == [429, 429, 429, 200]  # three denials, not six
