"""The server and the client tools read a duration, a bind address, an instant and a log level
the same way: each through one helper of the base modules, not a copy per side."""

from __future__ import annotations

import argparse
import ast
import logging
import socket
from datetime import UTC, datetime, timedelta

import pytest

from fullstory_emulator import netloc
from fullstory_emulator.cli import local_url
from fullstory_emulator.client import cli as export_cli
from fullstory_emulator.client import conformance as client_conformance
from fullstory_emulator.client import core
from fullstory_emulator.client.mcp import _url as mcp_url
from fullstory_emulator.durations import MAX_SECONDS, parse_seconds
from fullstory_emulator.serving import listen
from fullstory_emulator.settings import Settings, SettingsError
from fullstory_emulator.testing import plugin
from fullstory_emulator.timestamps import format_api, format_rfc3339
from tests.helpers import ROOT


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300", 300), ("1.5", 1.5), ("500ms", 0.5), ("90s", 90), ("30m", 1800), ("1h30m", 5400),
     ("7d", 604800), ("1w", 604800)],
)  # fmt: skip
def test_a_duration_means_the_same_to_the_server_and_the_client(text, seconds):
    loaded = Settings.load(environ={"FULLSTORY_EMULATOR_EXPORT_DURATION": text})
    assert loaded.export_duration == seconds
    if not text.replace(".", "").isdigit():
        assert export_cli.parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["30", "1.5"])
def test_a_bare_number_is_refused_where_it_once_meant_minutes(text):
    """`--chunk 30` was thirty minutes; read as seconds it would make 60 times the exports."""
    with pytest.raises(Exception, match=f"'{text}' needs a unit, such as {text}s for seconds"):
        export_cli.parse_duration(text)
    code = export_cli.main(["--api-key", "k", "--start", "today", "--end", "now", "--chunk", text])
    assert code == export_cli.EXIT_USAGE


def test_the_ten_year_limit_is_one_number():
    assert parse_seconds(str(MAX_SECONDS)) == MAX_SECONDS
    with pytest.raises(ValueError, match="longer than ten years"):
        parse_seconds(f"{MAX_SECONDS + 1}s")
    with pytest.raises(argparse.ArgumentTypeError, match="longer than ten years"):
        export_cli.parse_duration(f"{MAX_SECONDS + 1}s")
    with pytest.raises(SettingsError, match="longer than ten years"):
        Settings.load(environ={"FULLSTORY_EMULATOR_EXPORT_RETENTION": "3700d"})


@pytest.mark.parametrize(
    ("host", "reached"),
    [("", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("::1", "[::1]"),
     ("10.1.2.3", "10.1.2.3")],
)  # fmt: skip
def test_every_side_reaches_a_wildcard_through_its_own_loopback(host, reached):
    """`::` was 127.0.0.1 to the server's banner and health check but ::1 to the MCP URLs; a
    container often has no ::1, and the server's `::` socket takes IPv4 (see the next test)."""
    settings = Settings(host=host, port=8123)
    assert settings.base_url() == f"http://{reached}:8123"
    assert local_url(settings) == f"http://{reached}:8123"
    assert mcp_url(host, 8123) == f"http://{reached}:8123/mcp"
    assert netloc.local_url("http", host, 8123) == f"http://{reached}:8123"


def test_a_server_bound_to_the_ipv6_wildcard_is_reached_at_127_0_0_1():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        sock = listen("::", 0)
    except OSError:
        pytest.skip("cannot bind ::")
    with sock:
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        sock.listen()
        with socket.create_connection(("127.0.0.1", sock.getsockname()[1]), timeout=5):
            pass


@pytest.mark.parametrize(
    "moment",
    [datetime(2026, 3, 1, 12, 30, tzinfo=UTC), datetime(2026, 3, 1, 12, 30, 5, 123456),
     datetime(999, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)],
)  # fmt: skip
def test_one_rfc3339_formatter_on_both_sides(moment):
    """Years before 1000 too: strftime's %Y left them unpadded (999-01-02), not RFC 3339."""
    micro = format_api(moment)
    assert micro == format_rfc3339(moment)
    assert core._timestamp(moment) == micro
    assert plugin._timestamp(moment) == micro
    assert client_conformance._rfc3339(moment) == micro[:23] + "Z"
    whole = moment.microsecond == 0
    assert export_cli.rfc3339(moment) == (micro[:19] + "Z" if whole else micro[:23] + "Z")
    assert micro[:4] == f"{moment.year:04d}"


def test_every_logger_of_the_emulator_follows_the_configured_level():
    """`configure_logging` sets the level of `fullstory_emulator`; a logger outside that tree
    (`fullstory_emulator.exports.service`, `emulator`) kept the root's WARNING whatever --log-level
    said."""
    from fullstory_emulator.exports import service
    from fullstory_emulator.http.api import operations
    from fullstory_emulator.server import configure_logging

    loggers = [service.logger, operations.log]
    try:
        configure_logging(Settings(log_level="debug"))
        assert all(log.isEnabledFor(logging.DEBUG) for log in loggers)
        configure_logging(Settings(log_level="error"))
        assert not any(log.isEnabledFor(logging.WARNING) for log in loggers)
    finally:
        configure_logging(Settings())


def test_no_module_names_a_logger_of_its_own():
    """Only logs.get_logger names the emulator's loggers; uvicorn's and the root logger are
    configured, not logged to."""
    wrong = []
    for path in sorted((ROOT / "fullstory_emulator").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "getLogger"):
                continue
            name = node.args[0] if node.args else None
            text = name.value if isinstance(name, ast.Constant) else None
            if path.name != "logs.py" and name is not None and not str(text).startswith("uvicorn"):
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not wrong, wrong
