"""The daily and weekly notification digests, and the inbox's retention.

Notifications a member wants "in the daily digest" (or weekly) wait with ``email`` set to
``daily`` (``weekly``); the cron of that period sends each member one ``email.digest`` of
what waited and marks it sent, in one transaction per member.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from coderic_sdk import Recipient

from ..identity.tables import User
from .service import to_dict
from .tables import Notification

if TYPE_CHECKING:
    from .service import NotificationService

N = Notification
TEMPLATE = "email.digest"
MOST_PER_DIGEST = 200
PERIOD = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}


async def send_digests(service: NotificationService, mode: str) -> int:
    """Send the ``daily`` or ``weekly`` digest to every member with something waiting; return how many."""
    sent = 0
    while True:
        waiting = await N.select(N.user_id).where(N.email == mode).distinct().limit(500)
        if not waiting:
            return sent
        for row in waiting:
            sent += await send_digest(service, row["user_id"], mode)


async def send_digest(service: NotificationService, user_id: str, mode: str) -> int:
    async with service.kernel.database.transaction():
        rows = await N.select(N.id, N.type, N.data, N.created_at).where(
            (N.user_id == user_id) & (N.email == mode)
        ).order_by(N.id).limit(MOST_PER_DIGEST)
        if not rows:
            return 0
        await N.update({N.email: "sent"}).where(N.id.is_in([r["id"] for r in rows]))
        person = await User.select(User.email, User.name, User.language).where(
            (User.uid == user_id) & (User.status == "active")
        ).first()
        if person is None or not person["email"]:
            return 0
        items = []
        for row in rows:
            data = to_dict(row["data"])
            items.append({"title": data.get("title", row["type"]), "url": data.get("url"), "summary": data.get("body")})
        since = rows[0]["created_at"].date().isoformat()
        recipient = Recipient(person["email"], person["name"] or None, user_id, person["language"])
        await service.plugin.email.send(TEMPLATE, recipient, {"since": since, "sections": [
            {"title": "Notifications", "items": items}]}, key=f"notifications:{mode}:{user_id}:{rows[-1]['id']}")
    return 1


async def prune(service: NotificationService) -> None:
    """Forget notifications older than ``notifications_retention_days``."""
    cutoff = datetime.now(timezone.utc) - timedelta(days=service.settings.notifications_retention_days)
    await N.delete().where(N.created_at < cutoff)
