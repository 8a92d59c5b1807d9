"""Profiles and activity as personal data: the member's profile settings (``kernel_profile``;
the fields on the account itself are exported with it) and the activities they did.

Both are deleted with the account: the activities go from every feed at once. The uploaded
avatar is one of the member's files, removed with them.
"""

from __future__ import annotations

from typing import Any

from coderic_sdk import PersonalData

from ..profiles import activity
from ..profiles.tables import Profile
from .common import rows


def declarations() -> list[PersonalData]:
    return [
        PersonalData("profile", export_profile, delete_profile, "Profile links, field visibility and the avatar chosen."),
        PersonalData("activity", activity.export_for, delete_activity, "What the member did, as their history shows it."),
    ]


async def export_profile(user_id: str) -> dict[str, Any]:
    found = await Profile.select().where(Profile.user_id == user_id).output(load_json=True)
    return rows(found, "links", "visibility", "avatar_file_id", "updated_at")[0] if found else {}


async def delete_profile(user_id: str) -> None:
    await Profile.delete().where(Profile.user_id == user_id)


async def delete_activity(user_id: str) -> None:
    await activity.delete_for(user_id)
