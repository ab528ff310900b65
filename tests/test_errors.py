"""Errors carry their status and code from one table, and are complete when created."""

from __future__ import annotations

import pytest

from fullstory_emulator.errors import (
    ECHO_CHARS,
    GRPC_CODES,
    ApiError,
    NotFound,
    RateLimited,
    StorageError,
    echo,
)


@pytest.mark.parametrize(("status", "code"), sorted(GRPC_CODES.items()))
def test_for_status_maps_http_to_grpc(status, code):
    error = ApiError.for_status(status, "why")
    assert (error.status, error.grpc_code, error.message) == (status, code, "why")


def test_unknown_statuses_are_grpc_unknown():
    assert ApiError.for_status(418, "teapot").grpc_code == 2


def test_headers_cannot_change_after_creation():
    error = RateLimited("slow down", retry_after=7)
    assert error.headers == {"Retry-After": "7"}
    with pytest.raises(TypeError):
        error.headers["Retry-After"] = "0"  # type: ignore[index]
    assert NotFound("x").headers == {}


def test_storage_errors_for_a_status():
    error = StorageError.for_status(503, "Try again.", "details")
    assert (error.status, error.code, error.message, error.details) == (
        503,
        "ServiceUnavailable",
        "Try again.",
        "details",
    )


def test_echo_quotes_short_input_whole():
    assert echo("everyone") == "'everyone'"
    assert echo("x" * ECHO_CHARS) == repr("x" * ECHO_CHARS)
    assert echo("/segments/v1/x", quote=False) == "/segments/v1/x"
    assert echo([1, 2]) == "[1, 2]"


def test_echo_cuts_long_input_and_says_its_length():
    assert echo("a" * 900_123) == f"{'a' * ECHO_CHARS!r}… (900,123 characters)"
    assert echo("/p" * 50_000, quote=False) == f"{'/p' * (ECHO_CHARS // 2)}… (100,000 characters)"
    many = [7] * 1000  # not a string: its repr, cut
    assert echo(many) == f"{repr(many)[:ECHO_CHARS]}… ({len(repr(many)):,} characters)"
