"""The ``notifications`` built-in's personal data: a member's notifications, their choices per
type, their quiet hours and their browsers subscribed to push. Deleting removes them all
(nothing else refers to them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from coderic_sdk import PersonalData

from .service import as_item
from .tables import Notification, NotificationPreference, NotificationQuietHours, PushSubscription

N, P, Q, S = Notification, NotificationPreference, NotificationQuietHours, PushSubscription


def declarations() -> list[PersonalData]:
    return [PersonalData("notifications", export, delete, "Notifications received, preferences per type, quiet hours, browsers subscribed to push.")]


async def export(user_id: str) -> dict[str, Any]:
    rows = await N.select(N.id, N.type, N.source, N.data, N.created_at, N.read_at).where(N.user_id == user_id).order_by(N.id)
    choices = await P.select(P.type, P.in_app, P.email, P.push).where(P.user_id == user_id).order_by(P.type)
    quiet = await Q.select(Q.start, Q.end).where(Q.user_id == user_id).first()
    # The browsers' keys stay out: they only let the holder encrypt pushes to that browser.
    browsers = await S.select(S.endpoint, S.expires_at, S.created_at, S.last_success_at, S.last_failure_at, S.last_error).where(
        S.user_id == user_id
    ).order_by(S.id)
    return {"notifications": [as_item(row) for row in rows], "preferences": choices, "quiet_hours": quiet,
            "push_subscriptions": [{k: v.isoformat() if isinstance(v, datetime) else v for k, v in b.items()} for b in browsers]}


async def delete(user_id: str) -> None:
    for table in (N, P, Q, S):
        await table.delete().where(table.user_id == user_id)
