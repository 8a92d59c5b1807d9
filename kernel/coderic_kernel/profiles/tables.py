"""Profile and activity tables, part of the kernel's Piccolo app.

The profile fields the account has always had (name, bio, avatar URL, skills, location, time
zone) stay on ``kernel_user``; ``kernel_profile`` holds what profiles add: links, who sees
each field, and the uploaded avatar.
"""

from __future__ import annotations

from piccolo.columns import JSON, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Profile(Table, tablename="kernel_profile"):
    """One member's profile settings; a member who never changed them has no row."""

    user_id = Varchar(length=32, unique=True)
    links = JSON(default=[])  # [{"label": ..., "url": "https://..."}]
    visibility = JSON(default={})  # field -> audience; fields left out have their default
    avatar_file_id = Varchar(length=32, null=True, default=None)  # a file of purpose auth.avatar
    updated_at = Timestamptz(default=TimestamptzNow())


class Activity(Table, tablename="kernel_activity"):
    """Something a member did, recorded by a plugin (``type``: ``<plugin>.<what>``)."""

    actor_id = Varchar(length=32, index=True)
    type = Varchar(length=120, index=True)
    plugin = Varchar(length=40)
    subject_type = Varchar(length=120, null=True, default=None)
    subject_id = Varchar(length=120, null=True, default=None)
    metadata = JSON(default={})
    visibility = Varchar(length=8, default="members")  # public | members | private
    created_at = Timestamptz(default=TimestamptzNow())


TABLES = [Profile, Activity]
