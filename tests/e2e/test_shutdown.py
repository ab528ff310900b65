"""Stopping real processes: SIGTERM (what `kill`, `docker stop`, CI runners and supervisors
send) leaves nothing behind, as Ctrl-C does: no temporary folder, no worker processes, no
"leaked semaphore" warning from Python's resource tracker.

Each process gets a TMPDIR of its own, so the test sees exactly what it left. Its output is a
pipe read to its end: the end comes only once every process that inherited it (worker
processes, the resource tracker, which prints its warnings as it exits) has gone.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.helpers import emulator_command

KEY = "na1.emulator-demo-key"
AUTH = {"Authorization": f"Basic {KEY}"}
BANNER = re.compile(r"API base URL: +(http://[\d.]+:\d+)")
# Large enough to be made by the worker pool (PARALLEL_MIN_EVENTS estimated events), small enough
# to be quick: 500 people over 30 days, 128 to a block.
WORLD = (
    *("--population", "500", "--export-workers", "2"),
    *("--export-duration", "0", "--export-duration-per-million", "0"),
)


@dataclass
class Running:
    process: subprocess.Popen[str]
    tmp: Path
    lines: list[str] = field(default_factory=list)
    url: str = ""
    ready: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)

    def pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            match = BANNER.search(line)
            if match and not self.url:
                self.url = match.group(1)
                self.ready.set()
        self.ended.set()
        self.ready.set()  # a process that ended before its banner

    @property
    def output(self) -> str:
        return "".join(self.lines)


def launch(tmp_path: Path, command: list[str]) -> Running:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULLSTORY_EMULATOR_")}
    env["TMPDIR"] = str(tmp)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    running = Running(process, tmp)
    threading.Thread(target=running.pump, daemon=True).start()
    return running


def start_server(tmp_path: Path, *args: str) -> Running:
    running = launch(tmp_path, [*emulator_command(), "--port", "0", "--mcp-port", "off", *args])
    assert running.ready.wait(60) and running.url, running.output
    with httpx.Client(base_url=running.url, timeout=5) as http:
        for _ in range(600):  # workers: until one answers (each try waits up to its timeout)
            try:
                if http.get("/__emulator/health").status_code == 200:
                    return running
            except httpx.TransportError:
                pass
            assert running.process.poll() is None, running.output
            running.ended.wait(0.05)
    pytest.fail(f"the emulator did not answer:\n{running.output}")


def export_and_download(url: str) -> int:
    """One export of the whole world, downloaded; its size."""
    with httpx.Client(base_url=url, headers=AUTH, timeout=120) as http:
        body = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"}
        op_id = http.post("/segments/v1/exports", json=body).json()["operationId"]
        op = http.get(f"/operations/v1/{op_id}").json()
        assert op["state"] == "COMPLETED", op  # an export that takes no time (WORLD)
        export_id = op["results"]["searchExportId"]
        location = http.get(f"/search/v1/exports/{export_id}/results").json()["location"]
        response = httpx.get(location, timeout=120)
        assert response.status_code == 200
        return len(response.content)


def stopped(running: Running, sig: signal.Signals) -> int:
    """Send `sig`, and wait for the process and for the end of its output."""
    running.process.send_signal(sig)
    code = running.process.wait(60)
    assert running.ended.wait(60), "something the emulator started still holds its output"
    return code


@pytest.mark.parametrize(
    ("sig", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["term", "int"]
)
def test_a_stopped_server_leaves_nothing_behind(tmp_path, sig, exit_code):
    running = start_server(tmp_path, *WORLD)
    assert export_and_download(running.url) > 0
    assert list(running.tmp.iterdir()) != []  # the file cache, until the end
    assert stopped(running, sig) == exit_code, running.output
    assert list(running.tmp.iterdir()) == [], running.output
    assert "leaked semaphore" not in running.output
    assert "Traceback" not in running.output
    assert "fullstory-emulator: stopped" in running.output


def test_a_stopped_server_with_workers_leaves_nothing_behind(tmp_path):
    running = start_server(tmp_path, "--workers", "2", *WORLD)
    assert export_and_download(running.url) > 0
    (data,) = running.tmp.iterdir()  # the workers' shared data dir, with the files in it
    assert (data / "emulator.sqlite3").exists() and list((data / "files").glob("*.gz"))
    assert stopped(running, signal.SIGTERM) == 0, running.output  # the supervisor's own exit
    assert list(running.tmp.iterdir()) == [], running.output
    assert "leaked semaphore" not in running.output
    assert "Traceback" not in running.output


@pytest.mark.parametrize(
    "stage",
    # while the demo stages its emulator, and while its in-process client runs (which catches
    # the interrupt itself, as Ctrl-C: the demo still exits as SIGTERM asks)
    ["Staged through the control API", "connecting to http"],
    ids=["staging", "client"],
)
def test_a_stopped_demo_leaves_nothing_behind(tmp_path, stage):
    running = launch(tmp_path, [*emulator_command(), "demo", "--population", "50"])
    for _ in range(2400):  # until the demo reaches the stage
        if stage in running.output or running.ended.is_set():
            break
        running.ended.wait(0.05)
    assert stage in running.output, running.output
    assert list(running.tmp.iterdir()) != []  # the demo's folder and its emulator's cache
    assert stopped(running, signal.SIGTERM) == 143, running.output
    assert list(running.tmp.iterdir()) == [], running.output
    assert "Traceback" not in running.output
