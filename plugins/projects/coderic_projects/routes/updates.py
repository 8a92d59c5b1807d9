"""Updates (owners and maintainers post; followers and members are notified) and following."""

from __future__ import annotations

from datetime import datetime, timezone

from coderic_sdk import RequestContext, Route, from_path

from .. import cursors, markdown
from .. import schemas as s
from ..access import FOLLOW, POST_UPDATE, RESOURCE, VIEW, resource
from ..tables import Follow, Member, Project, Update

TAGS = ("projects",)
BY_ID = from_path(RESOURCE, "project_id")
PATH = "/{project_id:int}"
U = Update


def _out(row: dict[str, object]) -> s.UpdateOut:
    return s.UpdateOut(id=row["id"], project_id=row["project"], author_id=row["author_id"], title=row["title"],
                       body=row["body"], body_html=row["body_html"], created_at=row["created_at"])


async def post_update(ctx: RequestContext[s.UpdateIn, None, s.ProjectPath]) -> s.UpdateOut:
    user, plugin, project_id, body = ctx.require_user(), ctx.plugin, ctx.path.project_id, ctx.body
    project = await Project.select(Project.name, Project.slug, Project.visibility).where(Project.id == project_id).first()
    members = await Member.select(Member.user_id).where(Member.project == project_id)
    # A private project's followers who are not members (it was public when they followed) may
    # no longer see it: they hear nothing of it.
    followers = [] if project["visibility"] == "private" else await Follow.select(Follow.user_id).where(
        Follow.project == project_id)
    audience = sorted({r["user_id"] for r in [*followers, *members]} - {user.id})
    now = datetime.now(timezone.utc)
    async with plugin.kernel.database.transaction():
        row = Update(project=project_id, author_id=user.id, title=body.title, body=body.body,
                     body_html=markdown.render(body.body), created_at=now)
        await row.save()
        await Project.update({Project.updated_at: now}).where(Project.id == project_id)
        if audience:
            # The notification carries the Markdown source as plain text: every channel shows it
            # as text (HTML email autoescapes it), so nothing in it is ever run.
            await plugin.notifications.notify(audience, "update", {
                "title": f"{project['name']}: {body.title}", "body": body.body[:2000],
                "url": plugin.email.link(f"/projects/{project['slug']}/updates/{row.id}"),
                "project_id": project_id, "project_name": project["name"], "update_id": row.id, "update_title": body.title,
            }, key=f"update:{row.id}")
        await plugin.events.publish("projects.update_posted", {"project_id": project_id, "update_id": row.id})
        await plugin.activity.record(user.id, "projects.update_posted", resource(project_id), {"title": body.title},
                                     visibility="public")
    saved = await U.select().where(U.id == row.id).first()
    return _out(saved)


async def list_updates(ctx: RequestContext[None, s.PageQuery, s.ProjectPath]) -> s.UpdatePage:
    where = U.project == ctx.path.project_id
    if ctx.query.cursor:
        _, last = cursors.decode(ctx.query.cursor)
        where &= U.id < last
    rows = await U.select().where(where).order_by(U.id, ascending=False).limit(ctx.query.limit + 1)
    more = len(rows) > ctx.query.limit
    rows = rows[: ctx.query.limit]
    return s.UpdatePage(items=[_out(r) for r in rows], next_cursor=cursors.encode(None, rows[-1]["id"]) if more else None)


async def _count(project_id: int) -> int:
    row = await Project.select(Project.followers_count).where(Project.id == project_id).first()
    return int(row["followers_count"])


async def follow(ctx: RequestContext[None, None, s.ProjectPath]) -> s.FollowOut:
    user, project_id = ctx.require_user(), ctx.path.project_id
    async with ctx.plugin.kernel.database.transaction():
        if not await Follow.exists().where((Follow.project == project_id) & (Follow.user_id == user.id)):
            await Follow.insert(Follow(project=project_id, user_id=user.id))
            await Project.update({Project.followers_count: Project.followers_count + 1}).where(Project.id == project_id)
    return s.FollowOut(following=True, followers_count=await _count(project_id))


async def unfollow(ctx: RequestContext[None, None, s.ProjectPath]) -> s.FollowOut:
    user, project_id = ctx.require_user(), ctx.path.project_id
    async with ctx.plugin.kernel.database.transaction():
        mine = (Follow.project == project_id) & (Follow.user_id == user.id)
        if await Follow.exists().where(mine):
            await Follow.delete().where(mine)
            await Project.update({Project.followers_count: Project.followers_count - 1}).where(Project.id == project_id)
    return s.FollowOut(following=False, followers_count=await _count(project_id))


def routes() -> list[Route]:
    return [
        Route("GET", PATH + "/updates", list_updates, name="list_updates", path_params=s.ProjectPath,
              query=s.PageQuery, response=s.UpdatePage, permission=VIEW, resource=BY_ID, tags=TAGS,
              summary="A project's updates", description="Newest first, a page at a time."),
        Route("POST", PATH + "/updates", post_update, name="post_update", path_params=s.ProjectPath, body=s.UpdateIn,
              response=s.UpdateOut, status_code=201, permission=POST_UPDATE, resource=BY_ID, tags=TAGS,
              summary="Post an update", description="Owners and maintainers. Followers and members are notified "
              "(`projects.update`): inbox, real time and email, as each chose."),
        Route("PUT", PATH + "/follow", follow, name="follow", path_params=s.ProjectPath, response=s.FollowOut,
              permission=FOLLOW, resource=BY_ID, tags=TAGS, summary="Follow a project",
              description="Idempotent. You are notified of its updates."),
        Route("DELETE", PATH + "/follow", unfollow, name="unfollow", path_params=s.ProjectPath, response=s.FollowOut,
              permission=FOLLOW, resource=BY_ID, tags=TAGS, summary="Stop following a project"),
    ]
