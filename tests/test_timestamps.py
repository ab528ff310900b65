"""Timestamps in the wire's two shapes; RFC 3339 parsing takes ASCII digits only, the whole
text, and no instant past the years 1 to 9999."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fullstory_emulator.timestamps import format_api, format_ms, parse_rfc3339, to_ms


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


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
@example(datetime(1969, 12, 31))  # day -1 of the epoch: once mistaken for "no day cached yet"
@example(datetime(999, 1, 1))
def test_export_format_is_utc_with_milliseconds_in_every_year(naive):
    value = naive.replace(tzinfo=UTC, microsecond=naive.microsecond // 1000 * 1000)
    text = format_ms(to_ms(value))
    assert len(text) == 24 and text.endswith("Z")  # four-digit years, zero-padded
    assert datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) == value


def test_offsets_and_fractions():
    assert parse_rfc3339("2026-03-01T12:00:00.5+01:30") == datetime(
        2026, 3, 1, 10, 30, 0, 500000, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "text,why",
    [
        ("２０２６-03-01T12:00:00Z", "not an RFC 3339"),  # full-width digits
        ("2026-03-01T12:00:00Z\n", "not an RFC 3339"),  # a trailing newline
        ("2026-03-01T12:00:0٣Z", "not an RFC 3339"),  # an Arabic-Indic digit
        ("0001-01-01T00:00:00+23:59", "outside the years 1 to 9999"),
        ("9999-12-31T23:59:59-23:59", "outside the years 1 to 9999"),
        ("2026-02-30T00:00:00Z", "not a valid date"),
    ],
)
def test_refused_with_a_message(text, why):
    with pytest.raises(ValueError, match=why):
        parse_rfc3339(text)
