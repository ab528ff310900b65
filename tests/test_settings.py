"""Settings: defaults from the contract, env vars, flags winning, docs/settings.md listing all."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fullstory_emulator.cli import _parser, settings_from
from fullstory_emulator.settings import (
    RateLimit,
    Settings,
    SettingsError,
    describe,
    markdown_table,
    redact_url,
)
from tests.helpers import ROOT


def test_defaults_follow_the_contract():
    s = Settings()
    assert (s.host, s.port, s.url_ttl, s.failure_state) == ("127.0.0.1", 8080, 300, "ERROR")
    assert s.rate_limit == RateLimit(2, 60, 50) and s.html_escape and s.data_days == 90
    assert s.base_url() == "http://127.0.0.1:8080"


def test_required_flag_names():
    _, s = settings_from(
        [
            "--host",
            "0.0.0.0",
            "--port",
            "9000",
            "--seed",
            "5",
            "--start-time",
            "2026-01-02T03:04:05Z",
            "--export-duration",
            "7",
            "--url-ttl",
            "60",
            "--failure-state",
            "failed",
            "--rate-limit",
            "off",
            "--no-html-escape",
            "--keys",
            "fixtures/keys.json",
        ],
        environ={},
    )
    assert (s.host, s.port, s.seed, s.export_duration, s.url_ttl) == ("0.0.0.0", 9000, 5, 7, 60)
    assert s.start_time == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert s.failure_state == "FAILED" and s.rate_limit is None and not s.html_escape
    assert s.keys == Path("fixtures/keys.json")
    assert s.base_url() == "http://127.0.0.1:9000"  # 0.0.0.0 is not an address to link to


def test_env_then_flags():
    env = {
        "FULLSTORY_EMULATOR_PORT": "9100",
        "FULLSTORY_EMULATOR_SEED": "11",
        "FULLSTORY_EMULATOR_HTML_ESCAPE": "false",
        "FULLSTORY_EMULATOR_URL_TTL": "5m",
    }
    _, s = settings_from(["--seed", "12"], environ=env)
    assert (s.port, s.seed, s.html_escape, s.url_ttl) == (9100, 12, False, 300)
    _, s = settings_from(["serve", "--port", "9200"], environ=env)
    assert s.port == 9200


def test_bad_env_names_the_variable():
    with pytest.raises(SettingsError, match="FULLSTORY_EMULATOR_FAILURE_STATE"):
        Settings.load({}, {"FULLSTORY_EMULATOR_FAILURE_STATE": "BROKEN"})


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "70000"],
        ["--failure-state", "OOPS"],
        ["--start-time", "yesterday"],
        ["--export-duration", "soon"],
    ],
)
def test_bad_flags_exit(argv, capsys):
    with pytest.raises(SystemExit):
        settings_from(argv, environ={})
    assert "error" in capsys.readouterr().err


def test_the_docs_document_every_setting():
    page = (ROOT / "docs" / "settings.md").read_text()
    for flag, env, _default, _help in describe():
        assert flag in page and env in page, flag


def test_the_pytest_example_is_the_tested_file():
    example = (ROOT / "tests" / "test_readme_example.py").read_text().rstrip()
    assert example in (ROOT / "docs" / "pytest.md").read_text()


def test_store_takes_a_postgresql_url_and_hides_its_password():
    url = "postgresql://emu:s3cret@db:5432/emulator"
    _, s = settings_from(["--store", url], environ={})
    assert s.store == url and s.data_dir is None
    env = {"FULLSTORY_EMULATOR_STORE": "postgres://emu@db/emulator"}
    assert Settings.load({}, env).store == "postgres://emu@db/emulator"
    assert Settings.load({}, {"FULLSTORY_EMULATOR_STORE": "memory"}).store is None
    with pytest.raises(SettingsError, match="not a PostgreSQL URL") as error:
        Settings.load({}, {"FULLSTORY_EMULATOR_STORE": "mysql://emu:s3cret@db/x"})
    assert "s3cret" not in str(error.value) and "mysql://emu:***@db/x" in str(error.value)
    assert redact_url(url) == "postgresql://emu:***@db:5432/emulator"
    assert redact_url("postgresql:///e?host=/tmp&password=s3cret&user=emu") == (
        "postgresql:///e?host=/tmp&password=***&user=emu"
    )
    assert Settings.load({}, Settings(store=url).to_environ()).store == url  # to workers


def test_an_empty_host_means_the_default_never_every_interface():
    assert Settings.load({}, {"FULLSTORY_EMULATOR_HOST": ""}).host == "127.0.0.1"
    assert Settings.load({}, {"FULLSTORY_EMULATOR_HOST": "  "}).host == "127.0.0.1"
    _, s = settings_from(["--host", ""], environ={})
    assert s.host == "127.0.0.1" and s.base_url() == "http://127.0.0.1:8080"
    assert Settings.load({}, {"FULLSTORY_EMULATOR_HOST": "0.0.0.0"}).host == "0.0.0.0"


@pytest.mark.parametrize(
    "name,value,says",
    [
        ("START_TIME", "9999-12-31T23:59:58Z", "2000-01-01T00:00:00Z to 3000-01-01T00:00:00Z"),
        ("URL_TTL", "1" + "0" * 400, "longer than ten years"),
        ("EXPORT_RETENTION", "400000d", "longer than ten years"),
    ],
)
def test_instants_and_durations_are_bounded(name, value, says):
    with pytest.raises(SettingsError, match=says):
        Settings.load({}, {f"FULLSTORY_EMULATOR_{name}": value})


def test_a_mistyped_variable_is_named_with_the_closest_setting(capsys):
    env = {
        "FULLSTORY_EMULATOR_URL_TTL": "60",
        "FULLSTORY_EMULATOR_RATELIMIT": "off",
        "FULLSTORY_EMULATOR_XYZZY_PLUGH": "1",
        "OTHER_VARIABLE": "x",
    }
    settings = Settings.load({}, env)
    assert settings.url_ttl == 60 and settings.rate_limit == RateLimit(2, 60, 50)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "fullstory-emulator: warning: FULLSTORY_EMULATOR_RATELIMIT is not a setting, ignored; "
        "did you mean FULLSTORY_EMULATOR_RATE_LIMIT?",
        "fullstory-emulator: warning: FULLSTORY_EMULATOR_XYZZY_PLUGH is not a setting, ignored",
    ]
    Settings.load({}, env)  # once per process
    assert capsys.readouterr().err == ""


def test_the_settings_table_is_generated_from_the_settings():
    assert markdown_table() in (ROOT / "docs" / "settings.md").read_text()


def test_help_says_each_default_once_and_lists_choices():
    raw = _parser().format_help()
    blocks = re.split(r"\n(?=  --)", raw[raw.index("settings:") :])  # one per option
    options = [" ".join(block.split()) for block in blocks[1:]]
    text = " ".join(raw.split())
    for option in options:
        assert option.count("(default") <= 1, option
    assert "--access-log {text,json,off}" in text
    assert "--failure-state {ERROR,FAILED}" in text
    html = next(o for o in options if o.startswith("--no-html-escape"))
    assert "[env FULLSTORY_EMULATOR_HTML_ESCAPE=false]" in html and "turns it off" in html
    assert "(default: 127.0.0.1)" in text and "(default: none)" not in text


def test_density_is_a_bounded_multiplier_that_reaches_the_world(make_harness):
    _, s = settings_from(["--density", "2.5"], environ={"FULLSTORY_EMULATOR_DENSITY": "0.5"})
    assert s.density == 2.5 and Settings().density == 1.0
    assert Settings.load({}, {"FULLSTORY_EMULATOR_DENSITY": "0.5"}).density == 0.5
    with pytest.raises(SettingsError, match=r"FULLSTORY_EMULATOR_DENSITY: 0 is outside 0.01..100"):
        Settings.load({}, {"FULLSTORY_EMULATOR_DENSITY": "0"})
    assert make_harness(density=2.0).em.exports.world.density == 2.0


def test_export_workers_and_file_cache_size():
    _, defaults = settings_from([], environ={})
    assert defaults.export_workers == 0 and defaults.file_cache_bytes == 2 * 1024**3
    assert defaults.export_processes() >= 1  # 0: one per usable core
    _, given = settings_from(
        ["--export-workers", "3", "--file-cache-bytes", "500MB"],
        environ={"FULLSTORY_EMULATOR_FILE_CACHE_BYTES": "1GiB"},
    )
    assert given.export_processes() == 3 and given.file_cache_bytes == 500_000_000
    environ = {"FULLSTORY_EMULATOR_FILE_CACHE_BYTES": "1GiB"}
    assert Settings.load({}, environ).file_cache_bytes == 2**30
    with pytest.raises(SettingsError, match=r"FILE_CACHE_BYTES.*not a size"):
        Settings.load({}, {"FULLSTORY_EMULATOR_FILE_CACHE_BYTES": "lots"})


def test_max_export_events_from_flags_and_env():
    _, defaults = settings_from([], environ={})
    assert defaults.max_export_events == 10_000_000
    env = {"FULLSTORY_EMULATOR_MAX_EXPORT_EVENTS": "500k"}
    assert Settings.load({}, env).max_export_events == 500_000
    _, flagged = settings_from(["--max-export-events", "2M"], environ=env)  # the flag wins
    assert flagged.max_export_events == 2_000_000
    for text, value in (("25_000_000", 25_000_000), ("1.5M", 1_500_000), ("1G", 10**9)):
        assert Settings.load({}, {"FULLSTORY_EMULATOR_MAX_EXPORT_EVENTS": text}) == Settings(
            max_export_events=value
        )
    assert Settings.load({}, flagged.to_environ()).max_export_events == 2_000_000  # to workers


@pytest.mark.parametrize("text", ["0", "-5", "lots", "1e6", "1.5", "2_", "1000000000001"])
def test_max_export_events_refuses_what_is_not_a_count(text, capsys):
    with pytest.raises(SettingsError, match="FULLSTORY_EMULATOR_MAX_EXPORT_EVENTS"):
        Settings.load({}, {"FULLSTORY_EMULATOR_MAX_EXPORT_EVENTS": text})
    with pytest.raises(SystemExit):
        settings_from(["--max-export-events", text], environ={})
    assert "--max-export-events" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["0", "0.5", "500ms"])
def test_a_url_ttl_under_a_second_is_refused_as_the_control_api_refuses_it(text, capsys):
    with pytest.raises(SettingsError, match=r"URL_TTL: .* less than 1s"):
        Settings.load({}, {"FULLSTORY_EMULATOR_URL_TTL": text})
    with pytest.raises(SystemExit):
        settings_from(["--url-ttl", text], environ={})
    assert "--url-ttl" in capsys.readouterr().err
    assert Settings.load({}, {"FULLSTORY_EMULATOR_URL_TTL": "1"}).url_ttl == 1


@pytest.mark.parametrize("text", ["0", "999999", "512KiB"])
def test_a_file_cache_smaller_than_a_megabyte_is_refused(text):
    with pytest.raises(SettingsError, match=r"FILE_CACHE_BYTES: .* is less than 1MB; .* 507"):
        Settings.load({}, {"FULLSTORY_EMULATOR_FILE_CACHE_BYTES": text})
    assert (
        Settings.load({}, {"FULLSTORY_EMULATOR_FILE_CACHE_BYTES": "1MB"}).file_cache_bytes == 10**6
    )
