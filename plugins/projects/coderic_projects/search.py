"""The ``projects.projects`` search index: name weighs more than summary, summary more than
description; status, tags and skills filter and facet. Every hit is re-read with ``fetch``
before it is shown, so a project made private or deleted drops out at once. Each change the
plugin publishes an event for (created, updated, archived, deleted) refreshes the project's
document through the outbox (``refresh_on_change``); the kernel's catch-up
(``documents(since)``, by ``updated_at``) brings in anything else."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from coderic_sdk import Event, EventHandler, PluginContext
from coderic_sdk.search import MEMBERS, PUBLIC, SearchAttribute, SearchDocument, SearchField, SearchIndex

from .access import VIEW, resource
from .queries import labels_of
from .tables import Project

P = Project
_COLUMNS = (P.id, P.slug, P.name, P.summary, P.description, P.status, P.visibility, P.created_at, P.updated_at)
BATCH = 500


def _document(row: dict[str, Any], labels: dict[str, list[str]]) -> SearchDocument:
    # Private projects: those who may view the project (its members, moderators, admins) find it.
    visibility = {"public": PUBLIC, "members": MEMBERS}.get(row["visibility"], VIEW)
    return SearchDocument(
        id=str(row["id"]),
        fields={"name": row["name"], "summary": row["summary"], "description": row["description"],
                "status": row["status"], "tags": labels["tag"], "skills": labels["skill"], "slug": row["slug"],
                "created_at": row["created_at"].isoformat()},
        visibility=visibility, resource=resource(row["id"]),
    )


async def _documents_of(rows: Sequence[dict[str, Any]]) -> list[SearchDocument]:
    labels = await labels_of([row["id"] for row in rows])
    return [_document(row, labels[row["id"]]) for row in rows]


async def documents(since: datetime | None) -> AsyncIterator[SearchDocument]:
    """Every live project (``since`` is ``None``), or those changed since then, in batches."""
    last = 0
    while True:
        where = P.deleted_at.is_null() & (P.id > last)
        if since is not None:
            where &= P.updated_at >= since
        rows = await P.select(*_COLUMNS).where(where).order_by(P.id).limit(BATCH)
        for document in await _documents_of(rows):
            yield document
        if len(rows) < BATCH:
            return
        last = rows[-1]["id"]


async def fetch(ids: Sequence[str]) -> Mapping[str, SearchDocument]:
    """The live projects among ``ids``; a deleted one is missing, so it is never shown."""
    wanted = [int(i) for i in ids if i.isdigit() and int(i) <= 2**31 - 1]
    if not wanted:
        return {}
    rows = await P.select(*_COLUMNS).where(P.id.is_in(wanted) & P.deleted_at.is_null())
    return {document.id: document for document in await _documents_of(rows)}


INDEX = SearchIndex(
    "projects",
    fields=(SearchField("name", weight=3.0), SearchField("summary", weight=2.0), SearchField("description", weight=1.0)),
    attributes=(
        SearchAttribute("status", "keyword", facetable=True),
        SearchAttribute("tags", "keywords", facetable=True),
        SearchAttribute("skills", "keywords", facetable=True),
        SearchAttribute("created_at", "datetime", filterable=False, sortable=True),
    ),
    documents=documents,
    fetch=fetch,
    description="Projects by name, summary and description; filter and facet on status, tags and skills.",
)


#: The events after which a project's document is not what the index holds.
CHANGES = frozenset({"projects.created", "projects.updated", "projects.archived", "projects.deleted"})


def refresh_on_change(plugin: PluginContext) -> EventHandler:
    """A durable handler: the changed project's document is re-read and indexed (or removed)."""

    async def refresh(event: Event) -> None:
        if event.name in CHANGES:
            await plugin.search.refresh("projects", str(event.data["project_id"]))

    return EventHandler("projects.*", refresh, name="search_refresh")
