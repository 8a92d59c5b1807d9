"""Domain events: plugins tell each other what happened without importing each other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Event:
    """``name`` is ``<plugin>.<what>`` (``projects.created``); ``data`` is JSON-safe."""

    name: str
    data: Mapping[str, Any]
    id: str
    published_at: datetime
    source: str  # the plugin that published it


#: Broadcast only, by the kernel, in one process: its connection to the other processes'
#: events (Redis pub/sub) was lost and is back, so its broadcast handlers may have missed
#: events. A handler of it brings in-memory state up to date (drop a cache, tell clients to
#: resync). ``data["lost_at"]`` is when the connection was lost (ISO 8601).
EVENTS_RESUMED = "kernel.events_resumed"


@dataclass(frozen=True, slots=True)
class EventHandler:
    """Call ``handler`` for every event whose name matches ``pattern`` (``projects.*``).

    ``durable``: once per event, through the job outbox (survives restarts; retried; for
    side effects such as emails). ``broadcast``: in every running process, at most once,
    right away (for in-memory state: caches, WebSocket fan-out); what a process misses while
    its connection to Redis is down is not sent again, and ``EVENTS_RESUMED`` says so.
    """

    pattern: str
    handler: Callable[[Event], Awaitable[None]]
    name: str = ""
    delivery: Literal["durable", "broadcast"] = "durable"
    options: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class EventBus(Protocol):
    async def publish(self, name: str, data: Mapping[str, Any]) -> Event:
        """Publish an event named ``<this plugin>.<what>``. Inside a database transaction the
        durable deliveries commit (or roll back) with it."""
        ...
