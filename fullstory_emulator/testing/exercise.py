"""`fullstory-emulator exercise`: does a client survive FullStory's failure modes?

A mock server can tell that requests were made; this judge tells whether a client waits out a
429, gives up on a failed export, fetches a fresh URL when its URL expired, resumes a cut
download. It starts a private emulator, gives the client a fresh tenant (API key) per scenario
with that scenario's control rules (faults, lifecycle, failure state: all per tenant, so
scenarios run side by side and never disturb each other), runs the client, and judges from the
tenant's journal (the emulator's clock, each answer's Retry-After, bytes sent) and from what
the client printed. The client's exit code counts: 0 says it got the file.

Exit codes: 0 every scenario passed, 1 some did not, 2 a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, cast
from urllib.parse import parse_qsl, quote
from xml.etree import ElementTree

import httpx

from ..client.conformance import EXPORTS, OPERATION_ROUTE
from ..contract import COMPLETED, FAILURE_STATES
from ..instance import Emulator
from ..server import ServerThread
from ..settings import Settings
from ..timestamps import parse_rfc3339

PROG = "fullstory-emulator exercise"
EXIT_PASSED, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
COMPLETED_OUTCOME, GAVE_UP, HUNG, INCOMPLETE = "completed", "gave-up", "hung", "incomplete"
FAIL, WARN = "fail", "warn"
RETRY_AFTER = 1  # seconds the scenarios' 429s ask for: long enough to tell, short enough to run
POLL_FLOOR = 0.25  # seconds: a client polling one export faster than this (median) is warned
EXTRA_POLLS = 2  # polls of a failed export after its failure that count as "kept polling"
CLOCK_SLACK = 0.01  # seconds: the journal's clock readings start before the answer is sent
FAILURE_DETAILS = "export failed (fullstory-emulator exercise)"
DEFAULT_TIMEOUT = 30.0
OUTPUT_LIMIT = 4 << 20  # bytes of a client's stdout and stderr kept for the judge
_OPERATION = re.compile(r"^/operations/v1/([^/]+)$")
_SIGNATURE_PARAM = re.compile(r"X-Goog-Signature=([0-9A-Za-z%]{16,})", re.IGNORECASE)
_TEMPLATE = OPERATION_ROUTE.replace("{id}", "*")


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    expected: str  # the right outcome
    rules: Mapping[str, Any]  # control calls: faults, lifecycle, config
    fix: str  # what to fix when the outcome is wrong


def _scenarios(bucket: str) -> dict[str, Scenario]:
    download = f"/{bucket}/*"
    quick = {"finishAfterPolls": 2}
    failed = {"finishAfterPolls": 1, "fail": FAILURE_DETAILS}
    items = [
        Scenario(
            "happy",
            "an export that completes after a few polls",
            COMPLETED_OUTCOME,
            {"lifecycle": [quick]},
            "the plain workflow fails: create, poll until COMPLETED, read "
            "/search/v1/exports/{id}/results, download the location",
        ),
        Scenario(
            "rate-limited",
            f"429 with Retry-After: {RETRY_AFTER} on the create and on the first poll",
            COMPLETED_OUTCOME,
            {
                "lifecycle": [quick],
                "faults": [
                    {
                        "method": "POST",
                        "path": EXPORTS,
                        "status": 429,
                        "retryAfter": RETRY_AFTER,
                        "times": 1,
                    },
                    {
                        "method": "GET",
                        "path": _TEMPLATE,
                        "status": 429,
                        "retryAfter": RETRY_AFTER,
                        "times": 1,
                    },
                ],
            },
            "on a 429, wait the Retry-After seconds and send the same request again",
        ),
        Scenario(
            "failed",
            "the export fails; the tenant's failure state is FAILED",
            GAVE_UP,
            {"lifecycle": [failed], "config": {"failureState": "FAILED"}},
            "treat FAILED (and ERROR) as final: stop polling and exit non-zero",
        ),
        Scenario(
            "error",
            "the export fails; the failure state is ERROR (the emulator's default)",
            GAVE_UP,
            {"lifecycle": [failed], "config": {"failureState": "ERROR"}},
            "treat ERROR (and FAILED) as final: stop polling and exit non-zero",
        ),
        Scenario(
            "expired-url",
            "the first signed URL has expired when it is used (400 ExpiredToken)",
            COMPLETED_OUTCOME,
            {
                "lifecycle": [quick],
                "faults": [{"method": "GET", "path": download, "expired": True, "times": 1}],
            },
            "on 400 ExpiredToken, read /search/v1/exports/{id}/results again for a fresh URL",
        ),
        Scenario(
            "truncated",
            "the first download is cut at half (connection dropped)",
            COMPLETED_OUTCOME,
            {
                "lifecycle": [quick],
                "faults": [
                    {"method": "GET", "path": download, "truncateAfterFraction": 0.5, "times": 1}
                ],
            },
            "check the bytes against Content-Length and download again (Range: bytes=N-)",
        ),
        Scenario(
            "server-error",
            "a transient 503 on a poll",
            COMPLETED_OUTCOME,
            {
                "lifecycle": [quick],
                "faults": [{"method": "GET", "path": _TEMPLATE, "status": 503, "times": 1}],
            },
            "retry a 5xx on a poll (with a backoff) and keep polling the same export",
        ),
        Scenario(
            "slow",
            "an export that takes eight polls, its progress rising",
            COMPLETED_OUTCOME,
            {"lifecycle": [{"pctSequence": [5, 15, 30, 45, 60, 75, 90]}]},
            "keep polling while the state is PENDING: no fixed cap on polls",
        ),
    ]
    return {s.name: s for s in items}


SCENARIOS = tuple(_scenarios("bucket"))  # the names, in their order
FINDING_FIXES = {
    "retry-after-ignored": "wait the answer's Retry-After seconds before the next request to it",
    "failure-unrecognised": "stop polling an export whose state is FAILED or ERROR",
    "signed-url-leaked": "never print a signed URL whole: its X-Goog-Signature is a credential",
    "duplicate-export": "retry the poll or download of the export you have; don't create another",
    "no-resume": "resume a cut download with Range: bytes=<bytes received>-",
    "poll-too-fast": f"wait at least {POLL_FLOOR:g} s between polls (seconds is kinder)",
}


@dataclass(frozen=True)
class Finding:
    name: str
    severity: str  # fail or warn
    detail: str

    @property
    def fix(self) -> str:
        return FINDING_FIXES[self.name]


@dataclass
class ScenarioResult:
    name: str
    expected: str
    outcome: str
    seconds: float
    exit_code: int | None
    findings: list[Finding] = field(default_factory=list)
    fix: str = ""  # the scenario's own advice, for a wrong outcome
    note: str = ""  # how the outcome was decided

    @property
    def passed(self) -> bool:
        return self.outcome == self.expected and not any(f.severity == FAIL for f in self.findings)

    def what_to_fix(self) -> str:
        if self.outcome != self.expected:
            return self.fix
        first = next((f for f in self.findings if f.severity == FAIL), None)
        first = first or next(iter(self.findings), None)
        return first.fix if first else ""

    def json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "outcome": self.outcome,
            "seconds": round(self.seconds, 2),
            "findings": [f.name for f in self.findings],
            "details": {
                "expected": self.expected,
                "exitCode": self.exit_code,
                "outcome": self.note,
                "findings": [
                    {"name": f.name, "severity": f.severity, "detail": f.detail, "fix": f.fix}
                    for f in self.findings
                ],
                "fix": self.what_to_fix(),
            },
        }


@dataclass
class Report:
    scenarios: list[ScenarioResult]

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.scenarios)

    def __getitem__(self, name: str) -> ScenarioResult:
        return next(s for s in self.scenarios if s.name == name)

    def json(self) -> dict[str, Any]:
        return {"passed": self.passed, "scenarios": [s.json() for s in self.scenarios]}

    def table(self) -> str:
        rows = [("scenario", "outcome", "seconds", "findings", "what to fix")]
        for s in self.scenarios:
            outcome = s.outcome if s.outcome == s.expected else f"{s.outcome} (want {s.expected})"
            marks = ", ".join(f"{f.name} ({f.severity})" for f in s.findings) or "-"
            verdict = "PASS" if s.passed else "FAIL"
            rows.append(
                (f"{verdict} {s.name}", outcome, f"{s.seconds:.1f}", marks, s.what_to_fix())
            )
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4]
            for r in rows
        ]
        passed = sum(s.passed for s in self.scenarios)
        lines.append(f"{passed} of {len(self.scenarios)} scenarios passed")
        return "\n".join(line.rstrip() for line in lines)

    def junit(self) -> str:
        suite = ElementTree.Element(
            "testsuite",
            name="fullstory-emulator exercise",
            tests=str(len(self.scenarios)),
            failures=str(sum(not s.passed for s in self.scenarios)),
            time=f"{sum(s.seconds for s in self.scenarios):.2f}",
        )
        for s in self.scenarios:
            case = ElementTree.SubElement(
                suite,
                "testcase",
                classname="fullstory-emulator.exercise",
                name=s.name,
                time=f"{s.seconds:.2f}",
            )
            lines = [f"outcome {s.outcome} (want {s.expected}): {s.note}"]
            lines += [f"{f.severity} {f.name}: {f.detail}" for f in s.findings]
            if not s.passed:
                failure = ElementTree.SubElement(case, "failure", message=s.what_to_fix())
                failure.text = "\n".join(lines)
            ElementTree.SubElement(case, "system-out").text = "\n".join(lines)
        return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True)


# -- running a client ------------------------------------------------------------------------------

Target = Sequence[str] | Callable[[str, str], "int | None"]


@dataclass
class Run:
    exit_code: int | None  # None: stopped at the timeout
    output: str
    seconds: float


def _run_command(
    command: Sequence[str], url: str, key: str, timeout: float, scenario: str = ""
) -> Run:
    """`{url}`, `{key}` and `{scenario}` in the arguments replaced (`{scenario}` names a file
    of the scenario's own, since scenarios run side by side)."""
    args = [
        a.replace("{url}", url).replace("{key}", key).replace("{scenario}", scenario)
        for a in command
    ]
    env = {**os.environ, "FULLSTORY_API_URL": url, "FULLSTORY_API_KEY": key}
    began = time.monotonic()
    with _Capture() as out:
        try:
            process = subprocess.Popen(
                args,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out.file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:  # no such command, not executable: the shell's 127
            return Run(127, f"{PROG}: cannot run {args[0]!r}: {exc.strerror}", 0.0)
        try:
            code: int | None = process.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
            _stop(process)
        seconds = time.monotonic() - began
        return Run(code, out.read(), seconds)


class _Capture:
    """A temporary file the client writes its output into (a pipe could fill and block it)."""

    def __enter__(self) -> _Capture:
        import tempfile

        self.file = tempfile.TemporaryFile()
        return self

    def read(self) -> str:
        self.file.seek(0)
        return self.file.read(OUTPUT_LIMIT).decode("utf-8", "replace")

    def __exit__(self, *exc: object) -> None:
        self.file.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """The client and whatever it started: SIGTERM, then SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


_OUTPUT_LOCK = threading.Lock()  # sys.stdout is one per process: callables run one at a time


def _run_callable(
    target: Callable[[str, str], int | None], url: str, key: str, timeout: float
) -> Run:
    """A Python client called as `target(url, key)`: None or 0 is exit 0, an int its exit code,
    an exception exit 1. One past the timeout is left running (a thread cannot be killed)."""
    with _OUTPUT_LOCK:
        buffer = io.StringIO()
        result: list[int | None] = []

        def call() -> None:
            try:
                code = target(url, key)
                result.append(0 if code is None else int(code))
            except SystemExit as exc:
                result.append(exc.code if isinstance(exc.code, int) else 1)
            except BaseException as exc:  # the client's failure is a verdict
                print(f"{type(exc).__name__}: {exc}", file=buffer)
                result.append(1)

        began = time.monotonic()
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            worker = threading.Thread(target=call, name="exercise-client", daemon=True)
            worker.start()
            worker.join(timeout)
        return Run(result[0] if result else None, buffer.getvalue(), time.monotonic() - began)


# -- judging -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    status: int | None
    retry_after: int | None
    bytes: int
    at: datetime
    fault: str | None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Entry:
        return cls(
            data["method"],
            data["path"],
            data.get("query") or "",
            data.get("headers") or {},
            data.get("status"),
            data.get("retryAfter"),
            data.get("bytes") or 0,
            parse_rfc3339(data["at"]),
            data.get("fault"),
        )

    def endpoint(self) -> str:
        """What a Retry-After is about: the create, the polls of any export, or one path."""
        return f"{self.method} {_TEMPLATE if _OPERATION.match(self.path) else self.path}"


class Judge:
    """The verdict on one scenario's run, from its tenant's journal and the client's output."""

    def __init__(
        self,
        http: httpx.Client,
        key: str,
        signer: Callable[[str, Mapping[str, str]], str],
        bucket: str,
    ) -> None:
        self.http = http
        self.auth = {"Authorization": f"Basic {key}"}
        self.signer = signer
        self.prefix = f"/{bucket}/"

    def journal(self) -> list[Entry]:
        """Every entry of the tenant, read until two readings agree: an entry is written just
        after its answer, which the client may have read and exited on."""
        previous: list[dict[str, Any]] | None = None
        for _ in range(50):
            entries: list[dict[str, Any]] = []
            token: str | None = None
            while True:
                params = {"pageToken": token} if token else {}
                page = self._control("GET", "/journal", params=params)
                entries += page["requests"]
                token = page.get("nextPageToken")
                if not token:
                    break
            if entries == previous:
                break
            previous = entries
            time.sleep(0.05)
        return [Entry.of(e) for e in previous or [] if e.get("at")]

    def _control(self, method: str, path: str, **kw: Any) -> Any:
        response = self.http.request(method, f"/__emulator{path}", headers=self.auth, **kw)
        response.raise_for_status()
        return response.json() if response.content.strip() else {}

    def setup(self, scenario: Scenario) -> None:
        for rule in scenario.rules.get("lifecycle", []):
            self._control("POST", "/lifecycle", json=rule)
        for rule in scenario.rules.get("faults", []):
            self._control("POST", "/faults", json=rule)
        if "config" in scenario.rules:
            self._control("POST", "/config", json=scenario.rules["config"])

    def judge(self, scenario: Scenario, run: Run) -> ScenarioResult:
        entries = self.journal()
        operations = {o["id"]: o for o in self._control("GET", "/operations")["operations"]}
        downloads = [e for e in entries if e.path.startswith(self.prefix) and e.method == "GET"]
        outcome, note = self._outcome(run, downloads)
        result = ScenarioResult(
            scenario.name,
            scenario.expected,
            outcome,
            run.seconds,
            run.exit_code,
            fix=scenario.fix,
            note=note,
        )
        result.findings += _retry_after_ignored(entries)
        result.findings += _failure_unrecognised(entries, operations)
        result.findings += self._leaks(run.output, downloads)
        result.findings += _duplicates(entries, operations)
        result.findings += _no_resume(downloads)
        result.findings += _poll_too_fast(entries)
        return result

    def _outcome(self, run: Run, downloads: list[Entry]) -> tuple[str, str]:
        if run.exit_code is None:
            return HUNG, f"still running at the timeout ({run.seconds:.0f} s); stopped"
        if run.exit_code != 0:
            return GAVE_UP, f"exited {run.exit_code}"
        for path in dict.fromkeys(e.path for e in downloads):
            size = self._size(path)
            got = _covered([e for e in downloads if e.path == path])
            if size is not None and got >= size:
                return COMPLETED_OUTCOME, f"exited 0 with the whole file ({size} bytes)"
        return INCOMPLETE, "exited 0 without downloading the whole file"

    def _size(self, path: str) -> int | None:
        """The file's length, by a HEAD of a fresh URL (after the journal was read)."""
        operations = self._control("GET", "/operations", params={"state": COMPLETED})
        for op in operations["operations"]:
            location = self._control("GET", f"/operations/{op['id']}/results")["location"]
            if httpx.URL(location).path == quote(path, safe="/-_.~"):
                head = self.http.head(location)
                return int(head.headers["content-length"]) if head.status_code == 200 else None
        return None

    def _leaks(self, output: str, downloads: list[Entry]) -> list[Finding]:
        """A signature in the output: one named as such, or one of the URLs the client used."""
        leaked = [m.group(1) for m in _SIGNATURE_PARAM.finditer(output)]
        for e in downloads:
            params = dict(parse_qsl(e.query))
            signature = self.signer(quote(e.path, safe="/-_.~"), params)
            if signature in output:
                leaked.append(signature)
        if not leaked:
            return []
        return [
            Finding(
                "signed-url-leaked",
                FAIL,
                f"{len(set(leaked))} download URL signature(s) in the client's output "
                "(not repeated here: a signature is a credential)",
            )
        ]


def _covered(entries: list[Entry]) -> int:
    """Bytes from 0 the downloads of one file hold between them (a resumed download counts)."""
    spans = []
    for e in entries:
        if e.status not in (200, 206) or not e.bytes:
            continue
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-\d*", e.headers.get("range", ""))
        if e.status == 206 and match:
            start = int(match.group(1))
        spans.append((start, start + e.bytes))
    end = 0
    for start, stop in sorted(spans):
        if start > end:
            break
        end = max(end, stop)
    return end


def _retry_after_ignored(entries: list[Entry]) -> list[Finding]:
    early = []
    for i, e in enumerate(entries):
        if not e.retry_after or e.status not in (429, 503):
            continue
        until = e.at.timestamp() + e.retry_after - CLOCK_SLACK
        for later in entries[i + 1 :]:
            if later.endpoint() == e.endpoint() and later.at.timestamp() < until:
                waited = later.at.timestamp() - e.at.timestamp()
                early.append(
                    f"{later.endpoint()} {waited:.2f} s after a {e.status} with "
                    f"Retry-After: {e.retry_after}"
                )
                break
    if not early:
        return []
    return [Finding("retry-after-ignored", FAIL, "; ".join(early))]


def _polls(entries: list[Entry]) -> dict[str, list[Entry]]:
    polls: dict[str, list[Entry]] = {}
    for e in entries:
        match = _OPERATION.match(e.path)
        if match and e.method == "GET":
            polls.setdefault(match.group(1), []).append(e)
    return polls


def _failure_unrecognised(entries: list[Entry], operations: Mapping[str, Any]) -> list[Finding]:
    found = []
    for op_id, polls in _polls(entries).items():
        op = operations.get(op_id)
        if not op or op["state"] not in FAILURE_STATES or not op.get("finishedAt"):
            continue
        finished = parse_rfc3339(op["finishedAt"])
        after = [p for p in polls if p.at > finished]
        if len(after) >= EXTRA_POLLS:
            found.append(f"{len(after)} polls of an export after it was {op['state']}")
    return [Finding("failure-unrecognised", FAIL, "; ".join(found))] if found else []


def _duplicates(entries: list[Entry], operations: Mapping[str, Any]) -> list[Finding]:
    """A second export while the first could still be polled: not after a failed one."""
    creates = [e for e in entries if e.method == "POST" and e.path == EXPORTS and e.status == 200]
    listed = sorted(operations.values(), key=lambda o: o["createdAt"])
    extra = 0
    for create in creates[1:]:
        before = [o for o in listed if parse_rfc3339(o["createdAt"]) < create.at]
        if any(
            o["state"] not in FAILURE_STATES
            or not o.get("finishedAt")
            or parse_rfc3339(o["finishedAt"]) > create.at
            for o in before
        ):
            extra += 1
    if not extra:
        return []
    return [
        Finding(
            "duplicate-export",
            WARN,
            f"{len(creates)} exports created; {extra} while an earlier one could still "
            "be polled or downloaded",
        )
    ]


def _no_resume(downloads: list[Entry]) -> list[Finding]:
    restarts = 0
    for i, e in enumerate(downloads):
        cut = e.fault is not None and e.fault.startswith("truncate") and e.bytes > 0
        if not cut:
            continue
        nxt = next((d for d in downloads[i + 1 :] if d.path == e.path), None)
        if nxt is not None and nxt.headers.get("range", "bytes=0-").startswith("bytes=0-"):
            restarts += 1
    if not restarts:
        return []
    return [
        Finding("no-resume", WARN, "after a cut download, downloaded again from byte 0 (no Range)")
    ]


def _poll_too_fast(entries: list[Entry]) -> list[Finding]:
    gaps = []
    for polls in _polls(entries).values():
        times = [p.at.timestamp() for p in polls]
        gaps += [b - a for a, b in itertools.pairwise(times)]
    if len(gaps) < 2 or statistics.median(gaps) >= POLL_FLOOR:
        return []
    return [
        Finding(
            "poll-too-fast",
            WARN,
            f"median {statistics.median(gaps) * 1000:.0f} ms between polls of one export "
            f"(threshold {POLL_FLOOR:g} s)",
        )
    ]


# -- the exercise ---------------------------------------------------------------------------------


def exercise_settings(**overrides: Any) -> Settings:
    """The private emulator: a small world (files in milliseconds), the clock running (a
    Retry-After is real seconds), no rate limit but the scenarios' own."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "mcp_port": None,
        "population": 40,
        "density": 0.25,
        "export_duration_per_million": 0,
        "rate_limit": None,
    }
    return Settings(**(values | overrides))


@contextlib.contextmanager
def emulator(settings: Settings | None = None) -> Iterator[ServerThread]:
    with ServerThread(settings or exercise_settings()) as server:
        yield server


def exercise(
    target: Target,
    scenarios: Sequence[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    server: ServerThread | None = None,
) -> Report:
    """Run a client (a command, or a callable taking url and key) through the scenarios and
    judge it. Commands run side by side, callables one at a time."""
    names = list(scenarios or SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    if server is None:
        with emulator() as own:
            return exercise(target, names, timeout=timeout, server=own)
    em: Emulator = cast(Any, server.app).state.emulator
    table = _scenarios(em.settings.bucket)
    base_url = server.base_url

    def one(name: str) -> ScenarioResult:
        key = f"na1.exercise-{name}-{secrets.token_hex(6)}"
        with httpx.Client(base_url=base_url, timeout=30) as http:
            judge = Judge(http, key, em.exports.signer.signature_of, em.settings.bucket)
            judge.setup(table[name])
            if callable(target):
                run = _run_callable(target, base_url, key, timeout)
            else:
                run = _run_command(target, base_url, key, timeout, name)
            return judge.judge(table[name], run)

    workers = 1 if callable(target) else len(names)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="exercise") as pool:
        results = list(pool.map(one, names))
    return Report(results)


# -- the command ----------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{PROG}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        usage=f"{PROG} [--scenario NAME]... [--timeout SECONDS] [--json] [--junit FILE] "
        "-- COMMAND [ARG...]",
        description="Run an export client against FullStory's failure modes and grade it. "
        "The client gets FULLSTORY_API_URL and FULLSTORY_API_KEY in its environment ({url}, "
        "{key} and {scenario} in its arguments are replaced too); exit 0 means it says it got "
        "the file.",
        epilog="scenarios: " + ", ".join(SCENARIOS) + ". Exit 0 when every scenario passed, 1 "
        "when not, 2 on a usage error. See docs/grading.md.",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        metavar="NAME",
        help="a scenario to run (repeatable; all by default)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"stop the client after this long: hung (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML here")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the client, after --")
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 3600 seconds")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        parser.error("give the client's command after --")
    report = exercise(command, args.scenario, timeout=args.timeout)
    print(json.dumps(report.json(), indent=2) if args.json else report.table())
    if args.junit:
        args.junit.write_text(report.junit(), encoding="utf-8")
    return EXIT_PASSED if report.passed else EXIT_FAILED
