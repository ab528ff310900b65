"""Contract tests against the emulator's Docker image, started by Testcontainers for the session.

pip install pytest httpx 'testcontainers>=4.13'
docker build -t fullstory-emulator .   # from the emulator's checkout
"""

import gzip
import json
import os
import socket
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import HealthcheckWaitStrategy

IMAGE = os.environ.get("FULLSTORY_EMULATOR_IMAGE", "fullstory-emulator")
KEY = "na1.emulator-demo-key"  # without a keys file, any well-formed key is an admin


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def fullstory_api():
    """The emulator's base URL, on a free port that its download URLs name too."""
    port = free_port()
    url = f"http://localhost:{port}"
    container = (
        DockerContainer(IMAGE)
        .with_bind_ports(8080, port)
        .with_env("FULLSTORY_EMULATOR_PUBLIC_URL", url)
        .with_env("FULLSTORY_EMULATOR_EXPORT_DURATION", "0.5")
        .waiting_for(HealthcheckWaitStrategy().with_startup_timeout(120))
    )
    with container:
        yield url


@pytest.fixture
def api(fullstory_api):
    with httpx.Client(base_url=fullstory_api, headers={"Authorization": f"Basic {KEY}"}) as client:
        client.post("/__emulator/reset").raise_for_status()  # each test from a clean state
        yield client


def last_day():
    """An export of the last 24 hours: thousands of events, a small file (the default window,
    the segment's 30 days, is hundreds of MB uncompressed)."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start, stamp = end - timedelta(days=1), "%Y-%m-%dT%H:%M:%SZ"
    return {
        "segmentId": "everyone",
        "type": "TYPE_EVENT",
        "format": "FORMAT_NDJSON",
        "timeRange": {"start": start.strftime(stamp), "end": end.strftime(stamp)},
    }


def finish(api):
    """Create an export and poll it until it is no longer PENDING."""
    created = api.post("/segments/v1/exports", json=last_day()).raise_for_status()
    operation_id = created.json()["operationId"]
    while (operation := api.get(f"/operations/v1/{operation_id}").json())["state"] == "PENDING":
        time.sleep(0.5)
    return operation


def test_export_workflow(api):
    operation = finish(api)
    assert operation["state"] == "COMPLETED"
    export_id = operation["results"]["searchExportId"]
    location = api.get(f"/search/v1/exports/{export_id}/results").json()["location"]
    download = httpx.get(location, timeout=60).raise_for_status()  # signed: no API key
    rows = [json.loads(line) for line in gzip.decompress(download.content).splitlines()]
    assert rows and all(row["IndvId"] > 0 for row in rows)


def test_a_failed_export(api):
    rule = {"fail": "search timed out", "times": 1}
    api.post("/__emulator/lifecycle", json=rule).raise_for_status()
    operation = finish(api)
    assert operation["state"] == "ERROR"
    assert operation["errorDetails"] == "search timed out"
