"""The control API under /__emulator/: health, reset, clock, lifecycle, faults, journal, rate
limits, config and scenarios. A request with `Authorization: Basic <API key>` acts on that key's
tenant; one without acts on the whole instance. See the README's "Control API" section.
"""

from __future__ import annotations

import fnmatch
import hmac
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import __version__
from ..context import Emulator
from ..errors import InvalidArgument, Unauthenticated
from ..timestamps import format_api, parse_rfc3339
from . import actions

TEN_YEARS = 10 * 366 * 86400
Handler = Callable[[Request, Emulator, "str | None"], Awaitable[Response]]


def control(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Check the control token, then work out which tenant (or None: all) the call is for."""

    async def run(request: Request) -> Response:
        em: Emulator = request.app.state.emulator
        token = em.settings.control_token
        if token and not hmac.compare_digest(
            request.headers.get("x-emulator-token", "").encode(), token.encode()
        ):
            raise Unauthenticated("the control API needs the header X-Emulator-Token")
        header = request.headers.get("authorization")
        tenant = em.keys.authenticate(header).tenant if header else None
        request.state.tenant = tenant
        return await handler(request, em, tenant)

    return run


async def body_of(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument("request body must be a JSON object")
    return data


def ok(em: Emulator, body: Any = None) -> Response:
    return em.renderer.json({} if body is None else body)


async def health(request: Request) -> Response:
    em: Emulator = request.app.state.emulator
    now = format_api(em.clock.now())
    return ok(em, {"status": "ok", "version": __version__, "now": now, "pid": os.getpid()})


@control
async def reset(request: Request, em: Emulator, tenant: str | None) -> Response:
    em.reset(tenant)
    return ok(em)


def clock_json(em: Emulator, tenant: str | None) -> dict[str, Any]:
    return {"now": format_api(em.clock.now(tenant)), "frozen": em.clock.frozen(tenant)}


@control
async def get_clock(request: Request, em: Emulator, tenant: str | None) -> Response:
    return ok(em, clock_json(em, tenant))


@control
async def move_clock(request: Request, em: Emulator, tenant: str | None) -> Response:
    body = await body_of(request)
    unknown = set(body) - {"advance", "set", "freeze"}
    if unknown or not body:
        raise InvalidArgument(
            'send {"advance": seconds}, {"set": "<RFC 3339>"} or {"freeze": bool}'
        )
    if "freeze" in body:
        if not isinstance(body["freeze"], bool):
            raise InvalidArgument("freeze must be true or false")
        (em.clock.freeze if body["freeze"] else em.clock.unfreeze)(tenant)
    if "set" in body:
        if not isinstance(body["set"], str):
            raise InvalidArgument("set must be an RFC 3339 timestamp string")
        try:
            em.clock.set(parse_rfc3339(body["set"]), tenant)
        except ValueError as exc:
            raise InvalidArgument(f"set: {exc}") from None
    if "advance" in body:
        step = body["advance"]
        if (
            not isinstance(step, int | float)
            or isinstance(step, bool)
            or not 0 <= step <= TEN_YEARS
        ):
            raise InvalidArgument(f"advance must be a number of seconds from 0 to {TEN_YEARS}")
        em.clock.advance(step, tenant)
    return ok(em, clock_json(em, tenant))


@control
async def add_lifecycle(request: Request, em: Emulator, tenant: str | None) -> Response:
    return ok(em, {"id": actions.add_lifecycle(em, tenant, await body_of(request))})


@control
async def list_lifecycle(request: Request, em: Emulator, tenant: str | None) -> Response:
    rules = em.store.control(tenant).lifecycle
    return ok(em, {"lifecycle": [rule.to_json() for rule in rules]})


@control
async def clear_lifecycle(request: Request, em: Emulator, tenant: str | None) -> Response:
    actions.clear_lifecycle(em, tenant)
    return ok(em)


@control
async def complete_operation(request: Request, em: Emulator, tenant: str | None) -> Response:
    em.exports.finish(tenant, request.path_params["operationId"], None)
    return ok(em)


@control
async def fail_operation(request: Request, em: Emulator, tenant: str | None) -> Response:
    details = (await body_of(request)).get("errorDetails") or "failed by the emulator's control API"
    if not isinstance(details, str):
        raise InvalidArgument("errorDetails must be a string")
    em.exports.finish(tenant, request.path_params["operationId"], details)
    return ok(em)


@control
async def add_fault(request: Request, em: Emulator, tenant: str | None) -> Response:
    return ok(em, {"id": actions.add_fault(em, tenant, await body_of(request))})


@control
async def list_faults(request: Request, em: Emulator, tenant: str | None) -> Response:
    return ok(em, {"faults": [rule.to_json() for rule in em.store.control(tenant).faults]})


@control
async def clear_faults(request: Request, em: Emulator, tenant: str | None) -> Response:
    actions.remove_faults(em, tenant, request.path_params.get("ruleId"))
    return ok(em)


@control
async def journal(request: Request, em: Emulator, tenant: str | None) -> Response:
    path, method = request.query_params.get("path"), request.query_params.get("method")
    entries = [
        e
        for e in em.store.journal(tenant)
        if (path is None or fnmatch.fnmatchcase(e["path"], path))
        and (method is None or e["method"] == method.upper())
    ]
    limit = request.query_params.get("limit")
    if limit is not None:
        if not limit.isdigit():
            raise InvalidArgument("limit must be a whole number")
        entries = entries[-int(limit) :] if int(limit) else []
    return ok(em, {"requests": entries})


@control
async def clear_journal(request: Request, em: Emulator, tenant: str | None) -> Response:
    em.store.clear_journal(tenant)
    return ok(em)


@control
async def rate_limit(request: Request, em: Emulator, tenant: str | None) -> Response:
    actions.set_rate_limit(em, tenant, await body_of(request))
    return ok(em)


@control
async def config(request: Request, em: Emulator, tenant: str | None) -> Response:
    actions.set_config(em, tenant, await body_of(request))
    return ok(em)


@control
async def list_scenarios(request: Request, em: Emulator, tenant: str | None) -> Response:
    return ok(em, {"scenarios": [{"name": s.name, "description": s.description}
                                 for s in em.scenarios.values()]})  # fmt: skip


@control
async def apply_scenario(request: Request, em: Emulator, tenant: str | None) -> Response:
    actions.apply_scenario(em, tenant, request.path_params["name"])
    return ok(em)


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
