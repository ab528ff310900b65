"""Many replicas as one emulator: three processes on three ports sharing one PostgreSQL database
(a schema of their own), as behind a load balancer. A client alternating between them runs the
whole workflow; the rate-limit burst, the clock, lifecycle rules, faults with `times` and
`reset` agree across them; a replica killed mid-burst loses no acknowledged operation."""

from __future__ import annotations

import gzip
import itertools
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port, start, with_schema

BODY = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_CSV"}
START = "2026-03-01T12:00:00Z"


class Replicas:
    """Three emulator processes on one database; `api()` clients go round them in turn."""

    def __init__(self, tmp_path: Path, url: str, *extra: str) -> None:
        ports = [free_port() for _ in range(3)]
        # The third replica's address stands for the load balancer's in download URLs.
        self.public = f"http://127.0.0.1:{ports[2]}"
        common = (
            "--store", url, "--freeze-clock", "--start-time", START, "--population", "40",
            "--export-duration", "10", "--export-duration-per-million", "0",
            "--public-url", self.public, *extra,
        )  # fmt: skip

        self.tmp_path, self.ports, self.args = tmp_path, ports, common
        with ThreadPoolExecutor(3) as pool:  # started together: the schema is made once
            started = list(pool.map(self._launch, range(3)))
        self.processes = [p for p, _, _ in started]
        self.bases = [b for _, b, _ in started]

    def _launch(self, n: int) -> tuple[subprocess.Popen, str, Path]:
        folder = self.tmp_path / f"replica{n}-{len(list(self.tmp_path.glob(f'replica{n}-*')))}"
        folder.mkdir()
        local = f"http://127.0.0.1:{self.ports[n]}"
        return start(folder, *self.args, "--port", str(self.ports[n]), base=local)

    def restart(self, n: int) -> None:
        self.processes[n], self.bases[n], _ = self._launch(n)

    def client(self, n: int, key: str) -> httpx.Client:
        """A client of replica `n` with the API key `key` (each test its own tenant)."""
        auth = {"Authorization": f"Basic na1.{key}"}
        return httpx.Client(base_url=self.bases[n], headers=auth, timeout=10)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


class RoundRobin:
    """A client that sends each request to the next replica."""

    def __init__(self, replicas: Replicas, key: str) -> None:
        self.clients = [replicas.client(n, key) for n in range(3)]
        self._next = itertools.cycle(self.clients)
        self.workers: set[str] = set()

    def __call__(self, method: str, path: str, **kwargs) -> httpx.Response:
        response = next(self._next).request(method, path, **kwargs)
        self.workers.add(response.headers["x-emulator-worker"])
        return response


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Replicas]:
    """One group for the module: each test is a tenant of its own (its clock a view of the
    instance clock, its rules, buckets and reset its own)."""
    group = Replicas(tmp_path_factory.mktemp("replicas"), with_schema(postgres_url))
    yield group
    group.stop()


def test_a_client_alternating_between_replicas_runs_the_whole_workflow(replicas):
    call = RoundRobin(replicas, "workflow")
    created = call("POST", "/segments/v1/exports", json=BODY)  # replica 0
    assert created.status_code == 200, created.text
    op = created.json()["operationId"]
    assert call("GET", f"/operations/v1/{op}").json()["state"] == "PENDING"  # 1
    moved = call("POST", "/__emulator/clock", json={"advance": 11})  # 2
    assert moved.json() == {"now": "2026-03-01T12:00:11.000000Z", "frozen": True}
    done = call("GET", f"/operations/v1/{op}").json()  # 0: the clock moved for every replica
    assert done["state"] == "COMPLETED", done
    export_id = done["results"]["searchExportId"]
    location = call("GET", f"/search/v1/exports/{export_id}/results").json()["location"]  # 1
    assert location.startswith(replicas.public + "/")  # minted by replica 1 for the balancer
    path = location.removeprefix(replicas.public)
    files = [httpx.get(base + path, timeout=10) for base in replicas.bases]  # same secret
    assert [f.status_code for f in files] == [200, 200, 200]
    assert files[0].content == files[1].content == files[2].content
    rows = gzip.decompress(files[0].content).decode().splitlines()
    assert len(rows) > 1 and "EventStart" in rows[0]
    listed = call("GET", "/operations/v1").json()["operations"]  # 2
    assert [o["id"] for o in listed] == [op]
    assert {c.get("/__emulator/clock").json()["now"] for c in call.clients} == {
        "2026-03-01T12:00:11.000000Z"
    }
    assert len(call.workers) == 3  # three processes answered


def test_lifecycle_rules_faults_and_reset_agree_across_replicas(replicas):
    call = RoundRobin(replicas, "agreement")
    rule = {"path": "/segments/v1", "status": 503, "times": 2}
    assert call("POST", "/__emulator/faults", json=rule).status_code == 200  # 0
    codes = [call("GET", "/segments/v1").status_code for _ in range(4)]  # 1, 2, 0, 1
    assert codes == [503, 503, 200, 200]  # twice in all, not twice per replica

    failing = {"fail": "disk full", "times": 1}
    assert call("POST", "/__emulator/lifecycle", json=failing).status_code == 200  # 2
    first = call("POST", "/segments/v1/exports", json=BODY).json()["operationId"]  # 0
    second = call("POST", "/segments/v1/exports", json=BODY).json()["operationId"]  # 1
    call("POST", "/__emulator/clock", json={"advance": 11})  # 2
    assert call("GET", f"/operations/v1/{first}").json()["state"] == "ERROR"  # 0
    assert call("GET", f"/operations/v1/{second}").json()["state"] == "COMPLETED"  # 1

    assert call("POST", "/__emulator/reset").status_code == 200  # 2
    assert call("GET", f"/operations/v1/{first}").status_code == 404  # 0
    assert call("GET", "/__emulator/clock").json()["now"] == "2026-03-01T12:00:00.000000Z"  # 1


def test_a_60_request_burst_across_replicas_gets_exactly_50_then_429s(replicas):
    """The default limit (2/60 s, burst 50) with a frozen clock: no token comes back, and
    concurrent requests on three replicas never spend one token twice."""
    clients = [replicas.client(n, "burst") for n in range(3)]

    def burst(n: int) -> list[int]:
        return [clients[n].get("/segments/v1").status_code for _ in range(20)]

    with ThreadPoolExecutor(3) as pool:
        codes = [code for part in pool.map(burst, range(3)) for code in part]
    assert Counter(codes) == {200: 50, 429: 10}
    after = [c.get("/segments/v1") for c in clients]
    assert [r.status_code for r in after] == [429, 429, 429]
    assert all(int(r.headers["retry-after"]) == 30 for r in after)  # 1 token at 2/60 s


def test_a_replica_killed_mid_burst_loses_no_acknowledged_operation(replicas):
    control = replicas.client(0, "survivors")
    assert control.post("/__emulator/ratelimit", json={"limit": "off"}).status_code == 200
    acknowledged: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    go = threading.Event()

    def creations(n: int) -> None:
        with replicas.client(n, "survivors") as client:
            go.wait()
            for _ in range(25):
                try:
                    response = client.post("/segments/v1/exports", json=BODY)
                except httpx.HTTPError as exc:
                    if n != 2:  # only the killed replica may fail
                        failures.append(repr(exc))
                    return
                with lock:
                    if response.status_code == 200:
                        acknowledged.append(response.json()["operationId"])
                    else:
                        failures.append(response.text)

    threads = [threading.Thread(target=creations, args=(n % 3,)) for n in range(6)]
    for thread in threads:
        thread.start()
    go.set()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 30:  # kill replica 2 in the middle of the burst
        assert time.monotonic() < deadline and not failures, failures[:3]
        time.sleep(0.005)
    replicas.processes[2].send_signal(signal.SIGKILL)
    replicas.processes[2].wait(timeout=10)
    for thread in threads:
        thread.join(timeout=120)
    assert failures == [] and not any(t.is_alive() for t in threads)

    survivors = [replicas.client(0, "survivors"), replicas.client(1, "survivors")]
    for n, op in enumerate(acknowledged):
        response = survivors[n % 2].get(f"/operations/v1/{op}")
        assert response.status_code == 200, (op, response.text)
        assert response.json()["id"] == op
    listed = _all_operations(survivors[0])
    assert set(acknowledged) <= listed
    replicas.restart(2)  # and a replica that comes back sees them too
    assert _all_operations(replicas.client(2, "survivors")) == listed
    assert len(acknowledged) > 4 * 25  # every survivor thread's, and some of the killed one's


def _all_operations(api: httpx.Client) -> set[str]:
    out: list[str] = []
    token = None
    while True:
        params = {"paginationToken": token} if token else {}
        page = api.get("/operations/v1", params=params).json()
        out += [op["id"] for op in page["operations"]]
        token = page.get("nextPaginationToken")
        if not token:
            assert len(out) == len(set(out))
            return set(out)
