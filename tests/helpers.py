"""Helpers shared by the test modules (the only module they import from each other)."""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from fullstory_emulator.http.app import create_app
from fullstory_emulator.instance import Emulator
from fullstory_emulator.recording import (
    EXPORTS_DIR,
    FIELDS,
    MANIFEST,
    SEGMENTS,
    Catalogue,
    FieldProfile,
    RecordedExport,
    catalogue_json,
    manifest_json,
    write_json,
)
from fullstory_emulator.settings import Settings

ROOT = Path(__file__).resolve().parent.parent  # the checkout

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
KEY = "na1.test-admin-key"
AUTH = {"Authorization": f"Basic {KEY}"}


def control(http: httpx.Client, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """A control-API call (`path` under /__emulator) that must succeed; its JSON answer, or {}
    for an empty one."""
    response = http.request(method, f"/__emulator{path}", json=body)
    assert response.status_code < 400, response.text
    return response.json() if response.content.strip() else {}


@dataclasses.dataclass
class Harness:
    client: TestClient
    em: Emulator

    def advance(self, seconds: float) -> None:
        self.em.clock.advance(seconds)

    def create(self, headers: dict[str, str] | None = None, **body: Any) -> str:
        payload = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"}
        payload.update(body)
        response = self.client.post("/segments/v1/exports", json=payload, headers=headers or AUTH)
        assert response.status_code == 200, response.text
        return response.json()["operationId"]

    def operation(self, operation_id: str) -> dict[str, Any]:
        response = self.client.get(f"/operations/v1/{operation_id}", headers=AUTH)
        assert response.status_code == 200, response.text
        return response.json()

    def finish(self, operation_id: str) -> dict[str, Any]:
        """Move the clock past the operation's end and return its final state."""
        for _ in range(200):
            op = self.operation(operation_id)
            if op["state"] != "PENDING":
                return op
            self.advance(5)
        raise AssertionError(f"operation {operation_id} never finished")

    def location(self, search_export_id: str) -> str:
        response = self.client.get(f"/search/v1/exports/{search_export_id}/results", headers=AUTH)
        assert response.status_code == 200, response.text
        return response.json()["location"]

    def export_bytes(self, **body: Any) -> bytes:
        """Run the whole workflow and return the downloaded (still gzipped) file."""
        op = self.finish(self.create(**body))
        assert op["state"] == "COMPLETED", op
        response = self.client.get(self.location(op["results"]["searchExportId"]))
        assert response.status_code == 200, response.text
        return response.content


def small_settings(**overrides: Any) -> Settings:
    base = {
        "start_time": START,
        "freeze_clock": True,
        "population": 60,
        "density": 0.25,  # a quarter of the default traffic: small exports, fast tests
        "export_duration_per_million": 0,
        "rate_limit": None,
        "signing_secret": "test-secret",
    }
    base.update(overrides)
    return Settings(**base)


def harness_factory(
    each: Callable[[int], dict[str, Any]] = lambda n: {},
) -> Iterator[Callable[..., Harness]]:
    """Makes harnesses (closing their clients afterwards); `each(n)` gives the n-th one's
    default settings, which the caller's overrides beat."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> Harness:
        settings = small_settings(**{**each(len(clients)), **overrides})
        em = Emulator.build(settings)
        client = TestClient(create_app(settings, emulator=em), base_url=settings.base_url())
        clients.append(client)
        return Harness(client, em)

    yield make
    for client in clients:
        client.close()
        close = getattr(client.app.state.emulator.store, "close", None)
        if close is not None:  # a database store's connections and timers
            close()


def assert_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    """The contract's JSON error shape, with this status and gRPC code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code and isinstance(body["message"], str) and body["message"]
    assert body["details"] == []
    return body


def parse(ts: str) -> datetime:
    """An API timestamp (RFC 3339 with microseconds) as a datetime."""
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def ms(ts: str) -> int:
    """An export row's timestamp as epoch milliseconds."""
    return int(parse(ts).timestamp() * 1000)


# -- recordings (--replay) -----------------------------------------------------------------------


def profile_of(values: list[Any]) -> FieldProfile:
    """A field's profile as a recorder would make it from the values seen (None: absent)."""
    present = [v for v in values if v is not None]
    filled = [v for v in present if v != ""]
    kinds = {
        "boolean"
        if isinstance(v, bool)
        else "integer"
        if isinstance(v, int)
        else "number"
        if isinstance(v, float)
        else "string"
        if isinstance(v, str)
        else "array"
        if isinstance(v, list)
        else "object"
        for v in filled
    }
    json_type = "number" if kinds == {"integer", "number"} else min(kinds or {"string"})
    distinct: list[Any] = []
    for v in filled:
        if v not in distinct and not isinstance(v, dict | list) and len(distinct) < 50:
            distinct.append(v)
    numbers = [v for v in filled if isinstance(v, int | float) and not isinstance(v, bool)]
    return FieldProfile(
        type=json_type,
        count=len(present),
        null_rate=round(1 - len(filled) / len(present), 4) if present else 0.0,
        values=tuple(distinct),
        minimum=min(numbers) if numbers else None,
        maximum=max(numbers) if numbers else None,
    )


def catalogue_of(
    rows: list[dict[str, Any]], hosts: tuple[str, ...] = (), paths: tuple[str, ...] = ()
) -> Catalogue:
    names = sorted({name for row in rows for name in row})
    fields = {n: profile_of([row.get(n) for row in rows if n in row]) for n in names}
    return Catalogue(fields, hosts, paths)


def write_recording(
    root: Path,
    *,
    segments: list[dict[str, Any]],
    catalogue: Catalogue,
    exports: list[tuple[RecordedExport, bytes]],
    api_url: str = "https://api.fullstory.com",
) -> Path:
    """A folder as `fullstory-emulator record` writes it: each export with its file's bytes."""
    for export, data in exports:
        (root / EXPORTS_DIR).mkdir(parents=True, exist_ok=True)
        (root / EXPORTS_DIR / export.file).write_bytes(data)
    write_json(root / SEGMENTS, {"segments": segments, "replaceDefaults": True})
    write_json(root / FIELDS, catalogue_json(catalogue))
    write_json(
        root / MANIFEST,
        manifest_json(
            api_url=api_url,
            recorded_at="2026-03-01T12:00:00Z",
            scrubbed=False,
            exports=[e for e, _ in exports],
        ),
    )
    return root


# -- real processes (tests/e2e) ----------------------------------------------------------------


def free_port() -> int:
    """A port that was free a moment ago: for a server whose URL must be known before it
    starts (a restart on the same port, a replica named as the public URL)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def refusing_url() -> Iterator[str]:
    """A URL whose port refuses connections at once (bound, never listening) for as long as the
    block runs, so no other test's server can take it: an emulator that is not running."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def emulator_command() -> list[str]:
    script = Path(sys.executable).with_name("fullstory-emulator")
    if script.exists():
        return [str(script)]
    found = shutil.which("fullstory-emulator")
    if found:
        return [found]
    pytest.fail("the fullstory-emulator command is not installed (pip install -e '.[test]')")


def start(
    tmp_path: Path, *args: str, base: str | None = None, command: list[str] | None = None
) -> tuple[subprocess.Popen, str, Path]:
    """The emulator command (or `command`, another install's) with `args`, once it answers its
    health check at `base` (default: the API base URL its banner prints, which --public-url
    changes)."""
    log = tmp_path / "emulator.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FULLSTORY_EMULATOR_")}
    process = subprocess.Popen(
        [*(command or emulator_command()), "--port", "0", "--mcp-port", "off", *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"API base URL: +(https?://[\d.]+:\d+)", log.read_text(errors="replace"))
        if match:
            url = base or match.group(1)
            try:
                if (
                    httpx.get(f"{url}/__emulator/health", timeout=1, verify=False).status_code
                    == 200
                ):
                    return process, url, log
            except httpx.TransportError:
                pass
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"emulator did not start:\n{log.read_text(errors='replace')}")


def stop(process: subprocess.Popen[Any], timeout: float = 10) -> None:
    """Stop a process `start` (or a test) began: politely, then for good if it hangs."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- PostgreSQL (tests of the postgres store and of several replicas) -------------------------

PG_URL_ENV = "FULLSTORY_EMULATOR_TEST_POSTGRES"  # use this server instead of starting one
PG_BIN_ENV = "FULLSTORY_EMULATOR_TEST_PG_BIN"  # where initdb and pg_ctl are
PG_PORT_ENV = "FULLSTORY_EMULATOR_TEST_PG_PORT"  # also listen on 127.0.0.1:PORT (default: no TCP)


def postgres_bin() -> Path | None:
    """The directory of initdb and pg_ctl: $FULLSTORY_EMULATOR_TEST_PG_BIN, Debian's newest
    /usr/lib/postgresql/*/bin, or PATH."""
    if os.environ.get(PG_BIN_ENV):
        return Path(os.environ[PG_BIN_ENV])
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(re.sub(r"\D", "", Path(p).parent.parent.name) or 0),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """A throwaway PostgreSQL cluster in a temporary folder: no fsync, a Unix socket in the
    folder (TCP too with $FULLSTORY_EMULATOR_TEST_PG_PORT). PostgreSQL refuses to run as root,
    so under root it runs as the `postgres` user (Debian's package makes one) or `nobody`."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.user = None
        if os.geteuid() == 0:
            names = {p.pw_name for p in pwd.getpwall()}
            self.user = "postgres" if "postgres" in names else "nobody"
        self.root = Path(tempfile.mkdtemp(prefix="fse-pg-"))
        self.data = self.root / "data"
        self.port = int(os.environ.get(PG_PORT_ENV) or 5432)
        self.tcp = bool(os.environ.get(PG_PORT_ENV))
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", "emulator", "-A", "trust", "-E", "UTF8",
            "--no-locale", "-N",
        )  # fmt: skip
        self.start()
        self._watchdog = self._watch()

    def _run(self, tool: str, *args: str) -> None:
        kwargs: dict[str, Any] = {}
        if self.user:
            entry = pwd.getpwnam(self.user)
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            cwd=self.root,
            timeout=60,
            check=False,
            **kwargs,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        listen = "127.0.0.1" if self.tcp else "''"
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses={listen}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=300 -c shared_buffers=32MB"
        )
        log = str(self.root / "server.log")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "60", "-o", options, "start"
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        """The `postgres` database, over the socket."""
        return f"postgresql://emulator@/postgres?host={self.root}&port={self.port}"

    def _watch(self) -> subprocess.Popen:
        """A process that stops the server and removes its folder if this process dies
        without doing so (a test run killed by a timeout runs no finalizers)."""
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        script = (
            "import os, shutil, subprocess, sys, time\n"
            "parent = int(sys.argv[1])\n"
            "while os.getppid() == parent:\n"
            "    time.sleep(0.5)\n"
            "subprocess.run(sys.argv[3:], capture_output=True, timeout=60)\n"
            "shutil.rmtree(sys.argv[2], ignore_errors=True)\n"
        )
        return subprocess.Popen(
            [sys.executable, "-c", script, str(os.getpid()), str(self.root), *command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives a signal to this process's whole group
        )

    def close(self) -> None:
        self._watchdog.kill()
        self._watchdog.wait()
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def fresh_schema() -> str:
    """A schema name no other test uses: each emulator in a test gets a database of its own."""
    return f"t_{uuid.uuid4().hex[:12]}"


def with_schema(url: str, schema: str | None = None) -> str:
    """`url` with its tables in `schema` (a fresh one by default): a database of its own."""
    schema = schema or fresh_schema()
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"


# The schemathesis figures, handed from tests/http/test_openapi.py to the terminal summary.
FIGURES = pytest.StashKey[str]()


# -- small export clients with a habit each, for `fullstory-emulator exercise` -------------------

EXERCISE_CLIENT = r'''
"""A small export client; argv[1] names its one bad habit (or "good")."""
import os, sys, time
import httpx

HABIT = sys.argv[1]
API, KEY = os.environ["FULLSTORY_API_URL"], os.environ["FULLSTORY_API_KEY"]
http = httpx.Client(base_url=API, headers={"Authorization": f"Basic {KEY}"}, timeout=10)
TERMINAL = {"COMPLETED", "FAILED", "ERROR"}
if HABIT == "hangs-on-failure":
    TERMINAL = {"COMPLETED"}
elif HABIT == "knows-failed-only":
    TERMINAL = {"COMPLETED", "FAILED"}


class Recreate(Exception):
    pass


def call(method, url, **kw):
    while True:
        r = http.request(method, url, **kw)
        if r.status_code == 429 or r.status_code >= 500:
            if HABIT == "recreates-on-error" and method == "GET":
                raise Recreate()
            wait = 0.1 if HABIT == "ignores-retry-after" else int(r.headers.get("Retry-After", 1))
            time.sleep(wait)
            continue
        r.raise_for_status()
        return r


def create():
    body = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"}
    return call("POST", "/segments/v1/exports", json=body).json()["operationId"]


def wait(op_id):
    while True:
        op = call("GET", f"/operations/v1/{op_id}").json()
        if op["state"] in TERMINAL:
            return op
        time.sleep(0.05 if HABIT == "polls-fast" else 0.5)


def location(export_id):
    url = call("GET", f"/search/v1/exports/{export_id}/results").json()["location"]
    if HABIT == "prints-url":
        print("downloading", url)
    return url


def download(export_id):
    url, got, total = location(export_id), b"", None
    while total is None or len(got) < total:
        resume = got and HABIT != "restarts-download"
        headers = {"Range": f"bytes={len(got)}-"} if resume else {}
        try:
            with httpx.stream("GET", url, headers=headers, timeout=10) as r:
                if r.status_code == 400 and b"ExpiredToken" in r.read():
                    url = location(export_id)
                    continue
                if r.status_code not in (200, 206):
                    if HABIT == "recreates-on-error":
                        raise Recreate()
                    sys.exit(f"download: {r.status_code}")
                if r.status_code == 200:
                    got, total = b"", int(r.headers["Content-Length"])
                for chunk in r.iter_bytes():
                    got += chunk
        except httpx.TransportError:
            if HABIT == "recreates-on-error":
                raise Recreate() from None
            continue
    return got


while True:
    try:
        op = wait(create())
        if op["state"] != "COMPLETED":
            sys.exit(f"export {op['id']} is {op['state']}: {op['errorDetails']}")
        data = download(op["results"]["searchExportId"])
        break
    except Recreate:
        continue
print(f"downloaded {len(data)} bytes")
'''


def exercise_client(folder: Path, habit: str) -> list[str]:
    """The command of a small client with that habit (`good`, `ignores-retry-after`,
    `hangs-on-failure`, `recreates-on-error`, `prints-url`, `knows-failed-only`,
    `restarts-download`, `polls-fast`)."""
    script = folder / "client.py"
    if not script.exists():
        script.write_text(EXERCISE_CLIENT, encoding="utf-8")
    return [sys.executable, str(script), habit]
