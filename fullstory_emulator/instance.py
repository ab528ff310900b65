"""The emulator's parts, built once from the settings and wired together.

Nothing here knows HTTP: the app factory (`http.app.create_app`) serves an `Emulator`, and tests
may build one to share or inspect its state.
"""

from __future__ import annotations

import functools
import os
import secrets
import time
from dataclasses import dataclass

from .auth import KeyRing
from .clock import EARLIEST, LATEST, Clock, ClockState, check_instant, clamp
from .control.service import ControlService, load_scenarios
from .errors import ApiError
from .exports.ratelimit import RateLimiter
from .exports.service import ExportService
from .exports.signing import UrlSigner
from .files.cache import FileCache
from .files.pool import BlockPool
from .files.replay import Replay
from .recording import Recording
from .resources import user_file
from .settings import Settings
from .store import Store
from .store.memory import MemoryStore
from .store.sqlite import SQLiteStore
from .timestamps import to_ms
from .world import World
from .world.segments import SegmentCatalog
from .world.shape import Shape

DAY_MS = 86_400_000


def check_store(settings: Settings) -> tuple[bool, list[str]]:
    """Whether the store the settings name can hold the emulator's state, and what it holds;
    nothing is changed."""
    if settings.store:
        try:
            from .store.postgres import check
        except ImportError as exc:
            return False, [
                f"psycopg is missing ({exc.name}): pip install 'fullstory-emulator[postgres]'"
            ]
        report = check(settings.store)
        return report.usable, list(report.lines)
    if settings.data_dir:
        path = settings.data_dir / "emulator.sqlite3"
        if path.exists():
            usable = os.access(path, os.R_OK | os.W_OK)
            return usable, [f"SQLite at {path}: {'usable' if usable else 'not writable'}"]
        parent = next(p for p in [settings.data_dir, *settings.data_dir.parents] if p.exists())
        usable = os.access(parent, os.W_OK)
        made = (
            "will be created at start" if usable else f"cannot be created ({parent} is read-only)"
        )
        return usable, [f"SQLite at {path}: {made}"]
    return True, [
        "memory: nothing to check (--store postgresql://... shares state between replicas)"
    ]


@dataclass(frozen=True)
class Emulator:
    settings: Settings
    clock: Clock
    store: Store
    keys: KeyRing
    limiter: RateLimiter
    exports: ExportService
    control: ControlService

    def close(self) -> None:
        """What a stopping server owes its machine: the worker processes stopped (their queues'
        semaphores released), a temporary file cache's folder removed, the store's buffered
        journal written and the store closed."""
        try:
            self.exports.close()
        finally:
            close = getattr(self.store, "close", None)
            if close is not None:
                close()

    @classmethod
    def build(cls, settings: Settings) -> Emulator:
        store = open_store(settings)
        # What must not change across restarts and workers is fixed once and kept in the store:
        # the clock, the world's first day and the URL-signing secret.
        now = time.time()
        begin = (
            check_instant(settings.start_time, "--start-time").timestamp()
            if settings.start_time
            else clamp(now)
        )
        clock = Clock(
            backend=store.clock_backend(ClockState.starting(begin, settings.freeze_clock, now))
        )
        # Whole UTC days, so emulators started the same day without --start-time share data.
        default_origin = to_ms(clock.now()) // DAY_MS * DAY_MS - settings.data_days * DAY_MS
        origin_ms = int(store.meta("origin_ms", lambda: str(default_origin), _whole_ms))
        secret = (
            settings.signing_secret.encode("utf-8")
            if settings.signing_secret
            else bytes.fromhex(
                store.meta("signing_secret", lambda: secrets.token_hex(32), _secret_hex)
            )
        )
        keys = (
            KeyRing.from_file(user_file("keys", settings.keys), strict=settings.strict_auth)
            if settings.keys
            else KeyRing(strict=settings.strict_auth)
        )
        # --replay: the recorded org's segments, shape and timelines; a folder that does not
        # load stops the start (RecordingError, a ValueError naming the file and the field).
        replay = Replay(Recording.load(settings.replay)) if settings.replay else None
        segments = SegmentCatalog.load(
            replay.recording.segments_source if replay else None,
            user_file("segments", settings.segments) if settings.segments else None,
        )
        scenarios = load_scenarios(
            user_file("scenarios", settings.scenarios) if settings.scenarios else None
        )
        exports = ExportService(
            settings=settings,
            clock=clock,
            store=store,
            world=shared_world(
                settings.seed,
                origin_ms,
                settings.population,
                settings.density,
                replay.shape if replay else None,
            ),
            segments=segments,
            signer=UrlSigner(secret, settings.base_url(), settings.bucket),
            files=FileCache(
                settings.data_dir / "files" if settings.data_dir else None,
                settings.file_cache_bytes,
            ),
            pool=BlockPool(workers) if (workers := settings.export_processes()) > 1 else None,
            replay=replay,
        )
        control = ControlService(
            store,
            clock,
            seed=settings.seed,
            scenarios=scenarios,
            start_scenarios=[
                name.strip() for name in (settings.scenario or "").split(",") if name.strip()
            ],
        )
        marker = secrets.token_hex(8)
        if store.meta("scenarios_applied_by", lambda: marker) == marker:  # once per data dir
            try:
                control.apply_start_scenarios()
            except ApiError as exc:
                raise ValueError(f"--scenario: {exc.message}") from None
        return cls(
            settings=settings,
            clock=clock,
            store=store,
            keys=keys,
            limiter=RateLimiter(settings.rate_limit, clock, store),
            exports=exports,
            control=control,
        )


@functools.lru_cache(maxsize=8)
def shared_world(
    seed: int, origin_ms: int, population: int, density: float, shape: Shape | None = None
) -> World:
    """One World per (seed, origin, population, density, shape) in a process: a pure function
    of them, so emulators built alike (a test suite's fixtures, one per test) share the
    individuals it has made instead of making them again (about 1.5 ms each, most of a small
    export)."""
    return World(
        seed=seed, origin_ms=origin_ms, population=population, density=density, shape=shape
    )


def _whole_ms(text: str) -> bool:
    """A kept world origin: epoch milliseconds from well before the clock's range to its end."""
    low = to_ms(EARLIEST) - 3660 * DAY_MS
    return (
        text.lstrip("-").isascii()
        and text.lstrip("-").isdigit()
        and low <= int(text) <= to_ms(LATEST)
    )


def _secret_hex(text: str) -> bool:
    try:
        return len(bytes.fromhex(text)) >= 16
    except ValueError:
        return False


def open_store(settings: Settings) -> Store:
    """The store the settings ask for: PostgreSQL with --store (replicas share it), SQLite in
    --data-dir (workers on one machine share it), else memory. A store that cannot be used is
    a ValueError naming it and why (StoreUnavailable for a data dir, StoreError for a database)."""
    if settings.store:
        try:
            from .store.postgres import PostgresStore
        except ImportError as exc:
            raise ValueError(
                f"--store needs psycopg ({exc.name} is missing): "
                "pip install 'fullstory-emulator[postgres]'"
            ) from None
        return PostgresStore(settings.store, journal_max_bytes=settings.journal_max_bytes)
    if settings.data_dir:
        return SQLiteStore(
            settings.data_dir / "emulator.sqlite3", journal_max_bytes=settings.journal_max_bytes
        )
    return MemoryStore(
        journal_max_bytes=settings.journal_max_bytes,
        operations_max_bytes=settings.operations_max_bytes,
    )


def served_failure_state(settings: Settings) -> str:
    """The failure state served to every tenant: --failure-state, unless a start scenario
    (`--scenario failed-state`) sets another, as it does before the first request."""
    state = settings.failure_state
    if not settings.scenario:
        return state
    try:
        known = load_scenarios(
            user_file("scenarios", settings.scenarios) if settings.scenarios else None
        )
    except ValueError:  # the start itself says what is wrong with the file
        return state
    for name in settings.scenario.split(","):
        scenario = known.get(name.strip())
        config = scenario.body.get("config") if scenario else None
        if isinstance(config, dict) and isinstance(config.get("failureState"), str):
            state = config["failureState"]
    return state
