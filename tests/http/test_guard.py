"""No web page can steer the emulator: a foreign Host (DNS rebinding) gets 421 on every part, a
control call from a foreign Origin 403, a control body that is not JSON 415; what a page could
have changed is unchanged. Scripts, the console (same origin) and containers keep working."""

from __future__ import annotations

import httpx
import pytest

from fullstory_emulator.server import ServerThread
from tests.helpers import AUTH, assert_error, control, small_settings

OWN = "http://127.0.0.1:8080"  # the harness's base URL: what its console would send as Origin
FAULT = b'{"path":"*","status":503}'
EVIL = "evil.example:8080"
JSON = {"Content-Type": "application/json"}


def faults(h) -> list[dict]:
    return control(h.client, "GET", "/faults")["faults"]


# -- bodies a page elsewhere can post without asking the browser (no CORS preflight) ------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,  # a Blob body without a type
    ],
)
def test_a_fault_posted_as_a_simple_request_is_refused_and_adds_no_rule(harness, content_type):
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = harness.client.post("/__emulator/faults", content=FAULT, headers=headers)
    body = assert_error(response, 415, 3)
    assert "Content-Type must be application/json" in body["message"]
    assert faults(harness) == []
    assert harness.client.get("/segments/v1", headers=AUTH).status_code == 200


def test_reset_and_clock_with_a_text_body_are_refused_and_change_nothing(harness):
    operation = harness.create()
    text = {"Content-Type": "text/plain"}
    before = control(harness.client, "GET", "/clock")
    reset = harness.client.post("/__emulator/reset", content=b"{}", headers=text)
    assert_error(reset, 415, 3)
    clock = harness.client.post("/__emulator/clock", content=b'{"advance": 86400}', headers=text)
    assert_error(clock, 415, 3)
    assert control(harness.client, "GET", "/clock") == before
    assert harness.operation(operation)["state"] == "PENDING"  # not reset


def test_json_with_a_charset_and_bodyless_calls_pass(harness):
    json_utf8 = {"Content-Type": "application/json; charset=utf-8"}
    added = harness.client.post("/__emulator/faults", content=FAULT, headers=json_utf8)
    assert added.status_code == 200, added.text
    assert [rule["status"] for rule in faults(harness)] == [503]
    # a call with no body needs no Content-Type, whatever it says
    reset = harness.client.post("/__emulator/reset", headers={"Content-Type": "text/plain"})
    assert reset.status_code == 200, reset.text
    assert faults(harness) == []


# -- Origin ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://127.0.0.1:3000",  # another local server: not the emulator
        "http://localhost:8080",  # the same machine under another name is another origin
        "https://127.0.0.1:8080",  # another scheme
        "null",  # a sandboxed frame, a file, a redirect's hidden origin
        "garbage",
        "http://[::1",
    ],
)
def test_a_control_call_from_a_foreign_origin_is_refused(harness, origin):
    operation = harness.create()
    response = harness.client.post(
        "/__emulator/faults", content=FAULT, headers={"Origin": origin, **JSON}
    )
    body = assert_error(response, 403, 7)
    assert f"Origin {origin!r}" in body["message"] and "--allowed-hosts" in body["message"]
    bodyless = harness.client.post("/__emulator/reset", headers={"Origin": origin})
    assert_error(bodyless, 403, 7)
    read = harness.client.get("/__emulator/journal", headers={"Origin": origin})
    assert_error(read, 403, 7)
    assert faults(harness) == []
    assert harness.operation(operation)["state"] == "PENDING"


@pytest.mark.parametrize("origin", [OWN, "HTTP://127.0.0.1:8080", None])
def test_the_same_origin_and_no_origin_pass(harness, origin):
    headers = {**JSON, **({"Origin": origin} if origin else {})}
    response = harness.client.post("/__emulator/faults", content=FAULT, headers=headers)
    assert response.status_code == 200, response.text
    assert len(faults(harness)) == 1


def test_the_api_itself_takes_no_origin_check(harness):
    """The API needs Authorization, which a page elsewhere cannot add without a preflight."""
    response = harness.client.get(
        "/segments/v1", headers={**AUTH, "Origin": "https://evil.example"}
    )
    assert response.status_code == 200


# -- Host (DNS rebinding) ---------------------------------------------------------------------


def test_a_rebinding_host_is_refused_on_the_api_downloads_control_and_console(harness):
    op = harness.finish(harness.create())
    location = harness.location(op["results"]["searchExportId"])
    foreign = {"Host": EVIL}
    api = harness.client.get("/segments/v1", headers={**AUTH, **foreign})
    message = assert_error(api, 421, 7)["message"]
    assert f"Host {EVIL!r}" in message and "--allowed-hosts" in message
    download = harness.client.get(location, headers=foreign)
    assert download.status_code == 421
    assert download.headers["content-type"] == "application/xml; charset=UTF-8"
    assert "<Code>MisdirectedRequest</Code>" in download.text and EVIL in download.text
    reset = harness.client.post("/__emulator/reset", headers=foreign)
    assert_error(reset, 421, 7)
    for path in ("/__emulator/health", "/__emulator/ui", "/openapi.json", "/metrics"):
        assert harness.client.get(path, headers=foreign).status_code == 421, path
    assert harness.client.get(location).status_code == 200  # state untouched: not reset
    # refused requests reached nothing of the tenant's: not journaled
    journal = control(harness.client, "GET", "/journal?path=/segments/v1")["requests"]
    assert journal == []


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1:8080", "localhost:49153", "LOCALHOST", "127.0.0.2:1", "[::1]:8080", "localhost."],
)
def test_loopback_names_on_any_port_are_answered(harness, host):
    assert harness.client.get("/segments/v1", headers={**AUTH, "Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["fullstory:8080", "127.0.0.1.evil.example", "[::2]:80", "a b"])
def test_other_hosts_are_refused_on_a_loopback_bind(harness, host):
    response = harness.client.get("/segments/v1", headers={**AUTH, "Host": host})
    assert_error(response, 421, 7)


def test_allowed_hosts_admits_a_name_its_domain_and_their_origins(make_harness):
    h = make_harness(allowed_hosts=("emulator.test", ".ci.example"))
    for host in ("emulator.test:8080", "emulator.test", "ci.example:1", "a.b.ci.example:8080"):
        assert h.client.get("/segments/v1", headers={**AUTH, "Host": host}).status_code == 200
    assert_error(h.client.get("/segments/v1", headers={**AUTH, "Host": EVIL}), 421, 7)
    # a page served under an allowed name may steer it, from any port
    page = {"Origin": "http://emulator.test:3000", **JSON}
    assert h.client.post("/__emulator/faults", content=FAULT, headers=page).status_code == 200
    evil = {"Origin": "http://evil.example", **JSON}
    assert_error(h.client.post("/__emulator/faults", content=FAULT, headers=evil), 403, 7)


def test_the_public_urls_host_and_origin_are_answered(make_harness):
    """Behind a proxy or under a Compose service name given as --public-url."""
    h = make_harness(public_url="https://fullstory:8443")
    headers = {**AUTH, "Host": "fullstory:8080"}
    assert h.client.get("/segments/v1", headers=headers).status_code == 200
    tls_proxy = {"Origin": "https://fullstory:8443", **JSON}  # the console through the proxy
    assert h.client.post("/__emulator/faults", content=FAULT, headers=tls_proxy).status_code == 200


def test_a_star_answers_any_host_but_admits_no_foreign_origin(make_harness):
    h = make_harness(allowed_hosts=("*",))
    assert h.client.get("/segments/v1", headers={**AUTH, "Host": EVIL}).status_code == 200
    evil = {"Origin": "http://evil.example", **JSON}
    assert_error(h.client.post("/__emulator/faults", content=FAULT, headers=evil), 403, 7)


# -- real servers: a loopback bind, and 0.0.0.0 as in a container -----------------------------


def test_a_real_server_on_loopback_refuses_a_rebinding_host():
    with ServerThread(small_settings(port=0, mcp_port=None)) as server:
        port = server.settings.port
        url = f"{server.base_url}/segments/v1"
        assert httpx.get(url, headers=AUTH, timeout=10).status_code == 200
        foreign = httpx.get(url, headers={**AUTH, "Host": f"evil.example:{port}"}, timeout=10)
        assert_error(foreign, 421, 7)


def test_a_server_bound_to_every_interface_answers_service_names_and_mapped_ports():
    """Docker's bind: Compose service names and Testcontainers' mapped ports arrive as Host."""
    with ServerThread(small_settings(host="0.0.0.0", port=0, mcp_port=None)) as server:
        url = f"http://127.0.0.1:{server.settings.port}/segments/v1"
        for host in ("fullstory:8080", "localhost:49153", "emulator", "172.17.0.2:8080"):
            answer = httpx.get(url, headers={**AUTH, "Host": host}, timeout=10)
            assert answer.status_code == 200, (host, answer.text)
        # the control API still takes no foreign Origin and no text body
        text = {"Host": "fullstory:8080", "Content-Type": "text/plain"}
        faults_url = url.replace("/segments/v1", "/__emulator/faults")
        assert_error(httpx.post(faults_url, content=FAULT, headers=text, timeout=10), 415, 3)
        page = {"Host": "fullstory:8080", "Origin": "http://evil.example", **JSON}
        assert_error(httpx.post(faults_url, content=FAULT, headers=page, timeout=10), 403, 7)
        console = {"Host": "fullstory:8080", "Origin": "http://fullstory:8080", **JSON}
        assert httpx.post(faults_url, content=FAULT, headers=console, timeout=10).is_success


def test_allowed_hosts_locks_down_a_server_bound_to_every_interface():
    settings = small_settings(host="0.0.0.0", port=0, mcp_port=None, allowed_hosts=("fullstory",))
    with ServerThread(settings) as server:
        url = f"http://127.0.0.1:{server.settings.port}/segments/v1"
        for host, status in (("fullstory:8080", 200), ("localhost:1", 200), (EVIL, 421)):
            answer = httpx.get(url, headers={**AUTH, "Host": host}, timeout=10)
            assert answer.status_code == status, (host, answer.text)
