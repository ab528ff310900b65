"""`fullstory-emulator conformance` against real emulators (processes started as a user would):
no difference from a default one, exactly the setting's difference from one with
`--failure-state FAILED` or `--no-html-escape`, and never a key, a signature or a row's value in
what it prints."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from fullstory_emulator.client.conformance import (
    PROBES,
    Observation,
    compare,
    differences,
    html_escaping,
    read_gzip_lines,
    row_contract,
    shape,
    union,
)
from fullstory_emulator.contract import ID_FIELDS
from fullstory_emulator.testing import conformance
from tests.helpers import emulator_command, start

KEY = "na1.conformance-secret-key-4711"
SECRETS = (
    KEY,
    "conformance-secret",
    "X-Goog-Signature=",
    "X-Goog-Credential=",
    "?X-Goog",
    "@",  # the segments' creators and the rows' UserEmail are email addresses
    "acme",  # the world's shop: its domain is in page URLs, emails and names
)
HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")


@pytest.fixture(scope="module")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Emulator processes: default settings, other data (`--seed`, `--density`: another org's
    rows, which must not count), `--failure-state FAILED` and `--no-html-escape`."""
    variants = {
        "default": (),
        "seed": ("--seed", "2"),
        "density": ("--density", "3"),
        "failed": ("--failure-state", "FAILED"),
        "raw": ("--no-html-escape",),
    }
    processes: list[subprocess.Popen[bytes]] = []
    urls: dict[str, str] = {}
    try:
        for name, args in variants.items():
            process, url, _ = start(tmp_path_factory.mktemp(name), *args)
            processes.append(process)
            urls[name] = url
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


def check(url: str, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str, str]:
    code = conformance.main(["--api-url", url, "--api-key", KEY, *flags])
    out, err = capsys.readouterr()
    return code, out, err


def assert_nothing_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
        assert not HEX_SIGNATURE.search(text)


def test_a_default_emulator_shows_no_difference(emulators: dict[str, str]) -> None:
    """The real command, the key from the environment: exit 0, every probe in the report, each
    run to its end, and nothing secret on stdout or stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULLSTORY_")}
    env["FULLSTORY_API_KEY"] = KEY
    began = time.monotonic()
    result = subprocess.run(
        [*emulator_command(), "conformance", "--api-url", emulators["default"], "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["differences"] == 0 and differences(report) == []
    assert list(report["probes"]) == list(PROBES)
    for name, probe in report["probes"].items():
        assert "skipped" not in probe, (name, probe)
        assert probe["request"] == PROBES[name]
        for aspect, entry in probe["aspects"].items():
            assert set(entry) == {"target", "reference", "differs"}, (name, aspect)
    aspects = {name: probe["aspects"] for name, probe in report["probes"].items()}

    def seen(probe: str, aspect: str) -> Any:
        entry = aspects[probe][aspect]
        assert entry["target"] == entry["reference"]
        return entry["target"]

    # what the emulator answers, observed as a client depends on it
    assert seen("no_key", "status") == 401 and seen("no_key", "code") == 16
    assert seen("unknown_segment", "status") == 404 and seen("unknown_operation", "code") == 5
    assert seen("bad_body", "status") == 400 and seen("bad_body", "code") == 3
    assert seen("bad_body", "htmlEscape") == "escaped"  # the unknown enum value is echoed
    assert seen("bad_body", "shape") == {"code": "integer", "details": [], "message": "string"}
    assert seen("list_segments", "shape")["segments"][0]["created"] == "absent|rfc3339"
    assert seen("poll_export", "state") == "COMPLETED"
    assert seen("poll_export", "type") == "SEARCH_EXPORT"
    assert seen("poll_export", "shape")["estimatePctComplete"] == "integer"
    assert seen("poll_export", "shapeWhilePending")["results"] == "null"
    assert seen("export_results", "htmlEscape") == "escaped"  # the location's &
    assert "X-Goog-Signature" in seen("export_results", "locationQueryParameters")
    assert seen("download", "contentEncoding") == "(absent)"
    assert seen("download", "gzip") == "valid"
    assert seen("download", "rows") == "one JSON object per line"
    assert seen("download", "contentDisposition") == (
        'attachment; filename="{segment}-########T######Z.ndjson.gz"'
    )
    columns = seen("download", "columnTypes")
    assert columns["EventStart"] == "rfc3339" and columns["EventDuration"] == "integer"
    assert seen("download", "idTypes") == dict.fromkeys(ID_FIELDS, "64-bit integer")
    assert seen("download", "timestampFormats")["EventStart"] == "9999-99-99T99:99:99.999Z"
    assert seen("download", "customVariables") == "follow the suffixes"
    assert seen("cancel_finished", "status") == 501
    assert seen("cancel_export", "cancelStatus") == 200
    assert seen("cancel_export", "state") == "ERROR"
    assert report["probes"]["download"]["info"]["target"]["rowsRead"] > 0
    assert_nothing_secret(result.stdout, result.stderr)
    assert elapsed < 30  # a few seconds, both sides at once


@pytest.mark.parametrize("variant", ["seed", "density"])
def test_another_orgs_data_is_information_not_a_difference(
    variant: str, emulators: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Which columns and custom fields a sample of rows holds depends on the data: listed, not
    counted, so that a real org (whose data is its own) can show no difference."""
    code, out, err = check(emulators[variant], capsys, "--json")
    report = json.loads(out)
    assert (code, differences(report)) == (0, []), out + err
    info = report["probes"]["download"]["info"]
    assert info["target"]["customFields"] and info["reference"]["customFields"]
    assert all(re.fullmatch(r"(user|evt|page)_\w+", f) for f in info["target"]["customFields"])
    assert "rowShape" not in report["probes"]["download"]["aspects"]
    code, table, _ = check(emulators[variant], capsys)
    assert code == 0 and table.rstrip().endswith("the target answers as the emulator does")
    assert "not compared: target customFields" in table


def test_failed_as_the_failure_state_is_exactly_one_difference(
    emulators: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = check(emulators["failed"], capsys, "--json")
    assert code == 1, err
    report = json.loads(out)
    assert report["differences"] == 1
    assert differences(report) == [("cancel_export", "state")]
    state = report["probes"]["cancel_export"]["aspects"]["state"]
    assert (state["target"], state["reference"]) == ("FAILED", "ERROR")
    assert_nothing_secret(out, err)


def test_no_html_escape_is_exactly_the_escaping_difference(
    emulators: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = check(emulators["raw"], capsys, "--json")
    assert code == 1, err
    report = json.loads(out)
    found = differences(report)
    # the deliberately bad body, the location URL's &, the 401's <your API key>
    assert found == [
        ("no_key", "htmlEscape"),
        ("export_results", "htmlEscape"),
        ("bad_body", "htmlEscape"),
    ]
    for probe, aspect in found:
        entry = report["probes"][probe]["aspects"][aspect]
        assert (entry["target"], entry["reference"]) == ("raw", "escaped")
    # rows are written by the file encoder, not the API's: raw on both sides
    rows = report["probes"]["download"]["aspects"]["htmlEscape"]
    assert rows["target"] == rows["reference"] == "raw" and not rows["differs"]
    assert_nothing_secret(out, err)


def test_the_table_marks_the_difference_and_keeps_secrets(
    emulators: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = check(emulators["failed"], capsys)
    assert code == 1 and err == ""
    marked = [line for line in out.splitlines() if line.rstrip().endswith("≠")]
    assert len(marked) == 1 and re.search(r"\bstate\s+FAILED\s+ERROR\s+≠$", marked[0])
    assert out.rstrip().endswith("1 difference: cancel_export state")
    assert "not compared: target polls" in out  # timing is shown, apart
    assert f"target:    {emulators['failed']}" in out
    assert_nothing_secret(out, err)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--bogus", KEY], "unrecognized arguments: --bogus ***"),
        (["--api-kee", KEY], "unrecognized arguments: --api-kee ***"),
        (["--window", "soon", "--api-key", KEY], "is not a duration"),
        (["--api-url", "ftp://example.com", "--api-key", KEY], "not an http:// or https:// URL"),
        (["--api-url", "http://127.0.0.1:1"], "no API key"),
        (["--api-url", "http://127.0.0.1:1", "--api-key", KEY], "cannot reach"),
    ],
)
def test_usage_errors_and_an_unreachable_target_are_one_line_and_exit_2(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.delenv("FULLSTORY_API_KEY", raising=False)
    monkeypatch.delenv("FULLSTORY_API_URL", raising=False)
    assert conformance.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("fullstory-emulator conformance: ")
    assert expected in err
    assert_nothing_secret(err)


def test_an_unknown_segment_is_one_line_and_exit_2(
    emulators: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = check(emulators["default"], capsys, "--segment", "noSuchSegment1")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "has no segment 'noSuchSegment1' (HTTP 404)" in err


def test_the_command_is_wired_into_fullstory_emulator() -> None:
    result = subprocess.run(
        [*emulator_command(), "conformance", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and "--api-url" in result.stdout and "--json" in result.stdout


# -- what an answer is reduced to ------------------------------------------------------------


def test_shapes_tell_integers_floats_and_rfc3339_apart() -> None:
    value = {"n": 1, "x": 1.0, "t": "2020-09-22T22:40:52.174736Z", "s": "x", "z": None}
    assert shape(value) == {
        "n": "integer",
        "s": "string",
        "t": "rfc3339",
        "x": "number",
        "z": "null",
    }
    assert shape([]) == [] and shape([True]) == ["boolean"]


def test_an_arrays_shape_is_the_union_of_its_elements() -> None:
    segments = [{"id": "everyone"}, {"id": "ab12", "created": "2026-01-12T14:30:10.631Z"}]
    assert shape(segments) == [{"created": "absent|rfc3339", "id": "string"}]
    assert shape(segments, optional=False) == [{"created": "rfc3339", "id": "string"}]
    assert shape([1, 2.5, None]) == ["integer|null|number"]
    assert union([{"a": "integer"}, "null"]) == {"anyOf": ["null", {"a": "integer"}]}


def test_html_escaping_reads_json_text_exactly() -> None:
    assert html_escaping('{"u":"a?b=1\\u0026c=2"}') == "escaped"
    assert html_escaping('{"u":"a?b=1&c=2"}') == "raw"
    assert html_escaping('{"u":"\\u003c","v":">"}') == "mixed"
    assert html_escaping('{"u":"plain"}') is None
    # an escaped backslash followed by u0026 is a backslash and text, not an escaped &
    assert html_escaping('{"u":"\\\\u0026"}') is None


def test_gzip_is_read_incrementally_and_checked() -> None:
    rows = b"".join(json.dumps({"n": i}).encode() + b"\n" for i in range(300))
    packed = gzip.compress(rows)
    chunks = [packed[i : i + 100] for i in range(0, len(packed), 100)]
    whole = read_gzip_lines(chunks, rows=1000)
    assert whole.gzip == "valid" and whole.complete and len(whole.lines) == 300
    first = read_gzip_lines(chunks, rows=10)
    assert first.gzip == "valid" and not first.complete and len(first.lines) == 10
    two_members = read_gzip_lines([gzip.compress(b"1\n") + gzip.compress(b"2\n")])
    assert two_members.gzip == "valid" and two_members.lines == ["1", "2"]
    assert read_gzip_lines([packed[:-20]], rows=1000).gzip == "invalid (the gzip stream ends early)"
    assert read_gzip_lines([rows]).gzip.startswith("invalid (")
    assert read_gzip_lines([]).gzip == "invalid (an empty body)"


def test_row_contract_tells_what_a_client_relies_on_from_the_orgs_data() -> None:
    rows = [
        {"IndvId": 2**62, "EventStart": "2026-03-01T12:00:00.123Z", "evt_n_int": 3, "x": None},
        {"IndvId": 7, "UserEmail": None, "user_plan_str": "pro", "page_tags_strs": ["a"]},
    ]
    aspects, info = row_contract(rows)
    assert aspects == {
        "columnTypes": {"EventStart": "rfc3339", "IndvId": "integer", "UserEmail": "null"},
        "idTypes": {"IndvId": "64-bit integer"},
        "timestampFormats": {"EventStart": "9999-99-99T99:99:99.999Z"},
        "customVariables": "follow the suffixes",
    }
    assert info["customFields"] == ["evt_n_int", "page_tags_strs", "user_plan_str"]
    assert info["otherColumns"] == ["x"] and "PageId" in info["absentColumns"]
    broken, _ = row_contract(
        [{"IndvId": "12", "evt_n_int": "3", "evt_flag": True, "EventStart": "2026-03-01 12:00"}]
    )
    assert broken["idTypes"] == {"IndvId": "string"}
    assert broken["customVariables"] == (
        "evt_flag: no _str/_int/_real/_bool/_date suffix; "
        "evt_n_int: a JSON string where the suffix says integer"
    )
    assert "EventStart" not in broken["timestampFormats"]  # not RFC 3339: its type says so


def test_per_column_aspects_differ_only_on_columns_both_sides_hold() -> None:
    def side(columns: dict[str, str]) -> dict[str, Observation]:
        return {"download": Observation({"columnTypes": columns})}

    mine = side({"IndvId": "string", "PageUrl": "string", "AppName": "string"})
    theirs = side({"IndvId": "integer", "PageUrl": "string", "EventDuration": "integer"})
    window = timedelta(hours=1)
    report = compare(mine, theirs, target_url="http://x", segment="everyone", window=window)
    entry = report["probes"]["download"]["aspects"]["columnTypes"]
    assert entry["differs"] is True and report["differences"] == 1
    assert entry["detail"] == ["IndvId: string in target, integer in reference"]
    same = compare(
        side({"AppName": "string"}),
        side({"PageUrl": "string"}),
        target_url="http://x",
        segment="everyone",
        window=window,
    )
    assert same["differences"] == 0
