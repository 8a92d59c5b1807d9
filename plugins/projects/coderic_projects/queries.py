"""Reading projects: the visibility rule as SQL, filtered and sorted pages, one project with
what the viewer needs (their role, whether they follow it), and the rows as API bodies."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from coderic_sdk import CurrentUser, NotFound, PluginContext
from piccolo.columns.combination import Where, WhereRaw

from . import cursors, schemas
from .access import VIEW_ALL
from .tables import Follow, Label, Member, Project

P = Project
SUMMARY_COLUMNS = (P.id, P.slug, P.name, P.summary, P.status, P.visibility, P.followers_count, P.cover_file_id,
                   P.created_at, P.updated_at)
_SORTS = {"newest": None, "most_followed": P.followers_count, "recently_updated": P.updated_at}


async def visible_where(plugin: PluginContext, user: CurrentUser | None) -> Any:
    """Projects ``user`` may see in lists: not deleted, and public, members-only (signed in),
    or private with the user as a member. Moderators and admins see all."""
    alive = P.deleted_at.is_null()
    if user is None:
        return alive & (P.visibility == "public")
    if await plugin.permissions.allowed(user, VIEW_ALL):
        return alive
    mine = Member.select(Member.project).where(Member.user_id == user.id)
    return alive & (P.visibility.is_in(["public", "members"]) | P.id.is_in(mine))


def _filters(query: schemas.ListQuery) -> list[Where | WhereRaw | Any]:
    where: list[Any] = []
    if query.status is not None:
        where.append(P.status == query.status)
    else:
        where.append(P.archived_at.is_null())
    for kind, value in (("tag", query.tag), ("skill", query.skill)):
        if value:
            where.append(P.id.is_in(Label.select(Label.project).where((Label.kind == kind) & (Label.value == value.strip().lower()))))
    if query.member:
        where.append(P.id.is_in(Member.select(Member.project).where(Member.user_id == query.member)))
    return where


def _after(sort: str, cursor: str) -> Any:
    key, last_id = cursors.decode(cursor)
    column = _SORTS[sort]
    if column is None:
        return P.id < last_id
    if column is P.updated_at:
        try:
            key = datetime.fromisoformat(str(key))
        except ValueError:
            key = None
    elif not isinstance(key, int):
        key = None
    if key is None:
        cursors.decode("!")  # raises the 422 naming query.cursor
    return (column < key) | ((column == key) & (P.id < last_id))


def _cursor_of(sort: str, row: dict[str, Any]) -> str:
    column = _SORTS[sort]
    if column is None:
        return cursors.encode(None, row["id"])
    key = row[column._meta.name]
    return cursors.encode(key.isoformat() if isinstance(key, datetime) else key, row["id"])


async def page(plugin: PluginContext, user: CurrentUser | None, query: schemas.ListQuery,
               extra: Sequence[Any] = ()) -> schemas.ProjectPage:
    where = await visible_where(plugin, user)
    for clause in [*_filters(query), *extra]:
        where &= clause
    if query.cursor:
        where &= _after(query.sort, query.cursor)
    column = _SORTS[query.sort]
    select = P.select(*SUMMARY_COLUMNS).where(where)
    select = select.order_by(column, ascending=False).order_by(P.id, ascending=False) if column is not None \
        else select.order_by(P.id, ascending=False)
    rows = await select.limit(query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = await summaries(plugin, rows)
    return schemas.ProjectPage(items=items, next_cursor=_cursor_of(query.sort, rows[-1]) if more else None)


async def labels_of(project_ids: Sequence[int]) -> dict[int, dict[str, list[str]]]:
    found: dict[int, dict[str, list[str]]] = {pid: {"tag": [], "skill": []} for pid in project_ids}
    if project_ids:
        rows = await Label.select(Label.project, Label.kind, Label.value).where(
            Label.project.is_in(list(project_ids))).order_by(Label.id)
        for row in rows:
            found[row["project"]][row["kind"]].append(row["value"])
    return found


async def cover_url(plugin: PluginContext, file_id: str | None) -> str | None:
    return await plugin.files.download_url(file_id, variant="large") if file_id else None


async def summaries(plugin: PluginContext, rows: Sequence[dict[str, Any]]) -> list[schemas.ProjectSummary]:
    labels = await labels_of([row["id"] for row in rows])
    return [
        schemas.ProjectSummary(
            **{k: row[k] for k in ("id", "slug", "name", "summary", "status", "visibility", "followers_count",
                                   "created_at", "updated_at")},
            tags=labels[row["id"]]["tag"], skills=labels[row["id"]]["skill"],
            cover_url=await cover_url(plugin, row["cover_file_id"]),
        )
        for row in rows
    ]


async def row_of(project_id: int) -> dict[str, Any]:
    row = await P.select().where((P.id == project_id) & P.deleted_at.is_null()).first()
    if row is None:
        raise NotFound("No such project.")
    return row  # type: ignore[no-any-return]


async def role_of(project_id: int, user_id: str) -> str | None:
    row = await Member.select(Member.role).where((Member.project == project_id) & (Member.user_id == user_id)).first()
    return row["role"] if row else None


async def detail(plugin: PluginContext, user: CurrentUser | None, project_id: int) -> schemas.Project:
    row = await row_of(project_id)
    labels = (await labels_of([project_id]))[project_id]
    members = await Member.count().where(Member.project == project_id)
    role = await role_of(project_id, user.id) if user else None
    following = bool(user) and await Follow.exists().where((Follow.project == project_id) & (Follow.user_id == user.id))  # type: ignore[union-attr]
    github = None
    if row["github_synced_at"] is not None:
        github = schemas.GitHubStats(stars=row["github_stars"], language=row["github_language"],
                                     pushed_at=row["github_pushed_at"], synced_at=row["github_synced_at"])
    return schemas.Project(
        **{k: row[k] for k in ("id", "slug", "name", "summary", "status", "visibility", "followers_count", "created_at",
                               "updated_at", "description", "description_html", "repository_url", "website",
                               "created_by", "archived_at")},
        tags=labels["tag"], skills=labels["skill"], cover_url=await cover_url(plugin, row["cover_file_id"]),
        members_count=members, github=github, your_role=role, following=bool(following),
    )
