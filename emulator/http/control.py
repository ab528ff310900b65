"""The control API under /__emulator/: health, reset, clock, lifecycle, faults, journal, rate
limits, config and scenarios. A request with `Authorization: Basic <API key>` acts on that key's
tenant; one without acts on the whole instance. See the README's "Control API" section.
"""

from __future__ import annotations

import fnmatch
import hmac
import os
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import __version__
from ..clock import RANGE_TEXT, ClockRangeError, check_instant
from ..control.specs import checked_text, fault_json, lifecycle_json
from ..errors import InvalidArgument, Unauthenticated
from ..exports.lifecycle import FORCED_FAILURE_DETAILS
from ..instance import Emulator
from ..store import JOURNAL_PAGE
from ..timestamps import format_api, parse_rfc3339
from .api.common import decode_token, encode_token, json_object, read_body
from .pipeline import caller_of
from .render import JsonRenderer

TEN_YEARS = 10 * 366 * 86400
Handler = Callable[[Request, Emulator, "str | None"], Awaitable[Response]]


def control(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Decide whom the call acts on: the key's tenant, or (no key) the whole instance.

    `--control-auth open`: anyone may, given the control token if one is set.
    `--control-auth tenant`: a key is required and touches only its own tenant; a call without
    one acts on the instance only with the admin token (`--control-token`).
    """

    async def run(request: Request) -> Response:
        em: Emulator = request.app.state.emulator
        token = em.settings.control_token
        sent = request.headers.get("x-emulator-token")
        admin = (
            bool(token)
            and sent is not None
            and hmac.compare_digest(sent.encode("utf-8", "replace"), (token or "").encode())
        )
        caller = caller_of(request)
        if em.settings.control_auth == "tenant":
            if caller.authorization:
                return await handler(request, em, caller.require().tenant)
            if not admin:
                raise Unauthenticated(
                    "the control API needs 'Authorization: Basic <API key>' (it then acts on "
                    "that key's tenant only), or the admin X-Emulator-Token for the whole instance"
                )
            return await handler(request, em, None)
        if token and not admin:
            raise Unauthenticated("the control API needs the header X-Emulator-Token")
        tenant = caller.require().tenant if caller.authorization else None
        return await handler(request, em, tenant)

    return run


async def body_of(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The JSON object body, within --max-body-bytes like any API body; an empty body is
    refused unless the endpoint documents it as `optional` (then it reads as `{}`)."""
    em: Emulator = request.app.state.emulator
    raw = await read_body(request, em.settings.max_body_bytes)
    if optional and not raw.strip():
        return {}
    return json_object(raw)


def ok(request: Request, body: Any = None) -> Response:
    renderer: JsonRenderer = request.app.state.renderer
    return renderer.json({} if body is None else body)


async def health(request: Request) -> Response:
    em: Emulator = request.app.state.emulator
    now = format_api(em.clock.now())
    return ok(request, {"status": "ok", "version": __version__, "now": now, "pid": os.getpid()})


@control
async def reset(request: Request, em: Emulator, tenant: str | None) -> Response:
    em.control.reset(tenant)
    return ok(request)


def clock_json(em: Emulator, tenant: str | None) -> dict[str, Any]:
    return {"now": format_api(em.clock.now(tenant)), "frozen": em.clock.frozen(tenant)}


@control
async def get_clock(request: Request, em: Emulator, tenant: str | None) -> Response:
    return ok(request, clock_json(em, tenant))


@control
async def move_clock(request: Request, em: Emulator, tenant: str | None) -> Response:
    body = await body_of(request)
    unknown = set(body) - {"advance", "set", "freeze"}
    if unknown or not body:
        raise InvalidArgument(
            'send {"advance": seconds}, {"set": "<RFC 3339>"} or {"freeze": bool}; '
            f"the clock lies from {RANGE_TEXT}"
        )
    freeze, target = body.get("freeze"), body.get("set")
    step: Any = body.get("advance")
    if "freeze" in body and not isinstance(freeze, bool):
        raise InvalidArgument("freeze must be true or false")
    instant = None
    if "set" in body:
        if not isinstance(target, str):
            raise InvalidArgument("set must be an RFC 3339 timestamp string")
        try:
            instant = check_instant(parse_rfc3339(target), "set")
        except ValueError as exc:
            raise InvalidArgument(f"set: {exc}") from None
    if "advance" in body and (
        not isinstance(step, int | float) or isinstance(step, bool) or not 0 <= step <= TEN_YEARS
    ):
        raise InvalidArgument(f"advance must be a number of seconds from 0 to {TEN_YEARS}")
    try:
        if freeze is not None:
            (em.clock.freeze if freeze else em.clock.unfreeze)(tenant)
        if instant is not None:
            em.clock.set(instant, tenant)
        if "advance" in body:
            em.clock.advance(float(step), tenant)
    except ClockRangeError as exc:
        raise InvalidArgument(f"advance: {exc}") from None
    return ok(request, clock_json(em, tenant))


@control
async def add_lifecycle(request: Request, em: Emulator, tenant: str | None) -> Response:
    return ok(request, {"id": em.control.add_lifecycle(tenant, await body_of(request))})


@control
async def list_lifecycle(request: Request, em: Emulator, tenant: str | None) -> Response:
    rules = em.control.state(tenant).lifecycle
    return ok(request, {"lifecycle": [lifecycle_json(rule) for rule in rules]})


@control
async def clear_lifecycle(request: Request, em: Emulator, tenant: str | None) -> Response:
    em.control.clear_lifecycle(tenant)
    return ok(request)


@control
async def complete_operation(request: Request, em: Emulator, tenant: str | None) -> Response:
    em.exports.finish(tenant, request.path_params["operationId"], None)
    return ok(request)


@control
async def fail_operation(request: Request, em: Emulator, tenant: str | None) -> Response:
    body = await body_of(request, optional=True)
    details = checked_text(body.get("errorDetails") or FORCED_FAILURE_DETAILS, "errorDetails")
    em.exports.finish(tenant, request.path_params["operationId"], details)
    return ok(request)


@control
async def add_fault(request: Request, em: Emulator, tenant: str | None) -> Response:
    return ok(request, {"id": em.control.add_fault(tenant, await body_of(request))})


@control
async def list_faults(request: Request, em: Emulator, tenant: str | None) -> Response:
    return ok(request, {"faults": [fault_json(rule) for rule in em.control.state(tenant).faults]})


@control
async def clear_faults(request: Request, em: Emulator, tenant: str | None) -> Response:
    em.control.remove_faults(tenant, request.path_params.get("ruleId"))
    return ok(request)


@control
async def journal(request: Request, em: Emulator, tenant: str | None) -> Response:
    """A page of recorded requests, oldest first; `nextPageToken` continues it."""
    params = request.query_params
    path, method = params.get("path"), params.get("method")
    limit = params.get("limit") or str(JOURNAL_PAGE)
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= JOURNAL_PAGE:
        raise InvalidArgument(f"limit must be a whole number from 1 to {JOURNAL_PAGE}")
    after = decode_token(params.get("pageToken"), "journal", "pageToken") or 0
    wanted = method.upper() if method else None

    def match(entry: dict[str, Any]) -> bool:
        return (path is None or fnmatch.fnmatchcase(entry["path"], path)) and (
            wanted is None or entry["method"] == wanted
        )

    entries, last = em.store.journal_page(tenant, after, int(limit), match)
    body: dict[str, Any] = {"requests": entries}
    if last is not None:
        body["nextPageToken"] = encode_token("journal", last)
    return ok(request, body)


@control
async def clear_journal(request: Request, em: Emulator, tenant: str | None) -> Response:
    em.store.clear_journal(tenant)
    return ok(request)


@control
async def rate_limit(request: Request, em: Emulator, tenant: str | None) -> Response:
    em.control.set_rate_limit(tenant, await body_of(request))
    return ok(request)


@control
async def config(request: Request, em: Emulator, tenant: str | None) -> Response:
    em.control.set_config(tenant, await body_of(request))
    return ok(request)


@control
async def list_scenarios(request: Request, em: Emulator, tenant: str | None) -> Response:
    scenarios = em.control.scenarios.values()
    listed = [{"name": s.name, "description": s.description} for s in scenarios]
    return ok(request, {"scenarios": listed})


@control
async def apply_scenario(request: Request, em: Emulator, tenant: str | None) -> Response:
    em.control.apply_scenario(tenant, request.path_params["name"])
    return ok(request)


P = "/__emulator"
routes = [
    Route(f"{P}/health", health, methods=["GET"]),
    Route(f"{P}/reset", reset, methods=["POST"]),
    Route(f"{P}/clock", get_clock, methods=["GET"]),
    Route(f"{P}/clock", move_clock, methods=["POST"]),
    Route(f"{P}/lifecycle", add_lifecycle, methods=["POST"]),
    Route(f"{P}/lifecycle", list_lifecycle, methods=["GET"]),
    Route(f"{P}/lifecycle", clear_lifecycle, methods=["DELETE"]),
    Route(f"{P}/operations/{{operationId}}/complete", complete_operation, methods=["POST"]),
    Route(f"{P}/operations/{{operationId}}/fail", fail_operation, methods=["POST"]),
    Route(f"{P}/faults", add_fault, methods=["POST"]),
    Route(f"{P}/faults", list_faults, methods=["GET"]),
    Route(f"{P}/faults", clear_faults, methods=["DELETE"]),
    Route(f"{P}/faults/{{ruleId}}", clear_faults, methods=["DELETE"]),
    Route(f"{P}/journal", journal, methods=["GET"]),
    Route(f"{P}/journal", clear_journal, methods=["DELETE"]),
    Route(f"{P}/ratelimit", rate_limit, methods=["POST"]),
    Route(f"{P}/config", config, methods=["POST"]),
    Route(f"{P}/scenarios", list_scenarios, methods=["GET"]),
    Route(f"{P}/scenarios/{{name}}", apply_scenario, methods=["POST"]),
]
