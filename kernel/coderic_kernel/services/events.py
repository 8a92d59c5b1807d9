"""``plugin.events``: publish domain events; durable handlers get them through the outbox,
broadcast handlers in every process (Redis pub/sub, or in-process when embedded)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol

from coderic_sdk import EVENTS_RESUMED, Event

from ..errors import describe
from ..jobs.registry import BROADCAST_JOB, EVENT_JOB_PREFIX, JobRegistry, RegisteredHandler, event_from_payload, event_payload
from .json_safe import to_json
from .redis import RedisService

if TYPE_CHECKING:
    from ..jobs.runtime import JobsRuntime

logger = logging.getLogger("coderic.events")
CHANNEL = "coderic:events"


class Broadcaster(Protocol):
    async def publish(self, event: Event) -> None: ...
    async def listen(self) -> None: ...


def dispatch(handlers: list[RegisteredHandler], event: Event, running: set[asyncio.Task[None]]) -> None:
    """Start every matching broadcast handler; a failing handler is logged and harms no other."""
    for registered in handlers:

        async def call(registered: RegisteredHandler = registered) -> None:
            try:
                await registered.handler.handler(event)
            except Exception as exc:
                logger.error("event handler %s failed on %s: %s", registered.name, event.name, describe(exc))

        task = asyncio.create_task(call())
        running.add(task)
        task.add_done_callback(running.discard)


class LocalBroadcaster:
    def __init__(self, registry: JobRegistry) -> None:
        self.registry = registry
        self._running: set[asyncio.Task[None]] = set()

    async def publish(self, event: Event) -> None:
        dispatch(self.registry.broadcast_for(event.name), event, self._running)

    async def listen(self) -> None:
        return None  # publishing dispatches directly


class RedisBroadcaster:
    """Every process subscribes to one channel and runs its own matching handlers."""

    def __init__(self, registry: JobRegistry, redis: RedisService) -> None:
        self.registry = registry
        self.redis = redis
        self._running: set[asyncio.Task[None]] = set()
        # Pub/sub channels are shared by every database of a Redis server: the database's
        # number in the name keeps two platforms on one server (or two test runs) apart.
        self.channel = f"{CHANNEL}:{redis.client.connection_pool.connection_kwargs.get('db', 0)}"

    async def publish(self, event: Event) -> None:
        await self.redis.client.publish(self.channel, json.dumps(event_payload(event)))

    async def listen(self) -> None:
        """Receive events until cancelled, resubscribing after a lost connection (and then
        telling this process's handlers of ``EVENTS_RESUMED``: what was published meanwhile
        never reaches this process)."""
        lost_at: datetime | None = None
        while True:
            client = self.redis.subscriber()
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    if lost_at is not None:
                        self.resumed(lost_at)
                        lost_at = None
                    async for message in pubsub.listen():
                        event = event_from_payload(json.loads(message["data"]))
                        dispatch(self.registry.broadcast_for(event.name), event, self._running)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("event subscription lost (%s); resubscribing in 1s", describe(exc))
                lost_at = lost_at or datetime.now(timezone.utc)
                await asyncio.sleep(1)
            finally:
                await client.aclose()


    def resumed(self, lost_at: datetime) -> None:
        logger.warning("event subscription resumed; events published since %s were missed here", lost_at.isoformat())
        event = Event(EVENTS_RESUMED, {"lost_at": lost_at.isoformat()}, uuid.uuid4().hex, datetime.now(timezone.utc), "kernel")
        dispatch(self.registry.broadcast_for(EVENTS_RESUMED), event, self._running)


def broadcaster(registry: JobRegistry, redis: RedisService | None) -> Broadcaster:
    return RedisBroadcaster(registry, redis) if redis is not None else LocalBroadcaster(registry)


class PluginEvents:
    """The SDK's ``EventBus`` for one plugin."""

    def __init__(self, runtime: JobsRuntime, plugin: str) -> None:
        self.runtime = runtime
        self.plugin = plugin

    async def publish(self, name: str, data: Mapping[str, Any]) -> Event:
        if not name.startswith(f"{self.plugin}.") or name == f"{self.plugin}.":
            raise ValueError(f"plugin '{self.plugin}' publishes events named '{self.plugin}.<what>', not {name!r}")
        to_json(data, "event data")
        event = Event(name, dict(data), uuid.uuid4().hex, datetime.now(timezone.utc), self.plugin)
        runtime = self.runtime
        for handler in runtime.registry.durable_for(name):
            job = runtime.registry.jobs[EVENT_JOB_PREFIX + handler.name]
            await runtime.outbox.add(
                job.name, event_payload(event), key=f"{job.name}:{event.id}", max_attempts=job.max_attempts
            )
        if runtime.registry.broadcast_for(name):
            if runtime.in_transaction():  # after commit, through the outbox: never for a rolled-back change
                await runtime.outbox.add(BROADCAST_JOB, event_payload(event), key=f"{BROADCAST_JOB}:{event.id}")
            else:
                try:
                    await runtime.broadcaster.publish(event)
                except Exception as exc:  # best effort; durable deliveries are already written
                    logger.warning("could not broadcast %s: %s", name, describe(exc))
        runtime.metrics.events.labels(name).inc()
        for observe in runtime.observers:
            observe(event)
        runtime.nudge()
        return event
