"""Everything a request may need, built once per app from the settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .auth import KeyRing
from .clock import Clock
from .exports import ExportService
from .ratelimit import RateLimiter
from .render import JsonRenderer
from .segments import SegmentCatalog
from .settings import Settings
from .signing import UrlSigner
from .store import MemoryStore, Store
from .timestamps import to_ms
from .world import World


@dataclass
class Emulator:
    settings: Settings
    clock: Clock
    store: Store
    keys: KeyRing
    limiter: RateLimiter
    exports: ExportService
    renderer: JsonRenderer

    @classmethod
    def build(cls, settings: Settings) -> Emulator:
        clock = Clock(settings.start_time, frozen=settings.freeze_clock)
        store = MemoryStore()
        keys = (
            KeyRing.from_file(settings.keys, strict=settings.strict_auth)
            if settings.keys
            else KeyRing(strict=settings.strict_auth)
        )
        secret = (
            settings.signing_secret.encode("utf-8")
            if settings.signing_secret
            else secrets.token_bytes(32)
        )
        # Whole UTC days, so emulators started the same day without --start-time share data.
        origin_ms = to_ms(clock.now()) // 86_400_000 * 86_400_000 - settings.data_days * 86_400_000
        exports = ExportService(
            settings=settings,
            clock=clock,
            store=store,
            world=World(seed=settings.seed, origin_ms=origin_ms, population=settings.population),
            segments=SegmentCatalog.load(settings.segments),
            signer=UrlSigner(secret, settings.base_url(), settings.bucket),
        )
        return cls(
            settings=settings,
            clock=clock,
            store=store,
            keys=keys,
            limiter=RateLimiter(settings.rate_limit, clock, store),
            exports=exports,
            renderer=JsonRenderer(html_escape=settings.html_escape),
        )
