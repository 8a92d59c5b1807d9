"""Projects themselves: create, read (by id or slug), list, edit, archive, delete."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from coderic_sdk import FieldError, PluginContext, Problem, RequestContext, Resource, Route, from_path

from .. import markdown, membership, queries, slugs
from .. import schemas as s
from ..access import ARCHIVE, CREATE, DELETE, EDIT, RESOURCE, VIEW, resource
from ..tables import Follow, Label, Project

P = Project
TAGS = ("projects",)
BY_ID = from_path(RESOURCE, "project_id")


async def by_slug(ctx: RequestContext[Any, Any, s.SlugPath]) -> Resource:
    """The project named by the slug in the path (an id no project has when none is)."""
    row = await P.select(P.id).where((P.slug == ctx.path.slug) & P.deleted_at.is_null()).first()
    return Resource(RESOURCE, str(row["id"]) if row else "0")


async def _cover(plugin: PluginContext, user_id: str, file_id: str | None, current: str | None = None) -> str | None:
    """A cover must be an image the caller uploaded for ``projects.cover``; it is then kept."""
    if file_id is None or file_id == current:
        return file_id
    stored = await plugin.files.get(file_id)
    if stored is None or stored.purpose.rsplit(".", 1)[-1] != "cover" or stored.owner != user_id:
        raise Problem(422, "The request body is invalid.", errors=[FieldError(
            "body.cover_file_id", "not a file you uploaded with purpose projects.cover", "unknown_file")])
    await plugin.files.attach(file_id)
    return file_id


async def _set_labels(project_id: int, kind: str, values: list[str] | None) -> None:
    if values is None:
        return
    await Label.delete().where((Label.project == project_id) & (Label.kind == kind))
    if values:
        await Label.insert(*[Label(project=project_id, kind=kind, value=v) for v in values])


async def _sync_github(plugin: PluginContext, project_id: int, repository_url: str | None) -> None:
    if repository_url and getattr(plugin.settings, "github_sync", False):
        await plugin.jobs.enqueue("projects.github_sync", {"project_id": project_id})


async def create_project(ctx: RequestContext[s.ProjectIn, None, None]) -> s.Project:
    user, body, plugin = ctx.require_user(), ctx.body, ctx.plugin
    slug = await slugs.require_free(body.slug) if body.slug else await slugs.free_slug(body.name)
    cover = await _cover(plugin, user.id, body.cover_file_id)
    async with plugin.kernel.database.transaction():
        project = Project(slug=slug, name=body.name, summary=body.summary or "", description=body.description or "",
                          description_html=markdown.render(body.description or ""), status=body.status,
                          visibility=body.visibility, repository_url=body.repository_url, website=body.website,
                          cover_file_id=cover, created_by=user.id)
        await project.save()
        await _set_labels(project.id, "tag", body.tags)
        await _set_labels(project.id, "skill", body.skills)
        await membership.add(plugin, project.id, user.id, "owner", by=user.id, reason="created the project", publish=False)
        await plugin.events.publish("projects.created", {"project_id": project.id, "slug": slug, "name": body.name,
                                                         "created_by": user.id, "visibility": body.visibility})
        await plugin.activity.record(user.id, "projects.created", resource(project.id), {"name": body.name},
                                     visibility="public")
        await _sync_github(plugin, project.id, body.repository_url)
    return await queries.detail(plugin, user, project.id)


async def get_project(ctx: RequestContext[None, None, s.ProjectPath]) -> s.Project:
    return await queries.detail(ctx.plugin, ctx.user, ctx.path.project_id)


async def get_project_by_slug(ctx: RequestContext[None, None, s.SlugPath]) -> s.Project:
    found = await by_slug(ctx)
    return await queries.detail(ctx.plugin, ctx.user, int(found.id))


async def list_projects(ctx: RequestContext[None, s.ListQuery, None]) -> s.ProjectPage:
    return await queries.page(ctx.plugin, ctx.user, ctx.query)


async def my_projects(ctx: RequestContext[None, s.ListQuery, None]) -> s.ProjectPage:
    user = ctx.require_user()
    query = ctx.query.model_copy(update={"member": user.id})
    return await queries.page(ctx.plugin, user, query)


async def followed_projects(ctx: RequestContext[None, s.ListQuery, None]) -> s.ProjectPage:
    user = ctx.require_user()
    mine = P.id.is_in(Follow.select(Follow.project).where(Follow.user_id == user.id))
    return await queries.page(ctx.plugin, user, ctx.query, extra=[mine])


async def update_project(ctx: RequestContext[s.ProjectPatch, None, s.ProjectPath]) -> s.Project:
    user, body, plugin, project_id = ctx.require_user(), ctx.body, ctx.plugin, ctx.path.project_id
    given = body.model_fields_set
    row = await queries.row_of(project_id)
    values: dict[Any, Any] = {P.updated_at: datetime.now(timezone.utc)}
    for name in ("name", "summary", "status", "visibility", "repository_url", "website"):
        if name in given:
            value = getattr(body, name)
            if value is None and name in ("name", "status", "visibility"):
                raise Problem(422, "The request body is invalid.", errors=[FieldError(f"body.{name}", "cannot be null")])
            values[getattr(P, name)] = value if value is not None else ("" if name == "summary" else None)
    if "slug" in given:
        if body.slug is None:
            raise Problem(422, "The request body is invalid.", errors=[FieldError("body.slug", "cannot be null")])
        values[P.slug] = await slugs.require_free(body.slug, but=project_id)
    if "description" in given:
        values[P.description] = body.description or ""
        values[P.description_html] = markdown.render(body.description or "")
    if "cover_file_id" in given:
        values[P.cover_file_id] = await _cover(plugin, user.id, body.cover_file_id, row["cover_file_id"])
    async with plugin.kernel.database.transaction():
        await P.update(values).where(P.id == project_id)
        await _set_labels(project_id, "tag", body.tags if "tags" in given else None)
        await _set_labels(project_id, "skill", body.skills if "skills" in given else None)
        await plugin.events.publish("projects.updated", {"project_id": project_id, "fields": sorted(given)})
        if "repository_url" in given and body.repository_url != row["repository_url"]:
            await _sync_github(plugin, project_id, body.repository_url)
    if "cover_file_id" in given and row["cover_file_id"] and row["cover_file_id"] != values[P.cover_file_id]:
        await plugin.files.delete(row["cover_file_id"])
    return await queries.detail(plugin, user, project_id)


async def _set_archived(ctx: RequestContext[None, None, s.ProjectPath], archived: bool) -> s.Project:
    plugin, project_id = ctx.plugin, ctx.path.project_id
    now = datetime.now(timezone.utc)
    values = {P.archived_at: now, P.status: "archived"} if archived else {P.archived_at: None, P.status: "active"}
    async with plugin.kernel.database.transaction():
        await P.update({**values, P.updated_at: now}).where(P.id == project_id)
        name = "projects.archived" if archived else "projects.updated"
        await plugin.events.publish(name, {"project_id": project_id, "fields": ["status"]})
    return await queries.detail(plugin, ctx.user, project_id)


async def archive_project(ctx: RequestContext[None, None, s.ProjectPath]) -> s.Project:
    return await _set_archived(ctx, True)


async def unarchive_project(ctx: RequestContext[None, None, s.ProjectPath]) -> s.Project:
    return await _set_archived(ctx, False)


async def delete_project(ctx: RequestContext[None, None, s.ProjectPath]) -> None:
    plugin, project_id = ctx.plugin, ctx.path.project_id
    row = await queries.row_of(project_id)
    async with plugin.kernel.database.transaction():
        # The slug is given back: a new project may take it.
        await P.update({P.deleted_at: datetime.now(timezone.utc), P.slug: f"{row['slug'][:60]}--deleted-{project_id}",
                        P.cover_file_id: None}).where(P.id == project_id)
        await plugin.events.publish("projects.deleted", {"project_id": project_id})
    await plugin.activity.forget(resource(project_id))
    if row["cover_file_id"]:
        await plugin.files.delete(row["cover_file_id"])


def routes() -> list[Route]:
    path = "/{project_id:int}"
    return [
        Route("GET", "", list_projects, name="list", query=s.ListQuery, response=s.ProjectPage, tags=TAGS,
              summary="List projects", description="Projects you may see, filtered and sorted, a page at a time."),
        Route("POST", "", create_project, name="create", body=s.ProjectIn, response=s.Project, status_code=201,
              permission=CREATE, tags=TAGS, summary="Start a project", description="You become its owner.",
              responses={409: "The slug is taken.", 422: "Invalid fields."}),
        Route("GET", "/mine", my_projects, name="mine", query=s.ListQuery, response=s.ProjectPage, authenticated=True,
              tags=TAGS, summary="Projects you are a member of"),
        Route("GET", "/following", followed_projects, name="following", query=s.ListQuery, response=s.ProjectPage,
              authenticated=True, tags=TAGS, summary="Projects you follow"),
        Route("GET", "/by-slug/{slug}", get_project_by_slug, name="get_by_slug", path_params=s.SlugPath,
              response=s.Project, permission=VIEW, resource=by_slug, tags=TAGS, summary="One project, by its slug"),
        Route("GET", path, get_project, name="get", path_params=s.ProjectPath, response=s.Project, permission=VIEW,
              resource=BY_ID, tags=TAGS, summary="One project"),
        Route("PATCH", path, update_project, name="update", path_params=s.ProjectPath, body=s.ProjectPatch,
              response=s.Project, permission=EDIT, resource=BY_ID, tags=TAGS, summary="Edit a project",
              description="Owners and maintainers. Fields left out stay as they are.",
              responses={409: "The slug is taken.", 422: "Invalid fields."}),
        Route("DELETE", path, delete_project, name="delete", path_params=s.ProjectPath, status_code=204,
              permission=DELETE, resource=BY_ID, tags=TAGS, summary="Delete a project",
              description="Owners. The project disappears from every list and link; its slug is free again."),
        Route("POST", path + "/archive", archive_project, name="archive", path_params=s.ProjectPath, response=s.Project,
              permission=ARCHIVE, resource=BY_ID, tags=TAGS, summary="Archive a project",
              description="Owners. An archived project is read-only and left out of lists unless asked for."),
        Route("POST", path + "/unarchive", unarchive_project, name="unarchive", path_params=s.ProjectPath,
              response=s.Project, permission=ARCHIVE, resource=BY_ID, tags=TAGS, summary="Unarchive a project",
              description="Owners. The project becomes active again."),
    ]
