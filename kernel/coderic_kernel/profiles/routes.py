"""Profiles and activity feeds: ``/api/v1/me/profile``, ``/api/v1/me/activity`` and
``/api/v1/users/{user_id}`` (served by the ``auth`` built-in)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from coderic_sdk import Audience, FieldError, Problem, RequestContext, Route, Schema
from pydantic import Field, HttpUrl

from ..identity import users
from ..identity.routes.common import NEEDS_USER
from ..identity.routes.profile import ProfileIn, account_changes
from ..storage.multipart import read_upload
from . import activity, github
from .service import (
    MAX_LINKS, NO_SUCH_USER, FieldName, MyProfileOut, ProfileOut, active_user, profile_of, save_settings, set_avatar,
    settings_of,
)

REFRESH_LIMIT = "auth.github_refresh"


# --- schemas -------------------------------------------------------------------------------


class LinkIn(Schema):
    label: str = Field(min_length=1, max_length=60, description="What the link is: `Website`, `Mastodon`.")
    url: HttpUrl = Field(description="An https:// URL.")


class ProfilePatch(ProfileIn):
    """Fields to change; those left out keep their value. Anything else is refused (422)."""

    links: list[LinkIn] | None = Field(None, max_length=MAX_LINKS, description=f"At most {MAX_LINKS}; replaces them all.")
    visibility: dict[FieldName, Audience] | None = Field(
        None, description="Who sees each field: `public`, `members` (signed in) or `private` (me). Fields left out keep theirs.",
    )


class UserPath(Schema):
    user_id: str = Field(max_length=64, description="The member's id (32 hexadecimal characters).")


class AvatarForm(Schema):
    file: bytes = Field(description="A JPEG, PNG, WebP or GIF image of at most 5 MiB.")


class SubjectOut(Schema):
    type: str
    id: str


class ActivityOut(Schema):
    id: int
    type: str = Field(description="`<plugin>.<what>`: `auth.joined`, `projects.created`.")
    actor_id: str
    subject: SubjectOut | None = Field(description="What it is about, when anything.")
    metadata: dict[str, Any]
    visibility: Audience
    created_at: datetime


class ActivityPage(Schema):
    items: list[ActivityOut] = Field(description="Newest first. A page may hold fewer than `limit`: keep following `next_cursor`.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; `null`: no more.")


class FeedQuery(Schema):
    cursor: str | None = Field(None, pattern=r"^\d{1,18}$")
    limit: int = Field(20, ge=1, le=activity.FEED_MAX)


# --- profiles ------------------------------------------------------------------------------


async def my_profile(ctx: RequestContext[None, None, Any]) -> ProfileOut:
    user = ctx.require_user()
    return await profile_of(ctx.plugin.kernel, await active_user(user.id), user, own=True)  # type: ignore[arg-type]


async def update_my_profile(ctx: RequestContext[ProfilePatch, None, Any]) -> ProfileOut:
    user = ctx.require_user()
    await active_user(user.id)
    body = ctx.body
    changes = account_changes(body)
    settings: dict[str, Any] = {}
    if body.links is not None:
        settings["links"] = _links(body.links)
    elif "links" in body.model_fields_set:
        settings["links"] = []
    if body.visibility:
        settings["visibility"] = {**(await settings_of(user.id))["visibility"], **body.visibility}
    changed = sorted({*changes, *settings})
    if "avatar_url" in changes:  # a URL of the member's choice replaces an uploaded picture
        await set_avatar(ctx.plugin.kernel, user.id, None, changes.pop("avatar_url"))  # type: ignore[arg-type]
    if changes:
        await users.update(user.id, **changes)
    if settings:
        await save_settings(user.id, **settings)
    if changed:
        await ctx.plugin.activity.record(user.id, "auth.profile_updated", metadata={"fields": changed}, visibility="private")
    return await my_profile(ctx)  # type: ignore[arg-type]


def _links(links: list[LinkIn]) -> list[dict[str, str]]:
    cleaned, errors, seen = [], [], set()
    for index, link in enumerate(links):
        label = link.label.strip()
        if not label:
            errors.append(FieldError(f"body.links.{index}.label", "must not be blank", "value_error"))
        if link.url.scheme != "https":
            errors.append(FieldError(f"body.links.{index}.url", "must be an https:// URL", "value_error"))
        if str(link.url) not in seen:
            seen.add(str(link.url))
            cleaned.append({"label": label, "url": str(link.url)})
    if errors:
        raise Problem(422, "The request body is invalid.", errors=errors)
    return cleaned


async def upload_avatar(ctx: RequestContext[None, None, Any]) -> ProfileOut:
    user = ctx.require_user()
    await active_user(user.id)
    form = await read_upload(ctx.request)
    stored = await ctx.plugin.files.put("avatar", form.chunks, owner=user.id, filename=form.filename)
    await set_avatar(ctx.plugin.kernel, user.id, stored.id)  # type: ignore[arg-type]
    await ctx.plugin.activity.record(user.id, "auth.profile_updated", metadata={"fields": ["avatar"]}, visibility="private")
    return await my_profile(ctx)


async def delete_avatar(ctx: RequestContext[None, None, Any]) -> None:
    user = ctx.require_user()
    await active_user(user.id)
    await set_avatar(ctx.plugin.kernel, user.id, None)  # type: ignore[arg-type]


async def refresh_from_github(ctx: RequestContext[None, None, Any]) -> ProfileOut:
    user = ctx.require_user()
    row = await active_user(user.id)
    kernel = ctx.plugin.kernel
    found = await github.public_profile(kernel.config.kernel.auth_github_api_url,  # type: ignore[attr-defined]
                                        await github.linked_github_id(user.id))
    fields = sorted(found)
    if "avatar_url" in found:
        await set_avatar(kernel, user.id, None, found.pop("avatar_url"))  # type: ignore[arg-type]
    changes = {key: value for key, value in found.items() if row[key] != value}
    if changes:
        await users.update(user.id, **changes)
    await ctx.plugin.activity.record(user.id, "auth.profile_updated", visibility="private",
                                     metadata={"fields": fields, "source": "github"})
    return await my_profile(ctx)


async def user_profile(ctx: RequestContext[None, None, UserPath]) -> ProfileOut:
    row = await active_user(ctx.path.user_id)
    return await profile_of(ctx.plugin.kernel, row, ctx.user)  # type: ignore[arg-type]


# --- activity ------------------------------------------------------------------------------


async def my_activity(ctx: RequestContext[None, FeedQuery, Any]) -> ActivityPage:
    user = ctx.require_user()
    await active_user(user.id)
    return await _page(ctx, user.id)


async def user_activity(ctx: RequestContext[None, FeedQuery, UserPath]) -> ActivityPage:
    row = await active_user(ctx.path.user_id)
    return await _page(ctx, row["uid"])


async def _page(ctx: RequestContext[None, FeedQuery, Any], actor_id: str) -> ActivityPage:
    cursor = int(ctx.query.cursor) if ctx.query.cursor else None
    rows, after = await activity.feed(ctx.plugin.kernel, actor_id, ctx.user, cursor=cursor,  # type: ignore[arg-type]
                                      limit=ctx.query.limit)
    return ActivityPage(items=[ActivityOut(**activity.as_dict(row)) for row in rows],
                        next_cursor=None if after is None else str(after))


# --- declarations --------------------------------------------------------------------------


def routes() -> list[Route]:
    me = {"prefix": "me", "tags": ("me",), "authenticated": True}
    hidden = {404: f"{NO_SUCH_USER} Unknown, disabled and deleted accounts look the same."}
    return [
        Route("GET", "/profile", my_profile, name="my_profile", response=MyProfileOut, responses=NEEDS_USER,
              summary="My profile", description="Every field, who sees each, and the sections plugins add.", **me),
        Route("PATCH", "/profile", update_my_profile, name="update_my_profile", body=ProfilePatch, response=MyProfileOut,
              responses={**NEEDS_USER, 422: "An invalid or unknown field (role, email, status... are never set here)."},
              summary="Change my profile",
              description="Fields, links and who sees each field. Setting `avatar_url` replaces an uploaded picture.", **me),
        Route("POST", "/profile/avatar", upload_avatar, name="upload_avatar", response=MyProfileOut,
              raw_body={"multipart/form-data": AvatarForm},
              responses={**NEEDS_USER, 413: "Larger than 5 MiB, or over the storage quota.",
                         415: "Not multipart, or not a JPEG, PNG, WebP or GIF image.", 400: "Malformed multipart body."},
              summary="Upload my profile picture",
              description="A multipart form with one `file` part. The image is re-encoded without its metadata and "
                          "resized to `small` (64 px), `medium` (256 px) and `large` (512 px); it replaces the previous one.",
              **me),
        Route("DELETE", "/profile/avatar", delete_avatar, name="delete_avatar", status_code=204, responses=NEEDS_USER,
              summary="Remove my profile picture", description="An uploaded picture is deleted with its variants.", **me),
        Route("POST", "/profile/refresh-github", refresh_from_github, name="refresh_github_profile",
              response=MyProfileOut, rate_limit=REFRESH_LIMIT,
              responses={**NEEDS_USER, 409: "No GitHub account is linked, or GitHub no longer has it.",
                         502: "GitHub did not answer."},
              summary="Refresh my profile from GitHub",
              description="Name, bio, location and picture read again from the linked GitHub account's public "
                          "profile (values GitHub leaves empty are kept). The picture replaces an uploaded one.", **me),
        Route("GET", "/activity", my_activity, name="my_activity", query=FeedQuery, response=ActivityPage,
              responses=NEEDS_USER, summary="My activity", description="Everything recorded of me, private entries included.",
              **me),
        Route("GET", "/{user_id}", user_profile, name="user_profile", prefix="users", path_params=UserPath,
              response=ProfileOut, responses=hidden, tags=("users",), summary="A member's profile",
              description="The fields the member lets the caller see (guests: public ones; signed-in members: public "
                          "and members' ones), and the sections plugins add."),
        Route("GET", "/{user_id}/activity", user_activity, name="user_activity", prefix="users", path_params=UserPath,
              query=FeedQuery, response=ActivityPage, responses=hidden, tags=("users",), summary="A member's activity",
              description="Public entries for guests; public and members' entries for signed-in members; everything "
                          "for the member."),
    ]
