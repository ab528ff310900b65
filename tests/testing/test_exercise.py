"""`fullstory-emulator exercise`: small clients of our own, one bad habit each, run as real
commands against the judge's emulator, and graded as the habit deserves; the good one passes
every scenario."""

from __future__ import annotations

import json
import re
import sys
from xml.etree import ElementTree

import httpx
import pytest

from fullstory_emulator.testing.exercise import SCENARIOS, emulator, exercise, main
from tests.helpers import exercise_client

HUNG_AFTER = 6.0  # seconds a client that never ends gets; every other one ends by itself


@pytest.fixture(scope="module")
def server():
    with emulator() as running:
        yield running


def grade(server, tmp_path, habit, scenarios, timeout=30.0):
    return exercise(exercise_client(tmp_path, habit), scenarios, timeout=timeout, server=server)


def findings(result):
    return {f.name: f.severity for f in result.findings}


def test_the_good_client_passes_every_scenario_with_json_and_junit(tmp_path, capsys):
    junit = tmp_path / "exercise.xml"
    command = exercise_client(tmp_path, "good")
    code = main(["--json", "--junit", str(junit), "--", *command])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["passed"] is True
    assert [s["name"] for s in report["scenarios"]] == list(SCENARIOS)
    for s in report["scenarios"]:
        assert set(s) == {"name", "passed", "outcome", "seconds", "findings", "details"}
        want = "gave-up" if s["name"] in ("failed", "error") else "completed"
        assert (s["passed"], s["outcome"], s["findings"]) == (True, want, []), s
        assert 0 < s["seconds"] < 30
    suite = ElementTree.parse(junit).getroot()
    assert (suite.tag, suite.get("tests"), suite.get("failures")) == ("testsuite", "8", "0")
    assert [c.get("name") for c in suite.iter("testcase")] == list(SCENARIOS)
    assert not list(suite.iter("failure"))


def test_ignoring_retry_after_fails_rate_limited(server, tmp_path):
    report = grade(server, tmp_path, "ignores-retry-after", ["rate-limited", "happy"])
    limited = report["rate-limited"]
    assert limited.outcome == "completed"  # it got there, by hammering
    assert findings(limited) == {"retry-after-ignored": "fail"}
    assert "after a 429 with Retry-After: 1" in limited.findings[0].detail
    assert not limited.passed and report["happy"].passed and not report.passed
    assert "Retry-After" in limited.what_to_fix()


def test_hanging_on_a_failure_state_is_hung_and_unrecognised(server, tmp_path):
    report = grade(server, tmp_path, "hangs-on-failure", ["failed", "error"], timeout=HUNG_AFTER)
    for name in ("failed", "error"):
        result = report[name]
        assert (result.outcome, result.exit_code, result.passed) == ("hung", None, False)
        assert findings(result) == {"failure-unrecognised": "fail"}
        assert "stop polling" in result.what_to_fix()


def test_knowing_failed_but_not_error(server, tmp_path):
    report = grade(server, tmp_path, "knows-failed-only", ["failed", "error"], timeout=HUNG_AFTER)
    assert report["failed"].passed and report["failed"].outcome == "gave-up"
    assert report["error"].outcome == "hung"
    assert findings(report["error"]) == {"failure-unrecognised": "fail"}


def test_recreating_on_error_is_warned_of_but_passes(server, tmp_path):
    report = grade(server, tmp_path, "recreates-on-error", ["server-error", "truncated", "happy"])
    for name in ("server-error", "truncated"):
        result = report[name]
        assert (result.outcome, result.passed) == ("completed", True)
        assert findings(result) == {"duplicate-export": "warn"}
        assert "2 exports created" in result.findings[0].detail
    assert findings(report["happy"]) == {}


def test_printing_the_signed_url_fails_as_a_leak(server, tmp_path):
    report = grade(server, tmp_path, "prints-url", ["happy", "failed"])
    assert report["happy"].outcome == "completed"
    assert findings(report["happy"]) == {"signed-url-leaked": "fail"}
    shown = report.table() + json.dumps(report.json()) + report.junit()
    assert not re.search(r"[0-9a-f]{16}", shown)  # the judge does not leak it in turn
    assert report["failed"].passed  # no URL was ever given to print


def test_restarting_a_cut_download_and_polling_fast_are_warnings(server, tmp_path):
    restarts = grade(server, tmp_path, "restarts-download", ["truncated"])["truncated"]
    assert (restarts.outcome, restarts.passed) == ("completed", True)
    assert findings(restarts) == {"no-resume": "warn"}
    fast = grade(server, tmp_path, "polls-fast", ["slow"])["slow"]
    assert (fast.outcome, fast.passed) == ("completed", True)
    assert findings(fast) == {"poll-too-fast": "warn"}
    assert "threshold 0.25 s" in fast.findings[0].detail


def test_a_client_that_claims_success_without_the_file_is_incomplete(server, tmp_path):
    report = exercise([sys.executable, "-c", "pass"], ["happy"], server=server)
    assert (report["happy"].outcome, report["happy"].passed) == ("incomplete", False)
    missing = exercise([str(tmp_path / "no-such-client")], ["failed"], server=server)
    assert (missing["failed"].outcome, missing["failed"].exit_code) == ("gave-up", 127)


def test_arguments_get_the_url_and_key(server, tmp_path):
    check = (
        "import sys; url, key = sys.argv[1:]; "
        "sys.exit(0 if url.startswith('http://') and key.startswith('na1.exercise-') else 3)"
    )
    report = exercise([sys.executable, "-c", check, "{url}", "{key}"], ["failed"], server=server)
    assert report["failed"].exit_code == 0


@pytest.mark.parametrize(
    "argv,word",
    [
        ([], "command"),
        (["--"], "command"),
        (["--scenario", "sunny", "--", "true"], "sunny"),
        (["--timeout", "0", "--", "true"], "timeout"),
    ],
)
def test_usage_errors_exit_2(argv, word, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert word in capsys.readouterr().err


def good_callable(url, key):
    """A Python client called in-process: the plain workflow, giving up on a failed export."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Basic {key}"}) as http:
        body = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"}
        op_id = http.post("/segments/v1/exports", json=body).json()["operationId"]
        while (op := http.get(f"/operations/v1/{op_id}").json())["state"] == "PENDING":
            pass  # the tenant's lifecycle finishes it after a few polls
        if op["state"] != "COMPLETED":
            return 1
        export = op["results"]["searchExportId"]
        location = http.get(f"/search/v1/exports/{export}/results").json()["location"]
        assert httpx.get(location).status_code == 200
    return 0


def test_the_pytest_fixture_grades_a_callable(fullstory_exercise):
    report = fullstory_exercise(good_callable, ["happy", "failed"])
    assert report.passed, report.table()
    assert report["happy"].outcome == "completed" and report["failed"].outcome == "gave-up"
    assert findings(report["happy"]) == {"poll-too-fast": "warn"}  # it never sleeps
