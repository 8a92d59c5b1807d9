"""Request and response bodies of the projects API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from coderic_sdk import Schema
from pydantic import Field, field_validator

Status = Literal["idea", "active", "paused", "completed", "archived"]
OpenStatus = Literal["idea", "active", "paused", "completed"]
Visibility = Literal["public", "members", "private"]
MemberRole = Literal["owner", "maintainer", "contributor"]
SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_LABEL = re.compile(r"^[a-z0-9][a-z0-9+#.\- ]{0,39}$")
_GITHUB = re.compile(r"^https://github\.com/[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}/?$")
_WEB = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
USER_ID = r"^[0-9a-f]{32}$"


def labels(values: list[str] | None) -> list[str] | None:
    """Tags and skills: lower case, trimmed, unique, in the order given."""
    if values is None:
        return None
    seen: list[str] = []
    for value in values:
        value = value.strip().lower()
        if not _LABEL.match(value):
            raise ValueError(f"{value!r}: 1 to 40 letters, digits, spaces or + # . -, starting with a letter or digit")
        if value not in seen:
            seen.append(value)
    return seen


def github_url(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if not _GITHUB.match(value):
        raise ValueError("must be a GitHub repository: https://github.com/<owner>/<repository>")
    return value.rstrip("/").removesuffix(".git")


def web_url(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if not _WEB.match(value):
        raise ValueError("must be an http:// or https:// address")
    return value


class _Editable(Schema):
    summary: str | None = Field(None, max_length=300)
    description: str | None = Field(None, max_length=50_000, description="Markdown; rendered as `description_html`.")
    visibility: Visibility | None = None
    tags: list[str] | None = Field(None, max_length=10)
    skills: list[str] | None = Field(None, max_length=20, description="Skills the project is looking for.")
    repository_url: str | None = Field(None, max_length=300, description="A GitHub repository, `https://github.com/<owner>/<repo>`.")
    website: str | None = Field(None, max_length=300)
    cover_file_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$",
                                      description="A file uploaded with purpose `projects.cover`; `null` removes the cover.")

    _labels = field_validator("tags", "skills")(labels)
    _github = field_validator("repository_url")(github_url)
    _web = field_validator("website")(web_url)


class ProjectIn(_Editable):
    name: str = Field(min_length=1, max_length=120)
    slug: str | None = Field(None, min_length=2, max_length=80, pattern=SLUG, description="Derived from the name when left out.")
    status: OpenStatus = "idea"
    visibility: Visibility = "public"


class ProjectPatch(_Editable):
    name: str | None = Field(None, min_length=1, max_length=120)
    slug: str | None = Field(None, min_length=2, max_length=80, pattern=SLUG)
    status: OpenStatus | None = Field(None, description="Archive with `POST .../archive`, not here.")


class GitHubStats(Schema):
    stars: int | None
    language: str | None
    pushed_at: datetime | None
    synced_at: datetime | None


class ProjectSummary(Schema):
    id: int
    slug: str
    name: str
    summary: str
    status: Status
    visibility: Visibility
    tags: list[str]
    skills: list[str]
    followers_count: int
    cover_url: str | None
    created_at: datetime
    updated_at: datetime


class Project(ProjectSummary):
    description: str
    description_html: str = Field(description="`description` rendered from Markdown and sanitised: safe to show as HTML.")
    repository_url: str | None
    website: str | None
    created_by: str | None
    archived_at: datetime | None
    members_count: int
    github: GitHubStats | None
    your_role: MemberRole | None = Field(description="Your role in the project; `null` when you are not a member.")
    following: bool = Field(description="Whether you follow the project.")


class ProjectPage(Schema):
    items: list[ProjectSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; `null` on the last.")


class ListQuery(Schema):
    status: Status | None = Field(None, description="Only this status; archived projects are listed only when asked for.")
    tag: str | None = Field(None, max_length=40)
    skill: str | None = Field(None, max_length=40)
    member: str | None = Field(None, pattern=USER_ID, description="Only projects this user is a member of.")
    sort: Literal["newest", "most_followed", "recently_updated"] = "newest"
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(20, ge=1, le=100)


class PageQuery(Schema):
    cursor: str | None = Field(None, max_length=200)
    limit: int = Field(20, ge=1, le=100)


class ProjectPath(Schema):
    project_id: int = Field(ge=1, le=2**31 - 1)


class SlugPath(Schema):
    slug: str = Field(max_length=80)


class MemberPath(ProjectPath):
    user_id: str = Field(pattern=USER_ID)


class InvitationPath(Schema):
    invitation_id: int = Field(ge=1, le=2**31 - 1)


class ProjectInvitationPath(ProjectPath):
    invitation_id: int = Field(ge=1, le=2**31 - 1)


class JoinRequestPath(ProjectPath):
    request_id: int = Field(ge=1, le=2**31 - 1)


class MemberOut(Schema):
    user_id: str
    name: str
    avatar_url: str
    role: MemberRole
    joined_at: datetime


class MemberList(Schema):
    items: list[MemberOut]


class RoleIn(Schema):
    role: MemberRole


class TransferIn(Schema):
    user_id: str = Field(pattern=USER_ID, description="A member of the project, who becomes its owner.")
    stay_as: Literal["maintainer", "contributor", "leave"] = Field("maintainer", description="What you become.")


class InvitationIn(Schema):
    user_id: str = Field(pattern=USER_ID)
    role: Literal["maintainer", "contributor"] = "contributor"
    message: str = Field("", max_length=1000)


class InvitationOut(Schema):
    id: int
    project_id: int
    project_name: str
    user_id: str
    role: MemberRole
    message: str
    invited_by: str | None
    status: Literal["pending", "accepted", "declined", "cancelled", "expired"]
    created_at: datetime
    expires_at: datetime


class InvitationList(Schema):
    items: list[InvitationOut]


class JoinRequestIn(Schema):
    message: str = Field("", max_length=1000)


class JoinRequestOut(Schema):
    id: int
    project_id: int
    user_id: str
    name: str
    message: str
    status: Literal["pending", "approved", "rejected", "withdrawn"]
    created_at: datetime
    decided_at: datetime | None


class JoinRequestList(Schema):
    items: list[JoinRequestOut]


class UpdateIn(Schema):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field("", max_length=50_000, description="Markdown; rendered as `body_html`.")


class UpdateOut(Schema):
    id: int
    project_id: int
    author_id: str | None
    title: str
    body: str
    body_html: str
    created_at: datetime


class UpdatePage(Schema):
    items: list[UpdateOut]
    next_cursor: str | None


class FollowOut(Schema):
    following: bool
    followers_count: int
