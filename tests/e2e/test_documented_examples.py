"""The documented examples, run as written against a fresh emulator process with only the port
changed: the shell examples of the README and docs/ (curl and `fullstory-export`), each command
leaving a file, or a folder of bundles, that holds rows (an hour of the night may be empty; a day
is not), and docs/client.md's Python.

An example is any ```sh block that calls `curl` or `fullstory-export` (one that uses a variable it
does not set goes on from the one before it in the same page), but those that need Docker
(tests/e2e/test_docker.py runs those), and any ```python block of docs/client.md; one added there
is run here too, so the documents cannot drift from what works on a fresh machine. The README's
quick start is also run twelve times in a row against one emulator, as a newcomer repeats it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fullstory_emulator.client.cli import has_rows
from tests.helpers import ROOT, start

BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
PYTHON = re.compile(r"```python\n(.*?)```", re.DOTALL)
RUNS_AGAINST_THE_API = re.compile(r"\b(curl|fullstory-export)\b")
NEEDS_DOCKER = re.compile(r"^\s*docker ", re.MULTILINE)
# `exercise` starts an emulator of its own: tests/e2e/test_exercise.py runs the documented command
OWN_EMULATOR = re.compile(r"^\s*fullstory-emulator exercise ", re.MULTILINE)
README_URL = "http://127.0.0.1:8080"
FORMATS = {".ndjson": "FORMAT_NDJSON", ".json": "FORMAT_JSON", ".csv": "FORMAT_CSV"}


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def examples() -> list[str]:
    """The runnable examples of the README and docs/; a block that uses a variable it does not
    set (such as `$LOCATION`) goes on from the example before it in the same page, and runs
    after it in the same shell."""
    runs: list[str] = []
    for page in PAGES:
        first = len(runs)
        for block in BLOCK.findall(page.read_text(encoding="utf-8")):
            if not RUNS_AGAINST_THE_API.search(block) or NEEDS_DOCKER.search(block):
                continue
            if OWN_EMULATOR.search(block):
                continue
            used = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", block))
            assigned = set(re.findall(r"(?:^|[\s;(])([A-Z_][A-Z0-9_]*)=", block))
            if len(runs) > first and used - assigned:
                runs[-1] += block
            else:
                runs.append(block)
    return runs


def quick_start() -> str:
    """The README's curl quick start: its first example."""
    return examples()[0]


def data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def rows_in(path: Path) -> bool:
    name = path.name.removesuffix(".gz")
    fmt = FORMATS[Path(name).suffix]
    return has_rows(path, fmt, compressed=path.name.endswith(".gz"))


def test_the_readme_has_its_examples():
    found = examples()
    assert len(found) >= 4
    assert quick_start().startswith("KEY=") and "curl -sfJO" in quick_start()
    assert quick_start() in (ROOT / "docs" / "getting-started.md").read_text()
    assert any("curl -sfJO" in block for block in found)
    assert any("--chunk" in block for block in found)
    assert all(README_URL in block for block in found)  # what the test points elsewhere


@pytest.mark.parametrize("index", range(len(examples())))
def test_a_documented_example_runs_as_written(index, tmp_path):
    script = examples()[index]
    # A fifth of the default world: the same days and windows, a fifth of the rows to generate.
    process, base, _log = start(tmp_path, "--population", "200")
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULLSTORY_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    try:
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script.replace(README_URL, base)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
    output = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, output
    assert result.stdout.strip() or result.stderr.strip(), output
    assert "warning" not in result.stderr and "pacing" not in result.stderr, output
    outputs = sorted(work.iterdir())  # a file, or a folder (of bundles), per command
    assert outputs, output
    empty = [p.name for p in outputs if not any(rows_in(f) for f in data_files(p) or [p])]
    assert empty == [], output


def run_quick_start(base: str, work: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULLSTORY_")}
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", quick_start().replace(README_URL, base)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_quick_start_runs_twelve_times_in_a_row(tmp_path):
    """A newcomer runs the quick start again and again against one emulator, with the contract's
    rate limit: every run gets its file (the ninth used to die on a 429 it never mentioned)."""
    process, base, _log = start(tmp_path, "--population", "200")
    try:
        for run in range(12):
            work = tmp_path / f"run-{run}"
            work.mkdir()
            result = run_quick_start(base, work)
            output = f"run {run + 1}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            assert result.returncode == 0, output
            assert "Traceback" not in result.stderr, output
            [saved] = work.iterdir()
            assert saved.name.startswith("Everyone-") and rows_in(saved), output
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_quick_start_says_when_it_is_throttled_and_waits(tmp_path):
    """Throttled, the quick start's `api` tells the user of the 429 and waits out its
    Retry-After instead of failing: here the next three requests of the demo key are refused."""
    process, base, _log = start(tmp_path, "--population", "200")
    work = tmp_path / "work"
    work.mkdir()
    try:
        httpx.post(
            f"{base}/__emulator/ratelimit",
            json={"denyNext": 3, "retryAfter": 1},
            headers={"Authorization": "Basic na1.emulator-demo-key"},
        ).raise_for_status()
        result = run_quick_start(base, work)
    finally:
        process.terminate()
        process.wait(timeout=10)
    output = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, output
    said = "rate limited (429): waiting 1s, as Retry-After says\n"
    assert result.stderr == said * 3, output
    [saved] = work.iterdir()
    assert rows_in(saved), output


def client_examples() -> list[str]:
    return PYTHON.findall((ROOT / "docs" / "client.md").read_text(encoding="utf-8"))


def test_the_client_example_runs_as_written(tmp_path):
    [example] = client_examples()
    assert README_URL in example
    process, base, _log = start(tmp_path, "--population", "200")
    try:
        result = subprocess.run(
            [sys.executable, "-c", example.replace(README_URL, base)],
            cwd=tmp_path,
            env={k: v for k, v in os.environ.items() if not k.startswith("FULLSTORY_")},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"\d+ segments: everyone, rageClicks, \S+, \S+ \.\.\.", lines[0]), lines
    assert lines[-3] == "COMPLETED 100% "
    match = re.fullmatch(
        r"Everyone-\d{8}T\d{6}Z\.ndjson\.gz (\d+) events, most of all .*", lines[-2]
    )
    assert match and int(match.group(1)) > 0, lines
    assert lines[-1].startswith("LegacyFunnel: ERROR - search failed: the segment references")
