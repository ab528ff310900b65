"""Authentication and roles (CONTRACT §2), through real HTTP."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from fullstory_emulator.auth import KeyRing, is_well_formed
from fullstory_emulator.errors import Unauthenticated
from tests.helpers import AUTH, KEY, assert_error


def test_missing_key_is_401(harness):
    body = assert_error(harness.client.get("/segments/v1"), 401, 16)
    assert "Authorization" in body["message"]


@pytest.mark.parametrize(
    "header",
    ["Basic", "Basic   ", "Digest na1.abcdef", "Basic not-a-key", "Basic na1.", "Token na1.abcdef"],
)
def test_malformed_authorization_is_401(harness, header):
    assert_error(harness.client.get("/segments/v1", headers={"Authorization": header}), 401, 16)


def test_a_short_key_is_told_what_a_well_formed_key_is(harness):
    r = harness.client.get("/segments/v1", headers={"Authorization": "Basic na1.abc"})
    assert assert_error(r, 401, 16)["message"] == (
        "API key 'na1.…' is not well formed; FullStory keys look like 'na1.<token>' or "
        "'eu1.<token>': a region (two letters and a digit), a dot, and a token of at least 4 "
        "characters (letters, digits, ._~+/=-)"
    )
    assert harness.client.get(
        "/segments/v1", headers={"Authorization": "Basic na1.abcd"}
    ).is_success


def test_raw_basic_key_is_accepted(harness):
    assert harness.client.get("/segments/v1", headers=AUTH).status_code == 200


def test_bearer_accepted_by_default_and_refused_in_strict_mode(make_harness):
    bearer = {"Authorization": f"Bearer {KEY}"}
    assert make_harness().client.get("/segments/v1", headers=bearer).status_code == 200
    strict = make_harness(strict_auth=True)
    body = assert_error(strict.client.get("/segments/v1", headers=bearer), 401, 16)
    assert "Basic" in body["message"]
    assert strict.client.get("/segments/v1", headers=AUTH).status_code == 200


def test_base64_user_pass_form_is_tolerated(harness):
    for pair in (f"{KEY}:", f":{KEY}"):
        encoded = base64.b64encode(pair.encode()).decode()
        response = harness.client.get("/segments/v1", headers={"Authorization": f"Basic {encoded}"})
        assert response.status_code == 200, pair


def test_every_api_route_requires_a_key(harness):
    for method, path in [
        ("GET", "/segments/v1"),
        ("GET", "/segments/v1/everyone"),
        ("POST", "/segments/v1/exports"),
        ("GET", "/operations/v1"),
        ("GET", "/operations/v1/abc"),
        ("POST", "/operations/v1/abc/cancel"),
        ("GET", "/search/v1/exports/abc/results"),
    ]:
        assert_error(harness.client.request(method, path), 401, 16)


@pytest.fixture
def keyed(make_harness, tmp_path: Path):
    keys = {
        "keys": [
            {"key": "na1.admin-key-1", "role": "admin", "tenant": "acme"},
            {"key": "na1.architect-key", "role": "architect", "tenant": "acme"},
            {"key": "na1.standard-key", "role": "standard", "tenant": "acme"},
        ]
    }
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(keys))
    return make_harness(keys=path)


def test_unknown_key_with_key_file_is_401(keyed):
    response = keyed.client.get("/segments/v1", headers={"Authorization": "Basic na1.unknown"})
    body = assert_error(response, 401, 16)
    assert "na1.unknown" not in body["message"]  # never echo a secret


def test_lesser_role_gets_403_on_export_creation(keyed):
    body = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_CSV"}
    standard = {"Authorization": "Basic na1.standard-key"}
    assert keyed.client.get("/segments/v1", headers=standard).status_code == 200
    err = assert_error(
        keyed.client.post("/segments/v1/exports", json=body, headers=standard), 403, 7
    )
    assert "Admin or Architect" in err["message"]
    for key in ("na1.admin-key-1", "na1.architect-key"):
        ok = keyed.client.post(
            "/segments/v1/exports", json=body, headers={"Authorization": f"Basic {key}"}
        )
        assert ok.status_code == 200, ok.text


def test_keys_of_one_tenant_share_operations(keyed):
    body = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_CSV"}
    created = keyed.client.post(
        "/segments/v1/exports", json=body, headers={"Authorization": "Basic na1.admin-key-1"}
    ).json()["operationId"]
    seen = keyed.client.get(
        f"/operations/v1/{created}", headers={"Authorization": "Basic na1.architect-key"}
    )
    assert seen.status_code == 200


def test_other_keys_do_not_see_each_others_operations(harness):
    op = harness.create()
    other = {"Authorization": "Basic eu1.someone-else"}
    assert_error(harness.client.get(f"/operations/v1/{op}", headers=other), 404, 5)
    assert harness.client.get("/operations/v1", headers=other).json()["operations"] == []


def test_keyring_rejects_bad_key_file(tmp_path: Path):
    path = tmp_path / "keys.json"
    path.write_text('{"keys": [{"key": "na1.x1234", "role": "wizard"}]}')
    with pytest.raises(ValueError, match="wizard"):
        KeyRing.from_file(path)
    path.write_text("not json")
    with pytest.raises(ValueError, match="cannot read"):
        KeyRing.from_file(path)


def test_key_shape():
    assert is_well_formed("na1.ABCdef123==") and is_well_formed("eu1.x-y_z")
    assert not is_well_formed("abc") and not is_well_formed("na1.") and not is_well_formed("")
    with pytest.raises(Unauthenticated):
        KeyRing().authenticate("Basic nope")
