"""The SQLite store: state that survives a restart. (The tests marked `stores` elsewhere run on
every store backend; see tests/conftest.py.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.helpers import AUTH, Harness, harness_factory


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
