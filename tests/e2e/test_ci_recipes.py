"""The CI recipes of docs/docker.md, parsed as CI would parse them and their shell steps run here
in order, so a recipe that rots fails the suite: the GitHub Actions job that runs the emulator
as a background process runs whole (its install step is this checkout's install); the service
container jobs (GitHub Actions, GitLab CI) run their steps against a local emulator standing in
for the service, and their service definitions are checked against the image's settings.
tests/e2e/test_docker.py runs the GitHub service container from the image it builds."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ROOT, free_port, start, stop

DOCS = (ROOT / "docs" / "docker.md").read_text()
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"]  # GitHub's `shell: bash`


def recipe(heading: str) -> dict[str, Any]:
    """The first YAML block under `heading`."""
    section = DOCS.split(f"\n## {heading}\n", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block, f"no YAML under {heading!r}"
    parsed = yaml.safe_load(block.group(1))
    assert isinstance(parsed, dict)
    return parsed


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without emulator settings, this venv's commands first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FULLSTORY_", "GITHUB_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env | extra


def run_step(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BASH, script],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def gone(pid: int, within: float = 20) -> bool:
    """Whether process `pid` (not our child: the step's shell started it) has exited."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
                return True
        except (FileNotFoundError, IndexError):
            return True
        time.sleep(0.05)
    return False


def test_github_actions_background_process_job_runs_here(tmp_path):
    workflow = recipe("GitHub Actions: a background process")
    assert set(workflow) >= {"name", "jobs"} and workflow.get(True, workflow.get("on"))
    job = workflow["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest"
    steps = job["steps"]
    assert [s.get("uses") for s in steps[:2]] == ["actions/checkout@v4", "actions/setup-python@v5"]
    install, *rest = [s for s in steps if "run" in s]
    assert install["run"].startswith("pip install fullstory-emulator")  # here: this checkout's
    port = str(free_port())  # 8080 may be taken here; the job sets it once, for every step
    env = clean_env(
        **({k: str(v) for k, v in job["env"].items()} | {"FULLSTORY_EMULATOR_PORT": port})
    )
    outputs: list[str] = []
    failed = False
    try:
        for step in rest:
            if failed and "always()" not in str(step.get("if", "")):
                continue
            done = run_step(step["run"], tmp_path, env | step.get("env", {}))
            outputs.append(done.stdout)
            assert done.returncode == 0 or failed, (
                f"step {step.get('name')!r} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )
            failed = failed or done.returncode != 0
    finally:
        pid_file = tmp_path / "emulator.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            if not gone(pid, within=20):
                os.kill(pid, 9)
                pytest.fail("the job's stop step left the emulator running")
    names = [s.get("name") for s in rest]
    assert names == [
        "Start the emulator",
        "Wait until it is healthy",
        "Run the tests against it",
        "Stop the emulator",
    ]
    health, tests = outputs[1], outputs[2]
    assert health == f"http://127.0.0.1:{port}/__emulator/health: 200\n"
    assert '"segments"' in tests and '"everyone"' in tests
    log = (tmp_path / "emulator.log").read_text()
    assert f"127.0.0.1:{port}" in log  # the one port setting reached the server


@pytest.fixture
def service(tmp_path: Path):
    """A local emulator standing in for a CI service container."""
    process, url, _ = start(tmp_path)
    yield url
    stop(process)


def test_github_actions_service_container_job(service, tmp_path):
    job = recipe("GitHub Actions: a service container")["jobs"]["test"]
    fullstory = job["services"]["fullstory"]
    assert fullstory["image"].endswith("fullstory-emulator:latest")
    outside, inside = fullstory["ports"][0].split(":")
    assert inside == "8080"  # the image's port (Dockerfile's FULLSTORY_EMULATOR_PORT)
    assert fullstory["env"]["FULLSTORY_EMULATOR_PUBLIC_URL"] == f"http://localhost:{outside}"
    assert job["env"]["FULLSTORY_API_URL"] == f"http://localhost:{outside}"
    env = clean_env(**(job["env"] | {"FULLSTORY_API_URL": service}))
    for step in job["steps"]:
        if "run" in step:
            done = run_step(step["run"], tmp_path, env)
            assert done.returncode == 0, done.stdout + done.stderr
            assert '"everyone"' in done.stdout


def test_gitlab_ci_job(service, tmp_path):
    job = recipe("GitLab CI")["test"]
    (fullstory,) = job["services"]
    assert fullstory["name"].endswith("fullstory-emulator:latest")
    variables = job["variables"]
    assert variables["FULLSTORY_EMULATOR_PUBLIC_URL"] == f"http://{fullstory['alias']}:8080"
    assert variables["FULLSTORY_API_URL"] == f"http://{fullstory['alias']}:8080"
    env = clean_env(**(variables | {"FULLSTORY_API_URL": service}))
    # GitLab runs a job's script lines in one shell, stopping at the first that fails.
    done = run_step("\n".join(job["script"]), tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"everyone"' in done.stdout
