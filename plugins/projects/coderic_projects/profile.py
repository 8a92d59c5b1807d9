"""The ``projects.projects`` section of a member's profile: the public projects they belong to."""

from __future__ import annotations

from typing import Any

from coderic_sdk import CurrentUser, ProfileSection

from .tables import Member


async def load(user_id: str, viewer: CurrentUser | None) -> dict[str, Any] | None:
    M = Member
    rows = await M.select(M.role, M.project.id.as_alias("id"), M.project.slug.as_alias("slug"),
                          M.project.name.as_alias("name"), M.project.summary.as_alias("summary"),
                          M.project.status.as_alias("status")).where(
        (M.user_id == user_id) & (M.project.visibility == "public") & M.project.deleted_at.is_null()
    ).order_by(M.joined_at, ascending=False).limit(50)
    if not rows:
        return None
    return {"projects": [dict(row) for row in rows]}


SECTION = ProfileSection("projects", load, description="The public projects the member belongs to, and their role.")
