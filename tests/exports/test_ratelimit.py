"""Rate limiting (CONTRACT §4): a bucket per key and endpoint, 429 with Retry-After."""

from __future__ import annotations

import pytest

from fullstory_emulator.cli import settings_from
from fullstory_emulator.settings import RateLimit
from tests.helpers import AUTH, assert_error


def test_burst_then_429_with_retry_after(make_harness):
    h = make_harness(rate_limit=RateLimit(2, 60, 50))
    for _ in range(50):
        assert h.client.get("/segments/v1", headers=AUTH).status_code == 200
    response = h.client.get("/segments/v1", headers=AUTH)
    body = assert_error(response, 429, 8)
    assert response.headers["Retry-After"] == "30"  # one token every 30 s
    assert "rate limit" in body["message"]


@pytest.mark.stores
def test_refill_follows_the_clock(make_harness):
    h = make_harness(rate_limit=RateLimit(2, 60, 3))
    for _ in range(3):
        assert h.client.get("/segments/v1", headers=AUTH).status_code == 200
    assert h.client.get("/segments/v1", headers=AUTH).status_code == 429
    h.advance(29)
    response = h.client.get("/segments/v1", headers=AUTH)
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    h.advance(1)
    assert h.client.get("/segments/v1", headers=AUTH).status_code == 200
    assert h.client.get("/segments/v1", headers=AUTH).status_code == 429


def test_buckets_are_per_endpoint_and_per_key(make_harness):
    h = make_harness(rate_limit=RateLimit(1, 60, 1))
    assert h.client.get("/segments/v1", headers=AUTH).status_code == 200
    assert h.client.get("/segments/v1", headers=AUTH).status_code == 429
    assert h.client.get("/operations/v1", headers=AUTH).status_code == 200
    other = {"Authorization": "Basic na1.another-key"}
    assert h.client.get("/segments/v1", headers=other).status_code == 200


def test_downloads_and_health_are_not_limited(make_harness):
    h = make_harness(rate_limit=RateLimit(1, 3600, 5))
    op = h.finish(h.create())
    url = h.location(op["results"]["searchExportId"])
    for _ in range(8):
        assert h.client.get(url).status_code == 200
        assert h.client.get("/__emulator/health").status_code == 200


def test_off_means_unlimited(make_harness):
    h = make_harness(rate_limit=None)
    for _ in range(120):
        assert h.client.get("/segments/v1", headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2/60,50", RateLimit(2, 60, 50)),
        ("2/min,50", RateLimit(2, 60, 50)),
        ("10/1,10", RateLimit(10, 1, 10)),
        ("off", None),
    ],
)
def test_parse(text, expected):
    assert RateLimit.parse(text) == expected


@pytest.mark.parametrize("text", ["2", "2/60", "a/b,c", "0/60,5", "2/60,0"])
def test_parse_rejects(text):
    with pytest.raises(ValueError):
        RateLimit.parse(text)


OVERFLOWING = [
    "1/" + "9" * 400 + ",1",  # a period that overflows a float: a rate of 0
    "1/0.0000001,1",  # a period too short to mean anything
    "1/60," + "9" * 400,  # a burst that overflows a float
    "1/60,1000001",
    "1e3/60,1",
    "9" * 400 + "/60,1",
    "²/60,1",  # isdigit() is true for a superscript two; int() refuses it
    "１/60,1",  # full-width digits
]


@pytest.mark.parametrize("text", OVERFLOWING)
def test_parse_rejects_values_out_of_range(text):
    with pytest.raises(ValueError, match=r"rate|period|burst|not a rate limit"):
        RateLimit.parse(text)


@pytest.mark.parametrize("text", OVERFLOWING)
def test_control_api_refuses_them_and_requests_still_answer(harness, text):
    response = harness.client.post("/__emulator/ratelimit", json={"limit": text}, headers=AUTH)
    assert "limit" in assert_error(response, 400, 3)["message"]
    assert harness.client.get("/segments/v1", headers=AUTH).status_code == 200


def test_the_flag_refuses_them(capsys):
    with pytest.raises(SystemExit):
        settings_from(["--rate-limit", OVERFLOWING[0]], environ={})
    assert "period must be from 0.001" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="FULLSTORY_EMULATOR_RATE_LIMIT"):
        settings_from([], environ={"FULLSTORY_EMULATOR_RATE_LIMIT": OVERFLOWING[2]})
