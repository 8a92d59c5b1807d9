"""``plugin.cache``: JSON values with a time to live, namespaced per plugin.

In-process (a dict with expiry times) for the embedded default; Redis (``SET ... PX``) when
``redis_url`` is set. Values are JSON, never pickle.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from .json_safe import to_json
from .redis import RedisService

KEY_PREFIX = "coderic:cache:"


class CacheStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: float | None) -> None: ...
    async def delete(self, key: str) -> None: ...


class MemoryCacheStore:
    def __init__(self, clock: Any = time.monotonic) -> None:
        self._items: dict[str, tuple[bytes, float | None]] = {}
        self._clock = clock

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self._clock():
            del self._items[key]
            return None
        return value

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        self._items[key] = (value, None if ttl is None else self._clock() + ttl)

    async def delete(self, key: str) -> None:
        self._items.pop(key, None)


class RedisCacheStore:
    def __init__(self, redis: RedisService) -> None:
        self.redis = redis

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self.redis.client.get(key)
        return value

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        await self.redis.client.set(key, value, px=None if ttl is None else max(1, int(ttl * 1000)))

    async def delete(self, key: str) -> None:
        await self.redis.client.delete(key)


class PluginCache:
    """The SDK's ``Cache`` for one plugin: its keys live under ``coderic:cache:<plugin>:``."""

    def __init__(self, store: CacheStore, plugin: str) -> None:
        self.store = store
        self.prefix = f"{KEY_PREFIX}{plugin}:"

    async def get(self, key: str) -> Any | None:
        raw = await self.store.get(self.prefix + key)
        return None if raw is None else json.loads(raw)

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        if ttl is not None and ttl <= 0:
            raise ValueError("ttl must be positive")
        await self.store.set(self.prefix + key, to_json(value, "a cache value").encode(), ttl)

    async def delete(self, key: str) -> None:
        await self.store.delete(self.prefix + key)


def cache_store(redis: RedisService | None) -> CacheStore:
    return RedisCacheStore(redis) if redis is not None else MemoryCacheStore()
