"""Where buckets live: a dict in this process (embedded default) or Redis (shared by every
API process). Both run the same GCRA step (``gcra.arrive``); Redis runs it in a Lua script so
that a check is one atomic round trip, timed by the Redis server's clock."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .gcra import arrive

if TYPE_CHECKING:
    from ..redis import RedisService

KEY_PREFIX = "coderic:ratelimit:"


class StoreUnavailable(Exception):
    """The store could not be asked (Redis down, timed out); the limiter fails open or closed."""


class RateLimitStore(Protocol):
    backend: str

    async def arrive(self, key: str, interval: float, burst: int) -> tuple[bool, float]:
        """Count one request against bucket ``key``: ``(allowed, backlog in seconds after it)``.

        Raises ``StoreUnavailable`` when the store cannot be reached.
        """
        ...


class MemoryRateLimitStore:
    """Buckets in a dict; expired ones are swept when the dict has doubled since the last sweep,
    so memory follows the number of active clients and each request stays O(1) amortised."""

    backend = "memory"
    MIN_SWEEP = 1024

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tats: dict[str, float] = {}
        self._clock = clock
        self._sweep_at = self.MIN_SWEEP

    async def arrive(self, key: str, interval: float, burst: int) -> tuple[bool, float]:
        now = self._clock()
        allowed, tat = arrive(self._tats.get(key), now, interval, burst)
        if allowed:
            self._tats[key] = tat
            if len(self._tats) >= self._sweep_at:
                self._sweep(now)
        return allowed, tat - now

    def __len__(self) -> int:
        return len(self._tats)

    def _sweep(self, now: float) -> None:
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        self._sweep_at = max(self.MIN_SWEEP, 2 * len(self._tats))


# The same step as gcra.arrive for each (key, interval, burst) given, in microseconds since
# 2023-11-14 rather than since 1970: smaller numbers keep Lua's doubles precise to a few
# hundredths of a microsecond for decades (a rate above about ten million a second per bucket
# stops being counted exactly, and is never refused). Times are Redis's own (TIME), so API
# processes with skewed clocks share buckets correctly. A TAT is stored as text with a TTL of
# its backlog: an idle bucket disappears exactly when it is full again. The reply is one string,
# "<allowed> <backlog> ..." per key: Redis would truncate Lua numbers to integers, and one
# string is much cheaper for redis-py to read than an array.
GCRA_SCRIPT = """
local clock = redis.call('TIME')
local now = (tonumber(clock[1]) - 1700000000) * 1000000 + tonumber(clock[2])
local replies = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local stored = redis.call('GET', key)
  local tat = stored and tonumber(stored) or now
  if tat < now then tat = now end
  local following = tat + interval
  if following - now > interval * tonumber(ARGV[2 * i]) + 0.001 then
    replies[i] = string.format('0 %.3f', tat - now)
  else
    redis.call('SET', key, string.format('%.3f', following), 'PX', math.max(1, math.ceil((following - now) / 1000)))
    replies[i] = string.format('1 %.3f', following - now)
  end
end
return table.concat(replies, ' ')
"""
GCRA_SHA = hashlib.sha1(GCRA_SCRIPT.encode()).hexdigest().encode()

Pending = tuple[str, float, int, "asyncio.Future[tuple[bool, float]]"]


def resp_command(parts: list[bytes]) -> bytes:
    """``parts`` as one command of the Redis protocol (RESP), as redis-py's ``pack_command``
    would write it, at a fraction of its cost per argument."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


class RedisRateLimitStore:
    """Each check is counted by one call of the GCRA script, in one round trip.

    Checks that arrive while a call is in flight wait and go together in the next call, one
    key each (group commit): an idle server sends each check on its own at once, a busy one
    spends one round trip on many. The call is ``EVALSHA`` (``EVAL`` once after Redis lost its
    script cache), written and read on one connection of the kernel's Redis client that this
    store keeps: redis-py's per-command path (pool checkout, health checks, argument encoding)
    costs about as much CPU as the kernel spends on a whole request, so the store skips it. The
    connection still belongs to the client's pool, which closes it when the kernel stops.
    All the keys of a call must live on one Redis (not Redis Cluster).
    """

    backend = "redis"
    MAX_BATCH = 256

    def __init__(self, redis: RedisService) -> None:
        from redis.exceptions import RedisError

        self.redis = redis
        self._errors = (OSError, asyncio.TimeoutError, RedisError)
        self._client: Any = None
        self._connection: Any = None
        self._pending: list[Pending] = []
        self._sender: asyncio.Task[None] | None = None

    async def arrive(self, key: str, interval: float, burst: int) -> tuple[bool, float]:
        sender = self._sender  # its loop is the running one; asking asyncio costs a getpid() syscall
        loop = sender.get_loop() if sender is not None else asyncio.get_running_loop()
        future: asyncio.Future[tuple[bool, float]] = loop.create_future()
        self._pending.append((key, interval, burst, future))
        if sender is None:
            self._sender = loop.create_task(self._send())
        return await future

    async def _send(self) -> None:
        """Send what is pending, one call at a time, until nothing is."""
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.MAX_BATCH], self._pending[self.MAX_BATCH :]
                try:
                    values = (await self._call(batch)).split()
                except Exception as exc:  # every waiter hears of it, whatever it is
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(self._unavailable(exc) if isinstance(exc, self._errors) else exc)
                    continue
                except BaseException:  # cancelled: so are the waiters
                    for *_, future in batch:
                        future.cancel()
                    raise
                for index, (*_, future) in enumerate(batch):
                    if not future.done():  # its waiter may have been cancelled
                        future.set_result((values[2 * index] == b"1", float(values[2 * index + 1]) / 1e6))
        finally:
            self._sender = None

    @staticmethod
    def _unavailable(exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"{type(exc).__name__}: {exc}")

    async def _call(self, batch: list[Pending]) -> bytes:
        from redis.exceptions import ConnectionError

        parts = [b"EVALSHA", GCRA_SHA, b"%d" % len(batch), *(key.encode() for key, *_ in batch)]
        for _, interval, burst, _ in batch:
            parts += (repr(interval * 1e6).encode(), b"%d" % burst)
        kept = self._connection is not None and self._client is self.redis.client
        try:
            return await self._evaluate(parts)
        except ConnectionError:
            if not kept:
                raise
            # The kept connection had gone stale (Redis restarted, or closed it): once more on a new
            # one. Should the lost call have run after all, its checks count twice, never less.
            return await self._evaluate(parts)

    async def _evaluate(self, parts: list[bytes]) -> bytes:
        from redis.exceptions import NoScriptError

        client = self.redis.client
        if client is not self._client or self._connection is None:  # first call, after an error, or a new client
            self._client, self._connection = client, await client.connection_pool.get_connection()
        connection = self._connection
        try:  # redis-py's socket timeout bounds the write and the read
            await connection.send_packed_command(resp_command(parts), check_health=False)
            try:
                reply: bytes = await connection.read_response()
            except NoScriptError:  # Redis restarted, or its script cache was flushed: EVAL loads it again
                loading = resp_command([b"EVAL", GCRA_SCRIPT.encode(), *parts[2:]])
                await connection.send_packed_command(loading, check_health=False)
                reply = await connection.read_response()
        except BaseException:
            self._connection = None  # in an unknown state: back to the pool, closed
            await connection.disconnect()
            await client.connection_pool.release(connection)
            raise
        return reply
