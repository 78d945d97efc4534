"""A tiny per-key TTL cache with single flight: concurrent misses share one node round trip."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


class TTLCache:
    """Caches the result of `get(key, ttl, fetch)` for ttl seconds; errors are not cached."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, tuple[float, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str, ttl: float, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """The cached value for key, fetching it when absent or older than ttl."""
        hit = self._values.get(key)
        if hit is not None and self._clock() < hit[0]:
            return hit[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._values.get(key)  # another waiter may have refreshed it
            if hit is not None and self._clock() < hit[0]:
                return hit[1]
            value = await fetch()
            self._values[key] = (self._clock() + ttl, value)
            return value
