"""The Dockerfile, checked as far as a machine without a Docker engine can: its settings are real
settings, it runs as non-root with both ports, and its HEALTHCHECK works against a live server."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

from emulator.server import ServerThread
from emulator.settings import Settings
from tests.helpers import ROOT, small_settings

DOCKERFILE = (ROOT / "Dockerfile").read_text()


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


def test_non_root_ports_and_command():
    found = dict(instructions())
    assert found["FROM"].startswith("python:3.") and "slim" in found["FROM"]
    assert found["USER"] not in ("root", "0")
    assert found["EXPOSE"].split() == ["8080", "9090"]
    assert json.loads(found["CMD"]) == ["fullstory-emulator"]
    assert "pip install" in found["RUN"] and "useradd" in found["RUN"]


def test_healthcheck_command_works_against_a_live_server():
    command = json.loads(dict(instructions())["HEALTHCHECK"].split("CMD", 1)[1])
    with ServerThread(small_settings(port=0)) as server:
        local = [
            part.replace("127.0.0.1:8080", f"127.0.0.1:{server.settings.port}") for part in command
        ]
        assert local[0] == "python"
        ok = subprocess.run([sys.executable, *local[1:]], capture_output=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
    failing = [sys.executable, *(part.replace("8080", "9") for part in command[1:])]
    assert subprocess.run(failing, capture_output=True, timeout=30).returncode != 0
    assert shlex.join(command)
