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

from emulator.client import cli as export_cli
from emulator.server import ServerThread
from emulator.settings import Settings
from tests.helpers import ROOT, START

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
        response = self.http.request(method, f"/__emulator{path}", json=body)
        assert response.status_code < 400, response.text
        return response.json() if response.content.strip() else {}

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
    assert names(events)[:2] == ["plan", "created"]
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
        [sys.executable, "-m", "emulator.client.cli", *argv],
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
    assert events[0] == {"event": "plan", "segment": "everyone", "bundles": 4, "out": str(tmp_path)}
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
    from emulator.client.core import FullStoryError, RateLimited, Unauthorized

    assert export_cli.classify(FullStoryError(403, "denied", 7)) == export_cli.EXIT_AUTH
    assert export_cli.classify(Unauthorized(401, "who?", 16)) == export_cli.EXIT_AUTH
    assert export_cli.classify(RateLimited(429, "slow down", 8)) == export_cli.EXIT_RATE_LIMITED
    assert export_cli.classify(FullStoryError(400, "bad field", 3)) == export_cli.EXIT_ERROR
    assert export_cli.classify(OSError("disk full")) == export_cli.EXIT_ERROR
