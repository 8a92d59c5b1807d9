"""Membership: the ``Member`` row and the scoped role grant change together, in one
transaction, so lists and permission checks never disagree. A project always keeps an owner."""

from __future__ import annotations

from coderic_sdk import Conflict, NotFound, PluginContext

from .access import GRANTED_ROLE, resource
from .tables import Member


async def owners(project_id: int) -> int:
    return await Member.count().where((Member.project == project_id) & (Member.role == "owner"))  # type: ignore[no-any-return]


async def add(plugin: PluginContext, project_id: int, user_id: str, role: str, *, by: str | None, reason: str,
              publish: bool = True) -> None:
    """Make ``user_id`` a member with ``role`` (call inside the caller's transaction)."""
    if await Member.exists().where((Member.project == project_id) & (Member.user_id == user_id)):
        raise Conflict("That user is already a member of the project.")
    await Member.insert(Member(project=project_id, user_id=user_id, role=role))
    await plugin.permissions.grant(user_id, GRANTED_ROLE[role], resource(project_id), by=by, reason=reason)
    if publish:
        await plugin.events.publish("projects.member_added", {"project_id": project_id, "user_id": user_id, "role": role})
        # Public: the kernel still leaves it out for viewers the project's policy does not let see it.
        await plugin.activity.record(user_id, "projects.joined", resource(project_id), {"role": role}, visibility="public")


async def change_role(plugin: PluginContext, project_id: int, user_id: str, role: str, *, by: str | None,
                      reason: str) -> None:
    current = await _role(project_id, user_id)
    if current == role:
        return
    if current == "owner" and await owners(project_id) == 1:
        raise Conflict("The project's only owner cannot stop being one: make another member owner first.")
    await Member.update({Member.role: role}).where((Member.project == project_id) & (Member.user_id == user_id))
    await plugin.permissions.revoke(user_id, GRANTED_ROLE[current], resource(project_id), by=by, reason=reason)
    await plugin.permissions.grant(user_id, GRANTED_ROLE[role], resource(project_id), by=by, reason=reason)


async def remove(plugin: PluginContext, project_id: int, user_id: str, *, by: str | None, reason: str,
                 allow_last_owner: bool = False) -> None:
    current = await _role(project_id, user_id)
    if current == "owner" and not allow_last_owner and await owners(project_id) == 1:
        raise Conflict("The project's only owner cannot leave: transfer ownership first.")
    await Member.delete().where((Member.project == project_id) & (Member.user_id == user_id))
    await plugin.permissions.revoke(user_id, GRANTED_ROLE[current], resource(project_id), by=by, reason=reason)


async def _role(project_id: int, user_id: str) -> str:
    row = await Member.select(Member.role).where((Member.project == project_id) & (Member.user_id == user_id)).first()
    if row is None:
        raise NotFound("That user is not a member of the project.")
    return str(row["role"])

