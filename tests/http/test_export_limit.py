"""No tenant can make an unbounded export: --max-export-events refuses a larger export when it is
created (per tenant through /__emulator/config), and a file larger than the whole file cache is
answered with 507 instead of being made and evicted again on every download."""

from __future__ import annotations

import logging
import re

import pytest

from tests.helpers import AUTH, assert_error

OTHER = {"Authorization": "Basic na1.other-tenant-key"}
ALL_TIME = {"timeRange": {"start": "", "end": ""}, "segmentTimeRange": {"start": "", "end": ""}}
# The small harness's world: 60 individuals at a quarter density, 7 events a day each at
# density 1, so its default 30-day window is ~3,150 estimated events and all its 90 days ~9,450.
LIMIT = 5000


def create(h, headers=AUTH, **body):
    payload = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"}
    return h.client.post("/segments/v1/exports", json=payload | body, headers=headers)


def config(h, body, headers=AUTH):
    return h.client.post("/__emulator/config", json=body, headers=headers)


def refused(response) -> str:
    message: str = assert_error(response, 400, 3)["message"]
    return message


def test_the_hostile_export_is_refused_at_create_with_the_limit_and_how_to_raise_it(
    make_harness,
):
    # The hostile run: a tenant's own clock a year ahead, then a 2.5-year segmentTimeRange,
    # in a world of 4000 people (the default population would need a lower limit to be
    # refused; the default limit is checked here).
    h = make_harness(population=4000, density=1.0)
    moved = h.client.post("/__emulator/clock", json={"advance": 366 * 86400}, headers=AUTH)
    assert moved.status_code == 200
    window = {"start": "2025-01-01T00:00:00Z", "end": "2027-07-01T00:00:00Z"}
    message = refused(create(h, segmentTimeRange=window))
    estimate = re.search(r"would read about ([\d,]+) events", message)
    assert estimate is not None
    assert 12_000_000 < int(estimate.group(1).replace(",", "")) < 14_000_000  # 456 days
    assert "4,000 individuals over the 456.5 days of data" in message
    assert "more than the limit of 10,000,000 estimated events" in message
    for how in (
        "--max-export-events N",
        "FULLSTORY_EMULATOR_MAX_EXPORT_EVENTS",
        'POST /__emulator/config {"maxExportEvents": N}',
        "timeRange or segmentTimeRange",
    ):
        assert how in message
    # Refused before anything is stored or made: no operation, no file started.
    assert h.client.get("/operations/v1", headers=AUTH).json()["operations"] == []
    assert list(h.em.exports.files.directory.iterdir()) == []
    assert create(h).status_code == 200  # the segment's own 30 days (~840k) are fine


def test_days_before_the_data_count_for_nothing(make_harness):
    since_2000 = {"start": "2000-01-01T00:00:00Z", "end": ""}
    both = {"timeRange": since_2000, "segmentTimeRange": since_2000}
    # Its 90 days of data (~9,500 events), not the 26 years since 2000 (~1M).
    assert create(make_harness(max_export_events=20_000), **both).status_code == 200
    message = refused(create(make_harness(max_export_events=9000), **both))
    assert "about 9,502 events (60 individuals over the 90.5 days of data" in message


def test_the_limit_per_tenant_and_for_the_instance(make_harness):
    h = make_harness(max_export_events=LIMIT)
    assert create(h).status_code == 200  # 30 days
    assert "more than the limit of 5,000 " in refused(create(h, **ALL_TIME))  # 90 days
    got = h.client.get("/__emulator/config", headers=AUTH).json()
    assert got["maxExportEvents"] == LIMIT and got["overrides"]["maxExportEvents"] is None

    assert config(h, {"maxExportEvents": 20_000}).status_code == 200  # raised for this tenant
    assert create(h, **ALL_TIME).status_code == 200
    assert "limit of 5,000 " in refused(create(h, headers=OTHER, **ALL_TIME))  # not for others
    got = h.client.get("/__emulator/config", headers=AUTH).json()
    assert got["maxExportEvents"] == 20_000 and got["overrides"]["maxExportEvents"] == 20_000

    assert config(h, {"maxExportEvents": 1000}).status_code == 200  # lowered
    assert "more than the limit of 1,000 " in refused(create(h))
    assert config(h, {"maxExportEvents": None}).status_code == 200  # back to the setting
    assert create(h).status_code == 200

    assert config(h, {"maxExportEvents": 100}, headers={}).status_code == 200  # every tenant
    assert "limit of 100 " in refused(create(h, headers=OTHER))
    assert config(h, {"maxExportEvents": 20_000}).status_code == 200  # a tenant's own wins
    assert create(h, **ALL_TIME).status_code == 200
    assert "limit of 100 " in refused(create(h, headers=OTHER))


@pytest.mark.stores
def test_a_tenants_limit_is_kept_by_every_store(make_harness):
    h = make_harness(max_export_events=LIMIT)
    assert config(h, {"maxExportEvents": 1000}).status_code == 200
    assert "limit of 1,000 " in refused(create(h))
    got = h.client.get("/__emulator/config", headers=AUTH).json()
    assert got["overrides"]["maxExportEvents"] == 1000


def test_the_control_apis_own_exports_obey_the_limit(make_harness):
    h = make_harness(max_export_events=LIMIT)
    body = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"}
    response = h.client.post("/__emulator/exports", json=body | ALL_TIME, headers=AUTH)
    assert "limit of 5,000 " in refused(response)


@pytest.mark.parametrize("value", [0, -1, 1.5, "10M", True, 10**12 + 1, [1]])
def test_max_export_events_must_be_a_positive_integer(harness, value):
    message = refused(config(harness, {"maxExportEvents": value}))
    assert message.startswith("maxExportEvents must be an integer from 1 to ")


def test_config_names_max_export_events(harness):
    assert "maxExportEvents" in refused(config(harness, {"warp": 1}))


def test_under_tenant_auth_a_key_may_lower_its_limit_but_only_the_admin_raise_it(make_harness):
    h = make_harness(max_export_events=LIMIT, control_auth="tenant", control_token="admin-t")
    raised = config(h, {"maxExportEvents": LIMIT + 1})
    message = assert_error(raised, 403, 7)["message"]
    assert "instance's (5000)" in message and "X-Emulator-Token" in message
    assert "--max-export-events" in message
    assert "limit of 5,000 " in refused(create(h, **ALL_TIME))  # unchanged
    assert config(h, {"maxExportEvents": 1000}).status_code == 200  # lowering is the tenant's
    assert "limit of 1,000 " in refused(create(h))
    assert config(h, {"maxExportEvents": None}).status_code == 200  # back to the instance's
    admin = AUTH | {"X-Emulator-Token": "admin-t"}
    assert config(h, {"maxExportEvents": 20_000}, headers=admin).status_code == 200
    assert create(h, **ALL_TIME).status_code == 200


def download_url(h) -> str:
    operation = h.finish(h.create())  # the last 30 days
    assert operation["state"] == "COMPLETED"
    return h.location(operation["results"]["searchExportId"])


def test_a_file_larger_than_the_cache_is_answered_507_not_made_on_every_download(
    make_harness, caplog
):
    h = make_harness(file_cache_bytes=1000)  # the file is ~50 KB
    url = download_url(h)
    with caplog.at_level(logging.WARNING, logger="fullstory_emulator.exports.service"):
        answers = [h.client.get(url), h.client.head(url), h.client.get(url)]
    for answer in answers:
        assert answer.status_code == 507
        assert answer.headers["content-type"] == "application/xml; charset=UTF-8"
    body = answers[0].text
    assert "<Code>InsufficientStorage</Code>" in body
    assert "larger than --file-cache-bytes (1,000 bytes; FULLSTORY_EMULATOR_FILE_CACHE_BYTES)" in (
        body
    )
    assert "raise --file-cache-bytes" in body and "--max-export-events" in body
    # Made once, up to the cache's size, then never again: one warning, nothing on disk.
    warned = [r for r in caplog.records if "not kept" in r.getMessage()]
    assert len(warned) == 1 and "--file-cache-bytes" in warned[0].getMessage()
    left = [p.name for p in h.em.exports.files.directory.iterdir()]
    assert len(left) == 1 and left[0].endswith(".too-large")


def test_the_same_file_downloads_once_the_cache_is_large_enough(make_harness, tmp_path):
    small = make_harness(file_cache_bytes=1000, data_dir=tmp_path)
    url = download_url(small)
    assert small.client.get(url).status_code == 507
    large = make_harness(data_dir=tmp_path)  # the same state and cache folder, 2 GiB
    response = large.client.get(url)
    assert response.status_code == 200 and len(response.content) > 1000
    assert [p.suffix for p in large.em.exports.files.directory.iterdir()] == [".gz"]
