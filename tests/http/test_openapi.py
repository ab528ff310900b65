"""/openapi.json (emulator/openapi.py): a valid document that matches the routes served, and a
bounded schemathesis run against a live emulator: no 5xx, no response that breaks the document."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from emulator.server import ServerThread
from tests.helpers import ROOT, small_settings

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance"
)
FIGURES = pytest.StashKey[str]()


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
        (route.path, method.lower())
        for route in harness.client.app.routes
        if isinstance(route, Route) and route.path != "/openapi.json"
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {
        (re.sub(r"\{object\}$", "{object:path}", path), method)
        for path, item in document["paths"].items()
        for method in item
    }
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


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_or_schema_break(request, tmp_path: Path):
    schemathesis = Path(sys.executable).with_name("schemathesis")
    settings = small_settings(port=0, population=40, freeze_clock=False, export_duration=0.2)
    with ServerThread(settings) as server:
        result = subprocess.run(
            [
                str(schemathesis),
                "--config-file",
                str(ROOT / "tests" / "schemathesis.toml"),
                "run",
                f"{server.base_url}/openapi.json",
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
    cases = re.search(r"(\d+) generated(?:, (\d+) found (\d+) unique failures?)?", output)
    assert cases, output[-3000:]
    failures = int(cases.group(3) or 0)
    request.config.stash[FIGURES] = (
        f"schemathesis: {cases.group(1)} cases generated, {failures} failures "
        f"({'passed' if result.returncode == 0 else 'FAILED'})"
    )
    assert result.returncode == 0 and failures == 0, output[-6000:]


def test_config_documents_the_failure_state(harness):
    document = harness.client.get("/openapi.json").json()
    body = document["paths"]["/__emulator/config"]["post"]["requestBody"]["content"]
    failure = body["application/json"]["schema"]["properties"]["failureState"]
    assert failure["enum"] == ["ERROR", "FAILED", None] and failure["nullable"] is True
    assert "hauser" in failure["description"]
