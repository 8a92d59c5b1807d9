"""The plugin's tables. Who may do what is kept by the kernel's role grants; ``Member`` mirrors
them so that lists ("my projects", the member filter) are one indexed query."""

from __future__ import annotations

from piccolo.columns import (
    ForeignKey,
    Integer,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod
from piccolo.table import Table

STATUSES = ("idea", "active", "paused", "completed", "archived")
VISIBILITIES = ("public", "members", "private")
MEMBER_ROLES = ("owner", "maintainer", "contributor")


class Project(Table, tablename="projects_project"):
    """Few columns are indexed on purpose: an index on a column most rows share (visibility,
    status, deleted_at) leads SQLite to filter by it and sort thousands of rows, where walking
    the primary key (or the sort's own index) newest first stops after one page."""

    id = Serial(primary_key=True)
    slug = Varchar(length=80, unique=True, index=True)
    name = Varchar(length=120)
    summary = Varchar(length=300, default="")
    description = Text(default="")
    description_html = Text(default="")
    status = Varchar(length=20, default="idea")
    visibility = Varchar(length=10, default="public")
    repository_url = Varchar(length=300, null=True, default=None)
    website = Varchar(length=300, null=True, default=None)
    cover_file_id = Varchar(length=32, null=True, default=None)
    created_by = Varchar(length=64, null=True, default=None, index=True)
    followers_count = Integer(default=0, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow(), index=True)
    archived_at = Timestamptz(null=True, default=None)
    deleted_at = Timestamptz(null=True, default=None)
    github_stars = Integer(null=True, default=None)
    github_language = Varchar(length=60, null=True, default=None)
    github_pushed_at = Timestamptz(null=True, default=None)
    github_synced_at = Timestamptz(null=True, default=None)


class Label(Table, tablename="projects_label"):
    """A tag or a wanted skill of a project: one row each, so filters are indexed lookups on
    both databases (PostgreSQL arrays would not work on SQLite)."""

    project = ForeignKey(Project, index=True)
    kind = Varchar(length=5)  # "tag" or "skill"
    value = Varchar(length=40, index=True, index_method=IndexMethod.btree)


class Member(Table, tablename="projects_member"):
    project = ForeignKey(Project, index=True)
    user_id = Varchar(length=64, index=True)
    role = Varchar(length=12)
    joined_at = Timestamptz(default=TimestamptzNow())


class Invitation(Table, tablename="projects_invitation"):
    project = ForeignKey(Project, index=True)
    user_id = Varchar(length=64, index=True)
    role = Varchar(length=12, default="contributor")
    message = Varchar(length=1000, default="")
    invited_by = Varchar(length=64, null=True, default=None)
    status = Varchar(length=10, default="pending")  # pending, accepted, declined, cancelled
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    answered_at = Timestamptz(null=True, default=None)


class JoinRequest(Table, tablename="projects_join_request"):
    project = ForeignKey(Project, index=True)
    user_id = Varchar(length=64, index=True)
    message = Varchar(length=1000, default="")
    status = Varchar(length=10, default="pending")  # pending, approved, rejected, withdrawn
    created_at = Timestamptz(default=TimestamptzNow())
    decided_by = Varchar(length=64, null=True, default=None)
    decided_at = Timestamptz(null=True, default=None)


class Update(Table, tablename="projects_update"):
    project = ForeignKey(Project, index=True)
    author_id = Varchar(length=64, null=True, default=None, index=True)
    title = Varchar(length=200)
    body = Text(default="")
    body_html = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())


class Follow(Table, tablename="projects_follow"):
    project = ForeignKey(Project, index=True)
    user_id = Varchar(length=64, index=True)
    created_at = Timestamptz(default=TimestamptzNow())


TABLES = [Project, Label, Member, Invitation, JoinRequest, Update, Follow]

__all__ = ["TABLES", "MEMBER_ROLES", "STATUSES", "VISIBILITIES", "Project", "Label", "Member",
           "Invitation", "JoinRequest", "Update", "Follow"]
