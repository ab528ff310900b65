"""API throughput and latency as a client feels them, as ratios to a bare app on the same stack.

The emulator runs as users run it (`python -m fullstory_emulator.cli`), its access log off as
the bare app's is (the ratios are the app's cost alone; the log's cost is a line of its own), in
memory, with --data-dir, and as a replica with --store (PostgreSQL: GET /operations/v1/{id} on
one replica of an export made through another); a bare Starlette app with one JSON route runs on
the same server stack (`fullstory_emulator.server.STACK`, the same socket), and WireMock serves
the emulator's own `GET /segments/v1/everyone` body from a mapping, as a peer mock server.
Each endpoint gets wrk at 1 connection (the latency of one keep-alive client) and at 32
(throughput), a few seconds each. The servers are pinned to CPU 0 and wrk to CPU 1.

The machines are shared and noisy, so all the servers stay up and the runs are interleaved in
rounds (bare app, then each endpoint, then again), and each figure is the median over the
rounds: the ratios to the bare app are measured under the same conditions. Each run also
reports the server's CPU time per request, which moves less than req/s when neighbours take
the CPU, and how much of the server's core other processes took ("others"): the bare app must
keep the server near 100% of its core, or wrk or a neighbour was measured. Also: cold start,
from spawning `fullstory-emulator` to its first 200.

    python bench/api_throughput.py                 # 3 rounds of 3 s runs (about 5 minutes)
    python bench/api_throughput.py --quick         # 1 round of 2 s runs
    python bench/api_throughput.py --markdown      # also the README table
    python bench/api_throughput.py --stacks        # uvicorn (h11 / httptools / uvloop) vs granian
    python bench/api_throughput.py --profile       # cProfile of GET /operations/v1/{id}
    python bench/api_throughput.py --emulator-args="--workers 2"
    python bench/api_throughput.py --wiremock off  # without WireMock (default: if found)

WireMock runs when `java` and its standalone jar are found: `--wiremock PATH`, or the jar the
npm package `wiremock` bundles, `npm install --prefix /tmp/wm-cache wiremock@3.13.2` (looked
for under ./node_modules and $TMPDIR/wm-cache/node_modules). It runs as mock servers are
benchmarked: no request journal, no request logging, pinned to the servers' CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
KEY = "na1.emulator-demo-key"
HOST = "127.0.0.1"
# GET segment alone on fresh in-memory emulators, without and with uvicorn's text access log:
# the "in memory" one also takes the POST runs' tens of thousands of exports, whose objects
# every full garbage collection then walks (its p99), which a server of GETs alone never has.
ALONE = "GET only"
ACCESS_LOGGED = "+ log"
EXPORT_BODY = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"}


def export_body() -> dict:
    """The export the runs create and poll: the last hour, a small file. The API is measured,
    not file making: a large export (the whole 30 days) is made in the background as soon as
    it is created, on the server's core, and would be measured as the neighbours' load."""
    end = int(time.time()) // 3600 * 3600
    stamp = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    return {**EXPORT_BODY, "timeRange": {"start": stamp(end - 3600), "end": stamp(end)}}


WIREMOCK = "WireMock"
SEGMENT = "GET /segments/v1/everyone"
OPERATION = "GET /operations/v1/{id} (pending)"
GOALS = (  # the speed goals: (what, the target's figure / the yardstick's, at least (or at most))
    ("GET segment (alone) req/s / WireMock's", 1.5),
    ("GET segment (alone) req/s / the bare app's", 0.55),
    ("GET segment (alone) p99 / the bare app's (at most)", 2.0),
    ("--data-dir GET operation req/s / the bare app's", 0.3),
)
SERVER_CPU, WRK_CPU = 0, 1
NOISY = 0.10  # share of the server's core taken by other processes that marks a figure noisy
CONNECTIONS = (1, 32)
EMULATOR_FLAGS = ["--mcp-port", "off", "--rate-limit", "off", "--seed", "1"]
# The POST runs create tens of thousands of exports: past the default bound of operations kept
# in memory, the oldest go, among them the ones the GET runs poll (404s from round 2 on).
EMULATOR_FLAGS += ["--operations-max-bytes", str(1 << 34)]
EMULATOR_ENV = {  # the same, for servers that build the app from the environment
    "FULLSTORY_EMULATOR_RATE_LIMIT": "off",
    "FULLSTORY_EMULATOR_SEED": "1",
    "FULLSTORY_EMULATOR_EXPORT_DURATION": "1d",
    "FULLSTORY_EMULATOR_ACCESS_LOG": "off",
}


def bare_app() -> Starlette:
    """The yardstick: Starlette routing and a small JSON body, nothing else."""

    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"id": "everyone", "name": "Everyone"})

    return Starlette(routes=[Route("/", hello)])


def serve_bare(port: int, access_log: bool) -> None:
    """The bare app as `fullstory_emulator.server.make_server` serves the emulator."""
    import uvicorn

    from fullstory_emulator.server import STACK
    from fullstory_emulator.serving import listen

    config = uvicorn.Config(bare_app(), lifespan="off", access_log=access_log, **STACK)
    uvicorn.Server(config).run(sockets=[listen(HOST, port)])


# --- processes -------------------------------------------------------------------------------


class Ports:
    """Fresh ports from a small range, so that no server meets a previous one's TIME_WAIT."""

    def __init__(self, base: int, size: int = 60) -> None:
        self._base, self._size, self._next = base, size, 0

    def take(self) -> int:
        port = self._base + self._next % self._size
        self._next += 1
        return port


def pinned(cpu: int) -> list[str]:
    """A `taskset` prefix, when there are two CPUs to keep the servers and wrk apart."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


def call(port: int, path: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        headers = {"Authorization": f"Basic {KEY}", "Content-Type": "application/json"}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def healthy(port: int, path: str) -> bool:
    try:
        return call(port, path)[0] == 200
    except OSError:
        return False


@contextlib.contextmanager
def running(
    command: Sequence[str], port: int, health: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """A server process pinned to SERVER_CPU, once `health` answers 200; stopped by its pid."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            [*pinned(SERVER_CPU), *command],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,  # the access log: written, as users have it, but not kept
            stderr=errors,
        )
        try:
            deadline = time.monotonic() + 60
            while not healthy(port, health):
                if process.poll() is not None or time.monotonic() > deadline:
                    errors.seek(0)
                    log = errors.read().decode(errors="replace")
                    raise RuntimeError(f"{shlex.join(command)} did not start:\n{log}")
                time.sleep(0.02)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- CPU accounting --------------------------------------------------------------------------


def tree_cpu(pid: int) -> float:
    """CPU seconds used so far by `pid` and its descendants (granian runs a worker child)."""
    stats: dict[int, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            stats[int(stat.parent.name)] = stat.read_text().rsplit(")", 1)[1].split()
    tree, grew = {pid}, True
    while grew:
        more = {child for child, fields in stats.items() if int(fields[1]) in tree} - tree
        tree |= more
        grew = bool(more)
    ticks = sum(int(stats[p][11]) + int(stats[p][12]) for p in tree if p in stats)
    return ticks / os.sysconf("SC_CLK_TCK")  # utime + stime


def core_busy(cpu: int) -> float:
    """Busy seconds of one CPU so far, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            values = [int(v) for v in line.split()[1:]]
            return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")
    return float("nan")


def children_cpu() -> float:
    """CPU seconds of this process's finished children: wrk's, around one run."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_load(seconds: float = 2.0) -> float:
    cpus = range(os.cpu_count() or 1)
    before = sum(core_busy(cpu) for cpu in cpus)
    time.sleep(seconds)
    return (sum(core_busy(cpu) for cpu in cpus) - before) / seconds / len(cpus)


def wait_for_quiet(patience: float) -> None:
    """Wait up to `patience` seconds for 2 s in which the machine is nearly idle, and say how
    busy it was: figures from a busy shared machine mislead."""
    deadline = time.monotonic() + patience
    while (load := machine_load()) >= NOISY and time.monotonic() < deadline:
        pass
    print(f"machine load before the run: {load:.0%} of {os.cpu_count()} CPUs", flush=True)


# --- wrk -------------------------------------------------------------------------------------


def ensure_wrk() -> str | None:
    """wrk, installed with apt-get if missing and possible."""
    if not shutil.which("wrk") and shutil.which("apt-get") and os.geteuid() == 0:
        print("installing wrk with apt-get ...", file=sys.stderr)
        for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
            subprocess.run(step, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return shutil.which("wrk")


@dataclasses.dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # the server's CPU per request: steadier than req/s under neighbours' load
    server_cpu: float  # the server's CPU seconds per second of the run (1.0: a whole core)
    wrk_cpu: float  # the same for wrk
    others_cpu: float  # the rest of the server's core's busy time: other processes
    errors: int

    @classmethod
    def median(cls, runs: Sequence[Result]) -> Result:
        """Each figure's median over the rounds; errors add up."""
        figures = {
            f.name: statistics.median(getattr(run, f.name) for run in runs)
            for f in dataclasses.fields(cls)
        }
        return cls(**{**figures, "errors": sum(run.errors for run in runs)})


def duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        return float("nan")
    return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[match.group(2)]


def wrk(url: str, connections: int, seconds: int, server: int, lua: Path | None) -> Result:
    """One wrk run, one thread on WRK_CPU; `server` is the pid whose CPU use is measured."""
    command = [*pinned(WRK_CPU), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    command += ["-H", f"Authorization: Basic {KEY}", *(["-s", str(lua)] if lua else []), url]
    before = (time.perf_counter(), tree_cpu(server), children_cpu(), core_busy(SERVER_CPU))
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    after = (time.perf_counter(), tree_cpu(server), children_cpu(), core_busy(SERVER_CPU))
    wall, server_s, wrk_s, core_s = (a - b for a, b in zip(after, before, strict=True))
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    done = re.search(r"(\d+) requests in", out)
    requests = int(done.group(1)) if done else 0
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    failures = r"(?:Non-2xx or 3xx responses:|connect|read|write|timeout) (\d+)"
    return Result(
        rps=float(rate.group(1)) if rate else 0.0,
        p50_ms=duration_ms(latency.get("50", "")),
        p99_ms=duration_ms(latency.get("99", "")),
        cpu_us=server_s / requests * 1e6 if requests else float("nan"),
        server_cpu=server_s / wall,
        wrk_cpu=wrk_s / wall,
        others_cpu=max(0.0, core_s - server_s) / wall,
        errors=sum(int(n) for n in re.findall(failures, out)),
    )


def post_script(directory: Path) -> Path:
    path = directory / "post.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{json.dumps(export_body())}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return path


# --- cases and rounds ------------------------------------------------------------------------


@dataclasses.dataclass
class Case:
    """One target, endpoint and concurrency, measured once per round."""

    target: str
    endpoint: str
    connections: int
    url: str
    server: int  # pid
    lua: Path | None = None
    runs: list[Result] = dataclasses.field(default_factory=list)
    bare: Case | None = None  # the bare app at the same concurrency, on the same stack

    @property
    def result(self) -> Result:
        return Result.median(self.runs)

    @property
    def ratio(self) -> float:
        return self.result.rps / self.bare.result.rps if self.bare else 1.0


def rounds(cases: list[Case], count: int, seconds: int, width: int = 11) -> None:
    """Each case once per round, after one unmeasured warm-up each."""
    for case in cases:
        wrk(case.url, case.connections, 1, case.server, case.lua)
    for n in range(count):
        for case in cases:
            case.runs.append(wrk(case.url, case.connections, seconds, case.server, case.lua))
            report(case, case.runs[-1], f"[{n + 1}/{count}]", width)


def report(case: Case, r: Result, prefix: str = "", width: int = 11) -> None:
    flag = f"  {r.errors} errors!" if r.errors else ""
    ratio = f"x{r.rps / case.bare.result.rps:.2f} bare  " if case.bare and case.bare.runs else ""
    print(
        f"{prefix:<6}{case.target:<{width}} {case.endpoint:<36} c={case.connections:<3} "
        f"{r.rps:>7,.0f} req/s  p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms  "
        f"{r.cpu_us:5.0f} µs CPU/req  {ratio}CPU: server {r.server_cpu:4.0%} "
        f"wrk {r.wrk_cpu:4.0%} others {r.others_cpu:4.0%}{flag}",
        flush=True,
    )


def markdown(cases: list[Case]) -> str:
    lines = [
        "| server | endpoint | conns | req/s | p50 ms | p99 ms | CPU µs/req | × bare app |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        r = case.result
        noisy = " (noisy)" if r.others_cpu > NOISY else ""
        lines.append(
            f"| {case.target} | `{case.endpoint}` | {case.connections} | {r.rps:,.0f}{noisy} "
            f"| {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.cpu_us:.0f} | {case.ratio:.2f} |"
        )
    return "\n".join(lines)


# --- the emulator ----------------------------------------------------------------------------


def endpoints(port: int) -> list[tuple[str, str, bool]]:
    """(label, path, POST?) after making a pending and a completed export to read back.

    The emulator runs with --export-duration 1d, so an export stays PENDING until the control
    API completes it.
    """
    ids = []
    for _ in range(2):
        status, body = call(
            port, "/segments/v1/exports", "POST", json.dumps(export_body()).encode()
        )
        assert status == 200, body
        ids.append(json.loads(body)["operationId"])
    pending, done = ids
    status, body = call(port, f"/__emulator/operations/{done}/complete", "POST", b"{}")
    assert status == 200, body
    search_id = json.loads(call(port, f"/operations/v1/{done}")[1])["results"]["searchExportId"]
    return [
        (SEGMENT, "/segments/v1/everyone", False),
        (OPERATION, f"/operations/v1/{pending}", False),
        ("GET /search/v1/exports/{id}/results", f"/search/v1/exports/{search_id}/results", False),
        ("POST /segments/v1/exports", "/segments/v1/exports", True),
    ]


def measure(args: argparse.Namespace, ports: Ports, work: Path) -> list[Case]:
    """The bare app and the emulator in memory, with --data-dir and as replicas with --store
    (PostgreSQL), all up at once."""
    lua = post_script(work)
    extra = shlex.split(args.emulator_args)
    cases: list[Case] = []
    with contextlib.ExitStack() as stack:
        port = ports.take()
        command = [sys.executable, __file__, "--serve-bare", str(port), "--no-access-log"]
        server = stack.enter_context(running(command, port, "/"))
        bare = {
            c: Case("bare app", "GET /", c, f"http://{HOST}:{port}/", server.pid)
            for c in CONNECTIONS
        }
        cases += bare.values()
        for target, flags, count in (
            ("in memory", [], None),
            ("--data-dir", ["--data-dir", str(work / "data")], None),
            (ALONE, [], 1),  # GET segment alone: the speed goals
            (ACCESS_LOGGED, ["--access-log", "text"], 1),  # GET segment: what the log costs
        ):
            port = ports.take()
            command = [
                sys.executable,
                "-m",
                "fullstory_emulator.cli",
                "--port",
                str(port),
                *EMULATOR_FLAGS,
            ]
            command += ["--export-duration", "1d", "--access-log", "off", *flags, *extra]
            server = stack.enter_context(running(command, port, "/__emulator/health"))
            if target == "in memory":
                segment = call(port, "/segments/v1/everyone")[1]
            for label, path, post in endpoints(port)[:count]:
                url, script = f"http://{HOST}:{port}{path}", lua if post else None
                cases += [
                    Case(target, label, c, url, server.pid, script, bare=bare[c])
                    for c in CONNECTIONS
                ]
        jar = wiremock_jar(args.wiremock)
        if jar:
            cases += wiremock_cases(jar, segment, ports, stack, work, bare)
        store = stack.enter_context(postgres_store(args.postgres))
        if store:
            cases += replica_cases(store, ports, stack, [*extra], bare)
        rounds(cases, args.rounds, args.seconds)
    return cases


def wiremock_jar(choice: str) -> Path | None:
    """WireMock's standalone jar (None, and a note, without it or java): `choice` is a path,
    "off", or "auto" (the jar npm's `wiremock` package bundles, where the docs install it)."""
    if choice == "off":
        return None
    if not shutil.which("java"):
        print("java is not installed: no WireMock figures")
        return None
    if choice != "auto":
        return Path(choice)
    for modules in (ROOT / "node_modules", Path(tempfile.gettempdir()) / "wm-cache/node_modules"):
        for jar in sorted(modules.glob("wiremock/build/wiremock-standalone-*.jar")):
            return jar
    print(
        "no WireMock jar: no WireMock figures "
        "(npm install --prefix /tmp/wm-cache wiremock@3.13.2, or --wiremock PATH)"
    )
    return None


def wiremock_cases(
    jar: Path, body: bytes, ports: Ports, stack: contextlib.ExitStack, work: Path, bare: dict
) -> list[Case]:
    """WireMock answering GET /segments/v1/everyone with the emulator's own bytes (a "body"
    string keeps them exact; jsonBody would serialize again), warmed up for its JIT."""
    root = work / "wiremock"
    (root / "mappings").mkdir(parents=True)
    mapping = {
        "request": {"method": "GET", "url": "/segments/v1/everyone"},
        "response": {
            "status": 200,
            "headers": {"Content-Type": "application/json"},
            "body": body.decode(),
        },
    }
    (root / "mappings" / "segment.json").write_text(json.dumps(mapping))
    port = ports.take()
    command = ["java", "-jar", str(jar), "--port", str(port), "--bind-address", HOST]
    command += ["--root-dir", str(root), "--no-request-journal", "--disable-request-logging"]
    command += ["--disable-banner"]
    server = stack.enter_context(running(command, port, "/segments/v1/everyone"))
    url = f"http://{HOST}:{port}/segments/v1/everyone"
    wrk(url, max(CONNECTIONS), 5, server.pid, None)  # the JIT compiles the hot path
    return [Case(WIREMOCK, SEGMENT, c, url, server.pid, bare=bare[c]) for c in CONNECTIONS]


@contextlib.contextmanager
def postgres_store(url: str | None) -> Iterator[str | None]:
    """A PostgreSQL URL for the replica figures: --postgres, or a throwaway server started
    from the installed binaries as the test suite starts it (None, and a note, without one)."""
    if url:
        yield url
        return
    sys.path.insert(0, str(ROOT))
    from tests.helpers import PostgresServer, postgres_bin, with_schema

    bindir = postgres_bin()
    if bindir is None:
        print("PostgreSQL is not installed: no replica figures (or pass --postgres URL)")
        yield None
        return
    server = PostgresServer(bindir)
    try:
        yield with_schema(server.url, "bench")
    finally:
        server.close()


def replica_cases(
    store: str, ports: Ports, stack: contextlib.ExitStack, extra: list[str], bare: dict
) -> list[Case]:
    """GET /operations/v1/{id} on one replica with --store, of an export created through
    another replica of the same database: what each replica of a shared service serves."""
    replicas = []
    for _ in range(2):
        port = ports.take()
        command = [
            sys.executable,
            "-m",
            "fullstory_emulator.cli",
            "--port",
            str(port),
            *EMULATOR_FLAGS,
        ]
        command += ["--export-duration", "1d", "--store", store, *extra]
        replicas.append((port, stack.enter_context(running(command, port, "/__emulator/health"))))
    (first, _), (port, server) = replicas
    label, path, _ = endpoints(first)[1]  # the pending operation, created through the first
    url = f"http://{HOST}:{port}{path}"
    return [Case("PG replica", label, c, url, server.pid, bare=bare[c]) for c in CONNECTIONS]


def access_log_cost(cases: list[Case]) -> None:
    """The text access log's own line: the same endpoint with and without it."""
    for logged in (c for c in cases if c.target == ACCESS_LOGGED):
        plain = next(
            c
            for c in cases
            if c.target == ALONE
            and c.endpoint == logged.endpoint
            and c.connections == logged.connections
        )
        with_log, without = logged.result, plain.result
        print(
            f"access log (text) on {logged.endpoint} c={logged.connections}: "
            f"{with_log.cpu_us - without.cpu_us:+.0f} µs CPU/req, "
            f"x{with_log.rps / without.rps:.2f} the req/s without it"
        )


def goals(cases: list[Case]) -> list[tuple[str, float, float]]:
    """The speed goals at full concurrency: (what, the figure, the goal), for what was run."""
    at = {(c.target, c.endpoint): c.result for c in cases if c.connections == max(CONNECTIONS)}
    bare, segment = at.get(("bare app", "GET /")), at.get((ALONE, SEGMENT))
    wiremock, operation = at.get((WIREMOCK, SEGMENT)), at.get(("--data-dir", OPERATION))
    figures = [
        segment.rps / wiremock.rps if segment and wiremock else None,
        segment.rps / bare.rps if segment and bare else None,
        segment.p99_ms / bare.p99_ms if segment and bare else None,
        operation.rps / bare.rps if operation and bare else None,
    ]
    return [
        (what, figure, goal)
        for (what, goal), figure in zip(GOALS, figures, strict=True)
        if figure is not None
    ]


def report_goals(cases: list[Case]) -> None:
    for what, figure, goal in goals(cases):
        at_most = "(at most)" in what
        met = figure <= goal if at_most else figure >= goal
        verdict = "met" if met else f"missed by {abs(figure / goal - 1):.0%}"
        print(f"goal: {what} = {figure:.2f} (goal {goal}): {verdict}", flush=True)


def saturation_check(cases: list[Case]) -> None:
    """The bare app at full concurrency must keep the server's core busy, not wrk's."""
    r = next(
        c for c in cases if c.target == "bare app" and c.connections == max(CONNECTIONS)
    ).result
    verdict = (
        "the server is what is measured"
        if r.server_cpu >= 0.9 and r.wrk_cpu < 0.9
        else "WARNING: wrk or other processes, not the server, were the limit"
    )
    print(
        f"bare app at c={max(CONNECTIONS)}: server {r.server_cpu:.0%} of a core, wrk "
        f"{r.wrk_cpu:.0%} of its own, other processes {r.others_cpu:.0%} of the server's: "
        f"{verdict}",
        flush=True,
    )


def cold_start(ports: Ports, runs: int, extra: Sequence[str] = ()) -> float:
    """Median seconds from spawning `fullstory-emulator` to its first 200 from health."""
    script = Path(sys.executable).with_name("fullstory-emulator")
    times = []
    for _ in range(runs):
        port = ports.take()
        began = time.perf_counter()
        process = subprocess.Popen(
            [str(script), "--port", str(port), "--mcp-port", "off", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while not healthy(port, "/__emulator/health"):
                if process.poll() is not None or time.perf_counter() - began > 60:
                    raise RuntimeError("fullstory-emulator did not start")
                time.sleep(0.005)
            times.append(time.perf_counter() - began)
        finally:
            process.terminate()
            process.wait(timeout=10)
    return statistics.median(times)


# --- server stacks ---------------------------------------------------------------------------

STACKS = {  # the arguments of `python -m ...` before the app
    "uvicorn h11": "uvicorn --loop asyncio --http h11",
    "uvicorn httptools": "uvicorn --loop asyncio --http httptools",
    "uvicorn uvloop+httptools": "uvicorn --loop uvloop --http httptools",
    "granian": "granian --interface asgi --workers 1 --no-ws",
}
UVICORN_QUIET = ["--lifespan", "off", "--no-access-log", "--log-level", "warning"]


def compare_stacks(args: argparse.Namespace, ports: Ports) -> list[Case]:
    """The bare app and the in-memory emulator (access logs off) under each stack that starts,
    all up at once and measured in interleaved rounds."""
    cases: list[Case] = []
    with contextlib.ExitStack() as stack:
        for name, words in STACKS.items():
            prefix = shlex.split(words)
            uvicorn = prefix[0] == "uvicorn"
            common = [*(UVICORN_QUIET if uvicorn else ["--log-level", "warning"]), "--factory"]
            where = ["--app-dir" if uvicorn else "--working-dir", "bench"]
            try:
                port = ports.take()
                command = [sys.executable, "-m", *prefix, *common, *where, "--port", str(port)]
                server = stack.enter_context(
                    running([*command, "api_throughput:bare_app"], port, "/")
                )
                url = f"http://{HOST}:{port}/"
                bare = {c: Case(f"{name}: bare", "GET /", c, url, server.pid) for c in CONNECTIONS}
                port = ports.take()
                command = [sys.executable, "-m", *prefix, *common, "--port", str(port)]
                server = stack.enter_context(
                    running(
                        [*command, "fullstory_emulator.http.app:app_from_environment"],
                        port,
                        "/__emulator/health",
                        {**EMULATOR_ENV, "FULLSTORY_EMULATOR_PORT": str(port)},
                    )
                )
            except RuntimeError as exc:
                print(f"{name}: skipped ({str(exc).splitlines()[0]})", flush=True)
                continue
            cases += bare.values()
            for label, path, _ in endpoints(port)[:2]:
                url = f"http://{HOST}:{port}{path}"
                target = f"{name}: emulator"
                cases += [
                    Case(target, label, c, url, server.pid, bare=bare[c]) for c in CONNECTIONS
                ]
        rounds(cases, args.rounds, args.seconds, width=34)
    return cases


# --- profile ---------------------------------------------------------------------------------


def profile(requests: int, top: int) -> None:
    """cProfile of the in-memory app answering GET /operations/v1/{id} (pending), called as
    ASGI directly, so that neither a server nor a client is in the figures: the app's own cost.
    CPU time, not wall time: the machines are shared."""
    import asyncio
    import cProfile
    import pstats

    from fullstory_emulator.http.app import create_app
    from fullstory_emulator.settings import Settings

    app = create_app(Settings(rate_limit=None, seed=1, export_duration=86_400, mcp_port=None))

    async def asgi(method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "server": (HOST, 8080),
            "client": (HOST, 50000),
            "headers": [
                (b"host", b"127.0.0.1:8080"), (b"authorization", f"Basic {KEY}".encode()),
                (b"content-type", b"application/json"),
            ],
        }  # fmt: skip
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    async def run() -> None:
        status, body = await asgi(
            "POST", "/segments/v1/exports", json.dumps(export_body()).encode()
        )
        assert status == 200, body
        path = f"/operations/v1/{json.loads(body)['operationId']}"
        for _ in range(200):  # warm up
            await asgi("GET", path)
        began = time.process_time()
        for _ in range(requests):
            await asgi("GET", path)
        plain = (time.process_time() - began) / requests
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(requests):
            await asgi("GET", path)
        profiler.disable()
        print(f"GET {path} in memory, as ASGI: {plain * 1e6:.0f} µs of CPU per request")
        for key in ("cumulative", "tottime"):
            print(f"--- top {top} by {key} ({requests} requests, profiled) ---")
            pstats.Stats(profiler).sort_stats(key).print_stats(top)

    asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of 2 s runs")
    parser.add_argument("--rounds", type=int, help="rounds of runs (default 3, quick 1)")
    parser.add_argument("--markdown", action="store_true", help="print the README table too")
    parser.add_argument("--stacks", action="store_true", help="compare server stacks instead")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process app")
    parser.add_argument("--base-port", type=int, default=18140, help="ports used: 60 from here")
    parser.add_argument(
        "--emulator-args", default="", help="more fullstory-emulator flags, one string"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("FULLSTORY_EMULATOR_BENCH_POSTGRES"),
        metavar="URL",
        help="PostgreSQL for the replica figures (default: a throwaway server, if installed)",
    )
    parser.add_argument(
        "--wiremock",
        default="auto",
        metavar="JAR",
        help="WireMock's standalone jar, or off (default: npm's bundled jar, if found)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="S",
        help="wait up to S s for an idle machine",
    )
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--no-access-log", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare, access_log=not args.no_access_log)
        return
    if args.profile:
        profile(requests=5_000, top=25)
        return
    if not ensure_wrk():
        print("wrk is not installed and apt-get could not install it: skipping", file=sys.stderr)
        return
    if not pinned(SERVER_CPU):
        print("no taskset or a single CPU: the servers and wrk share CPUs (figures are low)")
    args.seconds = 2 if args.quick else 3
    args.rounds = args.rounds or (1 if args.quick else 3)
    ports = Ports(args.base_port)
    wait_for_quiet(args.wait_quiet)
    with tempfile.TemporaryDirectory(prefix="api-throughput-") as work:
        cases = compare_stacks(args, ports) if args.stacks else measure(args, ports, Path(work))
    print(f"\nmedians over {args.rounds} round(s):")
    for case in cases:
        report(case, case.result, width=34 if args.stacks else 11)
    if not args.stacks:
        report_goals(cases)
        access_log_cost(cases)
        saturation_check(cases)
        runs = 3
        started = cold_start(ports, runs, shlex.split(args.emulator_args))
        print(f"cold start (spawn to first 200, median of {runs}): {started * 1000:.0f} ms")
    if args.markdown:
        print()
        print(markdown(cases))


if __name__ == "__main__":
    main()
