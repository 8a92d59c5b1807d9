"""Who the platform's members are, as a plugin may know them (``plugin.users``): enough to check
that an id names an active member and to show a name beside it, never their email or secrets."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class UserSummary:
    """An active member's public face: ``id`` is the stable user id handlers see as ``ctx.user.id``."""

    id: str
    name: str
    avatar_url: str


@runtime_checkable
class Users(Protocol):
    async def get(self, user_id: str) -> UserSummary | None:
        """The active member with this id; ``None`` when there is none (unknown, disabled or deleted)."""
        ...

    async def get_many(self, user_ids: Iterable[str]) -> dict[str, UserSummary]:
        """The active members among ``user_ids``, by id (one query, for lists)."""
        ...
