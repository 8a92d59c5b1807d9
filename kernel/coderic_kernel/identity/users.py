"""Accounts: creating, finding and showing users. Emails are stored normalised (stripped and
lower-cased, as the email service compares them), so one address is one account."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from coderic_sdk import FieldError, Problem, Schema
from pydantic import Field

from ..email.message import normalise_address
from ..profiles.activity import PluginActivity
from .crypto import new_uid
from .tables import User

PROFILE_FIELDS = ("name", "bio", "avatar_url", "skills", "location", "timezone", "language")


class UserOut(Schema):
    """A user as they see themselves."""

    id: str = Field(description="The user's stable id: the `sub` of their tokens.")
    email: str | None
    email_verified: bool
    name: str
    bio: str
    avatar_url: str
    skills: list[str]
    location: str
    timezone: str = Field(description="IANA time zone, like `America/Bogota`.")
    language: str | None = Field(description="Preferred language (`es`, `en`); `null`: the platform default.")
    github_id: int | None
    created_at: datetime
    last_login: datetime | None
    has_password: bool
    two_factor_enabled: bool


def user_out(row: dict[str, Any]) -> UserOut:
    return UserOut(
        id=row["uid"], email=row["email"], email_verified=row["email_verified"], name=row["name"], bio=row["bio"],
        avatar_url=row["avatar_url"], skills=list(row["skills"] or []), location=row["location"],
        timezone=row["timezone"], language=row["language"], github_id=row["github_id"], created_at=row["created_at"],
        last_login=row["last_login"], has_password=row["password_hash"] is not None,
        two_factor_enabled=row["totp_enabled_at"] is not None,
    )


def normalised_email(address: str, field: str = "body.email") -> str:
    """The address as stored, or a 422 naming ``field``."""
    try:
        return normalise_address(address)
    except ValueError as exc:
        raise Problem(422, "The email address is invalid.", errors=[FieldError(field, str(exc), "value_error")]) from None


async def by_uid(uid: str) -> dict[str, Any] | None:
    return await User.select().where(User.uid == uid).first().output(load_json=True)  # type: ignore[no-any-return]


async def by_email(address: str) -> dict[str, Any] | None:
    return await User.select().where(User.email == address).first().output(load_json=True)  # type: ignore[no-any-return]


async def create(**values: Any) -> dict[str, Any]:
    """A new active user; ``values`` are columns of ``User`` (``email`` already normalised)."""
    uid = new_uid()
    await User.insert(User(uid=uid, **values))
    created = await by_uid(uid)
    assert created is not None
    await PluginActivity("auth").record(uid, "auth.joined")  # seen by members, like the rest of the history
    return created


async def update(uid: str, **values: Any) -> None:
    values["updated_at"] = datetime.now(timezone.utc)
    await User.update({getattr(User, key): value for key, value in values.items()}).where(User.uid == uid)
