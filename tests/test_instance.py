"""The emulator's wiring (instance.py): worlds of any size cost nothing up front."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from fullstory_emulator.http.app import create_app
from fullstory_emulator.instance import Emulator
from tests.helpers import AUTH, small_settings


def test_a_million_individuals_build_lazily_and_answer():
    settings = small_settings(population=1_000_000)
    em = Emulator.build(settings)
    with TestClient(create_app(settings, emulator=em), base_url=settings.base_url()) as client:
        assert client.get("/segments/v1", headers=AUTH).status_code == 200
        person = em.exports.world.individual(999_999)  # any individual, generated on demand
        assert person.index == 999_999 and person.indv_id > 0
        body = {
            "segmentId": "everyone",
            "type": "TYPE_EVENT",
            "format": "FORMAT_CSV",
            # the last hour: ~73k estimated events, within --max-export-events (its 30 days
            # would be 52M and refused)
            "timeRange": {"start": "2026-03-01T11:00:00Z", "end": "2026-03-01T12:00:00Z"},
        }
        assert client.post("/segments/v1/exports", json=body, headers=AUTH).status_code == 200


def test_packaged_examples_by_name(make_harness, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no file named "example" here
    h = make_harness(keys=Path("example"), segments=Path("example"))
    demo = {"Authorization": "Basic na1.emulator-demo-key"}
    standard = {"Authorization": "Basic na1.emulator-standard-key"}
    assert h.client.get("/segments/v1/bigSpenders", headers=demo).json()["name"] == "Big spenders"
    assert h.client.get("/segments/v1/everyone", headers=demo).status_code == 200  # added to
    body = {"segmentId": "bigSpenders", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"}
    assert h.client.post("/segments/v1/exports", json=body, headers=standard).status_code == 403
    assert h.client.get("/segments/v1", headers=AUTH).status_code == 401  # keys file in force
    examples = make_harness(segments=Path("example"), population=300)
    for segment_id in ("bigSpenders", "newsletterReaders", "fewSearchResults"):  # all match
        rows = gzip.decompress(
            examples.export_bytes(segmentId=segment_id, segmentTimeRange={"start": "", "end": ""})
        )
        assert rows.count(b"\n") > 0, segment_id


def test_a_users_scenarios_file_is_merged_over_the_embedded_ones(make_harness, tmp_path):
    mine = tmp_path / "scenarios.json"
    mine.write_text(
        json.dumps(
            {
                "scenarios": {
                    "slow-export": {"description": "mine", "lifecycle": [{"immediately": True}]},
                    "outage": {"faults": [{"path": "/segments/*", "status": 503}]},
                }
            }
        )
    )
    h = make_harness(scenarios=mine, scenario="outage")
    listed = {
        s["name"]: s["description"]
        for s in h.client.get("/__emulator/scenarios").json()["scenarios"]
    }
    assert listed["slow-export"] == "mine" and "outage" in listed and "flaky-api" in listed
    assert h.client.get("/segments/v1", headers=AUTH).status_code == 503
    h.client.delete("/__emulator/faults")
    h.client.post("/__emulator/scenarios/slow-export", headers=AUTH)
    assert h.operation(h.create())["state"] == "COMPLETED"  # mine replaced the embedded one


@pytest.mark.parametrize(
    "content,message",
    [
        ("[]", 'expected {"scenarios"'),
        ('{"scenarios": {"x": {"surprise": 1}}}', "scenario 'x' has unknown parts: surprise"),
        ('{"scenarios": {"x": {"faults": [{"path": "/x"}]}}}', "scenario 'x': a fault needs"),
        ('{"scenarios": {"x": {"config": {"failureState": "NOPE"}}}}', "failureState must be"),
        ("not json", "cannot read scenarios"),
    ],
)
def test_a_bad_scenarios_file_fails_at_start(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=re.escape(message)):
        Emulator.build(small_settings(scenarios=path))
