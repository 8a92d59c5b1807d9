"""Invitations (an owner asks a member in: accept, decline, or let it expire) and join
requests (a member asks to join: an owner approves or rejects)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from coderic_sdk import Conflict, FieldError, NotFound, PluginContext, Problem, RequestContext, Route, from_path

from .. import membership, queries
from .. import schemas as s
from ..access import JOIN, MANAGE_MEMBERS, RESOURCE
from ..tables import Invitation, JoinRequest, Member, Project

TAGS = ("projects",)
BY_ID = from_path(RESOURCE, "project_id")
PATH = "/{project_id:int}"
I, J = Invitation, JoinRequest


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _invitation_out(row: dict[str, Any], project_name: str) -> s.InvitationOut:
    status = row["status"]
    if status == "pending" and row["expires_at"] <= _now():
        status = "expired"
    return s.InvitationOut(id=row["id"], project_id=row["project"], project_name=project_name, user_id=row["user_id"],
                           role=row["role"], message=row["message"], invited_by=row["invited_by"], status=status,
                           created_at=row["created_at"], expires_at=row["expires_at"])


async def _project_link(plugin: PluginContext, project_id: int) -> tuple[str, str]:
    row = await Project.select(Project.name, Project.slug).where(Project.id == project_id).first()
    return row["name"], plugin.email.link(f"/projects/{row['slug']}")


async def invite(ctx: RequestContext[s.InvitationIn, None, s.ProjectPath]) -> s.InvitationOut:
    user, body, plugin, project_id = ctx.require_user(), ctx.body, ctx.plugin, ctx.path.project_id
    if await plugin.users.get(body.user_id) is None:
        raise Problem(422, "The request body is invalid.", errors=[FieldError("body.user_id", "no such member", "unknown_user")])
    if await queries.role_of(project_id, body.user_id) is not None:
        raise Conflict("That user is already a member of the project.")
    pending = (I.project == project_id) & (I.user_id == body.user_id) & (I.status == "pending") & (I.expires_at > _now())
    if await I.exists().where(pending):
        raise Conflict("That user already has a pending invitation to this project.")
    days = getattr(plugin.settings, "invitation_days", 14)
    name, url = await _project_link(plugin, project_id)
    async with plugin.kernel.database.transaction():
        row = Invitation(project=project_id, user_id=body.user_id, role=body.role, message=body.message,
                         invited_by=user.id, expires_at=_now() + timedelta(days=days))
        await row.save()
        await plugin.notifications.notify([body.user_id], "invitation", {
            "title": f"You are invited to join {name}", "body": body.message, "url": url, "project_name": name,
            "role": body.role, "invitation_id": row.id, "expires_days": days,
        }, key=f"invitation:{row.id}")
    saved = await I.select().where(I.id == row.id).first()
    return _invitation_out(saved, name)


async def project_invitations(ctx: RequestContext[None, None, s.ProjectPath]) -> s.InvitationList:
    rows = await I.select().where(I.project == ctx.path.project_id).order_by(I.id, ascending=False).limit(200)
    name, _ = await _project_link(ctx.plugin, ctx.path.project_id)
    return s.InvitationList(items=[_invitation_out(row, name) for row in rows])


async def cancel_invitation(ctx: RequestContext[None, None, s.ProjectInvitationPath]) -> None:
    mine = (I.id == ctx.path.invitation_id) & (I.project == ctx.path.project_id)
    if not await I.exists().where(mine):
        raise NotFound("No such invitation to this project.")
    await I.update({I.status: "cancelled", I.answered_at: _now()}).where(mine & (I.status == "pending"))


async def my_invitations(ctx: RequestContext[None, None, None]) -> s.InvitationList:
    user = ctx.require_user()
    rows = await I.select(*I.all_columns(), I.project.name.as_alias("project_name")).where(
        (I.user_id == user.id) & (I.status == "pending") & (I.expires_at > _now()) & I.project.deleted_at.is_null()
    ).order_by(I.id, ascending=False)
    return s.InvitationList(items=[_invitation_out(row, row["project_name"]) for row in rows])


async def _own_pending(ctx: RequestContext[None, None, s.InvitationPath]) -> dict[str, Any]:
    user = ctx.require_user()
    row = await I.select().where((I.id == ctx.path.invitation_id) & (I.user_id == user.id)).first()
    if row is None or not await Project.exists().where((Project.id == row["project"]) & Project.deleted_at.is_null()):
        raise NotFound("No such invitation for you.")
    if row["status"] != "pending":
        raise Conflict(f"The invitation was {row['status']} already.")
    if row["expires_at"] <= _now():
        raise Problem(410, "The invitation has expired: ask for a new one.")
    return row  # type: ignore[no-any-return]


async def accept_invitation(ctx: RequestContext[None, None, s.InvitationPath]) -> s.InvitationOut:
    row, user = await _own_pending(ctx), ctx.require_user()
    async with ctx.plugin.kernel.database.transaction():
        await membership.add(ctx.plugin, row["project"], user.id, row["role"], by=row["invited_by"],
                             reason="accepted an invitation")
        await I.update({I.status: "accepted", I.answered_at: _now()}).where(I.id == row["id"])
    name, _ = await _project_link(ctx.plugin, row["project"])
    return _invitation_out({**row, "status": "accepted"}, name)


async def decline_invitation(ctx: RequestContext[None, None, s.InvitationPath]) -> s.InvitationOut:
    row = await _own_pending(ctx)
    await I.update({I.status: "declined", I.answered_at: _now()}).where(I.id == row["id"])
    name, _ = await _project_link(ctx.plugin, row["project"])
    return _invitation_out({**row, "status": "declined"}, name)


def _request_out(row: dict[str, Any], name: str) -> s.JoinRequestOut:
    return s.JoinRequestOut(id=row["id"], project_id=row["project"], user_id=row["user_id"], name=name,
                            message=row["message"], status=row["status"], created_at=row["created_at"],
                            decided_at=row["decided_at"])


async def request_to_join(ctx: RequestContext[s.JoinRequestIn, None, s.ProjectPath]) -> s.JoinRequestOut:
    user, plugin, project_id = ctx.require_user(), ctx.plugin, ctx.path.project_id
    if await queries.role_of(project_id, user.id) is not None:
        raise Conflict("You are a member of this project already.")
    pending = (J.project == project_id) & (J.user_id == user.id) & (J.status == "pending")
    if await J.exists().where(pending):
        raise Conflict("You have asked to join this project already; an owner will answer.")
    name, url = await _project_link(plugin, project_id)
    owners = [r["user_id"] for r in await Member.select(Member.user_id).where(
        (Member.project == project_id) & (Member.role == "owner"))]
    async with plugin.kernel.database.transaction():
        row = JoinRequest(project=project_id, user_id=user.id, message=ctx.body.message)
        await row.save()
        await plugin.notifications.notify(owners, "join_request", {
            "title": f"Someone asked to join {name}", "body": ctx.body.message, "url": url, "project_name": name,
            "request_id": row.id,
        }, key=f"join_request:{row.id}")
    saved = await J.select().where(J.id == row.id).first()
    person = await plugin.users.get(user.id)
    return _request_out(saved, person.name if person else "")


async def join_requests(ctx: RequestContext[None, None, s.ProjectPath]) -> s.JoinRequestList:
    rows = await J.select().where(J.project == ctx.path.project_id).order_by(J.id, ascending=False).limit(200)
    people = await ctx.plugin.users.get_many(row["user_id"] for row in rows)
    return s.JoinRequestList(items=[_request_out(row, people[row["user_id"]].name if row["user_id"] in people else "")
                                    for row in rows])


async def _decide(ctx: RequestContext[None, None, s.JoinRequestPath], approve: bool) -> s.JoinRequestOut:
    user, plugin, project_id = ctx.require_user(), ctx.plugin, ctx.path.project_id
    row = await J.select().where((J.id == ctx.path.request_id) & (J.project == project_id)).first()
    if row is None:
        raise NotFound("No such request to join this project.")
    if row["status"] != "pending":
        raise Conflict(f"The request was {row['status']} already.")
    status = "approved" if approve else "rejected"
    async with plugin.kernel.database.transaction():
        if approve:
            await membership.add(plugin, project_id, row["user_id"], "contributor", by=user.id,
                                 reason="request to join approved")
        await J.update({J.status: status, J.decided_by: user.id, J.decided_at: _now()}).where(J.id == row["id"])
    saved = await J.select().where(J.id == row["id"]).first()
    person = await plugin.users.get(row["user_id"])
    return _request_out(saved, person.name if person else "")


async def approve_request(ctx: RequestContext[None, None, s.JoinRequestPath]) -> s.JoinRequestOut:
    return await _decide(ctx, True)


async def reject_request(ctx: RequestContext[None, None, s.JoinRequestPath]) -> s.JoinRequestOut:
    return await _decide(ctx, False)


def routes() -> list[Route]:
    invitation = "/invitations/{invitation_id:int}"
    request = PATH + "/join-requests/{request_id:int}"
    return [
        Route("POST", PATH + "/invitations", invite, name="invite", path_params=s.ProjectPath, body=s.InvitationIn,
              response=s.InvitationOut, status_code=201, permission=MANAGE_MEMBERS, resource=BY_ID, tags=TAGS,
              summary="Invite a member", description="Owners. The member is notified (inbox and email) and may "
              "accept or decline until the invitation expires.",
              responses={409: "Already a member, or already invited.", 422: "No such member."}),
        Route("GET", PATH + "/invitations", project_invitations, name="list_invitations", path_params=s.ProjectPath,
              response=s.InvitationList, permission=MANAGE_MEMBERS, resource=BY_ID, tags=TAGS,
              summary="A project's invitations"),
        Route("DELETE", PATH + "/invitations/{invitation_id:int}", cancel_invitation, name="cancel_invitation",
              path_params=s.ProjectInvitationPath, status_code=204, permission=MANAGE_MEMBERS, resource=BY_ID,
              tags=TAGS, summary="Cancel an invitation"),
        Route("GET", "/invitations", my_invitations, name="my_invitations", response=s.InvitationList,
              authenticated=True, tags=TAGS, summary="Your pending invitations"),
        Route("POST", invitation + "/accept", accept_invitation, name="accept_invitation", path_params=s.InvitationPath,
              response=s.InvitationOut, authenticated=True, tags=TAGS, summary="Accept an invitation",
              responses={404: "No such invitation for you.", 409: "Answered already.", 410: "Expired."}),
        Route("POST", invitation + "/decline", decline_invitation, name="decline_invitation",
              path_params=s.InvitationPath, response=s.InvitationOut, authenticated=True, tags=TAGS,
              summary="Decline an invitation",
              responses={404: "No such invitation for you.", 409: "Answered already.", 410: "Expired."}),
        Route("POST", PATH + "/join-requests", request_to_join, name="request_to_join", path_params=s.ProjectPath,
              body=s.JoinRequestIn, response=s.JoinRequestOut, status_code=201, permission=JOIN, resource=BY_ID,
              tags=TAGS, summary="Ask to join a project", description="The owners are notified.",
              responses={409: "A member already, or asked already."}),
        Route("GET", PATH + "/join-requests", join_requests, name="list_join_requests", path_params=s.ProjectPath,
              response=s.JoinRequestList, permission=MANAGE_MEMBERS, resource=BY_ID, tags=TAGS,
              summary="Requests to join a project"),
        Route("POST", request + "/approve", approve_request, name="approve_join_request", path_params=s.JoinRequestPath,
              response=s.JoinRequestOut, permission=MANAGE_MEMBERS, resource=BY_ID, tags=TAGS,
              summary="Approve a request to join", description="The member joins as a contributor.",
              responses={409: "Answered already."}),
        Route("POST", request + "/reject", reject_request, name="reject_join_request", path_params=s.JoinRequestPath,
              response=s.JoinRequestOut, permission=MANAGE_MEMBERS, resource=BY_ID, tags=TAGS,
              summary="Reject a request to join", responses={409: "Answered already."}),
    ]
