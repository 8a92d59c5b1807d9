"""The activity history: what plugins record of members (``plugin.activity``) and the feeds
that show it.

Who sees an activity: its ``visibility`` (public: anyone; members: anyone signed in;
private: the actor alone), and, when it is about a subject whose plugin has a
``ResourcePolicy.visible``, only viewers who may see that subject (a deleted or private
project's activities drop out of the feeds of those who may not). A deleted account's
activities go with it (``delete_for``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from coderic_sdk import AUDIENCES, Audience, CurrentUser, Resource
from coderic_sdk.permissions import valid_name

from ..identity.tables import User
from ..services.json_safe import to_json
from .tables import Activity

if TYPE_CHECKING:
    from ..kernel import Kernel

METADATA_MAX_BYTES = 4096
FEED_MAX = 100


class PluginActivity:
    """The SDK's ``ActivityLog`` for one plugin: types ``<plugin>.<what>`` only."""

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin

    async def record(
        self, actor_id: str, type: str, subject: Resource | None = None, metadata: Mapping[str, Any] | None = None,
        visibility: Audience = "members",
    ) -> int | None:
        if not valid_name(type) or not type.startswith(f"{self.plugin}."):
            raise ValueError(f"activity type {type!r} must be named '{self.plugin}.<what>' (lower case)")
        if visibility not in AUDIENCES:
            raise ValueError(f"activity visibility {visibility!r} is one of {', '.join(AUDIENCES)}")
        if subject is not None and not isinstance(subject, Resource):
            raise TypeError(f"activity subject must be a coderic_sdk.Resource, not {subject.__class__.__name__}")
        data = dict(metadata or {})
        if len(to_json(data, f"metadata of activity {type}").encode()) > METADATA_MAX_BYTES:
            raise ValueError(f"metadata of activity {type} is over {METADATA_MAX_BYTES} bytes as JSON")
        if not await User.exists().where((User.uid == actor_id) & (User.status == "active")):
            return None  # no account, or one disabled or deleted: nothing of it is kept
        rows = await Activity.insert(Activity(
            actor_id=actor_id, type=type, plugin=self.plugin, subject_type=subject.type if subject else None,
            subject_id=subject.id if subject else None, metadata=data, visibility=visibility,
        )).returning(Activity.id)
        return int(rows[0]["id"])

    async def forget(self, subject: Resource) -> int:
        removed = await Activity.delete().where(
            (Activity.plugin == self.plugin) & (Activity.subject_type == subject.type) & (Activity.subject_id == subject.id)
        ).returning(Activity.id)
        return len(removed)


def audiences_for(viewer: CurrentUser | None, user_id: str) -> tuple[Audience, ...]:
    """What ``viewer`` may see of ``user_id``'s profile and activity."""
    if viewer is None:
        return ("public",)
    return AUDIENCES if viewer.id == user_id else ("public", "members")


async def feed(kernel: Kernel, actor_id: str, viewer: CurrentUser | None, *, cursor: int | None = None,
               limit: int = 20) -> tuple[list[dict[str, Any]], int | None]:
    """The newest of the actor's activities that ``viewer`` may see, older than ``cursor``, and
    the cursor of the next page (``None``: no more). Entries about subjects the viewer may not
    see are left out, so a page may hold fewer than ``limit``."""
    where = [Activity.actor_id == actor_id, Activity.visibility.is_in(list(audiences_for(viewer, actor_id)))]
    if cursor is not None:
        where.append(Activity.id < cursor)
    rows = await Activity.select().where(*where).order_by(Activity.id, ascending=False).limit(limit + 1).output(load_json=True)
    more = len(rows) > limit
    rows = rows[:limit]
    policies = kernel.permissions.registry.policies
    shown = []
    for row in rows:
        policy = policies.get(row["subject_type"]) if row["subject_type"] else None
        if policy is not None and policy.visible is not None:
            if not await policy.visible(viewer, Resource(row["subject_type"], row["subject_id"])):
                continue
        shown.append(row)
    return shown, (rows[-1]["id"] if more else None)


def as_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    """An activity as the API and exports show it."""
    subject = None if row["subject_type"] is None else {"type": row["subject_type"], "id": row["subject_id"]}
    metadata = row["metadata"]
    return {
        "id": row["id"], "type": row["type"], "actor_id": row["actor_id"], "subject": subject,
        "metadata": json.loads(metadata) if isinstance(metadata, str) else dict(metadata or {}),
        "visibility": row["visibility"], "created_at": row["created_at"],
    }


# --- personal data ---------------------------------------------------------------------------


async def export_for(user_id: str) -> list[dict[str, Any]]:
    """Every activity of the user, oldest first, JSON-safe (times as ISO 8601 strings)."""
    rows = await Activity.select().where(Activity.actor_id == user_id).order_by(Activity.id).output(load_json=True)
    return [{**as_dict(row), "created_at": _iso(row["created_at"])} for row in rows]


async def delete_for(user_id: str) -> int:
    """Remove every activity of the user; how many. Idempotent."""
    return len(await Activity.delete().where(Activity.actor_id == user_id).returning(Activity.id))


def _iso(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
