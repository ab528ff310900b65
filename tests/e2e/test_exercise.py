"""`fullstory-emulator exercise` as a user runs it in CI: a real process grading the project's
own `fullstory-export` (a real process per scenario), with the JSON report and JUnit file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from emulator.testing.exercise import SCENARIOS
from tests.helpers import emulator_command


def test_fullstory_export_passes_every_scenario(tmp_path: Path) -> None:
    export = Path(sys.executable).with_name("fullstory-export")
    junit = tmp_path / "exercise.xml"
    client = [
        str(export), "run", "--segment", "everyone", "--poll-interval", "0.5",
        "--rate-limit", "off", "-o", str(tmp_path / "{scenario}.ndjson.gz"),
    ]  # fmt: skip
    result = subprocess.run(
        [*emulator_command(), "exercise", "--json", "--junit", str(junit), "--", *client],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert report["passed"] is True
    outcomes = {s["name"]: (s["outcome"], s["findings"]) for s in report["scenarios"]}
    assert outcomes == {
        name: ("gave-up" if name in ("failed", "error") else "completed", []) for name in SCENARIOS
    }
    for name in SCENARIOS:  # the file each completed scenario says it got
        assert (tmp_path / f"{name}.ndjson.gz").exists() == (name not in ("failed", "error"))
    suite = ElementTree.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("8", "0")
    assert "X-Goog-Signature" not in result.stdout + result.stderr
