"""A member's projects data: exported on request, and deleted (or anonymised) with the account.

Projects, updates and decisions the member made stay for the others, without their id. A
project the member alone owned passes to its longest-standing other member; with no one left,
it is deleted."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from coderic_sdk import PersonalData, PluginContext

from . import membership
from .tables import Follow, Invitation, JoinRequest, Member, Project, Update


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: _iso(v) for k, v in row.items()} for row in rows]


async def export(user_id: str) -> dict[str, Any]:
    P = Project
    return {
        "projects_created": _rows(await P.select(P.id, P.slug, P.name, P.created_at).where(P.created_by == user_id)),
        "memberships": _rows(await Member.select(Member.project, Member.role, Member.joined_at).where(Member.user_id == user_id)),
        "follows": _rows(await Follow.select(Follow.project, Follow.created_at).where(Follow.user_id == user_id)),
        "updates": _rows(await Update.select(Update.project, Update.title, Update.body, Update.created_at).where(
            Update.author_id == user_id)),
        "invitations": _rows(await Invitation.select(Invitation.project, Invitation.role, Invitation.message,
                                                     Invitation.status, Invitation.created_at).where(
            (Invitation.user_id == user_id) | (Invitation.invited_by == user_id))),
        "join_requests": _rows(await JoinRequest.select(JoinRequest.project, JoinRequest.message, JoinRequest.status,
                                                        JoinRequest.created_at).where(
            (JoinRequest.user_id == user_id) | (JoinRequest.decided_by == user_id))),
    }


def personal_data(plugin: PluginContext) -> PersonalData:
    async def delete(user_id: str) -> None:
        async with plugin.kernel.database.transaction():
            for row in await Follow.select(Follow.project).where(Follow.user_id == user_id):
                await Project.update({Project.followers_count: Project.followers_count - 1}).where(
                    Project.id == row["project"])
            await Follow.delete().where(Follow.user_id == user_id)
            for row in await Member.select(Member.project, Member.role).where(Member.user_id == user_id):
                await _hand_over(plugin, row["project"], user_id, row["role"])
            await JoinRequest.delete().where(JoinRequest.user_id == user_id)
            await JoinRequest.update({JoinRequest.decided_by: None}).where(JoinRequest.decided_by == user_id)
            await Invitation.delete().where(Invitation.user_id == user_id)
            await Invitation.update({Invitation.invited_by: None}).where(Invitation.invited_by == user_id)
            await Update.update({Update.author_id: None}).where(Update.author_id == user_id)
            await Project.update({Project.created_by: None}).where(Project.created_by == user_id)

    return PersonalData("projects", export, delete,
                        description="Projects you started, your memberships, follows, updates, invitations and requests.")


async def _hand_over(plugin: PluginContext, project_id: int, user_id: str, role: str) -> None:
    if role == "owner" and await membership.owners(project_id) == 1:
        heir = await Member.select(Member.user_id).where(
            (Member.project == project_id) & (Member.user_id != user_id)).order_by(Member.joined_at).order_by(Member.id).first()
        if heir is None:
            await Project.update({Project.deleted_at: datetime.now(timezone.utc)}).where(Project.id == project_id)
        else:
            await membership.change_role(plugin, project_id, heir["user_id"], "owner", by=None,
                                         reason="the only owner deleted their account")
    await membership.remove(plugin, project_id, user_id, by=None, reason="account deleted", allow_last_owner=True)
