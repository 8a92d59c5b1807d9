"""Members' profiles: one per account, its fields shown to whom the member chose.

Each field (name, bio, avatar, skills, location, time zone, links) is ``public``,
``members`` or ``private`` (``DEFAULT_VISIBILITY`` until the member says otherwise). A
guest sees the public fields, a signed-in member the public and members' ones, the member
all of them. Hidden fields are ``null``. Only active accounts have a profile: an unknown,
disabled or deleted id is the same 404.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from coderic_sdk import Audience, CurrentUser, FilePurpose, NotFound, Schema
from coderic_sdk.storage import IMAGE_TYPES
from pydantic import Field

from ..identity import users
from .activity import audiences_for
from .sections import load_sections
from .tables import Profile

if TYPE_CHECKING:
    from ..kernel import Kernel

FieldName = Literal["name", "bio", "avatar", "skills", "location", "timezone", "links"]
FIELDS: tuple[FieldName, ...] = ("name", "bio", "avatar", "skills", "location", "timezone", "links")
DEFAULT_VISIBILITY: dict[str, Audience] = {
    "name": "public", "bio": "public", "avatar": "public", "skills": "public", "links": "public",
    "location": "members", "timezone": "members",
}
MAX_LINKS = 10
USER_ID = re.compile(r"^[0-9a-f]{32}$")
NO_SUCH_USER = "There is no such user."
#: Profile pictures: public files (their URL is shown only to whom the member lets see the avatar).
AVATAR = FilePurpose(
    "avatar", max_bytes=5 * 1024 * 1024, allowed_types=IMAGE_TYPES, visibility="public",
    variants={"small": 64, "medium": 256, "large": 512}, attach=True, description="Members' profile pictures.",
)
AVATAR_PURPOSE = "auth.avatar"


class Link(Schema):
    label: str = Field(description="What the link is: `Website`, `Mastodon`.")
    url: str = Field(description="An https:// URL.")


class AvatarOut(Schema):
    url: str = Field(description="The picture: an uploaded file, GitHub's, or an https:// URL the member gave.")
    variants: dict[str, str] = Field(description="Resized copies of an uploaded picture (`small`, `medium`, `large`) by name.")


class ProfileOut(Schema):
    """A member's profile as the caller may see it: hidden fields are `null`."""

    id: str = Field(description="The member's id.")
    name: str | None
    bio: str | None
    avatar: AvatarOut | None = Field(description="`null`: hidden, or no picture.")
    skills: list[str] | None
    location: str | None
    timezone: str | None = Field(description="IANA time zone.")
    links: list[Link] | None
    sections: dict[str, dict[str, Any]] = Field(
        description="What plugins add (`freelancers.rates`), by section name; each plugin decides who sees its sections."
    )


class MyProfileOut(ProfileOut):
    """My own profile: every field, and who sees each."""

    visibility: dict[str, Audience] = Field(description="Field -> `public`, `members` or `private`.")


async def active_user(user_id: str) -> dict[str, Any]:
    """The active account ``user_id``; ``NotFound`` alike for a malformed, unknown, disabled or deleted id."""
    row = await users.by_uid(user_id) if USER_ID.match(user_id) else None
    if row is None or row["status"] != "active":
        raise NotFound(NO_SUCH_USER)
    return row


async def settings_of(user_id: str) -> dict[str, Any]:
    """The member's links, visibility (defaults filled in) and uploaded avatar."""
    row = await Profile.select().where(Profile.user_id == user_id).first().output(load_json=True)
    stored = row or {"links": [], "visibility": {}, "avatar_file_id": None}
    visibility = {**DEFAULT_VISIBILITY, **{k: v for k, v in (stored["visibility"] or {}).items() if k in DEFAULT_VISIBILITY}}
    return {"links": list(stored["links"] or []), "visibility": visibility, "avatar_file_id": stored["avatar_file_id"]}


async def save_settings(user_id: str, **values: Any) -> None:
    """Change columns of the member's ``kernel_profile`` row, making it first if need be."""
    await Profile.insert(Profile(user_id=user_id)).on_conflict(target=Profile.user_id, action="DO NOTHING")
    values["updated_at"] = datetime.now(timezone.utc)
    await Profile.update({getattr(Profile, key): value for key, value in values.items()}).where(Profile.user_id == user_id)


def avatar_url(kernel: Kernel, file_id: str, variant: str | None = None) -> str:
    """A stable URL of an uploaded avatar (the file route redirects to storage or the CDN)."""
    base = f"{kernel.config.kernel.public_url}/api/v1/files/{file_id}/content"
    return f"{base}?variant={variant}" if variant else base


def avatar_of(kernel: Kernel, row: dict[str, Any], file_id: str | None) -> AvatarOut | None:
    if not row["avatar_url"]:
        return None
    if file_id is not None and row["avatar_url"] == avatar_url(kernel, file_id):
        return AvatarOut(url=row["avatar_url"], variants={v: avatar_url(kernel, file_id, v) for v in AVATAR.variants})
    return AvatarOut(url=row["avatar_url"], variants={})


async def profile_of(kernel: Kernel, row: dict[str, Any], viewer: CurrentUser | None, *,
                     own: bool = False) -> ProfileOut | MyProfileOut:
    """The profile of the account ``row`` as ``viewer`` (``None``: a guest) may see it;
    ``own``: the member's own view, which also says who sees each field."""
    settings = await settings_of(row["uid"])
    values: dict[str, Any] = {
        "name": row["name"], "bio": row["bio"], "avatar": avatar_of(kernel, row, settings["avatar_file_id"]),
        "skills": list(row["skills"] or []), "location": row["location"], "timezone": row["timezone"],
        "links": [Link(**link) for link in settings["links"]],
    }
    seen = audiences_for(viewer, row["uid"])
    shown = {field: values[field] if settings["visibility"][field] in seen else None for field in FIELDS}
    sections = await load_sections(kernel, row["uid"], viewer)
    if own:
        return MyProfileOut(id=row["uid"], **shown, sections=sections, visibility=settings["visibility"])
    return ProfileOut(id=row["uid"], **shown, sections=sections)


# --- avatars -----------------------------------------------------------------------------------


async def set_avatar(kernel: Kernel, user_id: str, file_id: str | None, url: str = "") -> None:
    """Show ``file_id`` (an uploaded avatar), or ``url`` (GitHub's, one given), or nothing, as
    the member's picture; the uploaded avatar it replaces is deleted."""
    settings = await settings_of(user_id)
    await users.update(user_id, avatar_url=avatar_url(kernel, file_id) if file_id else url)
    if file_id is not None or settings["avatar_file_id"] is not None:
        await save_settings(user_id, avatar_file_id=file_id)
    old = settings["avatar_file_id"]
    if old is not None and old != file_id:
        await kernel.plugin("auth").files.delete(old)
