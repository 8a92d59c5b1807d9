"""The SDK's ``Users`` (``plugin.users``): active members by id, with their public name and
avatar only, so plugins never read the identity tables or see an email address."""

from __future__ import annotations

from collections.abc import Iterable

from coderic_sdk import UserSummary

from .tables import User

_COLUMNS = (User.uid, User.name, User.avatar_url)


def _summary(row: dict[str, str]) -> UserSummary:
    return UserSummary(id=row["uid"], name=row["name"], avatar_url=row["avatar_url"])


class Directory:
    async def get(self, user_id: str) -> UserSummary | None:
        row = await User.select(*_COLUMNS).where((User.uid == user_id) & (User.status == "active")).first()
        return _summary(row) if row else None

    async def get_many(self, user_ids: Iterable[str]) -> dict[str, UserSummary]:
        wanted = sorted(set(user_ids))
        if not wanted:
            return {}
        rows = await User.select(*_COLUMNS).where(User.uid.is_in(wanted) & (User.status == "active"))
        return {row["uid"]: _summary(row) for row in rows}
