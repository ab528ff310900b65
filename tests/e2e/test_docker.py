"""The Docker image for real: built from the Dockerfile, started, waited on until Docker itself
calls it healthy, and driven from outside through its mapped ports, on the default settings, on
another port and with TLS.

Where no Docker daemon answers, every test here skips and says why (`.ci/docker up` starts one,
as root). The base image is $EMULATOR_DOCKER_BASE, else the one .ci/docker-base made here
(`fullstory-emulator-base:local`), else the Dockerfile's default, python:3.12-slim, if it is
here or can be pulled. The build reuses Docker's layer cache: after the first build, a change
to the code rebuilds only the last layers, in seconds."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fullstory_emulator import __version__
from fullstory_emulator.auth import DEMO_KEY, MCP_KEY
from tests.helpers import ROOT, free_port

IMAGE = "fullstory-emulator:e2e"
RECIPE = ROOT / "tests" / "e2e" / "testcontainers_recipe.py"
NODE_RECIPE = ROOT / "tests" / "e2e" / "testcontainers_recipe.test.mjs"
NODE_TESTCONTAINERS = "testcontainers@11"  # what the recipe says to install (12 wants Node 22)
LABEL = "fullstory-emulator-e2e"  # on every container started here; its value is our pid
DEFAULT_BASE = "python:3.12-slim"
LOCAL_BASE = "fullstory-emulator-base:local"
KEY = DEMO_KEY  # the key the banner offers
NO_MCP = {"FULLSTORY_EMULATOR_MCP_PORT": "off"}
HEALTHY_WITHIN = 120.0  # seconds: the start period is 30 s, then a check every 5 s


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def daemon() -> str:
    """The daemon's version, or a skip that says why there is none."""
    if shutil.which("docker") is None:
        pytest.skip("no docker command on PATH (CI installs Debian's docker.io: .ci/docker)")
    try:
        info = docker("version", "--format", "{{.Server.Version}}", timeout=30, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip("the Docker daemon did not answer `docker version` within 30 s")
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"no Docker daemon answers ({reason}); `.ci/docker up` starts one (as root)")
    remove_leftovers()
    return info.stdout.strip()


def remove_leftovers() -> None:
    """Containers left by an earlier run that was killed (its pid gone) before it cleaned up."""
    listed = docker("ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.ID}} {{.Labels}}")
    for line in listed.stdout.splitlines():
        container, labels = line.split(" ", 1)
        owner = re.search(rf"{LABEL}=(\d+)", labels)
        if owner and not Path(f"/proc/{owner.group(1)}").exists():
            docker("rm", "-f", container, check=False)


def base_image() -> str:
    chosen = os.environ.get("EMULATOR_DOCKER_BASE")
    if chosen:
        return chosen
    for candidate in (LOCAL_BASE, DEFAULT_BASE):
        if docker("image", "inspect", candidate, check=False).returncode == 0:
            return candidate
    pulled = docker("pull", DEFAULT_BASE, timeout=600, check=False)
    if pulled.returncode != 0:
        pytest.skip(
            f"no base image: {DEFAULT_BASE} is not here and cannot be pulled "
            f"({pulled.stderr.strip()[-200:]}); make one with `.ci/docker-base` (as root)"
        )
    return DEFAULT_BASE


@pytest.fixture(scope="module")
def image(daemon: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    base = base_image()
    log = tmp_path_factory.mktemp("docker") / "build.log"
    started = time.monotonic()
    with log.open("w") as out:
        result = subprocess.run(
            ["docker", "build", "--build-arg", f"BASE={base}", "--label", LABEL, "-t", IMAGE, "."],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
            check=False,
        )
    output = log.read_text(errors="replace")
    if result.returncode != 0:
        pytest.fail(f"docker build on {base} failed:\n{output[-4000:]}")
    print(f"docker build on {base}: {time.monotonic() - started:.1f} s (daemon {daemon})")
    # The image this build replaced, if any, is no one's cache any more.
    docker("image", "prune", "--force", "--filter", f"label={LABEL}", check=False)
    # What .dockerignore let in: the legacy builder and BuildKit word it differently.
    sent = re.findall(
        r"(?:Sending build context to Docker daemon|transferring context:)\s+([\d.]+)([kMG]?B)",
        output,
    )
    assert sent, f"no build context size in the build's output:\n{output[:2000]}"
    unit = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
    size = max(float(number) * unit[suffix] for number, suffix in sent)
    assert size < 5e6, (
        f"a build context of {size / 1e6:.1f} MB: is .dockerignore missing something?"
    )
    return IMAGE


@dataclass
class Container:
    id: str
    ports: dict[int, int]  # container port -> host port on 127.0.0.1

    def url(self, port: int, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.ports[port]}"

    def state(self) -> dict[str, Any]:
        return json.loads(docker("inspect", "--format", "{{json .State}}", self.id).stdout)

    def logs(self) -> str:
        out = docker("logs", self.id, check=False)
        return out.stdout + out.stderr

    def wait_healthy(self) -> None:
        """Until Docker's own health check says healthy; a failure shows why not."""
        started = time.monotonic()
        while True:
            state = self.state()
            health = state.get("Health") or {}
            if health.get("Status") == "healthy":
                return
            if not state["Running"] or health.get("Status") == "unhealthy":
                break
            if time.monotonic() - started > HEALTHY_WITHIN:
                break
            time.sleep(0.5)
        pytest.fail(
            f"container not healthy: {json.dumps(state, indent=1)}\nlogs:\n{self.logs()[-3000:]}"
        )

    def exec(self, *command: str) -> subprocess.CompletedProcess:
        return docker("exec", self.id, *command, check=False)


@pytest.fixture(scope="module")
def run(image: str) -> Iterator[Callable[..., Container]]:
    """Start a container of the image, its `ports` published on free ports of 127.0.0.1, or on
    the given ones; every container started is removed at the end."""
    started: list[str] = []

    def start(
        ports: dict[int, int | None], *args: str, env: dict[str, str] | None = None
    ) -> Container:
        mapped = {inside: outside or free_port() for inside, outside in ports.items()}
        command = ["run", "--detach", "--label", f"{LABEL}={os.getpid()}"]
        command += [f"--name=fullstory-emulator-e2e-{uuid.uuid4().hex[:8]}"]
        for inside, outside in mapped.items():
            command += ["--publish", f"127.0.0.1:{outside}:{inside}"]
        for name, value in (env or {}).items():
            command += ["--env", f"{name}={value}"]
        container = docker(*command, image, *args).stdout.strip()
        started.append(container)
        return Container(container, mapped)

    yield start
    if started:
        docker("rm", "--force", "--volumes", *started, check=False)


@pytest.fixture(scope="module")
def recipe(
    image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The Testcontainers recipe of docs/docker.md, run as a user's project runs it: copied into
    a folder of its own and run by its own pytest, in the background. Ryuk, Testcontainers'
    reaper, is off: its image cannot be pulled where no registry is reachable."""
    work = tmp_path_factory.mktemp("recipe")
    shutil.copy(RECIPE, work / "test_recipe.py")
    log = work / "pytest.log"
    env = os.environ | {"FULLSTORY_EMULATOR_IMAGE": image, "TESTCONTAINERS_RYUK_DISABLED": "true"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_recipe.py"]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    yield process, log
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def node_recipe(
    image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[subprocess.Popen[bytes], Path] | str]:
    """The Testcontainers (Node) recipe of docs/docker.md, as a user's project runs it: npm
    installs testcontainers from the registry into a folder of its own, then `node --test`, in
    the background. Without node and npm, the reason it cannot run."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        yield "no node and npm on PATH (the Node recipe needs Node 20 or newer)"
        return
    work = tmp_path_factory.mktemp("node-recipe")
    shutil.copy(NODE_RECIPE, work / "emulator.test.mjs")
    (work / "package.json").write_text('{"private": true, "type": "module"}\n')
    log = work / "node.log"
    env = os.environ | {"FULLSTORY_EMULATOR_IMAGE": image, "TESTCONTAINERS_RYUK_DISABLED": "true"}
    script = (
        f"npm install --no-audit --no-fund --save-dev {NODE_TESTCONTAINERS} && "
        "node --test emulator.test.mjs"
    )
    with log.open("w") as out:
        process = subprocess.Popen(
            ["bash", "-c", script], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    yield process, log
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def containers(
    run: Callable[..., Container], recipe: object, node_recipe: object
) -> dict[str, Container]:
    """Three at once, and after the recipe's, so that all their start periods overlap: the
    defaults with flags for the workflow (download URLs on the mapped port), then another port
    and TLS, each set through the environment as a Compose file would set it."""
    api = free_port()
    return {
        "default": run(
            {8080: api, 9090: None},
            "fullstory-emulator",
            f"--public-url=http://127.0.0.1:{api}",
            "--seed=3",
            "--population=80",
            "--export-duration=0.5",
        ),
        # (MCP off where it is not under test: its start is a good part of the CPU they need)
        "port": run({9999: None}, env={"FULLSTORY_EMULATOR_PORT": "9999", **NO_MCP}),
        "tls": run({8080: None}, env={"FULLSTORY_EMULATOR_TLS": "true", **NO_MCP}),
    }


def test_default_container_runs_the_workflow_through_the_mapped_port(containers):
    emulator = containers["default"]
    emulator.wait_healthy()
    base = emulator.url(8080)
    assert emulator.exec("id", "-u").stdout.strip() == "10001"  # not root
    with httpx.Client(base_url=base, headers={"Authorization": f"Basic {KEY}"}, timeout=20) as api:
        created = api.post(
            "/segments/v1/exports",
            json={"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"},
        )
        assert created.status_code == 200, created.text
        operation_id = created.json()["operationId"]
        deadline = time.monotonic() + 30
        while (op := api.get(f"/operations/v1/{operation_id}").json())["state"] == "PENDING":
            assert time.monotonic() < deadline, op
            time.sleep(0.2)
        assert op["state"] == "COMPLETED", op
        export_id = op["results"]["searchExportId"]
        location = api.get(f"/search/v1/exports/{export_id}/results").json()["location"]
        # --public-url: the link names the mapped port, not the container's 8080
        assert location.startswith(f"{base}/fullstory-emulator-exports/"), location
        download = httpx.get(location, timeout=30)
        assert download.status_code == 200, download.text
        assert download.headers["content-disposition"].endswith('.ndjson.gz"')
        rows = [json.loads(line) for line in gzip.decompress(download.content).splitlines()]
        assert rows and all(row["IndvId"] > 0 for row in rows)

    # the MCP adapter on 9090 reaches the API inside the container, as a tenant of its own
    # (its key, MCP_KEY, keeps it off the user's rate limit)
    mine = httpx.post(
        f"{base}/segments/v1/exports",
        json={"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"},
        headers={"Authorization": f"Basic {MCP_KEY}"},
        timeout=20,
    )
    assert mine.status_code == 200, mine.text
    operation = mcp_operation(emulator.url(9090) + "/mcp", mine.json()["operationId"])
    assert operation["state"] in ("PENDING", "COMPLETED")

    # the state lives in /data, a volume: a restarted container still knows the export
    docker("restart", "--time", "10", emulator.id)
    again = answer(
        f"{base}/operations/v1/{operation_id}", headers={"Authorization": f"Basic {KEY}"}
    )
    assert again.status_code == 200 and again.json()["results"]["searchExportId"] == export_id


def answer(url: str, **kwargs: Any) -> httpx.Response:
    """The first answer from a container that is (re)starting."""
    deadline = time.monotonic() + HEALTHY_WITHIN
    while True:
        try:
            return httpx.get(url, timeout=5, **kwargs)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def mcp_operation(url: str, operation_id: str) -> dict[str, Any]:
    import anyio
    from mcp import Client

    async def call() -> dict[str, Any]:
        async with Client(url, read_timeout_seconds=20) as client:
            result = await client.call_tool("getoperationstatus", {"operationId": operation_id})
            assert not result.is_error, result.content
            assert isinstance(result.structured_content, dict)
            return result.structured_content

    return anyio.run(call)


def test_another_port_from_the_environment_turns_healthy(containers):
    emulator = containers["port"]
    emulator.wait_healthy()
    health = httpx.get(emulator.url(9999) + "/__emulator/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    log = emulator.state()["Health"]["Log"]
    assert log[-1]["ExitCode"] == 0
    assert log[-1]["Output"] == "http://127.0.0.1:9999/__emulator/health: 200\n"
    # the same command fails, and says where it looked, when nothing answers there
    wrong = emulator.exec("fullstory-emulator", "health", "--port", "8080")
    assert wrong.returncode == 1
    assert "http://127.0.0.1:8080/__emulator/health" in wrong.stderr


def test_tls_container_turns_healthy_and_serves_https_under_its_ca(containers, tmp_path):
    emulator = containers["tls"]
    emulator.wait_healthy()
    log = emulator.state()["Health"]["Log"]
    assert log[-1]["Output"] == "https://127.0.0.1:8080/__emulator/health: 200\n"
    ca = tmp_path / "ca.pem"
    docker("cp", f"{emulator.id}:/data/tls/ca.pem", str(ca))
    trusted = ssl.create_default_context(cafile=str(ca))
    health = httpx.get(emulator.url(8080, "https") + "/__emulator/health", verify=trusted)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    with pytest.raises(httpx.TransportError):  # no plain HTTP on a TLS port
        httpx.get(emulator.url(8080) + "/__emulator/health", timeout=10)


def test_testcontainers_recipe_from_the_docs(recipe):
    process, log = recipe
    process.wait(timeout=HEALTHY_WITHIN + 60)
    output = log.read_text(errors="replace")
    assert process.returncode == 0, output
    assert output.splitlines()[-1].startswith("2 passed"), output


def test_the_image_carries_its_oci_labels_and_version(image):
    """What `docker inspect` and a registry show: the one version, also printed by the image."""
    labels = json.loads(
        docker("image", "inspect", "--format", "{{json .Config.Labels}}", image).stdout
    )
    oci = "org.opencontainers.image."
    assert labels[f"{oci}title"] == "fullstory-emulator"
    assert labels[f"{oci}version"] == __version__
    assert labels[f"{oci}licenses"] == "MIT"
    assert labels[f"{oci}source"].startswith("https://")
    assert labels[f"{oci}description"].startswith("A local, offline emulator of FullStory")
    shown = docker(
        "run", "--rm", "--label", f"{LABEL}={os.getpid()}", image, "fullstory-emulator", "--version"
    )
    assert shown.stdout == f"fullstory-emulator {__version__}\n"


def test_github_actions_service_container_recipe_from_the_docs(run, tmp_path):
    """docs/docker.md's service container job as the runner runs it: the service from the
    image with the job's ports and env (on a free port here), healthy before the steps, then the
    steps, in order."""
    section = (
        (ROOT / "docs" / "docker.md")
        .read_text()
        .split("\n## GitHub Actions: a service container\n", 1)[1]
    )
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block
    job = yaml.safe_load(block.group(1))["jobs"]["test"]
    service = job["services"]["fullstory"]
    outside, inside = (int(n) for n in service["ports"][0].split(":"))
    here = free_port()
    env = {k: str(v).replace(f":{outside}", f":{here}") for k, v in service["env"].items()}
    emulator = run({inside: here}, env=env)
    emulator.wait_healthy()
    steps_env = {k: v for k, v in os.environ.items() if not k.startswith("FULLSTORY_")}
    steps_env |= {k: str(v).replace(f":{outside}", f":{here}") for k, v in job["env"].items()}
    for step in job["steps"]:
        if "run" not in step:
            continue
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=tmp_path,
            env=steps_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert '"everyone"' in done.stdout


def test_testcontainers_node_recipe_from_the_docs(node_recipe):
    if isinstance(node_recipe, str):
        pytest.skip(node_recipe)
    process, log = node_recipe
    process.wait(timeout=HEALTHY_WITHIN + 240)  # npm install from the registry, then the run
    output = log.read_text(errors="replace")
    assert process.returncode == 0, output[-4000:]
    assert re.search(r"^# pass 2$", output, re.M) and re.search(r"^# fail 0$", output, re.M), output
