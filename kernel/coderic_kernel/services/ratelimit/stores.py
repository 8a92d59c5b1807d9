"""Where buckets live: a dict in this process (embedded default) or Redis (shared by every
API process). Both run the same GCRA step (``gcra.arrive``); Redis runs it in a Lua script so
that a check is one atomic round trip, timed by the Redis server's clock."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from .gcra import arrive

if TYPE_CHECKING:
    from ..redis import RedisService

KEY_PREFIX = "coderic:ratelimit:"


class StoreUnavailable(Exception):
    """The store could not be asked (Redis down, timed out); the limiter fails open or closed."""


class RateLimitStore(Protocol):
    backend: str

    def arrive(self, key: str, interval: float, burst: int) -> Awaitable[tuple[bool, float]]:
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
# string is much cheaper to read than an array.
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

Check = tuple[bytes, bytes, "asyncio.Future[tuple[bool, float]]"]  # key, its RESP arguments, the waiter


def bulk(value: bytes) -> bytes:
    """One argument of a Redis command, as the protocol (RESP) writes it."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


#: The start of ``EVALSHA`` of one key, before the key and its arguments.
ONE_CHECK = b"*6\r\n" + bulk(b"EVALSHA") + bulk(GCRA_SHA) + bulk(b"1")


def script_call(batch: list[Check], load: bool = False) -> bytes:
    """``EVALSHA <sha> n key... interval burst...`` in RESP; ``EVAL <script> ...`` to ``load`` it."""
    name, script = (b"EVAL", GCRA_SCRIPT.encode()) if load else (b"EVALSHA", GCRA_SHA)
    head = b"*%d\r\n%s%s%s" % (3 + 3 * len(batch), bulk(name), bulk(script), bulk(b"%d" % len(batch)))
    return head + b"".join(bulk(key) for key, _, _ in batch) + b"".join(arguments for _, arguments, _ in batch)


class RedisRateLimitStore:
    """Each check is counted by one call of the GCRA script, in one round trip.

    Checks that arrive while a call is in flight wait and go together in the next call, one
    key each (group commit): an idle server sends each check on its own at once, a busy one
    spends one round trip on many. The store speaks to Redis on one connection of its own: it
    takes it from the kernel's Redis client, connected and authenticated by redis-py, and then
    reads the replies itself, as an asyncio protocol. Writing and reading through redis-py's
    connection (a task and a timer per write for its timeout, a timer and a stream read per
    reply) and a task per call cost a request about 175k instructions more than the in-process
    store, a third of the whole request; a future, one write and a callback that wakes the
    waiter cost about 30k (bench/README.md). The call is ``EVALSHA`` (``EVAL`` once after Redis lost its
    script cache). A call without a reply for redis-py's ``socket_timeout`` (to twice that)
    fails its checks and closes the connection; so does a lost connection, except that checks
    in flight on a connection that had answered before are sent once more on a new one (Redis
    restarted, or closed an idle connection): should the lost call have run after all, they
    count twice, never less. The connection still belongs to the client's pool, which closes it
    when the kernel stops. All the keys of a call must live on one Redis (not Redis Cluster).
    """

    backend = "redis"
    MAX_BATCH = 256

    def __init__(self, redis: RedisService) -> None:
        from redis.exceptions import RedisError

        self.redis = redis
        self._errors = (OSError, asyncio.TimeoutError, RedisError)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wire: _Wire | None = None  # the connection's protocol, while it is open
        self._write: Callable[[bytes], None] = _not_connected
        self._connecting: asyncio.Task[None] | None = None
        self._client: Any = None
        self._connection: Any = None  # redis-py's Connection whose transport the wire reads
        self._pending: list[Check] = []  # waiting for the call in flight to be answered
        self._in_flight: list[Check] | None = None
        self._timeout = 5.0
        self._watched: list[Check] | None = None  # the call in flight when the watchdog was armed
        self._watchdog: asyncio.TimerHandle | None = None
        self._arguments: dict[tuple[float, int], bytes] = {}

    def arrive(self, key: str, interval: float, burst: int) -> asyncio.Future[tuple[bool, float]]:
        """An awaitable of ``(allowed, backlog)``: a future, which spares the caller a coroutine."""
        arguments = self._arguments.get((interval, burst))
        if arguments is None:
            arguments = self._arguments[interval, burst] = bulk(repr(interval * 1e6).encode()) + bulk(b"%d" % burst)
        if self._wire is None and self._connecting is None:  # connect, on the running loop
            loop = self._loop = asyncio.get_running_loop()  # which costs a getpid() system call: not every time
            self._connecting = loop.create_task(self._connect())
        future: asyncio.Future[tuple[bool, float]] = self._loop.create_future()
        self._pending.append((key.encode(), arguments, future))
        if self._in_flight is None and self._wire is not None:
            self._send()
        return future

    def _send(self, load: bool = False) -> None:
        """Send what is pending as one call (``EVAL``, which loads the script, when ``load``)."""
        batch = self._pending
        if len(batch) > self.MAX_BATCH:
            batch, self._pending = batch[: self.MAX_BATCH], batch[self.MAX_BATCH :]
        else:
            self._pending = []
        self._in_flight = batch
        if len(batch) == 1 and not load:  # an idle server's every call
            key, arguments, _ = batch[0]
            self._write(b"%s$%d\r\n%s\r\n%s" % (ONE_CHECK, len(key), key, arguments))
        else:
            self._write(script_call(batch, load))
        if self._watchdog is None:
            self._watched = batch
            self._watchdog = self._loop.call_later(self._timeout, self._watch)

    def _answered(self, reply: bytes) -> None:
        """The call in flight is answered: wake its waiters, send what waited."""
        batch, self._in_flight = self._in_flight, None
        values = reply.split()
        for index, (_, _, future) in enumerate(batch):
            if not future.done():  # its waiter may have been cancelled
                future.set_result((values[2 * index] == b"1", float(values[2 * index + 1]) / 1e6))
        if self._pending:
            self._send()

    def _refused(self, error: bytes) -> None:
        """Redis answered the call with an error."""
        from redis.exceptions import ResponseError

        batch, self._in_flight = self._in_flight, None
        if error.startswith(b"NOSCRIPT"):  # Redis restarted, or its script cache was flushed
            self._pending[:0] = batch
            self._send(load=True)
            return
        self._fail(batch, ResponseError(error.decode(errors="replace")))
        if self._pending:
            self._send()

    def _watch(self) -> None:
        """Every ``socket_timeout`` while calls are in flight: one unanswered since the last look is stuck."""
        if self._in_flight is not None and self._in_flight is self._watched and self._wire is not None:
            batch, self._in_flight = self._in_flight, None
            self._fail(batch, asyncio.TimeoutError(f"no answer from Redis within {self._timeout:g} s"))
            self._abandon(self._wire)  # what waits is sent on a new connection
        if self._in_flight is not None:
            self._watched = self._in_flight
            self._watchdog = self._loop.call_later(self._timeout, self._watch)
        else:
            self._watched = self._watchdog = None

    def _abandon(self, wire: _Wire) -> None:
        """Close the connection now, and stop writing to it before its close is reported."""
        wire.transport.abort()
        if self._wire is wire:
            self._lost(wire, None)

    def _lost(self, wire: _Wire, exc: Exception | None) -> None:
        """The connection closed: retry the call in flight once on a new one, if it had answered before."""
        self._wire, self._write = None, _not_connected
        batch, self._in_flight = self._in_flight, None
        if batch is not None:
            if wire.answered:
                self._pending[:0] = batch
            else:
                self._fail(batch, exc or ConnectionError("Redis closed the connection"))
        if self._pending and self._connecting is None:
            self._connecting = self._loop.create_task(self._connect())

    async def _connect(self) -> None:
        """A connection from the client's pool, handed over to a ``_Wire``; then send what is pending."""
        try:
            try:
                await self._release()
                client = self.redis.client
                connection = await client.connection_pool.get_connection()
                self._client, self._connection = client, connection
                self._timeout = connection.socket_timeout or self._timeout
                transport = connection._writer.transport  # redis-py keeps it on its StreamWriter (5.x)
                wire = _Wire(self, transport, transport.get_protocol())
                transport.set_protocol(wire)
            except Exception as exc:  # every waiter hears of it, whatever it is
                batch, self._pending = self._pending, []
                self._fail(batch, exc)
                return
            except BaseException:  # cancelled: so are the waiters
                for *_, future in self._pending:
                    future.cancel()
                self._pending = []
                raise
        finally:
            self._connecting = None
        self._wire, self._write = wire, wire.transport.write
        if self._pending and self._in_flight is None:
            self._send()

    async def _release(self) -> None:
        """Give a closed connection back to its pool (unless the client was closed since)."""
        connection, self._connection = self._connection, None
        if connection is not None and self._client is self.redis.client:
            await connection.disconnect(nowait=True)
            await self._client.connection_pool.release(connection)

    def _fail(self, batch: list[Check], exc: BaseException) -> None:
        error = StoreUnavailable(f"{type(exc).__name__}: {exc}") if isinstance(exc, self._errors) else exc
        for _, _, future in batch:
            if not future.done():
                future.set_exception(error)


def _not_connected(command: bytes) -> None:
    raise AssertionError("the store writes only while its connection is open")


class _Wire(asyncio.Protocol):
    """The store's end of its connection: reads the script's replies (bulk strings and errors)."""

    def __init__(self, store: RedisRateLimitStore, transport: Any, replaced: asyncio.BaseProtocol) -> None:
        self.store = store
        self.transport = transport
        self.replaced = replaced  # redis-py's stream protocol, told when the connection closes
        self.buffer = b""
        self.answered = False

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        while buffer:
            if self.store._in_flight is None:  # a reply to no call: out of step, start again
                self.store._abandon(self)
                break
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                break
            kind = buffer[0]
            if kind == 36:  # $: a bulk string, the script's reply
                end = line_end + 2 + int(buffer[1:line_end])
                if len(buffer) < end + 2:
                    break
                reply, buffer = buffer[line_end + 2 : end], buffer[end + 2 :]
                self.answered = True
                self.store._answered(reply)
            elif kind == 45:  # -: an error
                error, buffer = buffer[1:line_end], buffer[line_end + 2 :]
                self.store._refused(error)
            else:  # nothing else is ever asked for
                self.store._abandon(self)
                break
        self.buffer = buffer

    def connection_lost(self, exc: Exception | None) -> None:
        self.replaced.connection_lost(exc)  # lets redis-py's disconnect() finish waiting for the close
        if self.store._wire is self:
            self.store._lost(self, exc)
