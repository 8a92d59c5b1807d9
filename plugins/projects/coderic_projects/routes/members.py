"""A project's members: who they are, their roles, leaving, and handing the project over."""

from __future__ import annotations

from coderic_sdk import Conflict, FieldError, Problem, RequestContext, Route, from_path

from .. import membership, queries
from .. import schemas as s
from ..access import MANAGE_MEMBERS, RESOURCE, VIEW
from ..tables import Member

TAGS = ("projects",)
BY_ID = from_path(RESOURCE, "project_id")
PATH = "/{project_id:int}"


async def list_members(ctx: RequestContext[None, None, s.ProjectPath]) -> s.MemberList:
    rows = await Member.select().where(Member.project == ctx.path.project_id).order_by(Member.joined_at).order_by(Member.id)
    people = await ctx.plugin.users.get_many(row["user_id"] for row in rows)
    return s.MemberList(items=[
        s.MemberOut(user_id=row["user_id"], name=people[row["user_id"]].name, avatar_url=people[row["user_id"]].avatar_url,
                    role=row["role"], joined_at=row["joined_at"])
        for row in rows if row["user_id"] in people
    ])


async def change_role(ctx: RequestContext[s.RoleIn, None, s.MemberPath]) -> s.MemberList:
    user = ctx.require_user()
    async with ctx.plugin.kernel.database.transaction():
        await membership.change_role(ctx.plugin, ctx.path.project_id, ctx.path.user_id, ctx.body.role, by=user.id,
                                     reason="role changed by an owner")
    return await list_members(ctx)  # type: ignore[arg-type]


async def remove_member(ctx: RequestContext[None, None, s.MemberPath]) -> None:
    user = ctx.require_user()
    async with ctx.plugin.kernel.database.transaction():
        await membership.remove(ctx.plugin, ctx.path.project_id, ctx.path.user_id, by=user.id,
                                reason="removed by an owner")


async def leave(ctx: RequestContext[None, None, s.ProjectPath]) -> None:
    user = ctx.require_user()
    if await queries.role_of(ctx.path.project_id, user.id) is None:
        raise Conflict("You are not a member of this project.")
    async with ctx.plugin.kernel.database.transaction():
        await membership.remove(ctx.plugin, ctx.path.project_id, user.id, by=user.id, reason="left the project")


async def transfer(ctx: RequestContext[s.TransferIn, None, s.ProjectPath]) -> s.MemberList:
    """The chosen member becomes owner; the caller becomes what they chose (or leaves)."""
    user, body, project_id, plugin = ctx.require_user(), ctx.body, ctx.path.project_id, ctx.plugin
    if body.user_id == user.id:
        raise Problem(422, "The request body is invalid.", errors=[FieldError("body.user_id", "you own it already")])
    if await queries.role_of(project_id, body.user_id) is None:
        raise Problem(422, "The request body is invalid.",
                      errors=[FieldError("body.user_id", "not a member of this project: invite them first", "not_member")])
    async with plugin.kernel.database.transaction():
        await membership.change_role(plugin, project_id, body.user_id, "owner", by=user.id, reason="ownership transferred")
        if await queries.role_of(project_id, user.id) is not None:
            if body.stay_as == "leave":
                await membership.remove(plugin, project_id, user.id, by=user.id, reason="transferred ownership and left")
            else:
                await membership.change_role(plugin, project_id, user.id, body.stay_as, by=user.id,
                                             reason="transferred ownership")
    return await list_members(ctx)  # type: ignore[arg-type]


def routes() -> list[Route]:
    member = PATH + "/members/{user_id:hex32}"
    return [
        Route("GET", PATH + "/members", list_members, name="list_members", path_params=s.ProjectPath,
              response=s.MemberList, permission=VIEW, resource=BY_ID, tags=TAGS, summary="A project's members"),
        Route("PATCH", member, change_role, name="change_member_role", path_params=s.MemberPath, body=s.RoleIn,
              response=s.MemberList, permission=MANAGE_MEMBERS, resource=BY_ID, tags=TAGS,
              summary="Change a member's role", description="Owners. The only owner cannot stop being one.",
              responses={409: "That would leave the project without an owner."}),
        Route("DELETE", member, remove_member, name="remove_member", path_params=s.MemberPath, status_code=204,
              permission=MANAGE_MEMBERS, resource=BY_ID, tags=TAGS, summary="Remove a member",
              description="Owners. The only owner cannot be removed.",
              responses={409: "That would leave the project without an owner."}),
        Route("POST", PATH + "/leave", leave, name="leave", path_params=s.ProjectPath, status_code=204,
              permission=VIEW, resource=BY_ID, authenticated=True, tags=TAGS, summary="Leave a project",
              responses={409: "You are not a member, or you are its only owner (transfer ownership first)."}),
        Route("POST", PATH + "/transfer", transfer, name="transfer", path_params=s.ProjectPath, body=s.TransferIn,
              response=s.MemberList, permission=MANAGE_MEMBERS, resource=BY_ID, tags=TAGS,
              summary="Transfer ownership", description="Owners. The member chosen becomes an owner; you become "
              "a maintainer, a contributor, or leave."),
    ]
