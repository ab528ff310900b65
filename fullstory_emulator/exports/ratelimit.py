"""Token buckets per API key and endpoint, refilled by the emulator's clock.

FullStory documents "2 requests per minute, with a burst limit up to 50"; the bucket holds the
burst and refills at the rate. Test authors can change the limit per tenant or for the
instance, or have the next N requests refused outright. Bucket state lives in the store.
"""

from __future__ import annotations

import math

from ..auth import Principal
from ..clock import Clock
from ..control.service import ControlView
from ..errors import RateLimited
from ..settings import RateLimit
from ..store import Store
from ..store.records import Bucket


class RateLimiter:
    def __init__(self, limit: RateLimit | None, clock: Clock, store: Store) -> None:
        self.limit = limit
        self._clock = clock
        self._store = store

    def take(self, control: ControlView, principal: Principal, endpoint: str) -> None:
        """Spend one token or raise RateLimited with the whole seconds until one is back."""
        tenant = principal.tenant
        denied = control.take_denial()
        if denied is not None:  # reads as production's answer; the journal knows better
            raise exceeded(endpoint, denied, control.setting("rate_limit", self.limit))
        limit = control.setting("rate_limit", self.limit)
        if limit is None:
            return
        now = self._clock.now(tenant).timestamp()
        rate = limit.per_second
        outcome: list[int] = []

        def spend(bucket: Bucket | None) -> Bucket:
            if bucket is None:
                tokens = float(limit.burst)
            else:
                elapsed = max(0.0, now - bucket.updated)
                tokens = min(float(limit.burst), bucket.tokens + elapsed * rate)
            if tokens >= 1.0:
                return Bucket(tokens - 1.0, now)
            outcome.append(max(1, math.ceil((1.0 - tokens) / rate - 1e-9)))
            return Bucket(tokens, now)

        self._store.update_bucket((tenant, principal.key_id, endpoint), spend)
        if outcome:
            raise exceeded(endpoint, outcome[0], limit)


def exceeded(endpoint: str, retry_after: int, limit: RateLimit | None) -> RateLimited:
    """The 429 a rate-limited request gets, however it came to be limited (a spent bucket, a
    control API denial, an injected fault), so that all of them read alike."""
    rule = (
        f": {limit.refill:g} requests per {limit.period:g} s with a burst of {limit.burst}"
        if limit is not None
        else ""
    )
    return RateLimited(
        f"rate limit exceeded for {endpoint}{rule}; retry after {retry_after} s",
        retry_after=retry_after,
    )
