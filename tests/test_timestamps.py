"""RFC 3339 parsing (emulator/timestamps.py): ASCII digits only, whole text, no overflow."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from emulator.timestamps import parse_rfc3339


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
