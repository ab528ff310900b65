"""/openapi.json (http/openapi.py): a valid document that matches the routes served, and a
bounded schemathesis run against a live emulator with every check and every phase (stateful
too): no 5xx, no response that breaks the document, no schema-valid request refused and no
schema-violating one accepted (tests/schemathesis.toml lists the documented exceptions)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from fullstory_emulator.server import ServerThread
from tests.helpers import FIGURES, ROOT, small_settings

CHECKS = "all"  # every check; every phase runs, the stateful one included


def test_document_is_valid_and_public(harness):
    response = harness.client.get("/openapi.json")  # no key needed
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["servers"] == [{"url": "http://127.0.0.1:8080"}]
    tags = {tag for item in document["paths"].values() for o in item.values() for tag in o["tags"]}
    assert tags == {"FullStory Segment Export", "Cloud storage", "Emulator control"}


def test_every_route_is_documented_and_nothing_else(harness):
    document = harness.client.get("/openapi.json").json()
    served = {
        (re.sub(r"\{(\w+):path\}", r"{\1}", route.path), method.lower())
        for route in harness.client.app.routes
        if isinstance(route, Route) and route.path != "/openapi.json"
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == served


def test_enums_match_what_handlers_accept(harness):
    schema = harness.client.get("/openapi.json").json()["components"]["schemas"]
    request = schema["CreateExportRequest"]["properties"]
    assert request["type"]["enum"] == [
        "TYPE_INDIVIDUAL",
        "TYPE_EVENT",
        "TYPE_PAGES",
        "TYPE_SESSIONS",
    ]
    assert request["format"]["enum"] == ["FORMAT_CSV", "FORMAT_JSON", "FORMAT_NDJSON"]
    assert "SCOPE_EVENTS" in request["eventDetails"]["properties"]["scope"]["enum"]


# A fault rule the stateful phase adds (latency, a dropped or truncated answer) would break every
# request after it, as it is meant to: fault rules are fuzzed in a run of their own, without the
# stateful phase; control routes never take faults, so that run cannot break itself.
FAULTS = "addFault"
RUNS = {  # name: (selection, whether the stateful phase runs)
    "everything else, every phase": (["--exclude-operation-id", FAULTS], True),
    "fault rules": (
        ["--include-operation-id", FAULTS, "--phases", "examples,coverage,fuzzing"],
        False,
    ),
}


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_or_schema_break(request, tmp_path: Path):
    schemathesis = Path(sys.executable).with_name("schemathesis")
    settings = small_settings(port=0, population=40, freeze_clock=False, export_duration=0.2)
    figures: list[tuple[int, int, bool]] = []
    try:
        with ServerThread(settings) as server:
            for name, (selection, stateful) in RUNS.items():
                result = subprocess.run(
                    [
                        str(schemathesis),
                        "--config-file",
                        str(ROOT / "tests" / "schemathesis.toml"),
                        "run",
                        f"{server.base_url}/openapi.json",
                        *selection,
                        "--checks",
                        CHECKS,
                        "-H",
                        "Authorization: Basic na1.schemathesis-key",
                        "--max-examples",
                        "12",
                        "--seed",
                        "1",
                        "--workers",
                        "1",
                        "--no-color",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=400,
                )
                output = result.stdout + result.stderr
                cases = re.search(
                    r"(\d+) generated(?:, (\d+) found (\d+) unique failures?)?", output
                )
                assert cases, output[-3000:]
                failures = int(cases.group(3) or 0)
                figures.append((int(cases.group(1)), failures, result.returncode == 0))
                assert result.returncode == 0 and failures == 0, f"{name}: {output[-6000:]}"
                if stateful:
                    assert re.search(r"✅ Stateful", output), output[-3000:]
    finally:  # stashed for the terminal summary (tests/conftest.py), a failed run's too
        generated, failed = sum(f[0] for f in figures), sum(f[1] for f in figures)
        request.config.stash[FIGURES] = (
            f"schemathesis: {generated} cases generated, {failed} failures "
            f"({'passed' if figures and all(f[2] for f in figures) else 'FAILED'})"
        )


def test_only_the_shared_helpers_define_stash_keys():
    """The summary hook reads the key of tests/helpers.py; a module's own key of the same name
    is a different key, and its figures never print (as schemathesis's once did not)."""
    own = [
        path.relative_to(ROOT)
        for path in (ROOT / "tests").rglob("*.py")
        if path.name != "helpers.py" and "StashKey" + "[" in path.read_text(encoding="utf-8")
    ]
    assert own == []


def test_config_documents_the_failure_state(harness):
    document = harness.client.get("/openapi.json").json()
    body = document["paths"]["/__emulator/config"]["post"]["requestBody"]["content"]
    failure = body["application/json"]["schema"]["properties"]["failureState"]
    assert failure["enum"] == ["ERROR", "FAILED", None] and failure["nullable"] is True
    assert "hauser" in failure["description"]


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/__emulator/faults", "post"),
        ("/__emulator/lifecycle", "post"),
        ("/__emulator/ratelimit", "post"),
        ("/__emulator/config", "post"),
        ("/__emulator/clock", "post"),
        ("/__emulator/operations/{operationId}/fail", "post"),
    ],
)
def test_control_bodies_are_documented_as_refusing_unknown_members(harness, path, method):
    document = harness.client.get("/openapi.json").json()
    body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
    assert body["schema"]["additionalProperties"] is False


def test_documented_bounds_of_a_percent_sequence_and_a_url_ttl(harness):
    paths = harness.client.get("/openapi.json").json()["paths"]

    def schema(path: str) -> dict:
        return paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]

    assert schema("/__emulator/lifecycle")["properties"]["pctSequence"]["minItems"] == 1
    assert schema("/__emulator/config")["properties"]["urlTtl"]["minimum"] == 1
