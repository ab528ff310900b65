"""The MCP adapter end to end: a real emulator and a real MCP server under uvicorn, reached with
the `mcp` SDK's own clients over streamable HTTP and over stdio, as an agent would."""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from fullstory_emulator.client.core import Sink
from fullstory_emulator.client.mcp import McpThread, PreviewParser, build_server, main
from fullstory_emulator.hosts import HostPolicy
from fullstory_emulator.server import ServerThread
from fullstory_emulator.settings import Settings
from fullstory_emulator.timestamps import format_api
from tests.helpers import ROOT, START

KEY = "na1.mcp-test-key"
AUTH = {"Authorization": f"Basic {KEY}"}
READS = ("listsegments", "getsegment", "getoperationstatus", "getexportlocation", "previewexport")
TOOLS = [
    "listsegments",
    "getsegment",
    "createsegmentexport",
    "getoperationstatus",
    "getexportlocation",
    "previewexport",
]
RECENT = {"start": format_api(START - timedelta(days=2)), "end": ""}  # a small file to compare


@pytest.fixture(scope="module")
def emulator() -> Iterator[ServerThread]:
    settings = Settings(
        port=0,
        rate_limit=None,
        export_duration=0.2,
        export_duration_per_million=0,
        population=80,
        start_time=START,
        signing_secret="test-secret",
    )
    with ServerThread(settings) as running:
        yield running


@pytest.fixture(scope="module")
def mcp(emulator: ServerThread) -> Iterator[McpThread]:
    with McpThread(emulator.base_url, KEY, port=0) as running:
        yield running


@pytest.fixture
def control(emulator: ServerThread) -> Iterator[httpx.Client]:
    """The emulator's control API for this test's key; lifecycle rules and faults are undone."""
    with httpx.Client(base_url=emulator.base_url, headers=AUTH, timeout=10) as client:
        yield client
        client.delete("/__emulator/lifecycle")
        client.delete("/__emulator/faults")


def with_client(url: str, body: Callable[[Client], Awaitable[Any]]) -> Any:
    """Run `body` with an SDK client connected to `url` (protocol negotiated automatically)."""

    async def run() -> Any:
        async with Client(url, read_timeout_seconds=20) as client:
            return await body(client)

    return anyio.run(run)


async def call(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must succeed; returns its structured content."""
    result = await client.call_tool(name, arguments)
    assert not result.is_error, text(result)
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


async def finish(client: Client, operation_id: str) -> dict[str, Any]:
    """Poll as an agent would until the operation leaves PENDING (the clock is real)."""
    deadline = time.monotonic() + 15
    while True:
        operation = await call(client, "getoperationstatus", operationId=operation_id)
        if operation["state"] != "PENDING" or time.monotonic() > deadline:
            return operation
        await anyio.sleep(0.1)


# -- discovery --------------------------------------------------------------------------------


def test_tools_have_exact_names_hints_and_self_describing_schemas(mcp: McpThread):
    listing = with_client(mcp.url, lambda client: client.list_tools())
    tools = {tool.name: tool for tool in listing.tools}
    assert [tool.name for tool in listing.tools] == TOOLS

    for name, tool in tools.items():
        hints = tool.annotations
        assert hints is not None
        expected = (True, False, True) if name in READS else (False, False, False)
        assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint) == expected
        assert tool.description and tool.output_schema and tool.output_schema["type"] == "object"
        for prop in tool.input_schema["properties"].values():
            assert prop.get("description"), f"{name}: every argument is described"

    create = tools["createsegmentexport"].input_schema
    props = create["properties"]
    assert create["required"] == ["segmentId"]
    assert "everyone" in props["segmentId"]["description"]
    assert props["type"]["enum"] == ["TYPE_INDIVIDUAL", "TYPE_EVENT", "TYPE_PAGES", "TYPE_SESSIONS"]
    assert props["format"]["enum"] == ["FORMAT_CSV", "FORMAT_JSON", "FORMAT_NDJSON"]
    scope = next(arm for arm in props["scope"]["anyOf"] if "enum" in arm)
    assert scope["enum"] == ["SCOPE_EVENT", "SCOPE_PAGES", "SCOPE_SESSIONS", "SCOPE_INDIVIDUAL"]
    for window in ("timeRange", "segmentTimeRange"):
        shape = next(arm for arm in props[window]["anyOf"] if arm.get("type") == "object")
        assert set(shape["properties"]) == {"start", "end"}, "inline, no $ref to resolve"
        assert "RFC 3339" in shape["properties"]["start"]["description"]
    assert "user_*" in props["fields"]["description"]
    assert props["fields"]["anyOf"][0] == {"items": {"type": "string"}, "type": "array"}
    listing_props = tools["listsegments"].input_schema["properties"]
    assert set(listing_props) == {"limit", "creator"}
    preview_limit = tools["previewexport"].input_schema["properties"]["limit"]
    assert (preview_limit["default"], preview_limit["maximum"]) == (10, 100)


# -- the workflow -----------------------------------------------------------------------------


def expected_rows(raw: bytes, export_format: str) -> list[dict[str, Any]]:
    """The whole file parsed independently: what the preview's rows must be a prefix of."""
    body = gzip.decompress(raw).decode("utf-8")
    if export_format == "FORMAT_CSV":
        reader = csv.DictReader(io.StringIO(body, newline=""))
        return [{k: v for k, v in row.items() if v != ""} for row in reader]

    def js_safe(digits: str) -> int | str:
        return int(digits) if abs(int(digits)) < 2**53 else digits

    if export_format == "FORMAT_JSON":
        return json.loads(body, parse_int=js_safe)
    return [json.loads(line, parse_int=js_safe) for line in body.splitlines() if line]


@pytest.mark.parametrize("export_format", ["FORMAT_NDJSON", "FORMAT_JSON", "FORMAT_CSV"])
def test_list_create_poll_locate_preview(mcp: McpThread, export_format: str):
    async def workflow(client: Client) -> None:
        listed = await call(client, "listsegments", limit=3)
        assert listed["count"] == 3 and listed["more"] is True
        assert [s["id"] for s in listed["segments"]][:2] == ["everyone", "rageClicks"]
        everyone = await call(client, "getsegment", segmentId="everyone")
        assert everyone["name"] == "Everyone" and everyone["url"].endswith("/segments/everyone")

        created = await call(
            client,
            "createsegmentexport",
            segmentId="everyone",
            type="TYPE_EVENT",
            format=export_format,
            timeRange=RECENT,
            segmentTimeRange={"start": "", "end": ""},
            timezone="UTC",
            scope="SCOPE_EVENT",
        )
        operation = await finish(client, created["operationId"])
        assert operation["state"] == "COMPLETED", operation
        assert operation["estimatePctComplete"] == 100
        export_id = operation["results"]["searchExportId"]

        located = await call(client, "getexportlocation", operationId=created["operationId"])
        assert located["searchExportId"] == export_id and located["expires"]
        download = httpx.get(located["location"], timeout=10)  # signed: no API key
        assert download.status_code == 200
        rows = expected_rows(download.content, export_format)
        assert len(rows) > 5

        preview = await call(client, "previewexport", searchExportId=export_id, limit=5)
        assert preview["format"] == export_format
        assert preview["rowCount"] == 5 and preview["moreRows"] is True
        assert preview["rows"] == rows[:5]
        assert {"IndvId", "EventStart", "EventType"} <= set(preview["columns"])
        if export_format != "FORMAT_CSV":  # ids past 2^53 arrive as strings, all digits kept
            ids = [row["IndvId"] for row in preview["rows"]]
            assert any(isinstance(value, str) for value in ids)
            assert all(isinstance(value, int) or int(value) > 2**53 for value in ids)

        everything = await call(client, "previewexport", operationId=created["operationId"])
        assert everything["rowCount"] == 10

    with_client(mcp.url, workflow)


def test_preview_of_a_short_export_says_there_is_no_more(mcp: McpThread):
    async def workflow(client: Client) -> None:
        window = {"start": format_api(START - timedelta(hours=6)), "end": format_api(START)}
        created = await call(
            client,
            "createsegmentexport",
            segmentId="everyone",
            type="TYPE_INDIVIDUAL",
            format="FORMAT_CSV",
            timeRange=window,
            fields=["IndvId", "Email", "NumSessions"],
        )
        operation = await finish(client, created["operationId"])
        preview = await call(client, "previewexport", operationId=operation["id"], limit=100)
        assert preview["columns"] == ["IndvId", "Email", "NumSessions"]
        assert preview["moreRows"] is False and preview["rowCount"] == len(preview["rows"]) < 100

    with_client(mcp.url, workflow)


def test_preview_renews_a_url_that_expired_on_the_way(mcp: McpThread, control: httpx.Client):
    # a 2 s URL lives 1-2 s (from its whole-second X-Goog-Date): the first cannot outlast 2.1 s
    # of storage latency, the renewed one always lasts for its download
    bucket = "/fullstory-emulator-exports/*"
    control.post("/__emulator/config", json={"urlTtl": 2}).raise_for_status()
    control.post("/__emulator/faults", json={"path": bucket, "latencyMs": 2100, "times": 1})
    control.delete("/__emulator/journal").raise_for_status()

    async def workflow(client: Client) -> dict[str, Any]:
        created = await call(client, "createsegmentexport", segmentId="everyone", timeRange=RECENT)
        operation = await finish(client, created["operationId"])
        return await call(client, "previewexport", operationId=operation["id"], limit=3)

    try:
        preview = with_client(mcp.url, workflow)
    finally:
        control.post("/__emulator/config", json={"urlTtl": None}).raise_for_status()
    assert preview["rowCount"] == 3 and preview["moreRows"] is True
    journal = control.get("/__emulator/journal", params={"path": bucket}).json()["requests"]
    assert [entry["status"] for entry in journal] == [400, 200]
    locations = control.get("/__emulator/journal", params={"path": "/search/v1/exports/*"})
    assert len(locations.json()["requests"]) == 2  # a fresh URL was asked for


# -- errors reach the agent as tool errors, in the server's words -----------------------------


def test_api_errors_become_tool_errors_with_the_servers_message(mcp: McpThread):
    async def errors(client: Client) -> list[CallToolResult]:
        return [
            await client.call_tool("getsegment", {"segmentId": "noSuchSegment"}),
            await client.call_tool("createsegmentexport", {"segmentId": "noSuchSegment"}),
            await client.call_tool(
                "createsegmentexport",
                {"segmentId": "everyone", "fields": ["EventType", "EventType"]},
            ),
            await client.call_tool("getoperationstatus", {"operationId": "nope"}),
            await client.call_tool("createsegmentexport", {"segmentId": "x", "format": "XML"}),
            await client.call_tool("previewexport", {}),
        ]

    unknown, create_unknown, duplicate, no_operation, bad_enum, neither = with_client(
        mcp.url, errors
    )
    for result in (unknown, create_unknown, duplicate, no_operation, bad_enum, neither):
        assert result.is_error
    assert "segment 'noSuchSegment' not found" in text(unknown)
    assert "HTTP 404" in text(unknown)
    assert "noSuchSegment" in text(create_unknown)
    assert "EventType" in text(duplicate) and "HTTP 400" in text(duplicate)
    assert "HTTP 404" in text(no_operation)
    assert "FORMAT_CSV" in text(bad_enum)  # the SDK's validation names the allowed values
    assert "exactly one of searchExportId and operationId" in text(neither)


def test_arguments_too_long_for_a_url_are_told_in_one_line_without_a_traceback(
    mcp: McpThread, caplog: pytest.LogCaptureFixture
):
    """httpx cannot send a URL past 64 KiB: the agent reads why, and no crash is logged."""
    long = "y" * 100_000

    async def calls(client: Client) -> list[CallToolResult]:
        return [
            await client.call_tool("getsegment", {"segmentId": long}),
            await client.call_tool("getoperationstatus", {"operationId": long}),
            await client.call_tool("previewexport", {"operationId": long}),
            await client.call_tool("getexportlocation", {"searchExportId": long}),
            await client.call_tool("listsegments", {"creator": long}),
        ]

    with caplog.at_level(logging.DEBUG):
        results = with_client(mcp.url, calls)
    segment, operation, preview, location, listing = results
    assert all(result.is_error for result in results)
    assert "segmentId too long: 100,000 characters" in text(segment)
    assert "operationId too long: 100,000 characters" in text(operation)
    assert "operationId too long: 100,000 characters" in text(preview)
    assert "searchExportId too long: 100,000 characters" in text(location)
    assert "could not be sent" in text(listing) and "too long" in text(listing)
    assert all("\n" not in text(result) and len(text(result)) < 300 for result in results)
    assert [record.getMessage() for record in caplog.records if record.exc_info] == []


def test_path_arguments_are_percent_encoded(mcp: McpThread):
    async def calls(client: Client) -> list[CallToolResult]:
        return [
            await client.call_tool("getsegment", {"segmentId": "a?b#c%d e"}),
            await client.call_tool("getoperationstatus", {"operationId": "../../segments/v1/x"}),
        ]

    odd, climbing = with_client(mcp.url, calls)
    assert odd.is_error and "segment 'a?b#c%d e' not found" in text(odd)  # one path segment
    assert climbing.is_error and "HTTP 404" in text(climbing)  # never /segments/v1/x


def test_pending_and_failed_exports_explain_themselves(mcp: McpThread, control: httpx.Client):
    control.post("/__emulator/lifecycle", json={"finishAfterPolls": 50, "times": 1})
    control.post("/__emulator/lifecycle", json={"fail": "warehouse quota exceeded", "times": 1})

    async def workflow(client: Client) -> tuple[CallToolResult, CallToolResult]:
        pending = await call(client, "createsegmentexport", segmentId="everyone")
        early = await client.call_tool("previewexport", {"operationId": pending["operationId"]})
        failing = await call(client, "createsegmentexport", segmentId="everyone")
        operation = await finish(client, failing["operationId"])
        assert operation["state"] == "ERROR" and operation["results"] is None
        assert operation["errorDetails"] == "warehouse quota exceeded"
        late = await client.call_tool("getexportlocation", {"operationId": operation["id"]})
        return early, late

    early, late = with_client(mcp.url, workflow)
    assert early.is_error and "still PENDING" in text(early) and "getoperationstatus" in text(early)
    assert late.is_error and "ended in ERROR: warehouse quota exceeded" in text(late)


def test_a_long_retry_after_is_handed_to_the_agent_not_slept(mcp: McpThread, control: httpx.Client):
    fault = {"path": "/segments/v1/*", "status": 429, "retryAfter": 120, "message": "slow down"}
    control.post("/__emulator/faults", json=fault).raise_for_status()
    started = time.monotonic()
    result = with_client(
        mcp.url, lambda client: client.call_tool("getsegment", {"segmentId": "everyone"})
    )
    assert time.monotonic() - started < 5
    assert result.is_error
    assert "slow down" in text(result) and "wait 120 s" in text(result), text(result)

    control.delete("/__emulator/faults")
    brief = {"path": "/segments/v1/*", "status": 429, "retryAfter": 1, "times": 1}
    control.post("/__emulator/faults", json=brief).raise_for_status()
    segment = with_client(mcp.url, lambda client: call(client, "getsegment", segmentId="everyone"))
    assert segment["id"] == "everyone"  # a short Retry-After is waited out inside the call


# -- transports -------------------------------------------------------------------------------


def test_handshake_era_client_session_over_streamable_http(mcp: McpThread):
    """The classic `streamable_http_client` + `ClientSession.initialize()` path."""

    async def run() -> tuple[list[str], dict[str, Any]]:
        async with (
            streamable_http_client(mcp.url) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            listing = await session.list_tools()
            result = await session.call_tool("getsegment", {"segmentId": "rageClicks"})
            assert not result.is_error, text(result)
            return [tool.name for tool in listing.tools], result.structured_content

    names, segment = anyio.run(run)
    assert names == TOOLS
    assert segment["id"] == "rageClicks"


def test_mcp_thread_binds_port_zero_and_stops(emulator: ServerThread):
    server = McpThread(emulator.base_url, KEY, port=0)
    assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}/mcp"
    with server:
        answer = httpx.post(server.url, json={}, headers={"Host": "evil.example"}, timeout=5)
        assert answer.status_code == 421  # DNS-rebinding protection on a loopback bind
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1)
    assert build_server().name == "fullstory-segment-export"


def test_mcp_answers_the_names_the_api_answers(emulator: ServerThread):
    """The emulator's HostPolicy, not the SDK's fixed list: --allowed-hosts applies here too,
    and a foreign Origin is refused as on the control API."""
    hosts = HostPolicy.build("127.0.0.1", ("emulator.test",))
    with McpThread(emulator.base_url, KEY, port=0, hosts=hosts) as server:

        def post(headers: dict[str, str]) -> httpx.Response:
            return httpx.post(server.url, json={}, headers=headers, timeout=5)

        foreign = post({"Host": "evil.example:9090"})
        assert foreign.status_code == 421
        assert "'evil.example:9090'" in foreign.text and "--allowed-hosts" in foreign.text
        for host in ("emulator.test:9090", f"localhost:{server.port}"):
            assert post({"Host": host}).status_code not in (403, 421), host
        page = post({"Origin": "https://evil.example"})
        assert page.status_code == 403 and "--allowed-hosts" in page.text
        own = f"http://127.0.0.1:{server.port}"
        assert post({"Origin": own}).status_code not in (403, 421)


def stdio_parameters(emulator: ServerThread) -> StdioServerParameters:
    code = (
        "from fullstory_emulator.client.mcp import main; "
        f"main(['--stdio', '--api-url', {emulator.base_url!r}])"
    )
    return StdioServerParameters(
        command=sys.executable, args=["-c", code], env={"FULLSTORY_API_KEY": KEY}, cwd=str(ROOT)
    )


def test_stdio_main_serves_the_tools(emulator: ServerThread):
    async def body(client: Client) -> tuple[list[str], dict[str, Any]]:
        listing = await client.list_tools()
        return [tool.name for tool in listing.tools], await call(client, "listsegments", limit=2)

    async def run() -> tuple[list[str], dict[str, Any]]:
        async with Client(stdio_parameters(emulator), read_timeout_seconds=20) as client:
            return await body(client)

    names, listed = anyio.run(run)
    assert names == TOOLS
    assert [s["id"] for s in listed["segments"]] == ["everyone", "rageClicks"]


def test_stdio_stdout_carries_nothing_but_the_protocol(emulator: ServerThread):
    params = stdio_parameters(emulator)
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "getsegment", "arguments": {"segmentId": "everyone"}},
        },
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "getsegment", "arguments": {"segmentId": "missing"}},
        },
    ]
    process = subprocess.Popen(
        [params.command, *params.args],
        cwd=params.cwd,
        env={**os.environ, **(params.env or {})},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: list[dict[str, Any]] = []
    assert process.stdin and process.stdout
    for message in messages:
        process.stdin.write(json.dumps(message).encode() + b"\n")
        process.stdin.flush()
        if "id" in message:
            lines.append(json.loads(process.stdout.readline()))
    process.stdin.close()
    rest = process.stdout.read()
    process.wait(timeout=10)
    assert rest.strip() == b"", rest  # nothing else was written to stdout
    assert [line["id"] for line in lines] == [1, 2, 3]
    assert lines[1]["result"]["structuredContent"]["id"] == "everyone"
    assert lines[2]["result"]["isError"] is True
    assert "segment 'missing' not found" in lines[2]["result"]["content"][0]["text"]


def test_main_serves_streamable_http(emulator: ServerThread):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "from fullstory_emulator.client.mcp import main; "
        f"main(['--port', '{port}', '--api-url', {emulator.base_url!r}, '--api-key', {KEY!r}])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/mcp"
        segment = with_client(url, lambda client: call(client, "getsegment", segmentId="everyone"))
        assert segment["id"] == "everyone"
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert f"MCP server on http://127.0.0.1:{port}/mcp" in err.decode()


def test_main_rejects_unknown_flags(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        main(["--transport", "sse"])
    assert "fullstory-emulator mcp" in capsys.readouterr().err


# -- the streaming preview parser -------------------------------------------------------------


def feed(payload: bytes, want: int, step: int = 7) -> PreviewParser:
    """Hand the parser `payload` a few bytes at a time, as a slow download would, and stop when
    it says it has enough, as the client does."""
    sink = PreviewParser(want=want)
    assert isinstance(sink, Sink)
    for offset in range(0, len(payload), step):
        if sink.write(payload[offset : offset + step]):
            return sink
    sink.finish()
    return sink


def test_preview_parser_handles_chunk_boundaries_quotes_and_big_ids():
    big = 2**62 + 12345
    rows = [{"IndvId": big, "EventType": "click", "n": i} for i in range(5)]
    ndjson = "\n".join(json.dumps(row) for row in rows)  # no final newline
    sink = feed(gzip.compress(ndjson.encode()), want=10)
    assert sink.format == "FORMAT_NDJSON" and len(sink.rows) == 5
    assert sink.rows[0] == {"IndvId": str(big), "EventType": "click", "n": 0}

    sink = feed(gzip.compress(json.dumps(rows).encode()), want=3)
    assert sink.format == "FORMAT_JSON" and [row["n"] for row in sink.rows] == [0, 1, 2]

    table = 'IndvId,EventTargetText,Empty\r\n1,"say ""hi""\nthere",\r\n2,plain,x\r\n'
    two_members = gzip.compress(table.encode()[:30]) + gzip.compress(table.encode()[30:])
    sink = feed(two_members, want=10, step=3)
    assert sink.format == "FORMAT_CSV" and sink.columns == ["IndvId", "EventTargetText", "Empty"]
    assert sink.rows == [
        {"IndvId": "1", "EventTargetText": 'say "hi"\nthere'},
        {"IndvId": "2", "EventTargetText": "plain", "Empty": "x"},
    ]

    sink = PreviewParser(want=10)
    assert sink.write(gzip.compress(b'{"a": 1}\n{"b"')) is False
    assert (sink.rows, sink.format) == ([{"a": 1}], "FORMAT_NDJSON")
    sink.restart()  # the client restarts a sink before fetching a broken download again
    assert (sink.rows, sink.format) == ([], None)
