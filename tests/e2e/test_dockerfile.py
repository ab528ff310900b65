"""The Dockerfile, checked without a Docker engine: its settings are real settings, it runs as
non-root with both ports, its HEALTHCHECK works against a live server, and .dockerignore lets in
exactly what it copies. test_docker.py builds and runs the image for real."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib

from fullstory_emulator import __version__
from fullstory_emulator.server import ServerThread
from fullstory_emulator.settings import Settings
from tests.helpers import ROOT, emulator_command, small_settings

DOCKERFILE = (ROOT / "Dockerfile").read_text()
DOCKERIGNORE = (ROOT / ".dockerignore").read_text()


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_settings_from_env_are_valid():
    env = {}
    for keyword, rest in instructions():
        if keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    settings = Settings.load({}, {k: v for k, v in env.items() if k.startswith("FULLSTORY_")})
    assert (settings.host, settings.port, settings.mcp_port) == ("0.0.0.0", 8080, 9090)
    assert str(settings.data_dir) == "/data"


def test_base_is_an_argument_defaulting_to_slim_python():
    found = instructions()
    assert found[0] == ("ARG", "BASE=python:3.12-slim")
    stages = [rest for keyword, rest in found if keyword == "FROM"]
    assert stages == ["${BASE} AS requirements", "${BASE}"]


def test_non_root_ports_and_command():
    found = dict(instructions())
    runs = " ".join(rest for keyword, rest in instructions() if keyword == "RUN")
    assert found["USER"] not in ("root", "0")
    assert found["EXPOSE"].split() == ["8080", "9090"]
    assert json.loads(found["CMD"]) == ["fullstory-emulator"]
    assert "python3 -m venv /opt/venv" in runs and "useradd" in runs
    assert "PATH=/opt/venv/bin:$PATH" in found["ENV"]


def test_oci_labels_name_the_package_and_its_one_version():
    """The image's labels say what pyproject.toml says, and its VERSION argument defaults to the
    package's __version__ (the one place the version is kept): a bump that forgets it fails."""
    final = instructions()[[keyword for keyword, _ in instructions()].index("FROM", 2) :]
    args = dict(rest.split("=", 1) for keyword, rest in final if keyword == "ARG")
    assert args["VERSION"] == __version__
    labels = dict(
        re.findall(r'(\S+)="([^"]*)"', " ".join(rest for kw, rest in final if kw == "LABEL"))
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    oci = "org.opencontainers.image."
    assert labels == {
        f"{oci}title": project["name"],
        f"{oci}description": project["description"],
        f"{oci}version": "${VERSION}",
        f"{oci}source": "${SOURCE}",
        f"{oci}licenses": project["license"],
    }
    assert args["SOURCE"].startswith("https://")


def test_dependencies_are_installed_before_the_code_is_copied():
    """So that a change to the code, or to pyproject.toml outside the dependencies, reuses the
    (slow) dependencies layer: its only input is the requirements stage's output."""
    found = instructions()
    final = found[[keyword for keyword, _ in found].index("FROM", 2) :]
    steps = [(keyword, rest) for keyword, rest in final if keyword in ("COPY", "RUN")]
    assert steps[0] == ("COPY", "--from=requirements /requirements.txt /opt/requirements.txt")
    assert steps[1][0] == "RUN" and "pip install" in steps[1][1]
    assert "-r /opt/requirements.txt" in steps[1][1]
    assert all(keyword == "COPY" for keyword, _ in steps[2:-1])
    assert "--no-deps" in steps[-1][1]


def test_dockerignore_lets_in_exactly_what_the_dockerfile_copies():
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"  # everything out (.venv, .git, caches) ...
    allowed = {p[1:] for p in patterns if p.startswith("!")}  # ... but these
    copied = {
        source
        for keyword, rest in instructions()
        if keyword == "COPY" and not rest.startswith("--from=")
        for source in rest.split()[:-1]
    }
    assert (
        allowed
        == copied
        == {"pyproject.toml", "README.md", "LICENSE", "fixtures", "fullstory_emulator"}
    )
    assert {"**/__pycache__", "**/*.pyc"} <= set(patterns)


def healthcheck() -> tuple[list[str], str]:
    options, command = dict(instructions())["HEALTHCHECK"].split("CMD", 1)
    return json.loads(command), options


def test_healthcheck_follows_the_port_from_the_environment():
    command, options = healthcheck()
    assert command == ["fullstory-emulator", "health"]
    assert "--interval=5s" in options.split()
    script = [*emulator_command(), *command[1:]]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FULLSTORY_EMULATOR_")}
    with ServerThread(small_settings(port=0)) as server:
        port = str(server.settings.port)
        ok = subprocess.run(
            script,
            env=clean | {"FULLSTORY_EMULATOR_PORT": port},
            capture_output=True,
            timeout=30,
        )
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.decode() == f"http://127.0.0.1:{port}/__emulator/health: 200\n"
        wrong = subprocess.run(
            script, env=clean | {"FULLSTORY_EMULATOR_PORT": "9"}, capture_output=True, timeout=30
        )
        assert wrong.returncode == 1
        assert b"http://127.0.0.1:9/__emulator/health" in wrong.stderr


def test_docs_show_the_tested_recipe_and_the_real_health_interval():
    docs = (ROOT / "docs" / "docker.md").read_text()
    recipe = (ROOT / "tests" / "e2e" / "testcontainers_recipe.py").read_text().rstrip()
    assert f"```python\n{recipe}\n```" in docs
    interval = re.search(r"--interval=(\d+)s", healthcheck()[1])
    assert interval
    for text in (docs, (ROOT / "docs" / "docker.md").read_text()):
        assert f"every {interval.group(1)} s" in text


def test_docs_show_the_tested_node_recipe():
    docs = (ROOT / "docs" / "docker.md").read_text()
    recipe = (ROOT / "tests" / "e2e" / "testcontainers_recipe.test.mjs").read_text().rstrip()
    assert f"```javascript\n{recipe}\n```" in docs
