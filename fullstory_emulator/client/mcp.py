"""The MCP adapter: FullStory's Segment Export API as tools an agent can call.

The capability spec names four tools (`listsegments`, `getsegment`, `createsegmentexport`,
`getoperationstatus`); `getexportlocation` and `previewexport` finish the workflow so an agent
can look at the data without handling signed URLs or gzip itself. Every call goes through
`FullStoryClient`, so the adapter works against this emulator (the default, beside it on 8080)
and against api.fullstory.com with a real key alike.

Served over streamable HTTP at `/mcp` (port 9090 by default) or over stdio for desktop agents.
In stdio mode nothing but the protocol may reach stdout: the SDK points fd 1 at stderr while it
serves, and this module itself only ever writes to stderr.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import csv
import inspect
import json
import logging
import os
import socket
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Annotated, Any, TypeGuard, TypeVar

import anyio
import httpx
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__, netloc
from ..auth import MCP_KEY
from ..contract import (
    COMPLETED,
    FAILURE_STATES,
    FORMAT_EXTENSIONS,
    FORMATS,
    PENDING,
    TYPE_EVENT,
    EventScope,
    ExportFormat,
    ExportType,
)
from ..hosts import FLAG as ALLOWED_HOSTS_FLAG
from ..hosts import HostPolicy, parse_allowed_hosts
from ..serving import UvicornThread, listen
from .core import FullStoryClient, FullStoryError, Retry

DEFAULT_API_URL = "http://127.0.0.1:8080"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9090
MCP_PATH = "/mcp"
MAX_WAIT_SECONDS = 10.0  # longest retry wait inside one tool call; longer ones go to the agent
PREVIEW_MAX_ROWS = 100
MAX_ID_CHARS = 1000  # of an id sent in a URL path; real ones have tens of characters
_JS_SAFE_INT = 2**53 - 1

PREVIEW_RENEWALS = 2  # fresh URLs a preview asks for when one expires on the way
_FAILED = "/".join(FAILURE_STATES)

INSTRUCTIONS = f"""\
FullStory Segment Export API (a local emulator by default, or api.fullstory.com).
Workflow: listsegments (or getsegment) to pick a segment id -> createsegmentexport (returns an
operationId) -> getoperationstatus until state is {COMPLETED} (exports take seconds to minutes;
{_FAILED} carry errorDetails) -> getexportlocation for a signed download URL (valid ~5
minutes, no API key needed) or previewexport to read the first rows directly."""

# -- argument types: every schema an agent sees is described here ------------------------------


class TimeRange(BaseModel):
    """A time window; an empty string leaves that side open."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(
        "",
        description="Inclusive start, RFC 3339 (e.g. 2024-01-01T00:00:00Z). Empty: from the "
        "beginning of the data.",
    )
    end: str = Field(
        "",
        description="Exclusive end, RFC 3339 (e.g. 2024-02-01T00:00:00.000Z). Empty: until now.",
    )


def _inline(model: type[BaseModel], description: str) -> Any:
    """An optional `model` argument whose schema is written inline, not behind a `$ref`, so
    agents that do not resolve `$defs` still see the field descriptions."""
    schema = model.model_json_schema()
    schema.pop("title", None)
    return WithJsonSchema({"anyOf": [schema, {"type": "null"}], "description": description})


SegmentId = Annotated[
    str,
    Field(
        min_length=1,
        description="Segment id: a built-in ('everyone', 'rageClicks') or a custom id such as "
        "'htIXCSMv9Q9M' (see listsegments).",
    ),
]
OperationId = Annotated[
    str, Field(min_length=1, description="The operationId that createsegmentexport returned.")
]
OptionalExportId = Annotated[
    str | None,
    Field(
        description="searchExportId from a COMPLETED operation's results (give this or "
        "operationId)."
    ),
]
OptionalOperationId = Annotated[
    str | None,
    Field(
        description="operationId of a COMPLETED export; its searchExportId is looked up "
        "(give this or searchExportId)."
    ),
]
TIME_RANGE_HELP = (
    "Only events whose EventStart is in [start, end), RFC 3339. Omit, or leave start/end "
    "empty, for open-ended."
)
SEGMENT_RANGE_HELP = (
    "Overrides the segment's own window (by default its last 30 days). "
    "{'start': '', 'end': ''} means all time."
)


# -- structured outputs: the API's own camelCase JSON, with room for fields it adds --------------


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class Segment(_Wire):
    id: str = Field(description="Segment id, for getsegment and createsegmentexport.")
    name: str | None = None
    creator: str | None = Field(None, description="Creator's email; empty for built-ins.")
    created: str | None = Field(None, description="RFC 3339; absent for built-in segments.")
    url: str | None = Field(None, description="The segment in the FullStory app.")


class SegmentList(BaseModel):
    segments: list[Segment]
    count: int = Field(description="Number of segments returned.")
    more: bool = Field(description="True when more segments exist beyond `limit`.")


class ExportCreated(_Wire):
    operationId: str = Field(description="Poll it with getoperationstatus.")


class OperationResults(_Wire):
    searchExportId: str | None = Field(None, description="For getexportlocation and previewexport.")
    expires: str | None = Field(None, description="When the export itself is deleted.")


class Operation(_Wire):
    id: str
    type: str | None = Field(None, description="SEARCH_EXPORT for segment exports.")
    state: str = Field(description=f"{PENDING}, {COMPLETED}, or {_FAILED} (see errorDetails).")
    estimatePctComplete: int | None = Field(None, description="0..100, never decreasing.")
    step: str | None = None
    errorDetails: str | None = Field(None, description="Why a failed export failed.")
    results: OperationResults | None = Field(None, description="Only once COMPLETED.")
    createdAt: str | None = None
    finishedAt: str | None = None
    details: Any = None


class ExportLocation(BaseModel):
    searchExportId: str
    location: str = Field(
        description="Signed URL of the gzip-compressed export; fetch it without an API key."
    )
    expires: str = Field(description="When this URL stops working (RFC 3339); ask again then.")


class ExportPreview(BaseModel):
    searchExportId: str
    format: ExportFormat = Field(description="The file's format, read from its content.")
    columns: list[str] = Field(description="CSV header, or the keys seen in the rows shown.")
    rows: list[dict[str, Any]] = Field(
        description="The first rows. Empty fields are left out; integers beyond 2^53 (ids) are "
        "strings so that JavaScript clients keep every digit."
    )
    rowCount: int = Field(description="Number of rows shown.")
    moreRows: bool = Field(description="True when the export has more rows than shown.")


READ = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)
CREATE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)

# -- calling the API ------------------------------------------------------------------------------


def _refuse_long_waits(retry: Retry) -> None:
    """A tool call waits out a short Retry-After; a long one goes back to the agent."""
    if retry.delay > MAX_WAIT_SECONDS:
        raise ToolError(f"{retry.error}; it asks to wait {retry.delay:.0f} s before trying again")


@dataclass(frozen=True)
class _Api:
    """Where the tools send their calls; one short-lived client per call keeps threads apart."""

    url: str
    key: str

    @contextlib.contextmanager
    def client(self) -> Iterator[FullStoryClient]:
        """A client whose failures arrive as ToolErrors carrying the server's message."""
        with FullStoryClient(
            self.url,
            self.key,
            max_retries=2,
            backoff=0.5,
            timeout=30.0,
            on_retry=_refuse_long_waits,
        ) as client:
            try:
                yield client
            except FullStoryError as exc:
                raise ToolError(str(exc)) from exc
            except httpx.InvalidURL as exc:  # e.g. a 100 KB argument: the agent's to fix
                raise ToolError(f"the request could not be sent: {exc}") from exc


def _path_id(name: str, value: str) -> str:
    """An id that goes into a URL path, refused before sending when no id is that long: the
    agent reads why in one line (httpx would refuse a URL past 64 KiB with a traceback)."""
    if len(value) > MAX_ID_CHARS:
        raise ToolError(
            f"{name} too long: {len(value):,} characters (an id has at most {MAX_ID_CHARS:,})"
        )
    return value


def _export_id(
    client: FullStoryClient, search_export_id: str | None, operation_id: str | None
) -> str:
    """The searchExportId given, or the one a COMPLETED operation points at."""
    if bool(search_export_id) == bool(operation_id):
        raise ToolError("give exactly one of searchExportId and operationId")
    if search_export_id:
        return _path_id("searchExportId", search_export_id)
    operation = client.get_operation(_path_id("operationId", str(operation_id)))
    state = operation.get("state")
    if state == PENDING:
        raise ToolError(
            f"operation {operation_id} is still PENDING ({operation.get('estimatePctComplete')}%"
            f", step {operation.get('step') or '-'}); poll getoperationstatus until COMPLETED"
        )
    if state in FAILURE_STATES:
        raise ToolError(
            f"operation {operation_id} ended in {state}: "
            f"{operation.get('errorDetails') or 'no errorDetails given'}"
        )
    if state != COMPLETED:
        raise ToolError(f"operation {operation_id} is in state {state!r}, unknown to this tool")
    export_id = (operation.get("results") or {}).get("searchExportId")
    if not export_id:
        raise ToolError(f"operation {operation_id} is COMPLETED but has no searchExportId")
    return str(export_id)


# -- previewing a download without fetching all of it --------------------------------------------


def _js_safe_int(text: str) -> int | str:
    value = int(text)
    return value if abs(value) <= _JS_SAFE_INT else text


_DECODER = json.JSONDecoder(parse_int=_js_safe_int)
_SNIFF: dict[str, ExportFormat] = {"[": "FORMAT_JSON", "{": "FORMAT_NDJSON"}


class PreviewParser:
    """A `Sink` for `FullStoryClient.download_export` that gunzips and parses rows as bytes
    arrive, and says "enough" once it has `want` of them, so a preview fetches only the start.

    The format is sniffed from the first character (`[` JSON, `{` NDJSON, else CSV), since the
    download's file name is only known once it is complete.
    """

    def __init__(self, want: int) -> None:
        self.want = want
        self.restart()

    def restart(self) -> None:
        """The download starts over (its body broke off): forget everything parsed."""
        self.format: ExportFormat | None = None
        self.columns: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self._buffer = ""  # decoded text not yet parsed
        self._scan = 0  # CSV: how far into _buffer quotes have been tracked
        self._in_quotes = False
        self._gunzip = zlib.decompressobj(wbits=31)
        self._decode = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def enough(self) -> bool:
        return len(self.rows) >= self.want

    def write(self, chunk: bytes) -> bool:
        """Parse the next bytes; True once `want` rows are in (the download may stop)."""
        data = bytes(chunk)
        while data and not self.enough:
            if self._gunzip.eof:  # a multi-member gzip file: the next member starts here
                self._gunzip = zlib.decompressobj(wbits=31)
            self._feed(self._decode.decode(self._gunzip.decompress(data)))
            data = self._gunzip.unused_data if self._gunzip.eof else b""
        return self.enough

    def finish(self) -> None:
        """The download ended: parse what is left (a last line without a newline)."""
        self._feed(self._decode.decode(b"", final=True))
        rest = self._buffer.strip()
        if self.format == "FORMAT_NDJSON" and rest:
            self._add(_DECODER.decode(rest))
        elif self.format == "FORMAT_CSV" and rest:
            self._csv_record(self._buffer.rstrip("\r\n"))
        elif self.format == "FORMAT_JSON" and rest not in ("", "]"):
            raise ValueError(f"the JSON export ends in something unparsable: {rest[:80]!r}")
        self._buffer = ""

    # parsing
    def _feed(self, text: str) -> None:
        if not text:
            return
        self._buffer += text
        if self.format is None:
            head = self._buffer.lstrip("\ufeff \t\r\n")
            if not head:
                return
            self._buffer = head
            self.format = _SNIFF.get(head[0], "FORMAT_CSV")
            if self.format == "FORMAT_JSON":
                self._buffer = head[1:]
        if self.format == "FORMAT_NDJSON":
            *lines, self._buffer = self._buffer.split("\n")
            for line in lines:
                if self.enough:
                    return
                if line.strip():
                    self._add(_DECODER.decode(line))
        elif self.format == "FORMAT_JSON":
            self._json_objects()
        else:
            self._csv_records()

    def _json_objects(self) -> None:
        text, pos = self._buffer, 0
        while True:
            while pos < len(text) and text[pos] in " \t\r\n,":
                pos += 1
            if pos >= len(text) or text[pos] == "]":
                break
            try:
                row, pos = _DECODER.raw_decode(text, pos)
            except json.JSONDecodeError:
                break  # an object cut off by the chunk boundary: wait for more
            self._add(row)
            if self.enough:
                break
        self._buffer = text[pos:]

    def _csv_records(self) -> None:
        """Split on newlines outside quotes (a quoted field may hold a newline)."""
        text, pos = self._buffer, self._scan
        while True:
            if self._in_quotes:
                quote = text.find('"', pos)
                if quote < 0:
                    pos = len(text)
                    break
                self._in_quotes, pos = False, quote + 1
                continue
            newline = text.find("\n", pos)
            quote = text.find('"', pos, newline if newline >= 0 else len(text))
            if quote >= 0:
                self._in_quotes, pos = True, quote + 1
                continue
            if newline < 0:
                pos = len(text)
                break
            record, text, pos = text[:newline].rstrip("\r"), text[newline + 1 :], 0
            self._csv_record(record)
            if self.enough:
                break
        self._buffer, self._scan = text, pos

    def _csv_record(self, record: str) -> None:
        values = next(csv.reader([record]), [])
        if not self.columns:
            self.columns = values
            return
        if values:
            self._add({k: v for k, v in zip(self.columns, values, strict=False) if v != ""})

    def _add(self, row: Any) -> None:
        self.rows.append(row if isinstance(row, dict) else {"value": row})


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _preview(client: FullStoryClient, export_id: str, limit: int) -> ExportPreview:
    """Download until `limit` + 1 rows are parsed (the extra one tells whether there are more)."""
    parser = PreviewParser(want=limit + 1)
    try:
        done = client.download_export(export_id, parser, max_renewals=PREVIEW_RENEWALS)
        if done.complete:
            parser.finish()
    except (zlib.error, ValueError) as exc:
        raise ToolError(
            f"export {export_id} could not be read as gzip CSV/JSON/NDJSON: {exc}"
        ) from exc
    rows = parser.rows[:limit]
    columns = parser.columns if parser.format == "FORMAT_CSV" else _columns(rows)
    return ExportPreview(
        searchExportId=export_id,
        format=parser.format or _format_from_name(done.filename),
        columns=columns,
        rows=rows,
        rowCount=len(rows),
        moreRows=len(parser.rows) > limit,
    )


def _is_format(value: str) -> TypeGuard[ExportFormat]:
    return value in FORMATS


def _format_from_name(filename: str) -> ExportFormat:
    """An empty file has no content to sniff: fall back on the file name's extension."""
    extension = filename.removesuffix(".gz").rpartition(".")[2]
    for wire, known in FORMAT_EXTENSIONS.items():
        if known == extension and _is_format(wire):
            return wire
    return "FORMAT_NDJSON"


# -- the server -----------------------------------------------------------------------------------

_F = TypeVar("_F", bound=Callable[..., Any])


@contextlib.contextmanager
def _root_logging_untouched() -> Iterator[None]:
    """MCPServer() calls logging.basicConfig(INFO): undo it, so the emulator's process does not
    start printing every library's INFO lines (httpx logs each request) to stderr."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _resolve(api_url: str | None, api_key: str | None) -> _Api:
    key = api_key or os.environ.get("FULLSTORY_API_KEY") or MCP_KEY
    return _Api((api_url or DEFAULT_API_URL).rstrip("/"), key)


def build_server(api_url: str | None = None, api_key: str | None = None) -> MCPServer:
    """The MCP server with its six tools, calling the API at `api_url` with `api_key`.

    `api_url` defaults to the emulator at http://127.0.0.1:8080; `api_key` to FULLSTORY_API_KEY,
    else the adapter's own emulator key (a tenant apart from the demo key's).
    """
    api = _resolve(api_url, api_key)
    with _root_logging_untouched():
        server: MCPServer = MCPServer(
            "fullstory-segment-export",
            title="FullStory Segment Export",
            instructions=INSTRUCTIONS,
            version=__version__,
        )

    def tool(name: str, title: str, annotations: ToolAnnotations) -> Callable[[_F], _F]:
        def register(fn: _F) -> _F:
            server.add_tool(
                fn,
                name=name,
                title=title,
                description=inspect.cleandoc(fn.__doc__ or ""),
                annotations=annotations.model_copy(update={"title": title}),
                structured_output=True,
            )
            return fn

        return register

    @tool("listsegments", "List segments", READ)
    def listsegments(
        limit: Annotated[
            int, Field(ge=1, le=1000, description="Most segments to return (pages are followed).")
        ] = 100,
        creator: Annotated[
            str | None, Field(description="Only segments created by this email address.")
        ] = None,
    ) -> SegmentList:
        """List the organisation's segments (id, name, creator, created, url).

        Built-ins such as 'everyone' and 'rageClicks' are included; use an id with getsegment
        or createsegmentexport."""
        with api.client() as client:
            page = min(limit + 1, 100)
            found = list(islice(client.iter_segments(limit=page, creator=creator), limit + 1))
        segments = [Segment.model_validate(s) for s in found[:limit]]
        return SegmentList(segments=segments, count=len(segments), more=len(found) > limit)

    @tool("getsegment", "Get a segment", READ)
    def getsegment(segmentId: SegmentId) -> Segment:
        """Get one segment by id (an unknown id is an error saying so)."""
        with api.client() as client:
            return Segment.model_validate(client.get_segment(_path_id("segmentId", segmentId)))

    @tool("createsegmentexport", "Create a segment export", CREATE)
    def createsegmentexport(
        segmentId: SegmentId,
        type: Annotated[
            ExportType,
            Field(
                description="TYPE_EVENT: the events of the segment's individuals (widened by "
                "scope); TYPE_INDIVIDUAL: one row of aggregates per individual; TYPE_PAGES and "
                "TYPE_SESSIONS widen an event export to whole pages or sessions."
            ),
        ] = TYPE_EVENT,
        format: Annotated[
            ExportFormat,
            Field(description="File format; the file is always gzip-compressed."),
        ] = "FORMAT_NDJSON",
        timeRange: Annotated[TimeRange | None, _inline(TimeRange, TIME_RANGE_HELP)] = None,
        segmentTimeRange: Annotated[
            TimeRange | None, _inline(TimeRange, SEGMENT_RANGE_HELP)
        ] = None,
        timezone: Annotated[
            str | None,
            Field(
                description="IANA time zone for the segment's relative dates, e.g. "
                "'America/New_York'. Default UTC."
            ),
        ] = None,
        fields: Annotated[
            list[str] | None,
            Field(
                description="Columns to export, e.g. ['IndvId', 'EventStart', 'EventType', "
                "'PageUrl', 'user_*']. 'user_*', 'evt_*', 'page_*' stand for all user, event or "
                "page custom variables. No duplicates. Omit for all default fields and all "
                "custom variables."
            ),
        ] = None,
        scope: Annotated[
            EventScope | None,
            Field(
                description="Event exports: which events per match, from narrowest: "
                "SCOPE_EVENT (only matching events), SCOPE_PAGES (all events of matching "
                "pages), SCOPE_SESSIONS (of matching sessions), SCOPE_INDIVIDUAL (all events "
                "of matching individuals)."
            ),
        ] = None,
    ) -> ExportCreated:
        """Start an asynchronous export of a segment; returns an operationId.

        Each call starts a new export. Poll getoperationstatus until COMPLETED, then use
        getexportlocation or previewexport. Needs an Admin or Architect API key."""
        with api.client() as client:
            operation_id = client.create_export(
                segmentId,
                type=type,
                format=format,
                time_range=timeRange.model_dump() if timeRange else None,
                segment_time_range=segmentTimeRange.model_dump() if segmentTimeRange else None,
                timezone=timezone,
                fields=fields,
                scope=scope,
            )
        return ExportCreated(operationId=operation_id)

    @tool("getoperationstatus", "Get operation status", READ)
    def getoperationstatus(operationId: OperationId) -> Operation:
        """Get an export operation's state: PENDING (estimatePctComplete, step), COMPLETED
        (results.searchExportId) or ERROR/FAILED (errorDetails). Poll every few seconds."""
        with api.client() as client:
            operation = client.get_operation(_path_id("operationId", operationId))
            return Operation.model_validate(operation)

    @tool("getexportlocation", "Get export download URL", READ)
    def getexportlocation(
        searchExportId: OptionalExportId = None, operationId: OptionalOperationId = None
    ) -> ExportLocation:
        """Get a fresh signed URL for a finished export and when it expires (minutes).

        The file is gzip-compressed CSV, JSON or NDJSON; download it without an API key and
        ask again once the URL expires."""
        with api.client() as client:
            export_id = _export_id(client, searchExportId, operationId)
            location, expires = client.export_location(export_id)
        return ExportLocation(searchExportId=export_id, location=location, expires=expires)

    @tool("previewexport", "Preview an export", READ)
    def previewexport(
        searchExportId: OptionalExportId = None,
        operationId: OptionalOperationId = None,
        limit: Annotated[
            int, Field(ge=1, le=PREVIEW_MAX_ROWS, description="Rows to show (1..100).")
        ] = 10,
    ) -> ExportPreview:
        """Download a finished export and return its first rows, parsed from CSV, JSON or NDJSON.

        Only the start of the file is fetched, so this is cheap even for large exports."""
        with api.client() as client:
            export_id = _export_id(client, searchExportId, operationId)
            return _preview(client, export_id, limit)

    return server


class HostGuard:
    """The emulator's own Host and Origin rules (`hosts.HostPolicy`) in front of the SDK's
    app, in place of the SDK's fixed list: the MCP port then answers the names the API port
    answers (`--allowed-hosts` included), 421 to another Host and 403 to a foreign Origin."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            host, origin = headers.get("host"), headers.get("origin")
            refusal = None
            if not self.policy.allows_host(host):
                refusal = PlainTextResponse(self.policy.host_refusal(host or ""), 421)
            elif origin is not None and not self.policy.allows_origin(
                origin, scope["scheme"], host
            ):
                refusal = PlainTextResponse(self.policy.origin_refusal(origin), 403)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def mcp_asgi_app(
    api_url: str | None = None,
    api_key: str | None = None,
    *,
    host: str = DEFAULT_HOST,
    hosts: HostPolicy | None = None,
) -> ASGIApp:
    """An ASGI app serving streamable HTTP at `/mcp`; run it with uvicorn (lifespan on).

    `host` is the interface it will be bound to; `hosts` the Host and Origin headers it
    answers (default: as the emulator's API on that interface, without --allowed-hosts): on a
    loopback address a page of another site cannot reach it (DNS rebinding)."""
    app = build_server(api_url, api_key).streamable_http_app(
        streamable_http_path=MCP_PATH,
        host=host,
        # The SDK's own check knows only exact names; HostGuard makes the same decision as the
        # API's port. The SDK still requires JSON on POST.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return HostGuard(app, hosts or HostPolicy.build(host))


def _uvicorn(
    app: ASGIApp, log_level: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> uvicorn.Server:
    # lifespan "on": the SDK's session manager runs in it. The grace period: a client's open
    # GET stream would otherwise hold shutdown forever.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


def _url(host: str, port: int) -> str:
    return netloc.local_url("http", host, port, MCP_PATH)


class McpThread(UvicornThread):
    """The streamable-HTTP MCP server under uvicorn in a daemon thread (next to the emulator, or
    in tests). The socket is bound first, so `port=0` gives a real `.port` and `.url` at once;
    `sock` hands over one bound already (the emulator binds it before importing this module)."""

    def __init__(
        self,
        api_url: str | None = None,
        api_key: str | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        sock: socket.socket | None = None,
        hosts: HostPolicy | None = None,
    ) -> None:
        sock = sock if sock is not None else listen(host, port)
        self.host = host
        self.port: int = sock.getsockname()[1]
        app = mcp_asgi_app(api_url, api_key, host=host, hosts=hosts)
        super().__init__(_uvicorn(app, "warning"), sock, "mcp")

    @property
    def url(self) -> str:
        """The MCP endpoint, e.g. http://127.0.0.1:9090/mcp."""
        return _url(self.host, self.port)


def run_stdio(api_url: str | None = None, api_key: str | None = None) -> None:
    """Serve MCP over stdin/stdout until stdin closes (how desktop agents launch servers)."""
    anyio.run(build_server(api_url, api_key).run_stdio_async)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fullstory-emulator mcp",
        description="Serve FullStory's Segment Export API as MCP tools (listsegments, getsegment,"
        " createsegmentexport, getoperationstatus, getexportlocation, previewexport).",
    )
    parser.add_argument(
        "--stdio", action="store_true", help="speak MCP on stdin/stdout (default: streamable HTTP)"
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="HTTP interface (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="HTTP port (default: %(default)s)"
    )
    parser.add_argument(
        ALLOWED_HOSTS_FLAG,
        type=parse_allowed_hosts,
        default=None,
        metavar="HOST[,HOST...]",
        help="Host names answered besides localhost, 127.x and [::1], on any port ('*': any); "
        "default: those only on a loopback --host, any host on another",
    )
    parser.add_argument(
        "--api-url",
        default=DEFAULT_API_URL,
        help="FullStory API base URL (default: the emulator, %(default)s; "
        "production: https://api.fullstory.com)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"API key (default: $FULLSTORY_API_KEY, else {MCP_KEY}, a tenant of its own on the "
        "emulator); "
        "prefer the variable, a flag shows in the process list",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """`fullstory-emulator mcp`: the MCP server over streamable HTTP, or stdio with --stdio."""
    args = _parser().parse_args(argv)
    if args.stdio:
        run_stdio(args.api_url, args.api_key)
        return
    hosts = HostPolicy.build(args.host, args.allowed_hosts)
    app = mcp_asgi_app(args.api_url, args.api_key, host=args.host, hosts=hosts)
    server = _uvicorn(app, "info", args.host, args.port)
    print(
        f"MCP server on {_url(args.host, args.port)} (streamable HTTP), tools calling "
        f"{args.api_url}",
        file=sys.stderr,
    )
    server.run()


if __name__ == "__main__":
    main()
