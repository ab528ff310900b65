"""`fullstory-emulator exercise` as a user runs it in CI: a real process grading the project's
own `fullstory-export` (a real process per scenario), with the JSON report and JUnit file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from fullstory_emulator.testing.exercise import SCENARIOS
from tests.helpers import ROOT

DOCUMENTED = (
    "fullstory-emulator exercise -- fullstory-export run --segment everyone --poll-interval 0.5 "
    "--rate-limit off -o 'out/{scenario}.ndjson.gz'"
)


def test_the_documented_command_is_the_one_tested_here() -> None:
    """docs/grading.md's example, which the documented-examples test leaves to this module (it
    starts an emulator of its own)."""
    assert f"```sh\n{DOCUMENTED}\n```" in (ROOT / "docs" / "grading.md").read_text()


def test_fullstory_export_passes_every_scenario(tmp_path: Path) -> None:
    """The documented command, as written but for the report's form (JSON and a JUnit file),
    in a shell whose PATH has this install's commands."""
    junit = tmp_path / "exercise.xml"
    command = DOCUMENTED.replace("exercise --", f"exercise --json --junit {junit} --")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "-e", "-c", command],
        cwd=tmp_path,
        env=env,
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
        assert (tmp_path / "out" / f"{name}.ndjson.gz").exists() == (
            name not in ("failed", "error")
        )
    suite = ElementTree.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("8", "0")
    assert "X-Goog-Signature" not in result.stdout + result.stderr
