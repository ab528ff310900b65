"""The control API under /__emulator/: health, reset, clock, lifecycle, faults, journal, rate
limits, config and scenarios. A request with `Authorization: Basic <API key>` acts on that key's
tenant; one without acts on the whole instance. See the README's "Control API" section.
"""

from __future__ import annotations

import fnmatch
import functools
import hmac
import itertools
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import __version__
from ..auth import Principal
from ..clock import RANGE_TEXT, ClockRangeError, check_instant
from ..contract import STATES
from ..control.specs import checked_text, fault_json, lifecycle_json, members
from ..durations import MAX_SECONDS
from ..errors import InvalidArgument, Unauthenticated, echo
from ..exports.lifecycle import FORCED_FAILURE_DETAILS
from ..instance import Emulator
from ..store import JOURNAL_PAGE
from ..store.records import UNSET, OperationRecord
from ..timestamps import format_api, parse_rfc3339
from .api.common import decode_token, encode_token, json_object, read_body
from .api.exports import parse_request
from .api.operations import operation_json
from .api.segments import segment_json
from .pipeline import caller_of
from .render import JsonRenderer

TEN_YEARS = MAX_SECONDS
Handler = Callable[[Request, Emulator, "str | None"], Awaitable[Response]]
Params = ParamSpec("Params")
T = TypeVar("T")


async def in_store(
    em: Emulator, work: Callable[Params, T], *args: Params.args, **kwargs: Params.kwargs
) -> T:
    """`work(...)`, in a worker thread when the store's calls wait (`Store.blocking`): a
    change that other replicas must see is answered only once their cached copies expire,
    and the event loop serves every other request meanwhile."""
    if em.store.blocking:
        return await run_in_threadpool(work, *args, **kwargs)
    return work(*args, **kwargs)


def control(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Decide whom the call acts on: the key's tenant, or (no key) the whole instance.

    `--control-auth open`: anyone may, given the control token if one is set.
    `--control-auth tenant`: a key is required and touches only its own tenant; a call without
    one acts on the instance only with the admin token (`--control-token`).
    """

    async def run(request: Request) -> Response:
        em: Emulator = request.app.state.emulator
        token = em.settings.control_token
        admin = is_admin(request, em)
        caller = caller_of(request)
        if em.settings.control_auth == "tenant":
            if not caller.authorization and not admin:
                raise Unauthenticated(
                    "the control API needs 'Authorization: Basic <API key>' (it then acts on "
                    "that key's tenant only), or the admin X-Emulator-Token for the whole instance"
                )
        elif token and not admin:
            raise Unauthenticated("the control API needs the header X-Emulator-Token")
        return await handler(request, em, control_tenant(request))

    return run


def is_admin(request: Request, em: Emulator) -> bool:
    """Whether the request carries the admin token (`--control-token`)."""
    token = em.settings.control_token
    sent = request.headers.get("x-emulator-token")
    return (
        bool(token)
        and sent is not None
        and hmac.compare_digest(sent.encode("utf-8", "replace"), (token or "").encode())
    )


TENANT_HEADER = "x-emulator-tenant"
TENANT_NAME = re.compile(r"[\x21-\x7e]{1,200}")


def control_tenant(request: Request) -> str | None:
    """The tenant a control call acts on: the API key's (`Authorization`), the one named by
    `X-Emulator-Tenant` (how the console, which holds no keys, picks one; only past the checks
    above, so under `--control-auth tenant` only with the admin token), or None: the
    instance."""
    caller = caller_of(request)
    named = request.headers.get(TENANT_HEADER)
    if named is not None and not TENANT_NAME.fullmatch(named):
        raise InvalidArgument(
            "X-Emulator-Tenant must be a tenant id: 1 to 200 printable ASCII characters, "
            "no spaces (GET /__emulator/tenants lists them)"
        )
    if caller.authorization:
        tenant = caller.require().tenant
        if named is not None and named != tenant:
            raise InvalidArgument(
                f"X-Emulator-Tenant {echo(named)} is not the tenant of the API key in "
                "Authorization; send one of the two"
            )
        return tenant
    return named


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
    # The pipeline's reading, taken off the event loop: a store that cannot be reached makes
    # this a 503 (before the route), a write lock held elsewhere does not hold it up.
    now = format_api(request.scope["state"]["now"])
    return ok(request, {"status": "ok", "version": __version__, "now": now, "pid": os.getpid()})


@control
async def reset(request: Request, em: Emulator, tenant: str | None) -> Response:
    await in_store(em, em.control.reset, tenant)
    return ok(request)


def clock_json(em: Emulator, tenant: str | None) -> dict[str, Any]:
    return {"now": format_api(em.clock.now(tenant)), "frozen": em.clock.frozen(tenant)}


@control
async def get_clock(request: Request, em: Emulator, tenant: str | None) -> Response:
    return ok(request, clock_json(em, tenant))


@control
async def move_clock(request: Request, em: Emulator, tenant: str | None) -> Response:
    body = await body_of(request)
    members(body, ("advance", "set", "freeze"), "the clock")
    if not body:
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

    def move() -> dict[str, Any]:
        if freeze is not None:
            (em.clock.freeze if freeze else em.clock.unfreeze)(tenant)
        if instant is not None:
            em.clock.set(instant, tenant)
        if "advance" in body:
            em.clock.advance(float(step), tenant)
        return clock_json(em, tenant)

    try:
        return ok(request, await in_store(em, move))
    except ClockRangeError as exc:
        raise InvalidArgument(f"advance: {exc}") from None


@control
async def add_lifecycle(request: Request, em: Emulator, tenant: str | None) -> Response:
    body = await body_of(request)
    return ok(request, {"id": await in_store(em, em.control.add_lifecycle, tenant, body)})


@control
async def list_lifecycle(request: Request, em: Emulator, tenant: str | None) -> Response:
    rules = em.control.state(tenant).lifecycle
    return ok(request, {"lifecycle": [lifecycle_json(rule) for rule in rules]})


@control
async def clear_lifecycle(request: Request, em: Emulator, tenant: str | None) -> Response:
    await in_store(em, em.control.clear_lifecycle, tenant)
    return ok(request)


@control
async def complete_operation(request: Request, em: Emulator, tenant: str | None) -> Response:
    await in_store(em, em.exports.finish, tenant, request.path_params["operationId"], None)
    return ok(request)


@control
async def fail_operation(request: Request, em: Emulator, tenant: str | None) -> Response:
    body = await body_of(request, optional=True)
    members(body, ("errorDetails",), "fail")
    details = checked_text(body.get("errorDetails") or FORCED_FAILURE_DETAILS, "errorDetails")
    await in_store(em, em.exports.finish, tenant, request.path_params["operationId"], details)
    return ok(request)


@control
async def add_fault(request: Request, em: Emulator, tenant: str | None) -> Response:
    body = await body_of(request)
    return ok(request, {"id": await in_store(em, em.control.add_fault, tenant, body)})


@control
async def list_faults(request: Request, em: Emulator, tenant: str | None) -> Response:
    return ok(request, {"faults": [fault_json(rule) for rule in em.control.state(tenant).faults]})


@control
async def clear_faults(request: Request, em: Emulator, tenant: str | None) -> Response:
    await in_store(em, em.control.remove_faults, tenant, request.path_params.get("ruleId"))
    return ok(request)


@control
async def journal(request: Request, em: Emulator, tenant: str | None) -> Response:
    """A page of recorded requests, oldest first; `nextPageToken` continues it. `last=N`
    answers the newest N that match instead (oldest first, no token): what the console shows."""
    params = request.query_params
    path, method = params.get("path"), params.get("method")
    status_matches = status_filter(params.get("status"))
    wanted = method.upper() if method else None

    def match(entry: dict[str, Any]) -> bool:
        return (
            (path is None or fnmatch.fnmatchcase(entry["path"], path))
            and (wanted is None or entry["method"] == wanted)
            and status_matches(entry["status"])
        )

    newest = params.get("last")
    if newest is not None:
        if "limit" in params or "pageToken" in params:
            raise InvalidArgument("last cannot be combined with limit or pageToken")
        if not (newest.isascii() and newest.isdigit()) or not 1 <= int(newest) <= JOURNAL_PAGE:
            raise InvalidArgument(f"last must be a whole number from 1 to {JOURNAL_PAGE}")
        matching = filter(match, em.store.journal_newest(tenant))
        tail = list(itertools.islice(matching, int(newest)))
        return ok(request, {"requests": tail[::-1]})
    limit = params.get("limit") or str(JOURNAL_PAGE)
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= JOURNAL_PAGE:
        raise InvalidArgument(f"limit must be a whole number from 1 to {JOURNAL_PAGE}")
    after = decode_token(params.get("pageToken"), "journal", "pageToken") or 0
    entries, last = em.store.journal_page(tenant, after, int(limit), match)
    body: dict[str, Any] = {"requests": entries}
    if last is not None:
        body["nextPageToken"] = encode_token("journal", last)
    return ok(request, body)


@control
async def clear_journal(request: Request, em: Emulator, tenant: str | None) -> Response:
    await in_store(em, em.store.clear_journal, tenant)
    return ok(request)


@control
async def rate_limit(request: Request, em: Emulator, tenant: str | None) -> Response:
    body = await body_of(request)
    await in_store(em, em.control.set_rate_limit, tenant, body)
    return ok(request)


@control
async def config(request: Request, em: Emulator, tenant: str | None) -> Response:
    """Under `--control-auth tenant` a tenant's own key may lower its export limit, but not
    raise it past the instance's: only the admin token may (else the limit would bound
    nothing a tenant could not lift)."""
    body = await body_of(request)
    ceiling = None
    if tenant is not None and em.settings.control_auth == "tenant" and not is_admin(request, em):
        view = await in_store(em, em.control.view, None)
        ceiling = view.setting("max_export_events", em.settings.max_export_events)
    await in_store(
        em,
        functools.partial(em.control.set_config, max_export_events_ceiling=ceiling),
        tenant,
        body,
    )
    return ok(request)


@control
async def list_scenarios(request: Request, em: Emulator, tenant: str | None) -> Response:
    scenarios = em.control.scenarios.values()
    listed = [{"name": s.name, "description": s.description} for s in scenarios]
    return ok(request, {"scenarios": listed})


@control
async def apply_scenario(request: Request, em: Emulator, tenant: str | None) -> Response:
    await in_store(em, em.control.apply_scenario, tenant, request.path_params["name"])
    return ok(request)


def status_filter(raw: str | None) -> Callable[[int | None], bool]:
    """`status=429` (that status) or `status=4xx` (its class); unset: any."""
    if raw is None or raw == "":
        return lambda status: True
    if re.fullmatch(r"[1-5]\d\d", raw):
        return lambda status: status == int(raw)
    if re.fullmatch(r"[1-5]xx", raw, re.IGNORECASE):
        return lambda status: status is not None and status // 100 == int(raw[0])
    raise InvalidArgument(
        f"status must be a status code such as 429 or a class such as 4xx, got {echo(raw)}"
    )


def whole_number(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise InvalidArgument(
            f"{name} must be a whole number from {low} to {high}, got {echo(raw)}"
        )
    return int(raw)


@control
async def list_tenants(request: Request, em: Emulator, tenant: str | None) -> Response:
    """The tenants seen, with the labels a person recognises them by, and the demo key's
    tenant, where a fresh console starts exports. A call with a key lists that key's tenant
    alone, even before it holds anything (how the console learns the tenant of a key pasted
    into it); one naming a tenant (X-Emulator-Tenant) still lists them all, to choose from."""
    if caller_of(request).authorization and tenant is not None:
        seen = [tenant]
    else:
        seen = await run_in_threadpool(em.store.tenants)
    known = em.keys.labels()
    demo = em.keys.demo()
    if demo is not None:
        known.setdefault(demo.tenant, demo.label)
    labels = {t: known[t] for t in seen if t in known}
    default = None
    if demo is not None and tenant in (None, demo.tenant):
        default = {"tenant": demo.tenant, "label": demo.label}
    return ok(request, {"tenants": seen, "labels": labels, "default": default})


def console_operation_json(em: Emulator, record: OperationRecord) -> dict[str, Any]:
    """The API's operation object, plus what the API leaves implicit: whose it is and what
    it exports."""
    return {
        **operation_json(
            record, em.exports.status(record, em.exports.tenant_failure_state(record))
        ),
        "tenant": record.tenant,
        "segmentId": record.spec.segment_id,
        "segmentName": record.segment_name,
        "format": record.spec.format,
    }


@control
async def list_operations(request: Request, em: Emulator, tenant: str | None) -> Response:
    state = request.query_params.get("state") or None
    if state is not None and state not in STATES:
        raise InvalidArgument(f"state {echo(state)} is not one of {', '.join(STATES)}")
    limit = whole_number(request, "limit", 100, 1, 1000)
    records = sorted(
        em.store.operations(tenant), key=lambda r: (r.created_at, r.tenant, r.seq), reverse=True
    )
    listed: list[dict[str, Any]] = []
    for record in records:
        body = console_operation_json(em, record)
        if state is None or body["state"] == state:
            listed.append(body)
            if len(listed) == limit:
                break
    return ok(request, {"operations": listed})


@control
async def operation_results(request: Request, em: Emulator, tenant: str | None) -> Response:
    record = em.exports.find(tenant, request.path_params["operationId"])
    url, expires = em.exports.signed_url(record, em.control.view(record.tenant))
    return ok(request, {"location": url, "expires": format_api(expires)})


@control
async def preview_operation(request: Request, em: Emulator, tenant: str | None) -> Response:
    limit = whole_number(request, "rows", 20, 1, 200)
    record = em.exports.find(tenant, request.path_params["operationId"])
    preview = await run_in_threadpool(em.exports.preview, record, limit)
    return ok(
        request,
        {
            "operationId": record.id,
            "format": preview.format,
            "columns": list(preview.columns),
            "rows": [list(row) for row in preview.rows],
            "more": preview.more,
        },
    )


@control
async def start_export(request: Request, em: Emulator, tenant: str | None) -> Response:
    if tenant is None:
        raise InvalidArgument(
            "an export belongs to a tenant: send X-Emulator-Tenant: <tenant id> "
            "(or Authorization: Basic <API key>)"
        )
    export = parse_request(await body_of(request))
    principal = caller_of(request).principal or Principal(tenant, "admin", key_id="control")

    def start() -> OperationRecord:
        with em.store.transaction():
            return em.exports.create(principal, export, em.control.view(tenant))

    record = await in_store(em, start)
    return ok(request, {"operationId": record.id})


@control
async def list_segments(request: Request, em: Emulator, tenant: str | None) -> Response:
    listed = [
        {
            **segment_json(segment, em.settings.org_id),
            "windowDays": segment.window_days,
            "definition": dict(segment.definition),
        }
        for segment in em.exports.segments
    ]
    return ok(request, {"segments": listed})


CONFIG = (
    ("urlTtl", "url_ttl"),
    ("exportDuration", "export_duration"),
    ("failureState", "failure_state"),
    ("maxExportEvents", "max_export_events"),
)


@control
async def get_config(request: Request, em: Emulator, tenant: str | None) -> Response:
    """What POST /__emulator/config changes: the values in force here, and this scope's own."""
    view, own = em.control.view(tenant), em.control.state(tenant)
    body: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    for name, attr in CONFIG:
        default = getattr(em.settings, attr)
        # A setting is read from the control state once the control state can hold it (the
        # failure state becomes a per-scope override when POST config takes failureState).
        body[name] = view.setting(attr, default) if hasattr(own, attr) else default
        value = getattr(own, attr, UNSET)
        overrides[name] = None if value is UNSET else value
    return ok(request, body | {"overrides": overrides})


@control
async def remove_lifecycle(request: Request, em: Emulator, tenant: str | None) -> Response:
    await in_store(em, em.control.remove_lifecycle, tenant, request.path_params["ruleId"])
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
    # `:path`: an empty id or one with a slash (`faults/`, `faults/%2F`) is a 404 naming it
    Route(f"{P}/faults/{{ruleId:path}}", clear_faults, methods=["DELETE"]),
    Route(f"{P}/journal", journal, methods=["GET"]),
    Route(f"{P}/journal", clear_journal, methods=["DELETE"]),
    Route(f"{P}/ratelimit", rate_limit, methods=["POST"]),
    Route(f"{P}/config", config, methods=["POST"]),
    Route(f"{P}/scenarios", list_scenarios, methods=["GET"]),
    Route(f"{P}/scenarios/{{name}}", apply_scenario, methods=["POST"]),
    # What the console reads and does (fullstory_emulator/http/console), scriptable like the rest.
    Route(f"{P}/tenants", list_tenants, methods=["GET"]),
    Route(f"{P}/operations", list_operations, methods=["GET"]),
    Route(f"{P}/operations/{{operationId}}/results", operation_results, methods=["GET"]),
    Route(f"{P}/operations/{{operationId}}/preview", preview_operation, methods=["GET"]),
    Route(f"{P}/exports", start_export, methods=["POST"]),
    Route(f"{P}/segments", list_segments, methods=["GET"]),
    Route(f"{P}/config", get_config, methods=["GET"]),
    Route(f"{P}/lifecycle/{{ruleId:path}}", remove_lifecycle, methods=["DELETE"]),
]
