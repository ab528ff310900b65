"""`fullstory-emulator serve`: the MCP adapter beside the API starts on a tenant of its own and
never delays the API's cold start."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from emulator import cli, server
from emulator.auth import MCP_KEY
from emulator.settings import Settings


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

    def load(api_url: str, api_key: str, host: str, sock: Any):
        loads.append((api_url, api_key, host))
        release.wait(30)
        return real_load(api_url, api_key, host, sock)

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
