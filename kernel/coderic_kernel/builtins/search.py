"""The ``search`` built-in plugin: ``GET /api/v1/search`` across every plugin's indexes, the
jobs that keep them up to date (``search.update`` from the outbox, the ``search.sync`` catch-up
cron, ``search.reindex``), ``coderic search reindex|list``, and the backend's health check.

It uses the same hooks as any plugin; the service behind ``plugin.search`` is in
``coderic_kernel/search/``. See ``docs/search.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import click
from coderic_sdk import (
    CronJob, HealthCheck, Job, JobContext, PluginContext, RateLimitPolicy, RequestContext, Route, hookimpl,
)
from coderic_sdk.search import SearchQuery, SearchResultsModel
from pydantic import Field

from ..search.service import SearchService, search_for

QUERY_LIMIT = "search.query"


def _service(plugin: PluginContext) -> SearchService:
    return search_for(plugin.kernel)  # type: ignore[arg-type]


class SearchAllQuery(SearchQuery):
    index: str = Field("", max_length=500, description="Comma-separated indexes (`auth.users,projects.projects`); empty: all.")


async def search(ctx: RequestContext[None, SearchAllQuery, Any]) -> dict[str, Any]:
    query = ctx.query
    names = [n.strip() for n in query.index.split(",") if n.strip()]
    results = await _service(ctx.plugin).query(
        names or None, query.q, user=ctx.user, filter=query.filter, facets=query.facet_list(),
        sort=query.sort_list(), page=query.page, per_page=query.per_page,
    )
    return results.as_dict()


async def indexes(ctx: RequestContext[None, None, Any]) -> dict[str, Any]:
    return {"indexes": [
        {"name": i.name, "plugin": i.plugin, "description": i.spec.description, "language": i.spec.language,
         "fields": list(i.fields), "filterable": list(i.spec.filterable), "facetable": list(i.spec.facetable),
         "sortable": list(i.spec.sortable)}
        for i in _service(ctx.plugin).registry
    ]}


@hookimpl
def register_routes(plugin: PluginContext) -> list[Route]:
    _service(plugin)  # collects every plugin's indexes now, at boot: a bad one stops boot naming its plugin
    return [
        Route("GET", "", search, name="search", query=SearchAllQuery, response=SearchResultsModel, tags=("search",),
              rate_limit=QUERY_LIMIT, summary="Search",
              description="Full-text search over one or several indexes, with filters, facets, sorting and highlights "
                          "(docs/search.md). Results are what the caller may see.",
              responses={422: "A bad query, index, filter, facet or sort; the problem names it."}),
        Route("GET", "/indexes", indexes, name="indexes", tags=("search",), summary="Search indexes",
              description="Every index: its fields and the attributes it filters, facets and sorts on."),
    ]


@hookimpl
def register_rate_limits() -> list[RateLimitPolicy]:
    return [RateLimitPolicy.parse(QUERY_LIMIT, "120/minute", key=("ip",))]


async def update(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    await _service(ctx.plugin).apply(payload)


async def reindex_job(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    await _service(ctx.plugin).reindex(str(payload["index"]))


async def sync(ctx: JobContext) -> None:
    service = _service(ctx.plugin)
    every = service.kernel.config.kernel.search_sync_minutes
    if every <= 0:
        return
    now = datetime.now(timezone.utc)
    for index in service.registry:
        synced = await service.backend.get_state(index, "synced_at") if service._open else None
        if synced and datetime.fromisoformat(synced) > now - timedelta(minutes=every) + timedelta(seconds=5):
            continue
        try:
            count = await service.catch_up(index)
        except Exception:  # one index's trouble must not hold the others back
            ctx.plugin.logger.exception("search: catching up %s failed", index.name)
            continue
        if count:
            ctx.plugin.logger.info("search: %s caught up (%d documents)", index.name, count)


@hookimpl
def register_jobs() -> list[Job | CronJob]:
    return [
        Job("update", update, max_attempts=10, backoff=1.0, timeout=300),
        Job("reindex", reindex_job, max_attempts=3, backoff=30.0, timeout=3600),
        CronJob("sync", sync, second=17, timeout=600),
    ]


@hookimpl
def register_health_checks(plugin: PluginContext) -> list[HealthCheck]:
    service = _service(plugin)
    if service.backend.kind == "sqlite" or not plugin.kernel.config.kernel.search_url:  # type: ignore[attr-defined]
        return []  # a file beside the database, or the database itself: as reachable as the database check says

    async def backend() -> None:
        await _service(plugin).backend.ping()

    return [HealthCheck("search", backend)]


@hookimpl
def lifespan(plugin: PluginContext):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def opened() -> AsyncIterator[None]:
        service = _service(plugin)
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    return opened()


@hookimpl
def register_commands(plugin: PluginContext) -> list[click.Command]:
    def run(work: Any) -> Any:
        async def go() -> Any:
            async with plugin.kernel.started():
                return await work(_service(plugin))

        return asyncio.run(go())

    @click.command("reindex")
    @click.argument("index", required=False)
    def reindex(index: str | None) -> None:
        """Rebuild INDEX (every index when left out) from its plugin's documents: a new copy is
        filled while the live one answers, then swapped in."""

        async def work(service: SearchService) -> list[tuple[str, int]]:
            names = [service.index(index).name] if index else [i.name for i in service.registry]
            return [(name, await service.reindex(name)) for name in names]

        try:
            done = run(work)
        except Exception as exc:
            raise click.ClickException(getattr(exc, "detail", None) or str(exc)) from None
        for name, count in done:
            click.echo(f"{name}: {count} documents")

    @click.command("list")
    def list_() -> None:
        """List the search indexes, their backend and how many documents each holds."""

        async def work(service: SearchService) -> list[tuple[str, int, str | None]]:
            return [(i.name, await service.backend.count(i), await service.backend.get_state(i, "synced_at"))
                    for i in service.registry]

        rows = run(work)
        click.echo(f"backend: {_service(plugin).backend.kind}")
        for name, count, synced in rows:
            click.echo(f"{name}  {count} documents  synced {synced or 'never'}")

    return [reindex, list_]
