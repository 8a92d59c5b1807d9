"""The Redis connection shared by the services, when ``redis_url`` is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis


class RedisService:
    """One client (with its own connection pool) per kernel; created lazily, closed at stop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: Redis | None = None

    @property
    def client(self) -> Redis:
        if self._client is None:
            from redis.asyncio import Redis

            self._client = Redis.from_url(
                self.url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30, retry_on_timeout=False
            )
        return self._client

    def subscriber(self) -> Redis:
        """A separate client for pub/sub: a subscription waits for messages indefinitely,
        which the main client's read timeout would cut every few seconds."""
        from redis.asyncio import Redis

        return Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=None, health_check_interval=30)

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
