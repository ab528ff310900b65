"""A contract test of a small export client, written with the `fullstory_emulator` fixture."""

import gzip
import json

import httpx
import pytest


def export_events(base_url, api_key, sleep, before_download=lambda: None):
    """The client under test: the four steps, honouring Retry-After, renewing expired URLs."""
    api = httpx.Client(base_url=base_url, headers={"Authorization": f"Basic {api_key}"})

    def call(method, path, **kwargs):
        while (response := api.request(method, path, **kwargs)).status_code == 429:
            sleep(int(response.headers["Retry-After"]))
        response.raise_for_status()
        return response.json()

    body = {"segmentId": "everyone", "type": "TYPE_EVENT", "format": "FORMAT_NDJSON"}
    operation_id = call("POST", "/segments/v1/exports", json=body)["operationId"]
    while (operation := call("GET", f"/operations/v1/{operation_id}"))["state"] == "PENDING":
        sleep(2)
    if operation["state"] != "COMPLETED":
        raise RuntimeError(operation["errorDetails"])
    results = f"/search/v1/exports/{operation['results']['searchExportId']}/results"
    while True:
        location = call("GET", results)["location"]
        before_download()
        download = httpx.get(location, timeout=60)  # no API key: the URL is signed; files are big
        if download.status_code == 400 and "<Code>ExpiredToken</Code>" in download.text:
            continue  # the documented recovery: ask for a fresh URL
        download.raise_for_status()
        return [json.loads(line) for line in gzip.decompress(download.content).splitlines()]


def run(emulator, **kwargs):
    # The client's waits advance the emulator's clock: no real sleep anywhere.
    return export_events(emulator.base_url, emulator.api_key, emulator.clock.advance, **kwargs)


def test_the_workflow_in_order(fullstory_emulator):
    rows = run(fullstory_emulator)
    assert rows and all(isinstance(row["IndvId"], int) for row in rows)
    steps = [(r.method, r.path.split("/")[1]) for r in fullstory_emulator.requests()]
    assert steps[0] == ("POST", "segments") and steps[-1] == ("GET", "fullstory-emulator-exports")


def test_a_failed_export_is_reported(fullstory_emulator):
    fullstory_emulator.fail_next_export("search timed out")
    with pytest.raises(RuntimeError, match="search timed out"):
        run(fullstory_emulator)


def test_a_429_mid_poll_is_absorbed(fullstory_emulator):
    fullstory_emulator.add_fault(
        method="GET", path="/operations/v1/*", status=429, retry_after=7, times=1
    )
    assert run(fullstory_emulator)
    polls = fullstory_emulator.requests(path="/operations/v1/*")
    assert [p.status for p in polls][:2] == [429, 200]


def test_an_expired_url_is_renewed(fullstory_emulator):
    delays = iter([301])  # the first URL is used only after its 300 s are up
    assert run(
        fullstory_emulator,
        before_download=lambda: fullstory_emulator.clock.advance(next(delays, 0)),
    )
    downloads = fullstory_emulator.requests(path="/fullstory-emulator-exports/*")
    assert [d.status for d in downloads] == [400, 200]
