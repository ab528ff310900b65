"""One pass per request: the caller is resolved once, and every answer carries the clock."""

from __future__ import annotations

import pytest

from tests.helpers import AUTH, START, parse


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/segments/v1"),
        ("GET", "/operations/v1"),
        ("POST", "/__emulator/clock"),
        ("GET", "/__emulator/faults"),
    ],
)
def test_the_key_is_authenticated_once_per_request(harness, monkeypatch, method, path):
    calls = []
    authenticate = harness.em.keys.authenticate

    def counting(header):
        calls.append(header)
        return authenticate(header)

    monkeypatch.setattr(harness.em.keys, "authenticate", counting)
    body = {"advance": 1} if path.endswith("clock") else None
    response = harness.client.request(method, path, headers=AUTH, json=body)
    assert response.status_code == 200, response.text
    assert calls == [AUTH["Authorization"]]


def test_answers_carry_the_tenants_clock_and_the_worker(harness):
    response = harness.client.get("/segments/v1", headers=AUTH)
    assert parse(response.headers["X-Emulator-Now"]) == START
    assert response.headers["X-Emulator-Worker"].isdigit()
    refused = harness.client.get("/segments/v1")  # no key: still stamped
    assert refused.status_code == 401 and "X-Emulator-Now" in refused.headers


def test_a_refused_key_is_refused_by_the_route_that_needs_it(harness):
    bad = {"Authorization": "Basic not-a-key"}
    assert harness.client.get("/segments/v1", headers=bad).status_code == 401
    assert harness.client.get("/__emulator/clock", headers=bad).status_code == 401
    assert harness.client.get("/__emulator/health", headers=bad).status_code == 200
