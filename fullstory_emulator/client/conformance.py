"""The probes of `fullstory-emulator conformance`, what is observed of their answers, and how two
sets of observations are compared and reported.

The same scripted, read-mostly requests are made of a target (production with a real key, or an
emulator) and of a reference emulator; each answer is reduced to what a client depends on: its
status, the headers that matter, its JSON *shape* (key names and JSON types, recursively, an
array as the union of its elements' shapes, RFC 3339 strings and integers told apart from other
strings and from floats) and the values a client branches on (operation type and state names,
error `code`, gzip validity, how `&` `<` `>` are written, and in the rows what a client relies
on: column types, 64-bit ids, timestamp formats, custom-variable suffixes, never which columns
the data happens to fill). Ids, times, messages and row values are never kept, and a download
URL is reduced to its query parameters' names, so a report holds no key, no signature and no
personal data and can be sent as it is.

This module speaks to the API through `FullStoryClient.exchange` (paced under the rate limit,
429s waited out as `Retry-After` says); the reference emulator lives in
`fullstory_emulator.testing.conformance`, which runs these probes against both.
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from .. import __version__
from ..contract import (
    CUSTOM_JSON_TYPES,
    CUSTOM_KINDS,
    EVENT_FIELDS,
    FAILURE_STATES,
    ID_FIELDS,
    INDIVIDUAL_FIELDS,
    PENDING,
    TERMINAL_STATES,
    TYPE_EVENT,
)
from ..recording import json_type
from ..timestamps import format_rfc3339
from .core import (
    TRANSPORT_ERRORS,
    FullStoryClient,
    FullStoryError,
    Retry,
    filename_from_disposition,
)

if TYPE_CHECKING:
    from .core import Response

REPORT_FORMAT = 1
SEGMENT_ROUTE = "/segments/v1/{id}"
OPERATION_ROUTE = "/operations/v1/{id}"
CANCEL_ROUTE = "/operations/v1/{id}/cancel"
EXPORTS = "/segments/v1/exports"
# Ids no org has: shaped like real ones (12 and 20 letters and digits), so a server that checks
# an id's form before looking it up still answers "not found" rather than "malformed".
UNKNOWN_SEGMENT = "cfNoSuchSeg0"
UNKNOWN_OPERATION = "cfNoSuchOperation000"
# The unknown enum value of the deliberately bad body: & < > in it, so a server that echoes it in
# its message shows how it writes them in a JSON string.
BAD_TYPE = "TYPE_<&>"
# Rows whose shape is taken; the download stops there. Enough for a short window of an
# emulator's default world to be read whole, so the keys seen do not hang on a few rows.
ROWS_READ = 1000
BYTES_READ = 8 << 20  # ... or after this many bytes of gzip, whichever comes first
CANCEL_WAIT = 30.0  # seconds a cancelled export may take to leave PENDING
ABSENT = "(absent)"  # a header that was not sent
NOT_RUN = "(not run)"  # an aspect a side could not observe because an earlier step failed

# Every probe, in the order it runs, with the request it makes.
PROBES: dict[str, str] = {
    "no_key": "GET /segments/v1 without Authorization",
    "list_segments": "GET /segments/v1",
    "get_segment": "GET /segments/v1/{segmentId}",
    "unknown_segment": "GET /segments/v1/{an unknown id}",
    "create_export": "POST /segments/v1/exports (TYPE_EVENT, FORMAT_NDJSON, a short window)",
    "poll_export": "GET /operations/v1/{operationId} until it is no longer PENDING",
    "export_results": "GET /search/v1/exports/{searchExportId}/results",
    "download": "GET the location, without Authorization",
    "cancel_finished": "POST /operations/v1/{operationId}/cancel on the finished export",
    "bad_body": f"POST /segments/v1/exports with type {BAD_TYPE!r}",
    "unknown_operation": "GET /operations/v1/{an unknown id}",
    "cancel_export": "POST a second export, cancel it at once, GET it until not PENDING",
    "rate_limit": "every answer above",
}

Shape = Any  # str | dict[str, Shape] | list[Shape]: see `shape`
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")
# In JSON text, & < > can only stand in strings: raw, or as \u0026 \u003c \u003e; `\\.` eats
# every other escape, so an escaped backslash followed by "u0026" is not mistaken for one.
_HTML_TOKENS = re.compile(r"\\u00(?:26|3[cCeE])|\\.|[&<>]", re.DOTALL)
_RATE_HEADER = re.compile(r"(?:x-)?rate-?limit", re.IGNORECASE)


class ConformanceError(Exception):
    """The target cannot be checked at all (unreachable, the key refused, no such segment)."""


# -- what is observed of an answer -----------------------------------------------------------


def shape(value: Any, *, optional: bool = True) -> Shape:
    """The JSON shape of `value`: a type name (`null`, `boolean`, `integer`, `number`, `string`,
    `rfc3339`), an object as `{key: shape}`, an array as `[union of its elements]` (`[]` when
    empty). `optional` marks a key that some elements of an array lack with `absent`."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return "rfc3339" if _RFC3339.fullmatch(value) else "string"
    if isinstance(value, dict):
        return {key: shape(value[key], optional=optional) for key in sorted(value)}
    if isinstance(value, list):
        if not value:
            return []
        return [union((shape(item, optional=optional) for item in value), optional=optional)]
    if isinstance(value, bool | int | float):
        return json_type(value)
    return type(value).__name__


def union(shapes: Iterable[Shape], *, optional: bool = True) -> Shape:
    """One shape that covers all of `shapes`: objects merge key by key, arrays element by
    element, differing type names join as `a|b`; anything else is `{"anyOf": [...]}`."""
    distinct: dict[str, Shape] = {}
    for item in shapes:
        distinct.setdefault(_canonical(item), item)
    found = list(distinct.values())
    if len(found) == 1:
        return found[0]
    if all(isinstance(item, dict) for item in found):
        keys = sorted({key for item in found for key in item})
        merged: dict[str, Shape] = {}
        for key in keys:
            parts = [item[key] for item in found if key in item]
            if optional and len(parts) < len(found):
                parts.append("absent")
            merged[key] = union(parts, optional=optional)
        return merged
    if all(isinstance(item, list) for item in found):
        inner = [item[0] for item in found if item]
        return [union(inner, optional=optional)] if inner else []
    names: set[str] = set()
    compound: dict[str, Shape] = {}
    for item in found:
        if isinstance(item, str):
            names.update(item.split("|"))
        else:
            compound.setdefault(_canonical(item), item)
    if not compound:
        return "|".join(sorted(names))
    options = [*sorted(names), *(compound[key] for key in sorted(compound))]
    return {"anyOf": options}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def shape_differences(target: Shape, reference: Shape, path: str = "$") -> list[str]:
    """Where two shapes part, one line per place (a key on one side only, a type that differs)."""
    if target == reference:
        return []
    if isinstance(target, dict) and isinstance(reference, dict) and "anyOf" not in target:
        lines: list[str] = []
        for key in sorted(target.keys() | reference.keys()):
            where = f"{path}.{key}"
            if key not in reference:
                lines.append(f"{where}: only in target ({brief(target[key])})")
            elif key not in target:
                lines.append(f"{where}: only in reference ({brief(reference[key])})")
            else:
                lines.extend(shape_differences(target[key], reference[key], where))
        return lines
    if isinstance(target, list) and isinstance(reference, list) and target and reference:
        return shape_differences(target[0], reference[0], f"{path}[]")
    return [f"{path}: {brief(target)} in target, {brief(reference)} in reference"]


def brief(value: Any, width: int = 60) -> str:
    """A value or shape on one line, cut to `width` characters."""
    text = value if isinstance(value, str) else _canonical(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def html_escaping(text: str) -> str | None:
    """How `&`, `<` and `>` are written in the JSON strings of `text`: `escaped` (as `\\u0026`
    and so on, as Go writes them), `raw`, `mixed`, or None when none of them occurs."""
    escaped = raw = False
    for match in _HTML_TOKENS.finditer(text):
        token = match.group()
        if token in ("&", "<", ">"):
            raw = True
        elif len(token) == 6:
            escaped = True
    if escaped and raw:
        return "mixed"
    return "escaped" if escaped else "raw" if raw else None


def disposition_pattern(header: str | None, segment_name: str | None) -> str:
    """`Content-Disposition` with its file name generalised: the segment's name becomes
    `{segment}` and every digit `#`, so the pattern shows the form (and the extension a client
    derives the format from) without the values."""
    if header is None:
        return ABSENT
    name = filename_from_disposition(header)
    if not name:
        return re.sub(r"\d", "#", header)
    pattern = name
    for variant in _name_variants(segment_name):
        pattern = pattern.replace(variant, "{segment}")
    pattern = re.sub(r"\d", "#", pattern)
    return header.replace(name, pattern) if name in header else f"{header} → {pattern}"


def _name_variants(name: str | None) -> list[str]:
    if not name:
        return []
    variants = {name, name.replace(" ", "_"), name.replace(" ", "-"), name.replace(" ", "")}
    return sorted(variants, key=len, reverse=True)


def _header(response: Response, name: str) -> str:
    value = response.headers.get(name)
    return ABSENT if value is None else value


def _present(response: Response, name: str) -> str:
    return "present" if name in response.headers else "absent"


def _body(response: Response) -> tuple[Any, Shape]:
    """The parsed JSON body (None when there is none) and its shape, or a word for a body that
    is not JSON."""
    text = response.text
    if not text.strip():
        return None, "(empty body)"
    try:
        data = json.loads(text)
    except ValueError:
        return None, "(not JSON)"
    return data, shape(data)


def answer_aspects(response: Response, *, error: bool = False) -> dict[str, Any]:
    """What every API answer is checked for; `error` adds the gRPC `code` of an error body."""
    data, body_shape = _body(response)
    aspects: dict[str, Any] = {
        "status": response.status_code,
        "contentType": _header(response, "content-type"),
        "shape": body_shape,
    }
    if error:
        aspects["code"] = data.get("code", ABSENT) if isinstance(data, dict) else ABSENT
    aspects["htmlEscape"] = html_escaping(response.text)
    return aspects


# -- the probes --------------------------------------------------------------------------------


@dataclass
class Observation:
    """What one probe saw on one side: `aspects` are compared, `info` (how long, how many
    polls) is shown but never counts as a difference; `skipped` says why a probe could not run
    to its end (an earlier step failed)."""

    aspects: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None


def window_ending(now: datetime, length: timedelta) -> tuple[datetime, datetime]:
    """[end - length, end) with `end` the minute `now` lies in: whole minutes, the same for two
    servers whose clocks agree to the minute."""
    end = now.astimezone(UTC).replace(second=0, microsecond=0)
    return end - length, end


def preflight(client: FullStoryClient, segment: str) -> datetime:
    """Ask the target for the segment once: it answers (or ConformanceError says why not) and
    tells its time (`X-Emulator-Now`, else `Date`), which places the export's window."""
    where = public_url(client.base_url)
    try:
        response = client.exchange("GET", f"/segments/v1/{_quote(segment)}", SEGMENT_ROUTE)
    except FullStoryError as exc:  # no answer at all: error answers are returned
        raise ConformanceError(f"cannot reach {where}: {_last_reason(exc)}") from None
    if not isinstance(_body(response)[0], dict):
        raise ConformanceError(
            f"{where} does not answer as the Segment Export API does: GET /segments/v1/"
            f"{{id}} gave HTTP {response.status_code} without a JSON object"
        )
    if response.status_code in (401, 403):
        raise ConformanceError(
            f"{where} refused the API key (HTTP {response.status_code}); pass an Admin or "
            "Architect key with --api-key or FULLSTORY_API_KEY"
        )
    if response.status_code == 404:
        raise ConformanceError(
            f"{where} has no segment {segment!r} (HTTP 404); --segment names one that exists"
        )
    if response.status_code >= 300:
        raise ConformanceError(
            f"{where} answered GET /segments/v1/{{id}} with HTTP {response.status_code}; "
            "try again later"
        )
    return client.server_time() or datetime.now(UTC)


def _last_reason(exc: FullStoryError) -> str:
    """The transport failure of a request that never got an answer, without the URL."""
    text = str(exc.__cause__) if exc.__cause__ else exc.message
    return text or type(exc.__cause__).__name__


class Prober:
    """Runs every probe against one base URL through `client` and keeps what it saw.

    `window` is the export's [start, end); `timeout` bounds the wait for the export (seconds);
    `sleep` is how the prober waits between polls.
    """

    def __init__(
        self,
        client: FullStoryClient,
        *,
        segment: str,
        window: tuple[datetime, datetime],
        timeout: float = 300.0,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.client = client
        self.segment = segment
        self.window = window
        self.timeout = timeout
        self.sleep = sleep
        self.segment_name: str | None = None
        self.rate_limited = 0
        self.retry_after: set[str] = set()
        self.rate_headers: set[str] = set()
        hook = client.on_retry

        def on_retry(retry: Retry) -> None:
            if retry.error.status == 429:
                self.rate_limited += 1
                self.retry_after.add("present" if retry.retry_after is not None else "absent")
            if hook is not None:
                hook(retry)

        client.on_retry = on_retry

    def run(self) -> dict[str, Observation]:
        seen: dict[str, Observation] = {}
        seen["no_key"] = Observation(self._api("GET", "/segments/v1", error=True, authorize=False))
        seen["list_segments"] = self.list_segments()
        seen["get_segment"] = self.get_segment()
        path = f"/segments/v1/{UNKNOWN_SEGMENT}"
        seen["unknown_segment"] = Observation(self._api("GET", path, SEGMENT_ROUTE, error=True))
        created, operation_id = self.create()
        seen["create_export"] = created
        seen["poll_export"], export_id = self.poll(operation_id)
        seen["export_results"], location = self.results(export_id)
        seen["download"] = self.download(location)
        seen["cancel_finished"] = self.cancel_finished(operation_id, seen["poll_export"])
        bad = {**self._export_body(), "type": BAD_TYPE}
        seen["bad_body"] = Observation(self._api("POST", EXPORTS, error=True, json=bad))
        path = f"/operations/v1/{UNKNOWN_OPERATION}"
        seen["unknown_operation"] = Observation(self._api("GET", path, OPERATION_ROUTE, error=True))
        seen["cancel_export"] = self.cancel_at_once()
        seen["rate_limit"] = Observation(
            {
                "retryAfterOn429": "|".join(sorted(self.retry_after)) or None,
                "rateLimitHeaders": sorted(self.rate_headers),
            },
            {"answers429": self.rate_limited},
        )
        return seen

    # -- one request -------------------------------------------------------------------------

    @contextmanager
    def _exchange(
        self, method: str, target: str, route: str | None = None, **options: Any
    ) -> Iterator[Response]:
        response = self.client.exchange(method, target, route, **options)
        try:
            if "://" not in target:
                self.rate_headers.update(
                    name.lower() for name in response.headers if _RATE_HEADER.match(name)
                )
            yield response
        finally:
            response.close()

    def _api(
        self,
        method: str,
        path: str,
        route: str | None = None,
        *,
        error: bool = False,
        **options: Any,
    ) -> dict[str, Any]:
        with self._exchange(method, path, route, **options) as response:
            return answer_aspects(response, error=error)

    # -- the probes ----------------------------------------------------------------------------

    def list_segments(self) -> Observation:
        with self._exchange("GET", "/segments/v1") as response:
            aspects = answer_aspects(response)
            data, _ = _body(response)
        segments = data.get("segments") if isinstance(data, dict) else None
        return Observation(
            aspects, {"segments": len(segments) if isinstance(segments, list) else 0}
        )

    def get_segment(self) -> Observation:
        with self._exchange("GET", f"/segments/v1/{_quote(self.segment)}", SEGMENT_ROUTE) as r:
            aspects = answer_aspects(r)
            data, _ = _body(r)
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            self.segment_name = data["name"]  # kept only to generalise the file name
        return Observation(aspects)

    def _export_body(self) -> dict[str, Any]:
        start, end = (_rfc3339(t) for t in self.window)
        window = {"start": start, "end": end}
        # the segment's own window pinned to the same hour: what the export holds does not
        # depend on the second it was created in
        return {
            "segmentId": self.segment,
            "type": TYPE_EVENT,
            "format": "FORMAT_NDJSON",
            "timeRange": window,
            "segmentTimeRange": window,
        }

    def create(self) -> tuple[Observation, str | None]:
        with self._exchange("POST", EXPORTS, json=self._export_body()) as response:
            aspects = answer_aspects(response)
            data, _ = _body(response)
        operation_id = data.get("operationId") if isinstance(data, dict) else None
        if not isinstance(operation_id, str) or not operation_id:
            return Observation(aspects, skipped="no operationId in the answer"), None
        return Observation(aspects), operation_id

    def _get_operation(self, operation_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The answer's aspects and the operation (empty when the body is not one)."""
        path = f"/operations/v1/{_quote(operation_id)}"
        with self._exchange("GET", path, OPERATION_ROUTE) as response:
            data = _body(response)[0]
            return answer_aspects(response), data if isinstance(data, dict) else {}

    def poll(self, operation_id: str | None) -> tuple[Observation, str | None]:
        """Poll until the export leaves PENDING (or `timeout`), more slowly as it takes longer:
        how many polls it took is timing and never compared."""
        if operation_id is None:
            return Observation(skipped="the export was not created"), None
        began = time.monotonic()
        pending_shape: Shape | None = None
        steps: list[str] = []
        polls = 0
        while True:
            aspects, operation = self._get_operation(operation_id)
            polls += 1
            state = operation.get("state")
            step = operation.get("step")
            if isinstance(step, str) and step and step not in steps:
                steps.append(step)
            waited = time.monotonic() - began
            if state == PENDING and pending_shape is None:
                pending_shape = aspects["shape"]
            if state != PENDING or aspects["status"] != 200 or waited >= self.timeout:
                break
            self.sleep(min(_poll_interval(polls, waited), max(0.0, self.timeout - waited)))
        info = {"polls": polls, "seconds": round(time.monotonic() - began, 1), "steps": steps}
        out = {
            "status": aspects["status"],
            "contentType": aspects["contentType"],
            "shapeWhilePending": pending_shape,
            "shape": aspects["shape"],
            "type": operation.get("type", ABSENT),
            "state": state if state is not None else ABSENT,
            "estimatePctCompleteAtEnd": operation.get("estimatePctComplete", ABSENT),
            "resultsRetention": _retention(operation),
            "htmlEscape": aspects["htmlEscape"],
        }
        if state == PENDING:
            info["timedOut"] = True
        results = operation.get("results")
        export_id = results.get("searchExportId") if isinstance(results, dict) else None
        if state not in TERMINAL_STATES or not isinstance(export_id, str) or not export_id:
            return Observation(out, info, skipped=f"the export ended {state or 'unread'}"), None
        return Observation(out, info), export_id

    def results(self, export_id: str | None) -> tuple[Observation, str | None]:
        if export_id is None:
            return Observation(skipped="the export did not complete"), None
        path = f"/search/v1/exports/{_quote(export_id)}/results"
        with self._exchange("GET", path, "/search/v1/exports/{id}/results") as response:
            aspects = answer_aspects(response)
            data, _ = _body(response)
        answer = data if isinstance(data, dict) else {}
        location = answer.get("location")
        if not isinstance(location, str) or "://" not in location:
            return Observation(aspects, skipped="no location in the answer"), None
        aspects["locationQueryParameters"] = sorted(
            {k for k, _ in parse_qsl(urlsplit(location).query)}
        )
        aspects["locationLifetime"] = _lifetime(answer.get("expires"), self.client.server_time())
        return Observation(aspects), location

    def download(self, location: str | None) -> Observation:
        if location is None:
            return Observation(skipped="no location to download")
        began = time.monotonic()
        try:
            with self._exchange("GET", location, stream=True) as response:
                aspects: dict[str, Any] = {
                    "status": response.status_code,
                    "contentType": _header(response, "content-type"),
                    "contentEncoding": _header(response, "content-encoding"),
                    "contentDisposition": disposition_pattern(
                        response.headers.get("content-disposition"), self.segment_name
                    ),
                    "acceptRanges": _header(response, "accept-ranges"),
                    "etag": _present(response, "etag"),
                    "contentLength": _present(response, "content-length"),
                    "lastModified": _present(response, "last-modified"),
                }
                body = read_gzip_lines(response.iter_raw())
        except TRANSPORT_ERRORS as exc:
            return Observation(skipped=f"the download broke off ({type(exc).__name__})")
        except FullStoryError as exc:
            return Observation(skipped=f"the download failed ({_last_reason(exc)})")
        rows = [row for row in map(_json_or_none, body.lines) if isinstance(row, dict)]
        aspects["gzip"] = body.gzip
        aspects["rows"] = _rows_verdict(body.lines)
        row_aspects, row_info = row_contract(rows)
        aspects |= row_aspects
        aspects["htmlEscape"] = html_escaping("\n".join(body.lines))
        info = {
            **row_info,
            "rowsRead": len(rows),
            "bytesRead": body.size,
            "wholeFileRead": body.complete,
            "seconds": round(time.monotonic() - began, 1),
        }
        return Observation(aspects, info)

    def cancel_finished(self, operation_id: str | None, polled: Observation) -> Observation:
        if operation_id is None or polled.skipped:
            return Observation(skipped="no finished export to cancel")
        path = f"/operations/v1/{_quote(operation_id)}/cancel"
        return Observation(self._api("POST", path, CANCEL_ROUTE, error=True, json={}))

    def cancel_at_once(self) -> Observation:
        """A second export, cancelled as soon as it exists: the cancel's answer, and the state
        the export then shows (how the failure state is named, without breaking anything)."""
        with self._exchange("POST", EXPORTS, json=self._export_body()) as response:
            created = response.status_code
            data, _ = _body(response)
        operation_id = data.get("operationId") if isinstance(data, dict) else None
        aspects: dict[str, Any] = {"createStatus": created}
        if not isinstance(operation_id, str) or not operation_id:
            return Observation(aspects, skipped="the second export was not created")
        path = f"/operations/v1/{_quote(operation_id)}/cancel"
        with self._exchange("POST", path, CANCEL_ROUTE, json={}) as response:
            cancel = answer_aspects(response, error=response.status_code >= 400)
        aspects.update({f"cancel{k[0].upper()}{k[1:]}": v for k, v in cancel.items()})
        began, polls = time.monotonic(), 0
        while True:
            after, operation = self._get_operation(operation_id)
            polls += 1
            state = operation.get("state")
            waited = time.monotonic() - began
            if state != PENDING or after["status"] != 200 or waited >= CANCEL_WAIT:
                break
            self.sleep(min(_poll_interval(polls, waited), CANCEL_WAIT - waited))
        details = operation.get("errorDetails")
        aspects.update(
            {
                "state": state if state is not None else ABSENT,
                "isFailureState": state in FAILURE_STATES,
                "errorDetails": ABSENT if details is None else "non-empty" if details else "empty",
                "shape": after["shape"],
                "htmlEscape": after["htmlEscape"],
            }
        )
        return Observation(aspects, {"pollsAfterCancel": polls})


def _poll_interval(polls: int, waited: float) -> float:
    """Seconds before the next poll: quick at first (a small export takes seconds), then every
    5 s, then every 10 s after a minute, within FullStory's burst of 50 requests."""
    if waited >= 60:
        return 10.0
    return (0.5, 0.5, 1.0, 1.0, 2.0, 2.0, 3.0)[polls - 1] if polls <= 7 else 5.0


def _rfc3339(moment: datetime) -> str:
    return format_rfc3339(moment, digits=3)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _retention(operation: Mapping[str, Any]) -> str | None:
    """How long a finished export is kept (`results.expires` - `finishedAt`), in whole days."""
    results = operation.get("results")
    expires = _parse_time(results.get("expires")) if isinstance(results, dict) else None
    finished = _parse_time(operation.get("finishedAt"))
    if expires is None or finished is None:
        return None
    return f"{round((expires - finished).total_seconds() / 86400)} d"


def _lifetime(expires: Any, now: datetime | None) -> str | None:
    """How long a download URL lives (`expires` - the server's time), in whole minutes."""
    until = _parse_time(expires)
    if until is None or now is None:
        return None
    return f"{round((until - now).total_seconds() / 60)} min"


def _quote(part: str) -> str:
    return quote(part, safe="")


@dataclass(frozen=True)
class GzipLines:
    """The first lines of a gzip body: `gzip` says whether what was read is valid gzip."""

    lines: list[str]
    gzip: str
    size: int
    complete: bool


def read_gzip_lines(
    chunks: Iterable[bytes], *, rows: int = ROWS_READ, limit: int = BYTES_READ
) -> GzipLines:
    """Gunzip `chunks` as they come (every member of a multi-member file) until `rows` lines
    or `limit` bytes: `gzip` is `valid` when what was read decompressed without error (and,
    when it was the whole body, ended where a gzip stream ends)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    text, size = b"", 0
    lines: list[str] = []
    problem: str | None = None
    complete = True
    for chunk in chunks:
        size += len(chunk)
        data = chunk
        while data and problem is None:
            try:
                text += inflater.decompress(data)
            except zlib.error as exc:
                problem = str(exc).split(": ", 1)[-1]
                break
            data = inflater.unused_data if inflater.eof else b""
            if data:  # another gzip member follows
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        *done, text = text.split(b"\n")
        lines.extend(line.decode("utf-8", "replace") for line in done if line.strip())
        if problem is not None:
            break
        if len(lines) >= rows or size >= limit:
            complete = False
            break
    if complete and problem is None:
        if text.strip():
            lines.append(text.decode("utf-8", "replace"))
        if size == 0:
            problem = "an empty body"
        elif not inflater.eof:
            problem = "the gzip stream ends early"
    verdict = "valid" if problem is None else f"invalid ({problem})"
    return GzipLines(lines[:rows], verdict, size, complete)


# -- what a client relies on in the rows ------------------------------------------------------

STANDARD_FIELDS = frozenset(EVENT_FIELDS) | frozenset(INDIVIDUAL_FIELDS)
_CUSTOM = re.compile(
    rf"^({'|'.join(CUSTOM_KINDS)})_[A-Za-z0-9_]+?_({'|'.join(CUSTOM_JSON_TYPES)})(s?)$"
)
_CUSTOM_PREFIX = re.compile(rf"^({'|'.join(CUSTOM_KINDS)})_")
INT64 = (-(2**63), 2**63 - 1)
# Aspects that map a column to what it holds: compared on the columns both sides' rows hold,
# since which columns a sample of rows holds depends on the data, not on the contract.
PER_COLUMN = frozenset({"columnTypes", "idTypes", "timestampFormats"})


def row_contract(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a client relies on in export rows, as aspects (compared), and what depends on the
    org and its data, as information (never a difference).

    Aspects: each standard column's JSON type when present (nulls aside), whether the id
    columns hold 64-bit integers, each timestamp column's format (digits masked: how precise,
    which zone designator), and whether custom variables follow the `_str` `_int` `_real`
    `_bool` `_date` suffixes. Information: the org's own (custom) fields, the standard
    columns the rows lacked, and any column the contract does not name."""
    seen: dict[str, set[str]] = {}
    formats: dict[str, set[str]] = {}
    ids: dict[str, set[str]] = {}
    custom: dict[str, str] = {}  # field -> the first way it breaks its suffix
    for row in rows:
        for name, value in row.items():
            if value is None:
                seen.setdefault(name, set())
                continue
            kind = shape(value) if isinstance(value, str) else json_type(value)
            seen.setdefault(name, set()).add(kind)
            if kind == "rfc3339" and name in STANDARD_FIELDS:
                formats.setdefault(name, set()).add(_masked(value))
            if name in ID_FIELDS:
                ids.setdefault(name, set()).add(_id_kind(value))
            if name not in STANDARD_FIELDS and name not in custom:
                problem = _custom_problem(name, value)
                if problem:
                    custom[name] = problem
    standard = sorted(n for n in seen if n in STANDARD_FIELDS)
    own = sorted(n for n in seen if n not in STANDARD_FIELDS and _CUSTOM_PREFIX.match(n))
    aspects = {
        "columnTypes": {n: "|".join(sorted(seen[n])) or "null" for n in standard},
        "idTypes": {n: "|".join(sorted(ids[n])) for n in sorted(ids)},
        "timestampFormats": {n: " | ".join(sorted(formats[n])) for n in sorted(formats)},
        "customVariables": (
            "follow the suffixes"
            if not custom
            else "; ".join(f"{n}: {p}" for n, p in sorted(custom.items()))
        ),
    }
    info = {
        "customFields": own,
        "absentColumns": sorted(n for n in EVENT_FIELDS if n not in seen) if rows else [],
        "otherColumns": sorted(n for n in seen if n not in STANDARD_FIELDS and n not in own),
    }
    return aspects, info


def _masked(text: str) -> str:
    """A timestamp's format: its digits as 9, e.g. `9999-99-99T99:99:99.999Z`."""
    return re.sub(r"\d", "9", text)


def _id_kind(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return "64-bit integer" if INT64[0] <= value <= INT64[1] else "integer beyond 64 bits"
    return shape(value) if isinstance(value, str) else json_type(value)


def _custom_problem(name: str, value: Any) -> str | None:
    """How a custom variable breaks the suffix convention, or None."""
    match = _CUSTOM.match(name)
    if not match:
        return "no _str/_int/_real/_bool/_date suffix" if _CUSTOM_PREFIX.match(name) else None
    want = CUSTOM_JSON_TYPES[match.group(2)]
    values = value if match.group(3) else [value]
    if match.group(3) and not isinstance(value, list):
        return f"a plural suffix, but a JSON {json_type(value)}"
    for item in values:
        if item is None:
            continue
        got = shape(item) if isinstance(item, str) else json_type(item)
        if got != want and not (want == "number" and got == "integer"):
            return f"a JSON {got} where the suffix says {want}"
    return None


_NOT_JSON = object()


def _json_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return _NOT_JSON


def _rows_verdict(lines: list[str]) -> str:
    """What NDJSON rows look like: one JSON object per line, or where that stops."""
    if not lines:
        return "no rows"
    for number, line in enumerate(lines, 1):
        value = _json_or_none(line)
        if value is _NOT_JSON:
            return f"line {number} is not JSON"
        if not isinstance(value, dict):
            kind = "array" if isinstance(value, list) else shape(value)
            return f"line {number} is a JSON {kind}, not an object"
    return "one JSON object per line"


# -- comparison and the report -------------------------------------------------------------


def public_url(url: str) -> str:
    """`url` fit for a report: no user name or password, no query, no fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def compare(
    target: Mapping[str, Observation],
    reference: Mapping[str, Observation],
    *,
    target_url: str,
    segment: str,
    window: timedelta,
) -> dict[str, Any]:
    """The report: each probe's aspects side by side, and whether they differ.

    An aspect that one side did not observe at all (`null`: no & < > in the answer, no PENDING
    poll seen) is never a difference; one that a side could not reach because an earlier step
    failed is (`(not run)`).
    """
    probes: dict[str, Any] = {}
    count = 0
    for name, request in PROBES.items():
        mine, theirs = target.get(name, Observation()), reference.get(name, Observation())
        aspects: dict[str, Any] = {}
        for aspect in [*mine.aspects, *(k for k in theirs.aspects if k not in mine.aspects)]:
            left = mine.aspects.get(aspect, NOT_RUN)
            right = theirs.aspects.get(aspect, NOT_RUN)
            differs = left != right and left is not None and right is not None
            entry: dict[str, Any] = {"target": left, "reference": right, "differs": differs}
            if aspect in PER_COLUMN and isinstance(left, dict) and isinstance(right, dict):
                detail = column_differences(left, right)
                differs = bool(detail)
                entry["differs"] = differs
                if detail:
                    entry["detail"] = detail
            elif differs and isinstance(left, dict | list) and isinstance(right, dict | list):
                entry["detail"] = shape_differences(left, right)
            aspects[aspect] = entry
            count += differs
        probe: dict[str, Any] = {"request": request, "aspects": aspects}
        if mine.skipped or theirs.skipped:
            probe["skipped"] = {"target": mine.skipped, "reference": theirs.skipped}
        probe["info"] = {"target": mine.info, "reference": theirs.info}
        probes[name] = probe
    return {
        "report": "fullstory-emulator conformance",
        "reportFormat": REPORT_FORMAT,
        "emulatorVersion": __version__,
        "target": public_url(target_url),
        "reference": "the emulator in-process, default settings, its clock at the target's",
        "segment": segment if segment in ("everyone", "rageClicks") else "(custom)",
        "windowSeconds": int(window.total_seconds()),
        "differences": count,
        "probes": probes,
    }


def column_differences(target: Mapping[str, str], reference: Mapping[str, str]) -> list[str]:
    """Columns both sides hold that hold different things; a column one side's rows lack is
    information (the data, the org), not a difference; nor is one only ever null."""
    lines = []
    for name in sorted(target.keys() & reference.keys()):
        left, right = target[name], reference[name]
        if left != right and "null" not in (left, right):
            lines.append(f"{name}: {left} in target, {right} in reference")
    return lines


def differences(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(probe, aspect) of every difference in a report."""
    return [
        (probe, aspect)
        for probe, entry in report["probes"].items()
        for aspect, value in entry["aspects"].items()
        if value["differs"]
    ]


def render(report: Mapping[str, Any]) -> str:
    """The report as a table: one row per probe and aspect, differences marked (≠) and
    explained beneath, then what was seen but not compared (timing, counts)."""
    widths = (17, 24, 28, 28)
    indent = " " * (widths[0] + 2)
    lines = [
        f"fullstory-emulator conformance (report format {report['reportFormat']}, emulator "
        f"{report['emulatorVersion']})",
        f"target:    {report['target']}",
        f"reference: {report['reference']}",
        f"export:    segment {report['segment']}, a window of {report['windowSeconds']} s",
        "",
        _row(("PROBE", "ASPECT", "TARGET", "REFERENCE", "DIFFERS"), widths),
    ]
    for name, probe in report["probes"].items():
        first = True
        for aspect, entry in probe["aspects"].items():
            target, reference = entry["target"], entry["reference"]
            cells = (
                name if first else "",
                aspect,
                _cell(target, widths[2]),
                _cell(reference, widths[3]),
                "≠" if entry["differs"] else "",
            )
            lines.append(_row(cells, widths))
            first = False
            lines.extend(f"{indent}  {detail}" for detail in entry.get("detail", []))
            if entry["differs"] and "detail" not in entry:
                for side, value in (("target", target), ("reference", reference)):
                    if _cell(value, widths[2]) != brief(value, 200):  # cut short above
                        lines.append(f"{indent}  {side}: {brief(value, 200)}")
        if first:
            lines.append(_row((name, "(nothing observed)", "", "", ""), widths))
        for side, reason in (probe.get("skipped") or {}).items():
            if reason:
                lines.append(f"{indent}{side} stopped early: {reason}")
        info = probe["info"]
        if info["target"] or info["reference"]:
            seen = "; ".join(f"{side} {_info(info[side])}" for side in ("target", "reference"))
            lines.append(f"{indent}not compared: {seen}")
    count = report["differences"]
    lines.append("")
    if count:
        listed = ", ".join(f"{probe} {aspect}" for probe, aspect in differences(report))
        lines.append(f"{count} difference{'s' if count != 1 else ''}: {listed}")
    else:
        lines.append("no difference: the target answers as the emulator does")
    return "\n".join(lines)


def _info(values: Mapping[str, Any]) -> str:
    if not values:
        return "—"
    return ", ".join(
        f"{key} {(','.join(map(str, value)) or '—') if isinstance(value, list) else value}"
        for key, value in values.items()
    )


def _row(cells: tuple[str, ...], widths: tuple[int, ...]) -> str:
    padded = [cell.ljust(width) for cell, width in zip(cells, (*widths, 0), strict=True)]
    return "  ".join(padded).rstrip()


def _cell(value: Any, width: int) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        keys = ", ".join(value)
        return brief("{" + keys + "}", width)
    if isinstance(value, list):
        return brief(_canonical(value), width)
    return brief(value if isinstance(value, str) else _canonical(value), width)
