"""`fullstory-emulator`: `health`, the Docker HEALTHCHECK (it finds the server from the same
settings, flags or FULLSTORY_EMULATOR_* variables, as the server, over HTTP or TLS, and says why
it fails); and `serve`, whose MCP adapter starts on a tenant of its own and never delays the
API's cold start."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from fullstory_emulator import cli, server
from fullstory_emulator.auth import MCP_KEY
from fullstory_emulator.cli import health, local_url, main, settings_from
from fullstory_emulator.server import ServerThread
from fullstory_emulator.settings import Settings
from fullstory_emulator.tls import ensure_certificates
from tests.helpers import small_settings


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_local_url_is_where_the_server_listens_not_the_public_url():
    settings = Settings(host="0.0.0.0", port=9999, public_url="http://emulator.example:80")
    assert local_url(settings) == "http://127.0.0.1:9999"
    assert local_url(Settings(host="::", port=1, tls=True)) == "https://127.0.0.1:1"
    assert local_url(Settings(host="::1", port=2)) == "http://[::1]:2"
    assert local_url(Settings(host="10.1.2.3", port=3)) == "http://10.1.2.3:3"


def test_health_follows_the_port_from_the_environment(capsys):
    with ServerThread(small_settings(port=0)) as server:
        port = server.settings.port
        _, settings = settings_from(["health"], {"FULLSTORY_EMULATOR_PORT": str(port)})
        assert settings.port == port
        assert health(settings) == 0
    assert capsys.readouterr().out == f"http://127.0.0.1:{port}/__emulator/health: 200\n"


def test_health_flags_win_and_exit_status_is_the_answer(capsys):
    with ServerThread(small_settings(port=0)) as server:
        port = server.settings.port
        with pytest.raises(SystemExit) as ok:
            main(["health", "--port", str(port)])
        assert ok.value.code == 0
    down = closed_port()
    with pytest.raises(SystemExit) as failed:
        main(["health", "--port", str(down)])
    assert failed.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"fullstory-emulator health: http://127.0.0.1:{down}/__emulator/health: ")
    assert "refused" in err


def test_health_over_tls_verifies_against_the_data_dirs_ca(tmp_path, capsys):
    settings = small_settings(port=0, tls=True, data_dir=tmp_path)
    with ServerThread(settings) as server:
        port = server.settings.port
        assert (tmp_path / "tls" / "ca.pem").exists()
        assert health(Settings(port=port, tls=True, data_dir=tmp_path)) == 0
        assert capsys.readouterr().out == f"https://127.0.0.1:{port}/__emulator/health: 200\n"
        # without the data dir it cannot verify, but still asks (the CA is not what is checked)
        assert health(Settings(port=port, tls=True)) == 0
        # plain HTTP to a TLS port fails, and says so
        assert health(Settings(port=port)) == 1
        assert f"http://127.0.0.1:{port}/__emulator/health" in capsys.readouterr().err
        # a CA that did not sign the server's certificate fails verification
        ensure_certificates(tmp_path / "other" / "tls", "127.0.0.1")
        assert health(Settings(port=port, tls=True, data_dir=tmp_path / "other")) == 1
        assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err


def test_health_needs_no_control_token():
    with ServerThread(small_settings(port=0, control_token="secret")) as server:
        assert health(Settings(port=server.settings.port)) == 0


def test_health_fails_on_an_error_status(capsys):
    class Unavailable(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Unavailable) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            assert health(Settings(port=httpd.server_address[1])) == 1
        finally:
            httpd.shutdown()
    assert "HTTP Error 503" in capsys.readouterr().err


# -- serve: the MCP adapter beside the API ---------------------------------------------------


@pytest.fixture
def serving(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Runs `serve` in a thread with a stand-in MCP loader that waits until released; yields
    (the banner, the release event, what the loader was given)."""
    monkeypatch.delenv("FULLSTORY_API_KEY", raising=False)
    release, loads, made = threading.Event(), [], []
    real_make, real_load = server.make_server, cli._load_mcp

    def make(settings: Settings, **kwargs: Any):
        made.append(real_make(settings, **kwargs))
        return made[-1]

    def load(api_url: str, api_key: str, settings: Settings, sock: Any):
        loads.append((api_url, api_key, settings.host))
        release.wait(30)
        return real_load(api_url, api_key, settings, sock)

    monkeypatch.setattr(server, "make_server", make)
    monkeypatch.setattr(cli, "_load_mcp", load)
    settings = Settings(port=0, mcp_port=0, access_log="off", population=20)
    thread = threading.Thread(target=cli.serve, args=(settings,), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not (made and made[0].started):
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.01)
    yield capsys.readouterr().out, release, loads
    release.set()
    made[0].should_exit = True
    thread.join(15)
    assert not thread.is_alive()


def test_the_api_serves_before_mcp_is_loaded(serving):
    banner, release, loads = serving
    base = banner.split("API base URL:")[1].split()[0]
    mcp_url = banner.split("MCP server:")[1].split()[0]
    assert "a tenant of its own: calls the API with key na1.emulator-mcp-key" in banner
    # the API answers while the MCP SDK is still "importing"
    assert httpx.get(f"{base}/__emulator/health", timeout=5).status_code == 200
    assert loads == [(base, MCP_KEY, "127.0.0.1")]
    # a client that connects to MCP meanwhile waits in the backlog, then is served
    answers: list[int] = []

    def ask() -> None:
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        headers = {"Accept": "application/json, text/event-stream"}
        answers.append(httpx.post(mcp_url, json=body, headers=headers, timeout=30).status_code)

    early = threading.Thread(target=ask)
    early.start()
    time.sleep(0.2)
    assert answers == []  # connected, not answered: MCP is not loaded yet
    release.set()
    early.join(30)
    assert answers and answers[0] < 500


def test_the_mcp_adapter_calls_the_api_as_its_own_tenant(serving):
    """Once loaded, the adapter's calls are journaled under the MCP key's tenant, so an agent
    never spends the rate limit of the demo key a user exports with."""
    banner, release, _ = serving
    base = banner.split("API base URL:")[1].split()[0]
    mcp_url = banner.split("MCP server:")[1].split()[0]
    release.set()
    import anyio
    from mcp import Client

    async def list_segments() -> None:
        async with Client(mcp_url, read_timeout_seconds=20) as client:
            await client.call_tool("listsegments", {})

    anyio.run(list_segments)

    def journal(key: str) -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{base}/__emulator/journal",
            headers={"Authorization": f"Basic {key}"},
            params={"path": "/segments/v1"},
        )
        return list(answer.json()["requests"])

    assert [entry["status"] for entry in journal(MCP_KEY)] == [200]
    assert journal("na1.emulator-demo-key") == []


def test_the_banner_names_the_console_and_the_failure_state_a_scenario_serves(capsys):
    cli._banner(Settings(port=8123, scenario="failed-state"))
    banner = capsys.readouterr().out
    assert "  web console:    http://127.0.0.1:8123/__emulator/ui\n" in banner
    assert "failed exports: state FAILED, as FullStory's own clients" in banner
    cli._banner(Settings(port=8123, scenario="rate-limited"))
    assert "failed exports: state ERROR;" in capsys.readouterr().out


def test_a_port_in_use_says_how_to_move_it():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(SystemExit) as stop:
            cli.serve(Settings(port=port, mcp_port=None, access_log="off", population=20))
    finally:
        taken.close()
    message = str(stop.value.code)
    assert f"cannot listen on 127.0.0.1:{port}" in message
    assert "(--port N moves it; --port 0 takes any free port)" in message
