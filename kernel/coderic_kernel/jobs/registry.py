"""Every job, schedule and event handler of the enabled plugins, by full name."""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from coderic_sdk import CronJob, Event, EventHandler, Job, JobContext, PluginContext

from ..errors import PluginError
from ..plugins.hooks import PluginHooks

EVENT_JOB_PREFIX = "event:"
#: The kernel's job that broadcasts an event published inside a transaction, once committed.
BROADCAST_JOB = "kernel.broadcast_event"


@dataclass(frozen=True)
class RegisteredJob:
    name: str
    plugin: PluginContext
    run: Callable[[JobContext, Mapping[str, Any]], Awaitable[None]]
    max_attempts: int = 5
    timeout: float = 300.0
    backoff: float = 2.0


@dataclass(frozen=True)
class RegisteredCron:
    name: str
    plugin: PluginContext
    cron: CronJob


@dataclass(frozen=True)
class RegisteredHandler:
    name: str
    plugin: PluginContext
    handler: EventHandler

    def matches(self, event: str) -> bool:
        return fnmatch.fnmatchcase(event, self.handler.pattern)


@dataclass
class JobRegistry:
    jobs: dict[str, RegisteredJob] = field(default_factory=dict)
    crons: list[RegisteredCron] = field(default_factory=list)
    handlers: list[RegisteredHandler] = field(default_factory=list)

    def durable_for(self, event: str) -> list[RegisteredHandler]:
        return [h for h in self.handlers if h.handler.delivery == "durable" and h.matches(event)]

    def broadcast_for(self, event: str) -> list[RegisteredHandler]:
        return [h for h in self.handlers if h.handler.delivery == "broadcast" and h.matches(event)]

    @property
    def max_timeout(self) -> float:
        timeouts = [j.timeout for j in self.jobs.values()] + [c.cron.timeout for c in self.crons]
        return max(timeouts, default=300.0)


def full_name(plugin: str, name: str) -> str:
    return name if name.startswith(f"{plugin}.") else f"{plugin}.{name}"


def collect_jobs(hooks: PluginHooks, contexts: Sequence[PluginContext]) -> JobRegistry:
    registry = JobRegistry()
    taken: dict[str, str] = {}

    def claim(plugin: PluginContext, name: str, what: str) -> None:
        if "." not in name or not name.replace(".", "").replace("_", "").replace("-", "").isalnum():
            raise PluginError(plugin.name, "register", f"{what} name {name!r} is not like '<plugin>.<name>'")
        if name in taken:
            raise PluginError(plugin.name, "register", f"{what} {name!r} is already registered by plugin '{taken[name]}'")
        taken[name] = plugin.name

    for plugin in contexts:
        for item in hooks.jobs(plugin):
            name = full_name(plugin.name, item.name)
            claim(plugin, name, "job")
            if isinstance(item, Job):
                registry.jobs[name] = RegisteredJob(name, plugin, item.handler, item.max_attempts, item.timeout, item.backoff)
            else:
                registry.crons.append(RegisteredCron(name, plugin, item))
        for handler in hooks.event_handlers(plugin):
            name = full_name(plugin.name, handler.name or getattr(handler.handler, "__name__", "handler"))
            claim(plugin, name, "event handler")
            registered = RegisteredHandler(name, plugin, handler)
            registry.handlers.append(registered)
            if handler.delivery == "durable":
                registry.jobs[EVENT_JOB_PREFIX + name] = RegisteredJob(
                    EVENT_JOB_PREFIX + name, plugin, _deliver(handler), **dict(handler.options)
                )
    return registry


def _deliver(handler: EventHandler) -> Callable[[JobContext, Mapping[str, Any]], Awaitable[None]]:
    async def deliver(ctx: JobContext, payload: Mapping[str, Any]) -> None:
        await handler.handler(event_from_payload(payload))

    return deliver


def event_payload(event: Event) -> dict[str, Any]:
    return {
        "name": event.name, "data": dict(event.data), "id": event.id,
        "published_at": event.published_at.isoformat(), "source": event.source,
    }


def event_from_payload(payload: Mapping[str, Any]) -> Event:
    from datetime import datetime

    return Event(
        name=payload["name"], data=payload["data"], id=payload["id"],
        published_at=datetime.fromisoformat(payload["published_at"]), source=payload["source"],
    )
