"""Timestamps in the wire's two shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.timestamps import format_api, format_ms, parse_rfc3339, to_ms


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_api_format_is_utc_with_microseconds(naive):
    value = naive.replace(tzinfo=UTC)
    text = format_api(value)
    assert len(text) == 27 and text.endswith("Z")
    assert datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) == value


def test_api_format_converts_other_offsets_to_utc():
    value = datetime(2026, 3, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert format_api(value) == "2026-03-01T10:00:00.000000Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T00:00:00Z", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T00:00:00.000Z", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T02:30:00.123456789+02:30", datetime(2024, 1, 1, 0, 0, 0, 123456, UTC)),
    ],
)
def test_rfc3339_parsing(text, expected):
    assert parse_rfc3339(text) == expected


def test_export_timestamps_have_milliseconds():
    assert format_ms(to_ms(datetime(2020, 8, 27, 6, 20, 26, 900000, UTC))) == (
        "2020-08-27T06:20:26.900Z"
    )
