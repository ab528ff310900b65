"""The emulator's wiring (emulator/context.py): worlds of any size cost nothing up front."""

from __future__ import annotations

from starlette.testclient import TestClient

from emulator.http.app import create_app
from emulator.instance import Emulator
from tests.helpers import AUTH, small_settings


def test_a_million_individuals_build_lazily_and_answer():
    settings = small_settings(population=1_000_000)
    em = Emulator.build(settings)
    with TestClient(create_app(settings, emulator=em)) as client:
        assert client.get("/segments/v1", headers=AUTH).status_code == 200
        person = em.exports.world.individual(999_999)  # any individual, generated on demand
        assert person.index == 999_999 and person.indv_id > 0
        body = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_CSV"}
        assert client.post("/segments/v1/exports", json=body, headers=AUTH).status_code == 200
