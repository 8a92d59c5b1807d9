"""The ``projects.projects`` search index as the kernel's search service reads it: every live
project (or those changed since an instant), the visibility each document carries, and
``fetch`` leaving deleted projects out so they are never shown; then searched as members
would, through the SDK's ``coderic_search`` fixture and ``GET /api/v1/search``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from coderic_projects.search import INDEX
from coderic_sdk import Resource
from projects_testing import create


async def collect(since: datetime | None = None) -> dict[str, Any]:
    return {document.id: document async for document in INDEX.documents(since)}


async def test_documents_carry_the_weighted_fields_labels_and_visibility(coderic_user: Any) -> None:
    ana = await coderic_user("ana@example.org")
    public = await create(ana.client, "Open kernel", summary="Plugins", description="All *the* way", tags=["python"],
                          skills=["docs"], status="active")
    members = await create(ana.client, "Members only", visibility="members")
    secret = await create(ana.client, "Secret", visibility="private")
    gone = await create(ana.client, "Gone")
    await ana.client.delete(f"/api/v1/projects/{gone['id']}")
    found = await collect()
    assert set(found) == {str(public["id"]), str(members["id"]), str(secret["id"])}
    document = found[str(public["id"])]
    assert {k: document.fields[k] for k in ("name", "summary", "description", "status", "tags", "skills")} == {
        "name": "Open kernel", "summary": "Plugins", "description": "All *the* way", "status": "active",
        "tags": ["python"], "skills": ["docs"]}
    assert [f.name for f in sorted(INDEX.fields, key=lambda f: -f.weight)] == ["name", "summary", "description"]
    assert (document.visibility, found[str(members["id"])].visibility) == ("public", "members")
    assert found[str(secret["id"])].visibility == "projects.view"
    assert found[str(secret["id"])].resource == Resource("projects.project", str(secret["id"]))


async def test_changes_since_an_instant_and_fetch_leaves_deleted_projects_out(coderic_user: Any) -> None:
    ana = await coderic_user("ana@example.org")
    first = await create(ana.client, "First")
    second = await create(ana.client, "Second")
    mark = datetime.now(timezone.utc)
    await ana.client.patch(f"/api/v1/projects/{first['id']}", json={"visibility": "private"})
    assert set(await collect(mark)) == {str(first["id"])}
    fetched = await INDEX.fetch([str(first["id"]), str(second["id"]), "999", "x"])  # type: ignore[misc]
    assert fetched[str(first["id"])].visibility == "projects.view" and set(fetched) == {str(first["id"]), str(second["id"])}
    await ana.client.delete(f"/api/v1/projects/{second['id']}")
    assert set(await INDEX.fetch([str(second["id"])])) == set()  # type: ignore[misc]


async def test_projects_are_found_as_soon_as_they_change_and_only_by_who_may_see_them(
    coderic_user: Any, coderic_search: Any, coderic_client: Any
) -> None:
    ana, bea = await coderic_user("ana@example.org"), await coderic_user("bea@example.org")
    public = await create(ana.client, "Heron tracker", summary="Birds", tags=["python"])
    secret = await create(ana.client, "Heron secrets", visibility="private")
    # No reindex, no catch-up: each change refreshed its document through the outbox.
    assert {h.id for h in (await coderic_search("projects.projects", "heron")).hits} == {str(public["id"])}
    assert {h.id for h in (await coderic_search("projects.projects", "heron", user=bea.id)).hits} == {str(public["id"])}
    assert {h.id for h in (await coderic_search("projects.projects", "heron", user=ana.id)).hits} == {
        str(public["id"]), str(secret["id"])}
    await ana.client.patch(f"/api/v1/projects/{public['id']}", json={"name": "Egret tracker"})
    renamed = await coderic_search("projects.projects", "egret", facets=["tags"])
    assert [h.id for h in renamed.hits] == [str(public["id"])] and renamed.facets == {"tags": {"python": 1}}
    assert (await ana.client.delete(f"/api/v1/projects/{public['id']}")).status_code == 204
    assert (await coderic_search("projects.projects", "egret")).total == 0  # removed from the index, not only hidden
    answer = await coderic_client.get("/api/v1/search", params={"q": "heron", "index": "projects.projects"})
    assert answer.status_code == 200 and answer.json()["hits"] == []  # the guest's view over HTTP
