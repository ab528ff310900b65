"""Range and If-Range (fullstory_emulator/files/ranges.py), as Cloud Storage reads them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fullstory_emulator.errors import InvalidRange
from fullstory_emulator.files.ranges import Slice, http_date, select

MODIFIED = datetime(2026, 3, 1, 12, 0, 5, 250_000, tzinfo=UTC)


@pytest.mark.parametrize(
    "header,expected",
    [
        (None, Slice(0, 100, 100)),
        ("bytes=0-9", Slice(0, 10, 100, partial=True)),
        ("bytes=90-", Slice(90, 100, 100, partial=True)),
        ("bytes=90-1000", Slice(90, 100, 100, partial=True)),
        ("bytes=-10", Slice(90, 100, 100, partial=True)),
        ("bytes=-1000", Slice(0, 100, 100, partial=True)),
        ("bytes=99-99", Slice(99, 100, 100, partial=True)),
        (" bytes = 5 - 6 ", Slice(5, 7, 100, partial=True)),
        ("bytes=0-1,4-5", Slice(0, 100, 100)),  # several ranges: ignored
        ("bytes=5-4", Slice(0, 100, 100)),  # not a range: ignored
        ("bytes=-", Slice(0, 100, 100)),
        ("pages=1-2", Slice(0, 100, 100)),
    ],
)
def test_ranges(header, expected):
    assert select(100, header) == expected


HUGE = "1" + "0" * 5000  # more digits than int() converts


@pytest.mark.parametrize(
    "header,expected",
    [
        (f"bytes=0-{HUGE}", Slice(0, 100, 100, partial=True)),
        (f"bytes=5-000{HUGE}", Slice(5, 100, 100, partial=True)),
        (f"bytes=-{HUGE}", Slice(0, 100, 100, partial=True)),
        (f"bytes={HUGE}1-{HUGE}", Slice(0, 100, 100)),  # end before start: ignored
        ("bytes=0005-0009", Slice(5, 10, 100, partial=True)),
        ("bytes=\u0661-\u0662", Slice(0, 100, 100)),  # Arabic-Indic digits are not DIGIT
    ],
)
def test_numbers_of_any_length(header, expected):
    assert select(100, header) == expected


@pytest.mark.parametrize(
    "header", ["bytes=100-", "bytes=150-160", "bytes=-0", "bytes=-000", f"bytes={HUGE}-"]
)
def test_unsatisfiable(header):
    with pytest.raises(InvalidRange) as caught:
        select(100, header)
    assert caught.value.status == 416 and caught.value.code == "InvalidRange"
    assert caught.value.headers == {"Content-Range": "bytes */100"}


def test_content_range_and_length():
    part = select(100, "bytes=10-19")
    assert (part.length, part.content_range()) == (10, "bytes 10-19/100")


def test_if_range():
    etag = '"abc"'

    def chosen(if_range: str) -> Slice:
        return select(100, "bytes=50-", if_range=if_range, etag=etag, last_modified=MODIFIED)

    assert http_date(MODIFIED) == "Sun, 01 Mar 2026 12:00:05 GMT"
    assert chosen('"abc"').partial and chosen("Sun, 01 Mar 2026 12:00:05 GMT").partial
    for stale in ('"abd"', 'W/"abc"', "Sun, 01 Mar 2026 12:00:04 GMT", "garbage"):
        assert chosen(stale) == Slice(0, 100, 100), stale
