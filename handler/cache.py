"""A value loaded from a slow store, kept in memory and refreshed by age.

Both secrets (keys and providers) are read this way: one fetch at a time
(single-flight), none within `min_gap` of the last attempt (so neither a
burst of requests nor an outage of the store becomes a burst of calls), and a
failed refresh keeps serving the last good value until `max_staleness`.

`max_staleness` is a hard bound, whatever the store does: a value is never
served once that long has passed since the read that produced it began, so
a change in the store (a revoked key) takes effect within it, outages included.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, Generic, TypeVar

from .protocol.errors import GatewayError

log = logging.getLogger(__name__)

T = TypeVar("T")


class RefreshingValue(Generic[T]):
    def __init__(
        self,
        load: Callable[[], T],
        *,
        name: str,
        ttl: float,
        min_gap: float,
        max_staleness: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._name = name
        self._ttl = ttl
        self._min_gap = min_gap
        self._max_staleness = max(max_staleness, ttl)  # a value is always good for its own TTL
        self._clock = clock
        self._value: T | None = None
        self._loaded_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()
        self.loads = 0

    async def get(self, *, refresh: bool = False) -> T:
        """The cached value; `refresh=True` asks for a newer one (subject to min_gap)."""
        if refresh or self._value is None or self._clock() - self._loaded_at >= self._ttl:
            await self._refresh()
        if self._value is None or self._clock() - self._loaded_at > self._max_staleness:
            raise GatewayError(503, f"The {self._name} store is unavailable; try again shortly.")
        return self._value

    def invalidate(self) -> None:
        self._loaded_at = self._attempted_at = float("-inf")

    async def _refresh(self) -> None:
        async with self._lock:
            if self._clock() - self._attempted_at < self._min_gap:
                return  # loaded, or tried and failed, a moment ago
            started = self._attempted_at = self._clock()
            try:
                value = await asyncio.to_thread(self._load)
            except Exception as exc:  # noqa: BLE001 - any failure of the store
                age = self._clock() - self._loaded_at
                log.warning("%s store unavailable (%s); cached value %.0fs old",
                            self._name, type(exc).__name__, age)
                if age > self._max_staleness:
                    self._value = None
                return
            self.loads += 1
            self._value = value
            self._loaded_at = started  # the value is as old as the read that began then
