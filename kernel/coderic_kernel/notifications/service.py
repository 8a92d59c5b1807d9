"""``notify`` and the fan-out behind it.

``notify`` writes one job to the outbox, in the caller's transaction. The job (in a worker,
or in-process without Redis) resolves the recipients, reads their preferences, and per chunk
of recipients, in one transaction: inserts the inbox rows, queues immediate emails (held by a
delayed job during quiet hours), queues a Web Push per subscribed browser (``push.py``) and
leaves digest rows for the daily and weekly crons. After
the commit it broadcasts ``notifications.delivered`` (Redis pub/sub: every API process hands
each notification to its member's open streams; see ``hub.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from coderic_sdk import NotificationType, Recipient

from ..errors import PluginError
from ..identity.tables import User
from ..permissions.tables import RoleGrant
from ..services.json_safe import to_json
from ..services.per_kernel import per_kernel
from . import preferences, push
from .hub import Hub
from .tables import Notification, to_dict

if TYPE_CHECKING:
    from ..kernel import Kernel

PLUGIN = "notifications"
FAN_OUT_JOB = "notifications.fan_out"
EMAIL_JOB = "notifications.email"
DELIVERED = "notifications.delivered"
UNREAD = "notifications.unread"
ANNOUNCEMENT = "notifications.announcement"
SECURITY_ALERT = "notifications.security_alert"
CHUNK = 500
MAX_RECIPIENTS = 50_000
N = Notification


@per_kernel
def notifications_for(kernel: Kernel) -> NotificationService:
    """The kernel's notification service, made on first use (at boot, by the built-in plugin)."""
    return NotificationService(kernel)


def as_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """A notification as the API and the streams show it."""
    read_at = row.get("read_at")
    return {
        "id": row["id"], "type": row["type"], "source": row["source"], "data": to_dict(row["data"]),
        "created_at": row["created_at"].isoformat(), "read": read_at is not None,
        "read_at": read_at.isoformat() if read_at is not None else None,
    }


ITEM_COLUMNS = (N.id, N.type, N.source, N.data, N.created_at, N.read_at)


class NotificationService:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.settings = kernel.config.kernel
        self.types: dict[str, tuple[str, NotificationType]] = {}
        for plugin in kernel.contexts.values():
            for kind in kernel.hooks.notification_types(plugin):
                if not kind.key.startswith(f"{plugin.name}."):
                    raise PluginError(plugin.name, "register", f"notification type {kind.key!r} must start with '{plugin.name}.'")
                if kind.key in self.types:
                    raise PluginError(plugin.name, "register", f"notification type {kind.key!r} is declared twice")
                self.types[kind.key] = (plugin.name, kind)
        self.hub = Hub(self.settings.notifications_queue_size)

    def kind(self, key: str) -> NotificationType:
        return self.types[key][1]

    @property
    def plugin(self) -> Any:
        return self.kernel.plugin(PLUGIN)

    # ---------------------------------------------------------------------------- sending

    async def notify(self, source: str, recipients: Iterable[str], type: str, data: Mapping[str, Any], *,
                     key: str | None = None, may_send_any: bool = False) -> str:
        key_ = type if type in self.types else f"{source}.{type}"
        if key_ not in self.types:
            known = ", ".join(sorted(self.types)) or "none"
            raise ValueError(f"unknown notification type {type!r}; declared types: {known}")
        if self.types[key_][0] != source and not may_send_any:
            raise ValueError(f"plugin '{source}' may only send its own notification types, not {key_!r}")
        users = list(dict.fromkeys(str(r) for r in recipients))
        if len(users) > MAX_RECIPIENTS:
            raise ValueError(f"at most {MAX_RECIPIENTS} recipients per notify; call it once per batch")
        if not isinstance(data.get("title"), str) or not data["title"]:
            raise ValueError("notification data needs a non-empty 'title' (a string)")
        to_json(data, "notification data")
        if not users:
            return ""
        return await self._enqueue({"type": key_, "source": source, "data": dict(data), "users": users}, key)

    async def announce(self, by: str, title: str, body: str, url: str | None, role: str | None) -> str:
        data = {"title": title, "body": body, "url": url, "by": by}
        return await self._enqueue({"type": ANNOUNCEMENT, "source": PLUGIN, "data": data, "role": role or "*"}, None)

    async def _enqueue(self, payload: dict[str, Any], key: str | None) -> str:
        payload["at"] = datetime.now(timezone.utc).isoformat()
        return await self.plugin.jobs.enqueue(FAN_OUT_JOB, payload, key=key)  # type: ignore[no-any-return]

    async def recipients(self, payload: Mapping[str, Any]) -> list[list[str]]:
        """The recipients of a fan-out in chunks: the users named, or the active holders of a role."""
        if "users" in payload:
            users = list(payload["users"])
        elif payload["role"] in ("*", "member"):
            users = [r["uid"] for r in await User.select(User.uid).where(User.status == "active").order_by(User.id)]
        else:
            rows = await RoleGrant.select(RoleGrant.user_id).where(
                (RoleGrant.role == payload["role"]) & RoleGrant.resource_type.is_null() & RoleGrant.revoked_at.is_null()
            )
            users = list(dict.fromkeys(r["user_id"] for r in rows))
        return [users[i:i + CHUNK] for i in range(0, len(users), CHUNK)]

    async def fan_out(self, job_id: str, payload: Mapping[str, Any]) -> int:
        kind = self.kind(payload["type"])
        count = 0
        for chunk in await self.recipients(payload):
            count += await self._deliver(job_id, kind, payload, chunk)
        return count

    async def _deliver(self, job_id: str, kind: NotificationType, payload: Mapping[str, Any], users: Sequence[str]) -> int:
        people = {r["uid"]: r for r in await User.select(
            User.uid, User.email, User.name, User.language, User.timezone
        ).where(User.uid.is_in(list(users)) & (User.status == "active"))}
        chosen = await preferences.choices(list(people), kind)
        quiet = {} if kind.required else await preferences.quiet_hours(list(people))
        browsers = await push.subscriptions_of([u for u, c in chosen.items() if c.push]) if push.enabled(self.settings) else {}
        now = datetime.now(timezone.utc)
        rows, holds = [], {}
        for user, choice in chosen.items():
            if not (choice.in_app or choice.email != "off" or user in browsers):
                continue
            email = "" if choice.email == "off" or not people[user]["email"] else choice.email
            if email == "immediately":
                hours = quiet.get(user)
                holds[user] = preferences.quiet_delay(now, people[user]["timezone"], *hours) if hours else 0.0
                email = "held" if holds[user] > 0 else "sent"
            rows.append(N(key=f"{job_id}:{user}", user_id=user, type=kind.key, source=payload["source"],
                          data=payload["data"], in_app=choice.in_app, email=email, created_at=now))
        if not rows:
            return 0
        async with self.kernel.database.transaction():
            inserted = await N.insert(*rows).on_conflict(target=N.key, action="DO NOTHING").returning(
                *ITEM_COLUMNS, N.user_id, N.in_app, N.email
            )
            for row in inserted:
                if row["email"] == "sent":
                    await self.send_email(row, people[row["user_id"]])
                elif row["email"] == "held":
                    await self.plugin.jobs.enqueue(EMAIL_JOB, {"id": row["id"]}, delay=holds[row["user_id"]], key=str(row["id"]))
                await push.queue(self, row["id"], browsers.get(row["user_id"], ()))
        await self.publish_delivered([row for row in inserted if row["in_app"]])
        return len(inserted)

    async def send_email(self, row: Mapping[str, Any], person: Mapping[str, Any]) -> None:
        kind = self.kind(row["type"])
        data = to_dict(row["data"])
        context = {"notification_type": row["type"].split(".", 1)[1], "body": "", "url": "", **data}
        recipient = Recipient(person["email"], person["name"] or None, person["uid"], person["language"])
        await self.plugin.email.send(kind.email_template, recipient, context, key=f"notification:{row['id']}")

    async def send_held(self, notification_id: int) -> None:
        """Quiet hours are over: send the email held for ``notification_id`` (once)."""
        async with self.kernel.database.transaction():
            row = await N.select(*ITEM_COLUMNS, N.user_id).where((N.id == notification_id) & (N.email == "held")).first()
            if row is None:
                return
            person = await User.select(User.uid, User.email, User.name, User.language).where(User.uid == row["user_id"]).first()
            if person is not None and person["email"]:
                await self.send_email(row, person)
            await N.update({N.email: "sent"}).where(N.id == notification_id)

    # ---------------------------------------------------------------------------- real time

    async def publish_delivered(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Tell every process's streams about ``rows``: the notifications of one fan-out chunk,
        which share their type, source, data and time."""
        if not rows:
            return
        counts = await self.unread_counts(list({row["user_id"] for row in rows}))
        # The rows of one fan-out chunk differ only in id and recipient: the rest goes once. With
        # a copy per recipient a chunk of 16 KiB notifications was an 8 MB message, and Redis
        # drops a subscriber whose pub/sub buffer grows past 32 MB (and its messages with it).
        shared = as_item(rows[0])
        del shared["id"]
        recipients = [[row["user_id"], row["id"], counts.get(row["user_id"], 0)] for row in rows]
        await self.plugin.events.publish(DELIVERED, {"notification": shared, "to": recipients})

    async def publish_unread(self, user_id: str) -> int:
        count = await self.unread_count(user_id)
        await self.plugin.events.publish(UNREAD, {"user_id": user_id, "unread": count})
        return count

    # ---------------------------------------------------------------------------- the inbox

    async def unread_count(self, user_id: str) -> int:
        return await N.count().where((N.user_id == user_id) & N.in_app.eq(True) & N.read_at.is_null())  # type: ignore[no-any-return]

    async def unread_counts(self, user_ids: list[str]) -> dict[str, int]:
        rows = await N.raw(
            "SELECT user_id, COUNT(*) AS unread FROM kernel_notification WHERE in_app = {} AND read_at IS NULL "
            f"AND user_id IN ({', '.join('{}' for _ in user_ids)}) GROUP BY user_id", True, *user_ids,
        )
        return {row["user_id"]: int(row["unread"]) for row in rows}

    async def since(self, user_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        """The member's in-app notifications newer than ``after``, oldest first (a stream's replay)."""
        rows = await N.select(*ITEM_COLUMNS).where(
            (N.user_id == user_id) & N.in_app.eq(True) & (N.id > after)
        ).order_by(N.id).limit(limit)
        return [as_item(row) for row in rows]


class PluginNotifier:
    """``plugin.notifications``: the SDK's ``Notifier`` for one plugin (built-ins may send any type)."""

    def __init__(self, service: NotificationService, plugin: str, builtin: bool) -> None:
        self.service = service
        self.plugin = plugin
        self.builtin = builtin

    async def notify(self, recipients: Iterable[str], type: str, data: Mapping[str, Any], *, key: str | None = None) -> str:
        return await self.service.notify(self.plugin, recipients, type, data, key=key, may_send_any=self.builtin)
