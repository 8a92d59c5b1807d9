"""Hook implementations of the tasks test plugin."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from coderic_sdk import (
    Conflict,
    CronJob,
    Event,
    EventHandler,
    Job,
    JobContext,
    PluginContext,
    RequestContext,
    Route,
    Schema,
    hookimpl,
)

from .piccolo_app import APP_CONFIG
from .tables import Effect, Item

#: What the broadcast handler saw, in this process (tests read it).
SEEN: list[Event] = []


async def record(key: str, kind: str) -> None:
    """The side effect: a row per key, written at most once whatever the retries."""
    await Effect.insert(Effect(key=key, kind=kind)).on_conflict(target=Effect.key, action="DO NOTHING")


async def record_job(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    await record(ctx.job_id, str(payload.get("label", "record")))


async def flaky_job(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    if ctx.attempt < int(payload["succeed_on"]):
        raise RuntimeError(f"attempt {ctx.attempt} fails on purpose")
    await record(ctx.job_id, f"flaky@{ctx.attempt}")


async def always_fails(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    raise RuntimeError("this job never works")


async def effect_then_wait(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    """Does its effect, then keeps running: a worker killed now must not double the effect."""
    await record(ctx.job_id, "slow")
    await asyncio.sleep(float(payload.get("seconds", 3)))


async def noop(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    """Does nothing: what the jobs benchmark runs to measure the machinery alone."""


async def tick(ctx: JobContext) -> None:
    await record(ctx.job_id, "tick")


async def on_item_created(event: Event) -> None:
    await record(f"event:{event.id}", f"created:{event.data['name']}")


async def remember(event: Event) -> None:
    SEEN.append(event)


class ItemIn(Schema):
    name: str
    fail_after_publish: bool = False


class ItemOut(Schema):
    id: int
    name: str
    job_id: str


class EffectOut(Schema):
    key: str
    kind: str


class EffectList(Schema):
    effects: list[EffectOut]


async def create_item(ctx: RequestContext[ItemIn, None, dict[str, str]]) -> ItemOut:
    plugin = ctx.plugin
    async with plugin.kernel.database.transaction():
        item = Item(name=ctx.body.name)
        await item.save()
        await plugin.events.publish("tasks.item_created", {"id": item.id, "name": item.name})
        job_id = await plugin.jobs.enqueue("record", {"label": f"item:{item.name}"})
        if ctx.body.fail_after_publish:
            raise Conflict("refused after the event and the job were written: both must roll back")
    return ItemOut(id=item.id, name=item.name, job_id=job_id)


async def list_effects(ctx: RequestContext[None, None, dict[str, str]]) -> EffectList:
    rows = await Effect.select(Effect.key, Effect.kind).order_by(Effect.id)
    return EffectList(effects=[EffectOut(**row) for row in rows])


@hookimpl
def register_piccolo_app():  # type: ignore[no-untyped-def]
    return APP_CONFIG


@hookimpl
def register_routes() -> list[Route]:
    return [
        Route("POST", "/items", create_item, name="create_item", body=ItemIn, response=ItemOut, status_code=201,
              responses={409: "Refused on purpose (fail_after_publish)"}, summary="Create an item"),
        Route("GET", "/effects", list_effects, name="list_effects", response=EffectList, summary="Recorded effects"),
    ]


@hookimpl
def register_jobs(plugin: PluginContext) -> list[Job | CronJob]:
    return [
        Job("record", record_job, timeout=5),
        Job("noop", noop, timeout=5),
        Job("flaky", flaky_job, max_attempts=5, backoff=0.05, timeout=5),
        Job("always_fails", always_fails, max_attempts=3, backoff=0.05, timeout=5),
        Job("effect_then_wait", effect_then_wait, max_attempts=3, timeout=5),
        CronJob("tick", tick, second=None, timeout=5),
    ]


@hookimpl
def register_event_handlers(plugin: PluginContext) -> list[EventHandler]:
    return [
        EventHandler("tasks.item_created", on_item_created, options={"timeout": 5}),
        EventHandler("tasks.*", remember, delivery="broadcast"),
    ]
