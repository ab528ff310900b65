"""Everything a request may need, built once per app from the settings."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .auth import KeyRing
from .clock import Clock, ClockState
from .control.actions import apply_scenario, load_scenarios
from .control.state import FaultRule, Scenario
from .errors import ApiError
from .exports import ExportService
from .metrics import Metrics
from .ratelimit import RateLimiter
from .render import JsonRenderer
from .segments import SegmentCatalog
from .settings import Settings
from .signing import UrlSigner
from .sqlstore import SQLiteStore
from .store import MemoryStore, Store
from .timestamps import to_ms
from .world import World

DAY_MS = 86_400_000


@dataclass
class Emulator:
    settings: Settings
    clock: Clock
    store: Store
    keys: KeyRing
    limiter: RateLimiter
    exports: ExportService
    renderer: JsonRenderer
    scenarios: dict[str, Scenario]
    metrics: Metrics = field(init=False)
    routes: dict[Any, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.metrics = Metrics(self)

    def route_of(self, scope: Mapping[str, Any]) -> str:
        """The route template a request matched (a metrics label), or "unmatched"."""
        return self.routes.get(scope.get("endpoint"), "unmatched")

    def tenant_of(self, headers: Mapping[str, str], path: str) -> str | None:
        """Whose request this is: the API key's tenant, or a download's owner."""
        header = headers.get("authorization")
        if header:
            try:
                return self.keys.authenticate(header).tenant
            except ApiError:
                return None
        prefix = f"/{self.settings.bucket}/"
        if path.startswith(prefix):
            record = self.exports.export_of(unquote(path[len(prefix) :]))
            return record.tenant if record else None
        return None

    def take_fault(
        self, tenant: str | None, method: str, path: str, headers: Mapping[str, str]
    ) -> FaultRule | None:
        """The first fault rule matching this request (the tenant's, then the instance's)."""
        for scope in (tenant, None) if tenant is not None else (None,):
            rule = self.store.update_control(
                scope, lambda state: state.take_fault(method, path, headers)
            )
            if rule is not None:
                return rule
        return None

    def reset(self, tenant: str | None) -> None:
        """Back to the seeded fixtures: for one tenant, or everything (start scenarios again)."""
        self.store.reset(tenant)
        self.clock.reset(tenant)
        if tenant is None:
            self._apply_start_scenarios()

    def _apply_start_scenarios(self) -> None:
        for name in filter(None, (self.settings.scenario or "").split(",")):
            apply_scenario(self, None, name.strip())

    @classmethod
    def build(cls, settings: Settings) -> Emulator:
        store: Store = (
            SQLiteStore(settings.data_dir / "emulator.sqlite3")
            if settings.data_dir
            else MemoryStore()
        )
        # What must not change across restarts and workers is fixed once and kept in the store:
        # the clock, the world's first day and the URL-signing secret.
        now = time.time()
        begin = settings.start_time.timestamp() if settings.start_time else now
        clock = Clock(
            backend=store.clock_backend(ClockState.starting(begin, settings.freeze_clock, now))
        )
        # Whole UTC days, so emulators started the same day without --start-time share data.
        default_origin = to_ms(clock.now()) // DAY_MS * DAY_MS - settings.data_days * DAY_MS
        origin_ms = int(store.meta("origin_ms", lambda: str(default_origin)))
        secret = (
            settings.signing_secret.encode("utf-8")
            if settings.signing_secret
            else bytes.fromhex(store.meta("signing_secret", lambda: secrets.token_hex(32)))
        )
        keys = (
            KeyRing.from_file(settings.keys, strict=settings.strict_auth)
            if settings.keys
            else KeyRing(strict=settings.strict_auth)
        )
        exports = ExportService(
            settings=settings,
            clock=clock,
            store=store,
            world=World(seed=settings.seed, origin_ms=origin_ms, population=settings.population),
            segments=SegmentCatalog.load(settings.segments),
            signer=UrlSigner(secret, settings.base_url(), settings.bucket),
        )
        emulator = cls(
            settings=settings,
            clock=clock,
            store=store,
            keys=keys,
            limiter=RateLimiter(settings.rate_limit, clock, store),
            exports=exports,
            renderer=JsonRenderer(html_escape=settings.html_escape),
            scenarios=load_scenarios(),
        )
        marker = secrets.token_hex(8)
        if store.meta("scenarios_applied_by", lambda: marker) == marker:  # once per data dir
            try:
                emulator._apply_start_scenarios()
            except ApiError as exc:
                raise ValueError(f"--scenario: {exc.message}") from None
        return emulator
