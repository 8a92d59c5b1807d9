"""The signed-in user's own account: ``GET`` and ``PATCH /api/v1/me``."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from coderic_sdk import FieldError, NotFound, Problem, RequestContext, Route, Schema
from pydantic import Field, HttpUrl

from .. import users
from ..users import UserOut
from .common import NEEDS_USER

_ZONES: frozenset[str] | None = None


class ProfileIn(Schema):
    """Fields to change; those left out keep their value."""

    name: str | None = Field(None, max_length=200)
    bio: str | None = Field(None, max_length=5000)
    avatar_url: HttpUrl | None = Field(None, description="An https:// image URL (uploads go through /api/v1/files).")
    skills: list[str] | None = Field(None, max_length=50)
    location: str | None = Field(None, max_length=200)
    timezone: str | None = Field(None, max_length=64, description="IANA time zone, like `Europe/Madrid`.")
    language: str | None = Field(None, pattern=r"^(es|en)$", description="`es` or `en`.")


async def show_me(ctx: RequestContext[None, None, Any]) -> UserOut:
    row = await users.by_uid(ctx.require_user().id)
    if row is None:
        raise NotFound("The account no longer exists.")
    return users.user_out(row)


async def update_me(ctx: RequestContext[ProfileIn, None, Any]) -> UserOut:
    user = ctx.require_user()
    changes = account_changes(ctx.body)
    if changes:
        await users.update(user.id, **changes)
    return await show_me(ctx)


def account_changes(body: ProfileIn) -> dict[str, Any]:
    """The columns of ``kernel_user`` that ``body`` sets, checked and cleaned; 422 otherwise.
    Fields of a subclass (``PATCH /me/profile``'s links and visibility) are left to it."""
    changes = body.model_dump(exclude_unset=True, include=set(ProfileIn.model_fields))
    errors = []
    for key in ("name", "location", "bio", "timezone"):
        if key in changes and changes[key] is None:
            errors.append(FieldError(f"body.{key}", "cannot be null; send an empty string to clear it", "null"))
    if changes.get("timezone") and changes["timezone"] not in _timezones():
        errors.append(FieldError("body.timezone", "not an IANA time zone", "value_error"))
    if "skills" in changes and changes["skills"] is not None:
        skills = [skill.strip() for skill in changes["skills"]]
        if any(not skill or len(skill) > 50 for skill in skills):
            errors.append(FieldError("body.skills", "each skill has 1 to 50 characters", "value_error"))
        changes["skills"] = list(dict.fromkeys(skills))
    if changes.get("avatar_url") is not None:
        if changes["avatar_url"].scheme != "https":
            errors.append(FieldError("body.avatar_url", "must be an https:// URL", "value_error"))
        changes["avatar_url"] = str(changes["avatar_url"])
    if errors:
        raise Problem(422, "The request body is invalid.", errors=errors)
    changes = {key: ("" if value is None and key == "avatar_url" else value) for key, value in changes.items()}
    if changes.get("skills") is None:
        changes.pop("skills", None)
    return changes


def _timezones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


def routes() -> list[Route]:
    me = {"prefix": "me", "tags": ("me",), "authenticated": True, "responses": NEEDS_USER}
    return [
        Route("GET", "", show_me, name="me", response=UserOut, summary="My account", **me),
        Route("PATCH", "", update_me, name="update_me", body=ProfileIn, response=UserOut, summary="Change my profile",
              description="Name, bio, avatar, skills, location, time zone and language. Email and password have "
                          "routes of their own under /api/v1/auth.", **me),
    ]
