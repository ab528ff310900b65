"""`fullstory-export` against a real emulator (uvicorn in a thread, a running clock): the whole
workflow per format, failures and their exit codes, absorbed 429s, a renewed URL, and chunked
runs that resume. Each test has its own API key, so its faults and journal are its own tenant's.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fullstory_emulator.client import cli as export_cli
from fullstory_emulator.server import ServerThread
from fullstory_emulator.settings import Settings
from tests.helpers import ROOT, START, control, refusing_url

BUCKET_GLOB = "/fullstory-emulator-exports/*"
LEGACY_ERROR = "the segment references the deleted custom event 'Legacy Checkout Step'"
_keys = itertools.count(1)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    settings = Settings(
        port=0,
        rate_limit=None,
        export_duration=0.3,
        export_duration_per_million=0,
        start_time=START,
        population=150,
        signing_secret="cli-test-secret",
    )
    with ServerThread(settings) as running:
        yield running


@dataclass
class Emu:
    """One tenant of the shared emulator: its key, the control API, and the CLI aimed at it."""

    base_url: str
    key: str
    http: httpx.Client

    def control(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        return control(self.http, method, path, body)

    def journal(self, path: str, method: str = "GET") -> list[dict[str, Any]]:
        query = {"path": path, "method": method}
        return self.http.get("/__emulator/journal", params=query).json()["requests"]

    def argv(self, *args: str) -> list[str]:
        """`args` aimed at this tenant (and polling fast, for `run`)."""
        base = [*args, "--api-url", self.base_url, "--api-key", self.key]
        return base if args[:1] == ("segments",) else [*base, "--poll-interval", "0.05"]


@pytest.fixture
def emu(server: ServerThread) -> Iterator[Emu]:
    key = f"na1.cli-test-{next(_keys)}"
    headers = {"Authorization": f"Basic {key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as http:
        yield Emu(server.base_url, key, http)


def run_json(emu: Emu, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list, str]:
    """main() in-process with --json: exit code, the events, and stderr."""
    code = export_cli.main(emu.argv(*args, "--json"))
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    return code, events, captured.err


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def rows_of(path: Path, fmt: str) -> list[dict[str, Any]]:
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    if fmt == "ndjson":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if fmt == "json":
        return json.loads(text)
    return list(csv.DictReader(io.StringIO(text)))


DAY = ["--start", "2026-02-28T00:00:00Z", "--end", "2026-03-01T00:00:00Z"]


@pytest.mark.parametrize("fmt", ["ndjson", "json", "csv"])
def test_export_in_each_format(emu, capsys, tmp_path, fmt):
    code, events, err = run_json(emu, capsys, "--format", fmt, "--out", f"{tmp_path}/", *DAY)
    assert code == export_cli.EXIT_OK, err
    assert names(events)[:3] == ["connecting", "plan", "created"]
    assert names(events)[-3:] == ["completed", "downloaded", "done"]
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[-1]["state"] == "COMPLETED" and progress[-1]["pct"] == 100
    assert all(isinstance(e["pct"], int) for e in progress)
    path = Path(events[-2]["file"])
    assert path.parent == tmp_path and path.name.endswith(f".{fmt}.gz")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no .part left behind
    rows = rows_of(path, fmt)
    assert rows and all("2026-02-28" <= r["EventStart"] < "2026-03-01" for r in rows)


def test_gunzip_to_a_named_file(emu, capsys, tmp_path):
    target = tmp_path / "sub" / "events.ndjson"
    code, events, err = run_json(emu, capsys, "--out", str(target), "--gunzip", *DAY)
    assert code == 0, err
    lines = target.read_text().splitlines()
    assert lines and all(json.loads(line)["EventType"] for line in lines)
    assert events[-2]["file"] == str(target) and events[-2]["gunzipped"] is True
    assert sorted(p.name for p in target.parent.iterdir()) == ["events.ndjson"]


def test_installed_command_as_a_subprocess(emu, tmp_path):
    """The real entry point, in human mode: progress and the file name on stderr only."""
    argv = emu.argv("-t", "individual", "-f", "csv", "-o", str(tmp_path / "people.csv.gz"))
    result = subprocess.run(
        [sys.executable, "-m", "fullstory_emulator.client.cli", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "people.csv.gz" in result.stderr and "100%" in result.stderr
    rows = rows_of(tmp_path / "people.csv.gz", "csv")
    assert rows and {"IndvId", "NumSessions", "LastEventStart"} <= set(rows[0])


def test_failed_export_exits_3_with_its_error_details(emu, capsys, tmp_path):
    code, events, err = run_json(emu, capsys, "--segment", "LegacyFunnel", "--out", str(tmp_path))
    assert code == export_cli.EXIT_EXPORT_FAILED == 3
    failed = [e for e in events if e["event"] == "failed"]
    assert failed and failed[0]["state"] == "ERROR" and LEGACY_ERROR in failed[0]["errorDetails"]
    assert LEGACY_ERROR in err
    assert events[-1] == {
        "event": "done",
        "downloaded": 0,
        "skipped": 0,
        "failed": 1,
        "empty": 0,
        "exitCode": 3,
    }
    assert list(tmp_path.iterdir()) == []
    # the human mode says the same on stderr
    code = export_cli.main(emu.argv("--segment", "LegacyFunnel", "--out", str(tmp_path)))
    assert code == 3 and LEGACY_ERROR in capsys.readouterr().err


def test_forced_429s_are_absorbed(emu, capsys, tmp_path):
    emu.control("POST", "/ratelimit", {"denyNext": 2, "retryAfter": 1})
    code, events, err = run_json(emu, capsys, "--out", str(tmp_path), *DAY)
    assert code == 0, err
    limited = [e for e in events if e["event"] == "rate_limited"]
    assert [e["retryAfter"] for e in limited] == [1, 1]
    assert names(events).index("rate_limited") < names(events).index("downloaded")
    statuses = [e["status"] for e in emu.journal("/segments/v1/exports", "POST")]
    statuses += [e["status"] for e in emu.journal("/operations/v1/*")]
    assert statuses.count(429) == 2 and statuses.count(200) >= 2


def test_dropped_connections_and_5xx_are_retried_and_shown(emu, capsys, tmp_path):
    emu.control("POST", "/faults", {"path": "/operations/v1/*", "drop": True, "times": 1})
    emu.control("POST", "/faults", {"path": "/search/v1/exports/*", "status": 503, "times": 1})
    code, events, err = run_json(emu, capsys, "--out", str(tmp_path), *DAY)
    assert code == 0, err
    retrying = [e for e in events if e["event"] == "retrying"]
    assert [(e["method"], e["path"].split("/")[1], e["status"]) for e in retrying] == [
        ("GET", "operations", None),
        ("GET", "search", 503),
    ]
    assert retrying[0]["message"] and "/operations/v1/" in retrying[0]["message"]
    assert names(events)[-2:] == ["downloaded", "done"]
    assert [e["status"] for e in emu.journal("/search/v1/exports/*")] == [503, 200]


def test_human_mode_shows_retries(capsys):
    reporter = export_cli.HumanReporter()
    with reporter:
        reporter.emit("retrying", method="GET", path="/operations/v1/x", status=None, message="")
        reporter.emit("retrying", method="GET", path="/search/v1/exports/y", status=503)
        reporter.emit("rate_limited", method="GET", path="/segments/v1", retryAfter=7.0)
    err = capsys.readouterr().err
    assert "connection failed on /operations/v1/x; retrying" in err
    assert "HTTP 503 on /search/v1/exports/y; retrying" in err
    assert "429 rate limited on GET /segments/v1; Retry-After 7 s" in err


def test_expired_url_is_renewed(emu, capsys, tmp_path):
    # a 2 s URL lives 1-2 s (from its whole-second X-Goog-Date): the first cannot outlast 2.1 s
    # of storage latency, the renewed one always lasts for its download
    emu.control("POST", "/config", {"urlTtl": 2})
    emu.control("POST", "/faults", {"path": BUCKET_GLOB, "latencyMs": 2100, "times": 1})
    code, events, err = run_json(emu, capsys, "--out", str(tmp_path), *DAY)
    assert code == 0, err
    expired = [e for e in events if e["event"] == "url_expired"]
    assert len(expired) == 1 and "expired" in expired[0]["details"]
    assert events[-2]["event"] == "downloaded" and events[-2]["renewals"] == 1
    assert [e["status"] for e in emu.journal(BUCKET_GLOB)] == [400, 200]
    assert len(emu.journal("/search/v1/exports/*")) == 2  # a fresh URL was asked for
    assert rows_of(Path(events[-2]["file"]), "ndjson")


def test_url_that_keeps_expiring_exits_7(emu, capsys, tmp_path):
    emu.control("POST", "/config", {"urlTtl": 1})
    emu.control("POST", "/faults", {"path": BUCKET_GLOB, "latencyMs": 1100, "times": 1})
    code, _, err = run_json(emu, capsys, "--out", str(tmp_path), "--max-renewals", "0", *DAY)
    assert code == export_cli.EXIT_DOWNLOAD == 7
    assert "expired" in err and list(tmp_path.iterdir()) == []


CHUNKED = ["--start", "2026-02-28T00:00Z", "--end", "2026-02-28T02:00Z", "--chunk", "30m"]
BUNDLES = [
    "everyone-20260228T0000Z-20260228T0030Z.ndjson.gz",
    "everyone-20260228T0030Z-20260228T0100Z.ndjson.gz",
    "everyone-20260228T0100Z-20260228T0130Z.ndjson.gz",
    "everyone-20260228T0130Z-20260228T0200Z.ndjson.gz",
]


def test_chunked_run_writes_one_file_per_bundle(emu, capsys, tmp_path):
    code, events, err = run_json(emu, capsys, "--out", str(tmp_path), *CHUNKED)
    assert code == 0, err
    assert events[1] == {"event": "plan", "segment": "everyone", "bundles": 4, "out": str(tmp_path)}
    assert sorted(p.name for p in tmp_path.iterdir()) == BUNDLES
    created = [e for e in events if e["event"] == "created"]
    assert [(e["start"], e["end"]) for e in created][1] == (
        "2026-02-28T00:30:00Z",
        "2026-02-28T01:00:00Z",
    )
    for name, (start, end) in zip(BUNDLES, [(0, 30), (30, 60), (60, 90), (90, 120)], strict=True):
        lo, hi = (f"2026-02-28T{m // 60:02d}:{m % 60:02d}" for m in (start, end))
        assert all(lo <= r["EventStart"] < hi for r in rows_of(tmp_path / name, "ndjson"))
    assert sum(len(rows_of(tmp_path / n, "ndjson")) for n in BUNDLES) > 0


def test_interrupted_chunked_run_resumes(emu, capsys, tmp_path):
    # bundles 1 and 2 go through, bundle 3 fails, the run stops there
    emu.control("POST", "/lifecycle", {"times": 2})
    emu.control("POST", "/lifecycle", {"fail": "worker lost (injected)", "times": 1})
    code, events, err = run_json(emu, capsys, "--out", str(tmp_path), *CHUNKED)
    assert code == 3 and "worker lost (injected)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == BUNDLES[:2]
    assert events[-1]["downloaded"] == 2 and events[-1]["failed"] == 1
    # a half-written download of bundle 4 (a killed run) must not count as done
    (tmp_path / (BUNDLES[3] + ".part")).write_bytes(b"\x1f\x8b half")
    emu.control("DELETE", "/journal")

    code, events, err = run_json(emu, capsys, "--out", str(tmp_path), *CHUNKED)
    assert code == 0, err
    assert [e["file"] for e in events if e["event"] == "skipped"] == [
        str(tmp_path / n) for n in BUNDLES[:2]
    ]
    assert len(emu.journal("/segments/v1/exports", "POST")) == 2
    assert len(emu.journal(BUCKET_GLOB)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == BUNDLES
    for name in BUNDLES:
        rows_of(tmp_path / name, "ndjson")  # every file is a whole gzip


def test_keep_going_runs_the_other_bundles(emu, capsys, tmp_path):
    emu.control("POST", "/lifecycle", {"fail": "flaky (injected)", "times": 1})
    code, events, _ = run_json(emu, capsys, "--out", str(tmp_path), "--keep-going", *CHUNKED)
    assert code == 3 and events[-1]["downloaded"] == 3 and events[-1]["failed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == BUNDLES[1:]


def test_segments_table_and_json(emu, capsys):
    assert export_cli.main(emu.argv("segments")) == 0
    table = capsys.readouterr().out
    header = table.splitlines()[0].split()
    assert header == ["id", "name", "creator", "created"]
    assert "htIXCSMv9Q9M" in table and "Visited checkout" in table and "everyone" in table

    assert export_cli.main(emu.argv("segments", "--json")) == 0
    segments = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_id = {s["id"]: s for s in segments}
    assert {"everyone", "LegacyFunnel", "htIXCSMv9Q9M"} <= set(by_id)
    assert "created" not in by_id["everyone"] or not by_id["everyone"]["created"]


def test_bad_key_exits_4(emu, capsys, tmp_path):
    code = export_cli.main([*emu.argv("--out", str(tmp_path)), "--api-key", "not-a-key"])
    assert code == export_cli.EXIT_AUTH == 4
    assert "401" in capsys.readouterr().err


def test_missing_key_is_a_clear_usage_error(monkeypatch, capsys):
    monkeypatch.delenv("FULLSTORY_API_KEY", raising=False)
    assert export_cli.main(["--segment", "everyone"]) == export_cli.EXIT_USAGE == 2
    err = capsys.readouterr().err
    assert "FULLSTORY_API_KEY" in err and "--api-key" in err


def test_usage_errors(capsys):
    assert export_cli.main(["--chunk", "30m", "--api-key", "na1.x"]) == 2
    assert "--chunk needs both --start and --end" in capsys.readouterr().err
    assert export_cli.main(["--format", "xml", "--api-key", "na1.x"]) == 2
    assert export_cli.main(["--start", "2026-03-02", "--end", "2026-03-01"]) == 2
    assert export_cli.main(["--help"]) == 0
    assert "exit codes" in capsys.readouterr().out


def test_durations_and_times():
    assert export_cli.parse_duration("30m") == timedelta(minutes=30)
    assert export_cli.parse_duration("1h30m") == timedelta(minutes=90)
    assert export_cli.parse_duration("1d") == timedelta(days=1)
    with pytest.raises(Exception, match="not a duration"):
        export_cli.parse_duration("soon")
    paris = export_cli.ZoneInfo("Europe/Paris")
    start = export_cli.parse_time("2026-03-01", paris)
    assert export_cli.rfc3339(start) == "2026-02-28T23:00:00Z"
    assert export_cli.stamp(start) == "20260228T2300Z"


def test_still_pending_after_timeout_exits_6(emu, capsys, tmp_path):
    emu.control("POST", "/lifecycle", {"finishAfterPolls": 1000, "times": 1})
    code, events, err = run_json(emu, capsys, "--out", str(tmp_path), "--timeout", "0.3", *DAY)
    assert code == export_cli.EXIT_TIMEOUT == 6
    assert "still PENDING" in err and events[-1]["exitCode"] == 6


def test_exit_codes_of_client_errors():
    from fullstory_emulator.client.core import FullStoryError, RateLimited, Unauthorized

    assert export_cli.classify(FullStoryError(403, "denied", 7)) == export_cli.EXIT_AUTH
    assert export_cli.classify(Unauthorized(401, "who?", 16)) == export_cli.EXIT_AUTH
    assert export_cli.classify(RateLimited(429, "slow down", 8)) == export_cli.EXIT_RATE_LIMITED
    assert export_cli.classify(FullStoryError(400, "bad field", 3)) == export_cli.EXIT_ERROR
    assert export_cli.classify(OSError("disk full")) == export_cli.EXIT_ERROR


# -- a user's first hour: relative dates, names, warnings, pacing ------------------------------


def test_relative_dates_follow_the_api_clock(emu, capsys, tmp_path):
    """`yesterday`/`today` are midnights of the emulator's clock (2026-03-01T12:00Z + a little),
    not of this machine's, so the README's examples hold data whatever the date."""
    code, events, err = run_json(
        emu, capsys, "--start", "yesterday", "--end", "today", "--out", f"{tmp_path}/"
    )
    assert code == 0, err
    created = next(e for e in events if e["event"] == "created")
    assert (created["start"], created["end"]) == ("2026-02-28T00:00:00Z", "2026-03-01T00:00:00Z")
    assert [p.name for p in tmp_path.iterdir()] == [
        "everyone-20260228T0000Z-20260301T0000Z.ndjson.gz"
    ]
    assert not [e for e in events if e["event"] == "warning"]
    assert len(emu.journal("/segments/v1/everyone")) == 1  # asked once, for the clock

    code, events, _ = run_json(
        emu, capsys, "--start", "now-2h", "--end", "now-1h", "--out", str(tmp_path / "x")
    )
    assert code == 0
    created = next(e for e in events if e["event"] == "created")
    assert created["start"].startswith("2026-03-01T10:00") and created["end"].startswith(
        "2026-03-01T11:00"
    )


def test_relative_dates_that_cross_are_a_usage_error(emu, capsys, tmp_path):
    code, events, err = run_json(emu, capsys, "--start", "today", "--end", "yesterday")
    assert code == export_cli.EXIT_USAGE
    assert "--start (2026-03-01T00:00:00Z) must be before --end" in err
    assert events[-1]["exitCode"] == 2
    assert emu.journal("/segments/v1/exports", "POST") == []


def test_bad_relative_date_is_a_usage_error(capsys):
    assert export_cli.main(["--start", "today-soon", "--api-key", "na1.x"]) == 2
    assert "'today-soon'" in capsys.readouterr().err


def test_files_are_named_by_segment_id(emu, capsys, tmp_path):
    code, events, err = run_json(emu, capsys, "-s", "htIXCSMv9Q9M", "--out", f"{tmp_path}/")
    assert code == 0, err
    operation = emu.http.get(f"/operations/v1/{events[2]['operationId']}").json()
    finished = operation["finishedAt"]  # e.g. 2026-03-01T12:00:03.412Z
    stamp = finished[:19].replace("-", "").replace(":", "") + "Z"
    assert [p.name for p in tmp_path.iterdir()] == [f"htIXCSMv9Q9M-{stamp}.ndjson.gz"]


def test_gunzip_reports_the_uncompressed_size(emu, capsys, tmp_path):
    code, events, err = run_json(emu, capsys, "--gunzip", "--out", f"{tmp_path}/", *DAY)
    assert code == 0, err
    done = next(e for e in events if e["event"] == "downloaded")
    path = Path(done["file"])
    assert path.name == "everyone-20260228T0000Z-20260301T0000Z.ndjson"
    assert done["bytes"] == path.stat().st_size
    assert 0 < done["compressedBytes"] < done["bytes"]
    assert done["empty"] is False


def test_a_range_outside_the_segment_window_is_warned_about(emu, capsys, tmp_path):
    old = ["--start", "2025-12-01", "--end", "2025-12-02"]  # 90 days back: data, but no segment
    code, events, err = run_json(emu, capsys, "--out", f"{tmp_path}/", *old)
    assert code == 0, err
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert len(warnings) == 2
    assert warnings[0].startswith(
        "the range ends (2025-12-02T00:00:00Z) before the segment's window starts "
        "(2026-01-30T00:00:00Z; by default a segment covers the last 30 days)"
    )
    assert "--segment-start '' --segment-end ''" in warnings[0]
    assert warnings[1].startswith("the export is empty (no rows): the range may lie outside")
    assert names(events).index("warning") < names(events).index("completed")  # told early
    done = next(e for e in events if e["event"] == "downloaded")
    assert done["empty"] is True and events[-1]["empty"] == 1
    # as told: the segment's range opened up, the same days hold rows
    code, events, _ = run_json(
        emu, capsys, "--out", f"{tmp_path}/", *old, "--segment-start", "", "--segment-end", ""
    )
    assert code == 0 and not [e for e in events if e["event"] == "warning"]
    assert next(e for e in events if e["event"] == "downloaded")["empty"] is False


def test_a_range_partly_outside_the_window_and_one_in_the_future(
    emu, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the files go to the working directory by default
    code, events, _ = run_json(emu, capsys, "--start", "2026-01-15", "--end", "2026-02-01")
    warning = next(e["message"] for e in events if e["event"] == "warning")
    assert warning.startswith(
        "--start 2026-01-15T00:00:00Z is before the segment's window (2026-01-30T00:00:00Z"
    )
    assert "rows before it are left out" in warning and code == 0
    code, events, _ = run_json(emu, capsys, "--start", "2026-03-02", "--end", "2026-03-03")
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert warnings[0].startswith("--start 2026-03-02T00:00:00Z is after the API's clock (2026-03")
    assert "no data there yet" in warnings[0]


def test_empty_files_are_not_marked_done(capsys):
    reporter = export_cli.HumanReporter()
    with reporter:
        reporter.emit("created", bundle="b1", operationId="op1")
        reporter.emit("downloaded", bundle="b1", file="x.ndjson.gz", bytes=20, empty=True)
        reporter.emit("downloaded", bundle="b2", file="y.ndjson.gz", bytes=2048, empty=False)
        reporter.emit("warning", message="mind the gap")
        reporter.emit("pacing", endpoint="GET /operations/v1/{id}", seconds=29.5)
        reporter.emit("pacing", endpoint="GET /operations/v1/{id}", seconds=0.2)
    err = capsys.readouterr().err
    assert "∅ x.ndjson.gz (20 B, no rows)" in err and "✓ x.ndjson.gz" not in err
    assert "✓ y.ndjson.gz (2.0 KB)" in err
    assert "warning: mind the gap" in err
    assert err.count("pacing:") == 1
    assert "pacing: waiting 30 s before GET /operations/v1/{id} to stay under the rate limit" in err


@pytest.mark.parametrize("fmt", ["ndjson", "json", "csv"])
def test_has_rows_of_each_format(tmp_path, fmt):
    wire = f"FORMAT_{fmt.upper()}"
    empty = {"ndjson": b"", "json": b"[]", "csv": b"IndvId,EventStart\r\n"}[fmt]
    full = {"ndjson": b'{"a":1}\n', "json": b'[{"a":1}]', "csv": b"IndvId\r\n1\r\n"}[fmt]
    for body, expected in ((empty, False), (full, True)):
        (tmp_path / "f.gz").write_bytes(gzip.compress(body))
        (tmp_path / "f").write_bytes(body)
        assert export_cli.has_rows(tmp_path / "f.gz", wire, compressed=True) is expected
        assert export_cli.has_rows(tmp_path / "f", wire, compressed=False) is expected


def api_requests(emu: Emu) -> list[dict[str, Any]]:
    """The tenant's journal, every method, control calls left out."""
    entries = emu.http.get("/__emulator/journal").json()["requests"]
    return [e for e in entries if not e["path"].startswith("/__emulator")]


def test_bundles_run_in_flight_and_are_polled_when_due(emu, capsys, tmp_path):
    """Four bundles are created before the first is downloaded, and after the first export has
    shown how long exports take, each is polled once."""
    code, events, err = run_json(emu, capsys, "--out", str(tmp_path), *CHUNKED)
    assert code == 0, err
    order = api_requests(emu)
    kinds = [e["path"].split("/")[1] for e in order]
    assert kinds[:4] == ["segments"] * 4 and kinds.index("fullstory-emulator-exports") > 4
    polls = [e["path"] for e in order if e["path"].startswith("/operations/v1/")]
    per_bundle = [polls.count(f"/operations/v1/{e['operationId']}") for e in events[2:6]]
    assert [e["event"] for e in events[2:6]] == ["created"] * 4
    assert per_bundle[0] >= 1 and per_bundle[1:] == [1, 1, 1], per_bundle
    assert sorted(p.name for p in tmp_path.iterdir()) == BUNDLES


def test_a_chunked_run_paces_itself_under_the_rate_limit(emu, capsys, tmp_path):
    """A tenant limited to a burst of 3, then 1 a second: a 4-bundle run spaces its requests
    instead of collecting 429s."""
    emu.control("POST", "/ratelimit", {"limit": "60/60,3"})
    code, events, err = run_json(
        emu, capsys, "--out", str(tmp_path), "--rate-limit", "60/60,3", *CHUNKED
    )
    assert code == 0, err
    statuses = [e["status"] for e in api_requests(emu)]
    assert 429 not in statuses
    paced = [e for e in events if e["event"] == "pacing"]
    # the four bundles are created at once: the fourth waits for its token (the other
    # endpoints may find theirs refilled by the time they are asked, depending on timing)
    creates = [e for e in paced if e["endpoint"] == "POST /segments/v1/exports"]
    assert len(creates) == 1 and 0.5 < creates[0]["seconds"] <= 1.05
    assert not [e for e in events if e["event"] == "rate_limited"]
    assert sorted(p.name for p in tmp_path.iterdir()) == BUNDLES


def test_a_run_longer_than_the_burst_says_what_it_will_take():
    args = export_cli.parse_args(["--start", "2026-02-01", "--end", "2026-02-02", "--chunk", "15m"])
    assert export_cli.pacing_plan(args, 50) is None
    text = export_cli.pacing_plan(args, 96)
    assert text is not None and text.startswith(
        "96 bundles need at least 96 requests on each of POST /segments/v1/exports"
    )
    assert "(2 per 60 s per endpoint after a burst of 50) makes that at least 23 min" in text
    args = export_cli.parse_args(["--rate-limit", "off"])
    assert args.rate_limit is None and export_cli.pacing_plan(args, 1000) is None


# -- where it connects, and each retry as it happens -----------------------------------------


def test_a_server_that_is_down_is_named_first_and_each_retry_shown(monkeypatch, capsys):
    monkeypatch.setenv("FULLSTORY_API_KEY", "na1.down")
    with refusing_url() as url:
        monkeypatch.setenv("FULLSTORY_API_URL", url)
        code = export_cli.main(["segments", "--retries", "2", "--backoff", "0"])
    err = capsys.readouterr().err.splitlines()
    assert code == export_cli.EXIT_ERROR
    assert err[0] == f"connecting to {url} (FULLSTORY_API_URL)"
    for attempt in (1, 2):
        assert err[attempt].startswith("connection failed on /segments/v1 (ConnectError: ")
        assert err[attempt].endswith(f"; retrying in 0 s (attempt {attempt} of 3 failed)")
    assert "failed after 3 attempts" in err[3] and len(err) == 4
    assert err[3].endswith("(is the emulator running? start it with: fullstory-emulator)")


def test_retries_are_events_in_json(monkeypatch, capsys):
    with refusing_url() as url:
        argv = ["--api-url", url, "--api-key", "na1.down", "--retries", "1", "--backoff", "0"]
        code = export_cli.main([*argv, "--json"])
        out = capsys.readouterr().out
        assert export_cli.main(["segments", *argv, "--json"]) == code == export_cli.EXIT_ERROR
        segments = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events] == ["connecting", "plan", "retrying", "error", "done"]
    assert events[0] == {"event": "connecting", "url": url, "source": "--api-url"}
    retry = events[2]
    assert (retry["attempt"], retry["attempts"], retry["delay"], retry["status"]) == (1, 2, 0, None)
    assert retry["method"] == "POST" and "ConnectError" in retry["message"]
    # `segments --json` keeps stdout for the segments, one per line: its events go to stderr
    assert segments.out == ""
    stderr_events = [json.loads(line) for line in segments.err.splitlines()[:2]]
    assert [e["event"] for e in stderr_events] == ["connecting", "retrying"]


def test_quiet_shows_only_the_failure(monkeypatch, capsys):
    with refusing_url() as url:
        argv = ["--api-url", url, "--api-key", "na1.down", "--retries", "1", "--backoff", "0"]
        assert export_cli.main(["segments", *argv, "--quiet"]) == export_cli.EXIT_ERROR
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "failed after 2 attempts" in err[0]


def test_the_connection_line_names_the_flag(emu, capsys):
    assert export_cli.main(emu.argv("segments")) == 0
    assert capsys.readouterr().err.splitlines() == [f"connecting to {emu.base_url} (--api-url)"]


def test_retry_flags_are_checked(capsys):
    for flag, value in [("--retries", "-1"), ("--retries", "two"), ("--backoff", "nan")]:
        assert export_cli.main(["segments", "--api-key", "na1.x", flag, value]) == 2
        assert f"argument {flag}: '{value}'" in capsys.readouterr().err


def test_help_shows_the_export_flags(capsys):
    assert export_cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fullstory-export [run] ")
    for flag in ("--segment", "--start", "--chunk", "--api-url", "--retries", "--backoff"):
        assert f"  {flag}" in out
    assert "segments   list segments" in out and "exit codes:" in out
    assert export_cli.main(["segments", "--help"]) == 0
    assert "--creator" in capsys.readouterr().out


def test_the_demo_key_without_a_url_is_a_usage_error(monkeypatch, capsys):
    """Production refuses the emulator's demo key: say so at once, not after the retries."""
    monkeypatch.delenv("FULLSTORY_API_URL", raising=False)
    assert export_cli.main(["segments", "--api-key", "na1.emulator-demo-key"]) == 2
    err = capsys.readouterr().err
    assert "without --api-url or FULLSTORY_API_URL" in err and "emulator-demo-key" not in err
    assert "--api-url http://127.0.0.1:8080" in err
